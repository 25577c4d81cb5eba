"""Issue 20 part 1: pretrained Hugging Face recognisers. A tiny ``Wav2Vec2ForCTC`` is built
from a config and saved here (nothing is downloaded; every socket connection fails during the
tests), then loaded, used to transcribe and evaluate, and adapted with peft LoRA."""

from __future__ import annotations

import json
import shutil
import socket

import pytest
import torch

from adavoice.errors import (
    AdapterMismatchError,
    MissingFileError,
    ModelFormatError,
    UnknownSymbolError,
)
from adavoice.models.hf_asr import (
    ADAPTER_RECORD,
    ADAPTER_WEIGHTS,
    HfCtcRecogniser,
    _training_items,
    adapt_lora,
    is_hf_ctc_folder,
    load_recogniser,
)
from tests.conftest import write_clips

pytest.importorskip("transformers")
pytest.importorskip("peft")

TEXTS = ["aa", "bee", "see dee", "eee"]
VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", "a", "b", "d", "e", "s"]


def save_tiny_wav2vec2(folder, seed: int = 0):
    """A randomly initialised ~50k-parameter Wav2Vec2ForCTC with its processor (a 10-token
    character vocabulary, 16 kHz), written with save_pretrained; no dropout or masking."""
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"))
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=True)
    cfg = Wav2Vec2Config(vocab_size=len(VOCAB), pad_token_id=0, hidden_size=32,
                         num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                         conv_dim=(32, 32), conv_kernel=(10, 3), conv_stride=(5, 2),
                         num_feat_extract_layers=2, num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=2, mask_time_prob=0.0, layerdrop=0.0,
                         hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                         feat_proj_dropout=0.0, final_dropout=0.0)
    torch.manual_seed(seed)
    Wav2Vec2ForCTC(cfg).save_pretrained(str(folder))
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(
        str(folder))
    return folder


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Any attempt to reach the network (the Hugging Face hub) fails the test."""
    real = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network access during an offline test: {address}")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    corpus = write_clips(root / "corpus", TEXTS, transcripts="manifest", seconds=0.4,
                         step_hz=40.0)
    return save_tiny_wav2vec2(root / "w2v"), corpus


@pytest.fixture(scope="module")
def adapted(tiny, tmp_path_factory):
    folder, corpus = tiny
    out = tmp_path_factory.mktemp("lora") / "adapter"
    recogniser = adapt_lora(folder, corpus, out, steps=30, rank=4, alpha=8,
                            learning_rate=3e-2, batch_size=4)
    return recogniser, out


def test_folders_are_recognised(tiny, tmp_path):
    folder, corpus = tiny
    assert is_hf_ctc_folder(folder) and not is_hf_ctc_folder(corpus)
    (tmp_path / "config.json").write_text(json.dumps({"kind": "adavoice-asr"}))
    assert not is_hf_ctc_folder(tmp_path) and not is_hf_ctc_folder(tmp_path / "missing")


def test_load_transcribe_and_evaluate(tiny, tmp_path):
    folder, corpus = tiny
    recogniser = HfCtcRecogniser.load(folder)
    texts = recogniser.transcribe([corpus / "c00.wav", corpus / "c01.wav", corpus / "c02.wav"])
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    assert set("".join(texts)) <= set("abdes ")  # specials and the blank never leak
    # a batch of one gives the same words as a padded batch (the mask and lengths hold)
    assert recogniser.transcribe([corpus / "c00.wav"], batch=1) == texts[:1]
    from adavoice.audio import load_audio
    from adavoice.evaluate.text_metrics import Recognizer

    assert isinstance(recogniser, Recognizer)  # usable by the intelligibility metrics
    assert recogniser(load_audio(corpus / "c00.wav", None), 22050) == texts[0]
    report = recogniser.evaluate(corpus)
    assert set(report) >= {"cer", "wer", "utterances", "rows"} and report["utterances"] == 4
    assert isinstance(report["cer"], float) and report["cer"] >= 0.0 and report["wer"] >= 0.0
    assert [r["reference"] for r in report["rows"]] == TEXTS
    clips = write_clips(tmp_path / "clips", ["Aa!", "3"], transcripts="metadata", seconds=0.3)
    rows = recogniser.evaluate(clips)["rows"]
    assert [r["reference"] for r in rows] == ["aa", "3"]  # language "und": no pack, no spelling
    assert isinstance(load_recogniser(folder), HfCtcRecogniser)


def test_load_recogniser_still_loads_the_project_s_own(tmp_path):
    from adavoice.config import MelConfig
    from adavoice.models.asr import AsrConfig, CtcRecogniser, Recogniser
    from adavoice.text import TextProcessor

    symbols = TextProcessor.from_language("en", tokenizer="graphemes").symbols.to_dict()
    model = CtcRecogniser(AsrConfig.tiny(n_tokens=len(symbols["symbols"])))
    own = model.save(tmp_path / "own", MelConfig(), symbols, {})
    assert not is_hf_ctc_folder(own) and isinstance(load_recogniser(own), Recogniser)


def test_lora_trains_only_the_adapter_and_lowers_the_loss(tiny, adapted):
    folder, corpus = tiny
    recogniser, out = adapted
    base = HfCtcRecogniser.load(folder)
    items = _training_items(base, corpus)
    waves, targets = [w for w, _, _ in items], [ids for _, ids, _ in items]
    with torch.no_grad():
        before = float(base.ctc_loss(waves, targets))
        after = float(recogniser.ctc_loss(waves, targets))
    assert after < 0.9 * before
    record = json.loads((out / ADAPTER_RECORD).read_text())
    assert record["training"]["final_ctc_loss"] < record["training"]["first_ctc_loss"]
    assert record["base"]["folder"] == str(folder.resolve())
    # the base weights did not move; only LoRA tensors were trainable
    model = recogniser.model
    assert all("lora_" in n for n, p in model.named_parameters() if p.requires_grad)
    frozen = {k.replace(".base_layer", ""): v
              for k, v in model.get_base_model().state_dict().items() if "lora_" not in k}
    original = base.model.state_dict()
    assert frozen.keys() == original.keys()
    assert all(torch.equal(frozen[k], original[k]) for k in original)


def test_the_adapter_is_safetensors_only_and_round_trips(tiny, adapted):
    folder, corpus = tiny
    recogniser, out = adapted
    names = sorted(p.name for p in out.iterdir())
    assert ADAPTER_WEIGHTS in names and "adapter_config.json" in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))]
    assert not (out / "model.safetensors").exists()  # the base is not copied
    mode = (out / ADAPTER_WEIGHTS).stat().st_mode & 0o777
    assert mode == (out / "adapter_config.json").stat().st_mode & 0o777  # not left 0o600
    loaded = HfCtcRecogniser.load(folder, adapter=out)
    waves = loaded.waves([corpus / "c02.wav"])
    with torch.no_grad():
        inputs, _ = loaded._inputs(waves)
        expected = recogniser.model(**inputs).logits
        assert torch.allclose(loaded.model(**inputs).logits, expected, atol=1e-5)
    assert loaded.transcribe([corpus / "c02.wav"]) == recogniser.transcribe([corpus / "c02.wav"])
    by_adapter = load_recogniser(out)  # the adapter folder alone names its base
    assert by_adapter.folder == folder.resolve() and by_adapter.adapter == out


def test_an_adapter_is_refused_on_another_base(tiny, adapted, tmp_path):
    folder, _ = tiny
    _, out = adapted
    other = save_tiny_wav2vec2(tmp_path / "other", seed=1)  # the same config, other weights
    with pytest.raises(AdapterMismatchError, match="another base"):
        HfCtcRecogniser.load(other, adapter=out)
    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    data = bytearray((damaged / ADAPTER_WEIGHTS).read_bytes())
    data[-1] ^= 1
    (damaged / ADAPTER_WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="damaged"):
        HfCtcRecogniser.load(folder, adapter=damaged)
    (tmp_path / "bare").mkdir()
    with pytest.raises(ModelFormatError, match=ADAPTER_RECORD):
        HfCtcRecogniser.load(folder, adapter=tmp_path / "bare")


def test_characters_the_tokenizer_lacks_are_named(tiny, tmp_path):
    folder, _ = tiny
    corpus = write_clips(tmp_path / "c", ["bad", "aqua"], transcripts="manifest", seconds=0.2)
    with pytest.raises(UnknownSymbolError, match="'q'") as info:
        adapt_lora(folder, corpus, tmp_path / "out", steps=1)
    assert "'u'" in str(info.value) and "c01 'aqua'" in str(info.value)
    assert len(str(info.value).splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_folders_that_are_not_hf_models_are_typed_errors(tiny, tmp_path):
    folder, _ = tiny
    with pytest.raises(MissingFileError):
        HfCtcRecogniser.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingFileError, match="config.json"):
        HfCtcRecogniser.load(tmp_path / "empty")
    own = tmp_path / "own"
    own.mkdir()
    (own / "config.json").write_text(json.dumps({"kind": "adavoice-asr"}))
    with pytest.raises(ModelFormatError, match="Wav2Vec2ForCTC"):
        HfCtcRecogniser.load(own)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(folder / "config.json", pickled / "config.json")
    (pickled / "pytorch_model.bin").write_bytes(b"not unpickled")
    with pytest.raises(ModelFormatError, match="pickle"):
        HfCtcRecogniser.load(pickled)
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "model.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(ModelFormatError) as info:
        HfCtcRecogniser.load(broken)
    assert len(str(info.value).splitlines()) == 1


def test_the_asr_cli_runs_a_hf_model_and_its_adapter(tiny, adapted, tmp_path, capsys):
    """`adavoice asr eval|transcribe MODEL [--adapter]` and `asr adapt` reach the HF path."""
    from adavoice.cli.main import main

    folder, corpus = tiny
    _, out = adapted
    main(["asr", "eval", str(folder), str(corpus), "--json", str(tmp_path / "r.json")])
    assert json.loads((tmp_path / "r.json").read_text())["utterances"] == len(TEXTS)
    assert capsys.readouterr().out.startswith("CER ")
    main(["asr", "transcribe", str(folder), str(corpus / "c00.wav"), "--adapter", str(out)])
    from adavoice.models.hf_asr import load_recogniser

    heard = load_recogniser(folder, out).transcribe([corpus / "c00.wav"])[0]
    assert capsys.readouterr().out.splitlines() == [f"{corpus / 'c00.wav'}\t{heard}"]
    main(["asr", "adapt", str(folder), str(corpus), "--out", str(tmp_path / "a"),
          "--steps", "1", "--batch-size", "2"])
    assert (tmp_path / "a" / "adapter_model.safetensors").is_file()
