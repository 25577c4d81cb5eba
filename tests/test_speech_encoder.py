"""AdaSpeech 2 mel encoder: its training loss, and the speaker terms a speaker-free encoder's
frames get back from the voice."""

from __future__ import annotations

import torch

from adavoice.models.speech_encoder import SpeechEncoder, SpeechEncoderConfig, voice_frames
from adavoice.train.acoustic_data import collate_acoustic
from adavoice.train.speech_encoder import mel_encoder_losses
from tests.conftest import make_items, tiny_model


def _setup(speaker_free: bool):
    base = tiny_model().eval().requires_grad_(False)
    torch.manual_seed(1)
    encoder = SpeechEncoder(SpeechEncoderConfig.for_base(base.cfg, speaker_free=speaker_free,
                                                         input_norm=False, dropout=0.0))
    return base, encoder, collate_acoustic(make_items(count=3))


def test_speaker_free_frames_get_the_voice_terms_on_real_frames_only():
    base, encoder, batch = _setup(speaker_free=True)
    rows, frames = batch.mel.shape[0], batch.mel.shape[-1]
    speaker = base.speaker_embedding(batch.speakers)
    utterance = torch.randn(rows, base.cfg.hidden)
    zeros = torch.zeros(rows, frames, base.cfg.hidden)
    added = voice_frames(encoder, base, zeros, batch.frame_mask, speaker, utterance)
    expected = base.speaker_to_hidden(speaker) + utterance
    assert torch.allclose(added[batch.frame_mask], expected.unsqueeze(1).expand_as(added)[
        batch.frame_mask], atol=1e-6)
    assert float(added[~batch.frame_mask].abs().max()) == 0.0
    legacy = SpeechEncoder(SpeechEncoderConfig.for_base(base.cfg, speaker_free=False))
    assert voice_frames(legacy, base, zeros, batch.frame_mask, speaker, utterance) is zeros


def test_the_pull_target_is_the_text_side_less_the_speaker_terms():
    base, encoder, batch = _setup(speaker_free=True)
    with torch.no_grad():
        text_side = base(batch.tokens, batch.text_mask, batch.speakers, batch.mel,
                         batch.frame_mask, batch.log_f0, batch.log_energy,
                         batch.log_prior).decoder_input
        terms = voice_frames(encoder, base, torch.zeros_like(text_side), batch.frame_mask,
                             base.speaker_embedding(batch.speakers),
                             base.utterance_encoder(batch.mel, batch.frame_mask))
    encoder.forward = lambda mel, mask: text_side - terms  # a perfect speaker-free encoder
    losses = mel_encoder_losses(base, encoder, batch, pull=1.0)
    assert float(losses["pull_loss"]) < 1e-10
    # and its frames, with the terms added back, decode to what the text side decodes to
    text_mel = base.decode(text_side, batch.frame_mask, base.speaker_embedding(batch.speakers))
    assert float(losses["mel_loss"]) == float(
        (text_mel - batch.mel).abs().mul(batch.frame_mask.unsqueeze(1)).sum()
        / (batch.frame_mask.sum() * batch.mel.shape[1]))


def test_mel_encoder_training_lowers_its_loss_and_leaves_the_base_alone():
    """On a random tiny base the reconstruction has a floor (the random decoder) and the pull
    one (random per-frame pitch and energy the mel does not show); the pull falls 3.4 -> 2.0."""
    base, encoder, batch = _setup(speaker_free=True)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        losses = mel_encoder_losses(base, encoder, batch, pull=1.0)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        losses = {k: float(v.detach()) for k, v in losses.items()}
        first = first or losses
    assert losses["pull_loss"] < 0.7 * first["pull_loss"], (first, losses)
    assert losses["loss"] < first["loss"] - 0.5 * (first["pull_loss"] - losses["pull_loss"])
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())


def test_input_norm_ignores_a_voice_wide_spectral_offset_and_padding():
    from adavoice.models.speech_encoder import standardise_channels

    torch.manual_seed(2)
    encoder = SpeechEncoder(SpeechEncoderConfig.tiny(input_norm=True, dropout=0.0)).eval()
    mel = torch.randn(2, 80, 30)
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[1, 20:] = False
    normed = standardise_channels(mel, mask)
    assert torch.allclose(normed[0].mean(-1), torch.zeros(80), atol=1e-5)
    assert torch.allclose(normed[1, :, :20].std(-1, unbiased=False), torch.ones(80), atol=1e-4)
    assert torch.all(normed[1, :, 20:] == 0)
    # a per-channel gain in dB (a timbre / channel colouring) and a louder take: same output
    coloured = mel * 1.5 + torch.linspace(-2, 2, 80).view(1, 80, 1)
    garbage = mel.clone()
    garbage[1, :, 20:] = 50.0
    with torch.no_grad():
        out = encoder(mel, mask)
        assert torch.allclose(out, encoder(coloured, mask), atol=1e-4)
        assert torch.allclose(out, encoder(garbage, mask), atol=1e-5)
        plain = SpeechEncoder(SpeechEncoderConfig.tiny(input_norm=False, dropout=0.0)).eval()
        assert not torch.allclose(plain(mel, mask), plain(coloured, mask), atol=1e-2)
