"""Acoustic model contracts: CLN starts as LN, length regulator, MAS, overfitting, masking,
save/load, length scale, resume."""

from __future__ import annotations

import copy

import pytest
import torch

from adavoice.config import MelConfig
from adavoice.errors import MissingFileError, ModelFormatError
from adavoice.models.base_model import BaseModelConfig, load_base_model, save_base_model
from adavoice.nn.alignment import (
    monotonic_alignment_search,
)
from adavoice.nn.cln import ConditionalLayerNorm
from adavoice.nn.variance import regulate_length, token_average
from adavoice.train.acoustic_data import collate_acoustic
from adavoice.train.acoustic_losses import LossWeights, acoustic_losses
from tests.conftest import make_items, run_model, tiny_model


def test_cln_starts_as_plain_layer_norm():
    cln = ConditionalLayerNorm(hidden=12, condition_dim=5)
    x, s = torch.randn(3, 4, 12), torch.randn(3, 5)
    expected = torch.nn.functional.layer_norm(x, (12,))
    assert torch.allclose(cln(x, s), expected, atol=1e-6)
    with torch.no_grad():
        cln.to_scale.weight.fill_(0.1)
    assert not torch.allclose(cln(x, s), expected, atol=1e-3)


def test_model_decoder_norms_are_all_conditional():
    model = tiny_model()
    decoder_norms = [m for m in model.decoder.modules()
                     if isinstance(m, (torch.nn.LayerNorm, ConditionalLayerNorm))]
    assert decoder_norms and all(isinstance(m, ConditionalLayerNorm) for m in decoder_norms)


def test_length_regulator_and_token_average_are_inverse():
    hidden = torch.randn(2, 4, 3)
    durations = torch.tensor([[2, 0, 1, 3], [1, 1, 1, 0]])
    frames = regulate_length(hidden, durations)
    assert frames.shape == (2, 6, 3)
    assert torch.equal(frames[0, 2], hidden[0, 2]) and torch.equal(frames[0, 5], hidden[0, 3])
    assert torch.count_nonzero(frames[1, 3:]) == 0
    back = token_average(frames, durations)
    spoken = durations > 0
    assert torch.allclose(back[spoken], hidden[spoken])


@pytest.mark.parametrize("frames,tokens", [(10, 3), (7, 7), (30, 11)])
def test_mas_is_monotonic_and_covers_every_token(frames, tokens):
    torch.manual_seed(frames)
    log_attention = torch.log_softmax(torch.randn(1, frames, tokens), -1)
    hard = monotonic_alignment_search(log_attention, torch.tensor([tokens]),
                                      torch.tensor([frames]))[0]
    assert torch.equal(hard.sum(1), torch.ones(frames))  # one token per frame
    assert (hard.sum(0) >= 1).all()  # every token gets a frame
    token_of_frame = hard.argmax(1)
    assert (token_of_frame[1:] >= token_of_frame[:-1]).all()


def test_mas_follows_a_clear_diagonal():
    t, j = torch.meshgrid(torch.arange(20), torch.arange(5), indexing="ij")
    log_probs = torch.log_softmax(-5.0 * (j - t // 4).float() ** 2, dim=1)[None]
    hard = monotonic_alignment_search(log_probs, torch.tensor([5]), torch.tensor([20]))[0]
    assert hard.sum(0).tolist() == [4, 4, 4, 4, 4]


def test_inference_never_renders_fewer_than_two_frames():
    model = tiny_model().eval()
    for module in model.duration_predictor.modules():  # predict exp(-20) - 1 -> 0 frames
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.zeros_(module.weight)
            torch.nn.init.constant_(module.bias, -20.0)
    tokens = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        out = model.infer(tokens, model.speaker_condition(0))
    assert out.durations.tolist() == [[2, 0, 0]] and out.mel.shape[-1] == 2


def test_tiny_model_overfits_one_batch():
    model = tiny_model()
    batch = collate_acoustic(make_items())
    weights = LossWeights(binarization_start_step=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for step in range(150):
        losses = acoustic_losses(run_model(model, batch), batch, step, weights)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        first = first if first is not None else float(losses["mel_loss"])
    assert float(losses["mel_loss"]) < first / 3, (first, float(losses["mel_loss"]))


def test_padding_never_reaches_a_loss():
    """Changing padded mel/pitch/energy values must leave every loss unchanged."""
    model = tiny_model().eval()
    batch = collate_acoustic(make_items(count=3))
    torch.manual_seed(0)
    base = {k: float(v) for k, v in acoustic_losses(run_model(model, batch), batch, 0).items()}
    pad = ~batch.frame_mask
    batch.mel.masked_fill_(pad.unsqueeze(1), 123.0)
    batch.log_f0.masked_fill_(pad, 9.0)
    batch.log_energy.masked_fill_(pad, -50.0)
    batch.tokens.masked_fill_(~batch.text_mask, 0)
    changed = {k: float(v) for k, v in acoustic_losses(run_model(model, batch), batch, 0).items()}
    for key in base:
        assert changed[key] == pytest.approx(base[key], rel=1e-4, abs=1e-5), key


def test_save_load_round_trip_is_exact(tmp_path):
    model = tiny_model().eval()
    cfg = BaseModelConfig(acoustic=model.cfg, mel=MelConfig(), language="en",
                          symbols={"symbols": []}, speakers=["a", "b"])
    save_base_model(tmp_path / "m", model, cfg)
    loaded, loaded_cfg = load_base_model(tmp_path / "m")
    assert loaded_cfg.speakers == ["a", "b"] and loaded_cfg.acoustic == model.cfg
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    tokens = torch.tensor([[1, 2, 3, 4]])
    assert torch.equal(model.infer(tokens, model.speaker_condition(1)).mel,
                       loaded.infer(tokens, loaded.speaker_condition(1)).mel)


def test_damaged_or_missing_model_files_raise_typed_errors(tmp_path):
    with pytest.raises(MissingFileError):
        load_base_model(tmp_path / "nothing")
    model = tiny_model()
    cfg = BaseModelConfig(acoustic=model.cfg, mel=MelConfig(), language="en",
                          symbols={"symbols": []}, speakers=["a", "b"])
    folder = save_base_model(tmp_path / "m", model, cfg)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFormatError):
        load_base_model(folder)


def test_length_scale_two_gives_about_twice_the_frames():
    model = tiny_model().eval()
    with torch.no_grad():  # make durations non-trivial: ~exp(2)-1 frames per token
        model.duration_predictor.out.bias.fill_(2.0)
    tokens = torch.tensor([[1, 2, 3, 4, 5, 6]])
    voice = model.speaker_condition(0)
    one = model.infer(tokens, voice, length_scale=1.0).mel.shape[-1]
    two = model.infer(tokens, voice, length_scale=2.0).mel.shape[-1]
    assert 1.8 <= two / one <= 2.2, (one, two)


def test_fft_block_fast_inference_paths_give_the_same_numbers():
    from adavoice.nn.transformer import FFTBlock

    torch.manual_seed(0)
    block = FFTBlock(hidden=16, heads=2, ffn_hidden=32, kernel_size=3, dropout=0.0).eval()
    x, mask = torch.randn(1, 9, 16), torch.ones(1, 9, dtype=torch.bool)
    wrapped = copy.deepcopy(block)

    class WrappedConv(torch.nn.Conv1d):  # stands for a LoRA wrapper: the block calls it
        pass

    wrapped.conv1.__class__ = WrappedConv
    wrapped.conv2.__class__ = WrappedConv
    assert block._unfolded_conv1() and not wrapped._unfolded_conv1()
    with torch.no_grad():
        masked, unmasked = block(x, mask, padded=True), block(x, mask, padded=False)
        through_module = wrapped(x, mask)
    assert torch.allclose(masked, unmasked, atol=1e-6)
    assert torch.allclose(masked, through_module, atol=1e-5)


def test_phoneme_condition_is_bounded_and_the_decoder_can_train_on_the_prediction():
    model = tiny_model().eval()
    batch = collate_acoustic(make_items())
    batch.mel.mul_(50.0)  # a loud mel drives an unbounded encoder far past 1
    teacher = run_model(model, batch)
    target = teacher.phoneme_condition_target
    assert float(target.abs().max()) <= 1.0
    assert float(target.abs().max()) > 0.0
    # share 1.0 decodes from the predictor's output on every row; with durations fixed,
    # it is the same as putting the prediction where the target was
    durations = teacher.durations
    predicted = model(batch.tokens, batch.text_mask, batch.speakers, batch.mel,
                      batch.frame_mask, batch.log_f0, batch.log_energy, durations=durations,
                      predicted_condition_share=1.0)
    again = model(batch.tokens, batch.text_mask, batch.speakers, batch.mel, batch.frame_mask,
                  batch.log_f0, batch.log_energy, durations=durations)
    assert not torch.allclose(predicted.mel, again.mel, atol=1e-4)
    model.phoneme_encoder.forward = lambda token_mel, text_mask: predicted.phoneme_condition
    swapped = model(batch.tokens, batch.text_mask, batch.speakers, batch.mel, batch.frame_mask,
                    batch.log_f0, batch.log_energy, durations=durations)
    assert torch.allclose(predicted.mel, swapped.mel, atol=1e-6)


def test_bfloat16_decoder_keeps_durations_and_stays_close_to_float32():
    model = tiny_model().eval()
    with torch.no_grad():
        model.duration_predictor.out.bias.fill_(1.5)
    tokens = torch.tensor([[1, 2, 3, 4, 5, 6, 7]])
    voice = model.speaker_condition(1)
    assert model.set_inference_precision("float32") == torch.float32
    full = model.infer(tokens, voice)
    assert model.set_inference_precision("bfloat16") == torch.bfloat16
    low = model.infer(tokens, voice)
    assert torch.equal(full.durations, low.durations)  # the variance adaptor stays float32
    assert low.mel.dtype == torch.float32
    difference = (full.mel - low.mel).abs()
    assert 0 < difference.mean() < 0.05, difference.mean()  # it did run in bfloat16
    # nothing that records gradients sees it (training, or adapting through the frozen eval-mode
    # decoder): the same numbers as float32
    batch = collate_acoustic(make_items(count=2))
    outputs = {}
    for precision in ("bfloat16", "float32"):
        model.set_inference_precision(precision)
        for mode in ("train", "eval"):
            getattr(model, mode)()
            torch.manual_seed(1)
            outputs[precision, mode] = run_model(model, batch).mel
    for mode in ("train", "eval"):
        assert torch.equal(outputs["bfloat16", mode], outputs["float32", mode])


def test_bfloat16_attention_respects_the_key_padding_mask():
    from adavoice.nn.transformer import FFTBlock

    torch.manual_seed(0)
    block = FFTBlock(hidden=16, heads=2, ffn_hidden=32, kernel_size=3, dropout=0.0).eval()
    block.inference_dtype = torch.bfloat16
    x = torch.randn(2, 9, 16)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 5:] = False
    with torch.no_grad():
        batched = block(x, mask, padded=True)
        alone = block(x[1:, :5], mask[1:, :5], padded=False)
        block.inference_dtype = None
        full = block(x, mask, padded=True)
    block.inference_dtype = torch.bfloat16
    with torch.enable_grad():  # gradients through a frozen decoder (adaptation) stay float32
        assert torch.allclose(block(x, mask, padded=True), full, atol=1e-6)
    assert torch.allclose(batched[1:, :5], alone, atol=2e-2)  # padding keys are ignored
    assert torch.all(batched[1, 5:] == 0)
    assert torch.allclose(batched, full, atol=5e-2) and not torch.equal(batched, full)


def test_unknown_inference_precision_is_a_config_error():
    from adavoice.errors import ConfigError

    with pytest.raises(ConfigError, match="precision"):
        tiny_model().set_inference_precision("float8")
