"""Issue 20 part 1: the CTC recogniser: training (loss falls, resume), transcribe, eval, errors."""

from __future__ import annotations

import json
import shutil

import pytest

from adavoice.errors import AdapterMismatchError, DatasetError, MissingFileError
from adavoice.models.asr import Recogniser, resolve_asr_dir
from adavoice.train.asr import train_asr
from adavoice.train.settings import TrainConfig
from tests.conftest import one_line_error, run_cli, write_clips

TEXTS = ["aa", "bee", "see dee", "eee"]


def _cfg(steps: int) -> TrainConfig:
    return TrainConfig(steps=steps, learning_rate=3e-3, warmup_steps=2, validate_every=10**9,
                       max_frames=400, log_every=5, checkpoint_every=10)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    corpus = write_clips(tmp_path_factory.mktemp("asr") / "corpus", TEXTS,
                         transcripts="manifest", seconds=0.5, step_hz=40.0)
    out = train_asr(corpus, corpus.parent / "asr", preset="tiny", train_cfg=_cfg(60),
                    progress=False)
    return corpus, out


def test_loss_falls_on_a_tiny_overfit(trained):
    _, out = trained
    import csv

    with open(out / "curves.csv", newline="") as handle:
        losses = [float(row["loss"]) for row in csv.DictReader(handle) if row.get("loss")]
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "adavoice-asr" and config["training"]["steps"] == 60
    assert config["symbols"]["tokenizer"] == "graphemes"
    assert len(losses) >= 4 and losses[-1] < 0.7 * losses[0]


def test_transcribe_and_eval(trained, tmp_path, capsys):
    corpus, out = trained
    recogniser = Recogniser.load(out)
    texts = recogniser.transcribe([corpus / "c00.wav", corpus / "c01.wav"])
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    report = recogniser.evaluate(corpus)
    assert set(report) >= {"cer", "wer", "utterances", "rows"} and report["utterances"] == 4
    assert 0.0 <= report["cer"] and report["rows"][0]["reference"] == "aa"
    # a folder of audio with metadata.csv works too, through the CLI with --json
    folder = write_clips(tmp_path / "clips", TEXTS, transcripts="metadata", seconds=0.5,
                         step_hz=40.0)
    from adavoice.cli.main import main

    main(["asr", "eval", str(out), str(folder), "--json", str(tmp_path / "r.json")])
    assert "CER" in capsys.readouterr().out
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["utterances"] == 4 and isinstance(saved["cer"], float)
    code, err = run_cli(["asr", "transcribe", str(out), str(tmp_path / "nope.wav")], capsys)
    assert code == 1 and "no such audio file" in one_line_error(err)


def test_a_model_folder_carries_its_recogniser(trained, tmp_path):
    _, out = trained
    model = tmp_path / "lang-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    shutil.copytree(out, model / "asr", ignore=shutil.ignore_patterns("checkpoints"))
    assert resolve_asr_dir(model) == model / "asr"
    assert Recogniser.load(model).symbols.tokenizer == "graphemes"
    with pytest.raises(MissingFileError):
        resolve_asr_dir(tmp_path / "missing")


def test_resume_continues_the_run(trained, tmp_path):
    corpus, _ = trained
    out = tmp_path / "run"
    train_asr(corpus, out, preset="tiny", train_cfg=_cfg(20), progress=False)
    train_asr(corpus, out, preset="tiny", train_cfg=_cfg(30), resume=True, progress=False)
    assert json.loads((out / "config.json").read_text())["training"]["steps"] == 30


def test_bad_corpora_are_typed_errors(trained, tmp_path):
    corpus, out = trained
    silent = write_clips(tmp_path / "untranscribed", 2, transcripts="manifest")
    with pytest.raises(DatasetError, match="no transcribed"):
        train_asr(silent, tmp_path / "x", preset="tiny", train_cfg=_cfg(2), progress=False)
    mixed = tmp_path / "mixed"
    shutil.copytree(corpus, mixed)
    rows = [json.loads(line) for line in (mixed / "manifest.jsonl").read_text().splitlines()]
    rows[0]["language"] = "cs"
    (mixed / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DatasetError, match="mixes languages"):
        train_asr(mixed, tmp_path / "y", preset="tiny", train_cfg=_cfg(2), progress=False)
    with pytest.raises(AdapterMismatchError):  # a tiny recogniser cannot start a small one
        train_asr(corpus, tmp_path / "z", preset="small", init=out, train_cfg=_cfg(2),
                  progress=False)


def test_init_from_another_symbol_table_matches_rows_by_symbol(trained, tmp_path):
    """A phoneme recogniser (or one of another language) starts from a grapheme one: the body
    is copied, output rows only where the symbol (or its base letter) exists in both."""
    from adavoice.models.asr import CtcRecogniser

    corpus, out = trained
    phon = train_asr(corpus, tmp_path / "p", preset="tiny", tokens="phonemes", init=out,
                     train_cfg=_cfg(1), progress=False)
    copied = json.loads((phon / "config.json").read_text())["training"]["init_copied"]
    old, _, old_symbols = CtcRecogniser.from_dir(out)
    new_symbols = json.loads((phon / "config.json").read_text())["symbols"]["symbols"]
    shared = [s for s in new_symbols if s in old_symbols["symbols"]]
    assert copied["output_rows"] >= len(shared) > 0
    assert copied["of"] == len(new_symbols) != len(old_symbols["symbols"])


def test_beam_search_without_a_language_model_agrees_with_greedy_on_clear_frames():
    import numpy as np

    from adavoice.models.ctc_decode import prefix_beam_search

    symbols = ["<pad>", "a", "b", " "]
    path = [1, 1, 0, 1, 2, 0, 3, 2]  # a a _ a b _ ' ' b -> "aab b"
    log_probs = np.log(np.full((len(path), 4), 0.02))
    for step, token in enumerate(path):
        log_probs[step, token] = np.log(0.94)
    assert prefix_beam_search(log_probs, symbols, beam=4) == [1, 1, 2, 3, 2]


def test_the_language_model_settles_what_the_sound_leaves_open(tmp_path):
    """Two letters equally likely to the acoustics: the n-gram of the language's text picks
    the spelling the language uses; it round-trips through JSON (never a pickle)."""
    import numpy as np

    from adavoice.errors import ModelFormatError
    from adavoice.models.ctc_decode import CharNgram, prefix_beam_search

    symbols = ["<pad>", "k", "o", "c", "a"]
    lm = CharNgram.train(["kočka", "koza", "kosa", "okno"] * 5 + ["kcoa"], order=3)
    lm.save(tmp_path / "lm.json")
    loaded = CharNgram.load(tmp_path / "lm.json")
    assert loaded.log_prob("ko", "z") == lm.log_prob("ko", "z")
    probs = np.full((3, 5), 0.01)
    probs[0, 1] = 0.96          # k
    probs[1, 2], probs[1, 3] = 0.46, 0.50  # o or c; the sound leans to c
    probs[2, 4] = 0.96          # a
    alone = prefix_beam_search(np.log(probs), symbols, beam=4)
    assert [symbols[i] for i in alone] == ["k", "c", "a"]
    chosen = prefix_beam_search(np.log(probs), symbols, beam=4, lm=loaded)
    assert [symbols[i] for i in chosen] == ["k", "o", "a"]
    (tmp_path / "bad.json").write_text('{"kind": "something else"}')
    with pytest.raises(ModelFormatError):
        CharNgram.load(tmp_path / "bad.json")


def test_a_recogniser_with_an_lm_decodes_with_beam_search(trained, tmp_path):
    from adavoice.models.ctc_decode import CharNgram

    corpus, out = trained
    folder = tmp_path / "with-lm"
    shutil.copytree(out, folder)
    CharNgram.train(TEXTS, order=3).save(folder / "lm.json")
    assert Recogniser.load(folder).decoder == "beam"
    assert Recogniser.load(folder, decoder="greedy").decoder == "greedy"
    assert Recogniser.load(out).decoder == "greedy"
    texts = Recogniser.load(folder).transcribe([corpus / "c00.wav"])
    assert len(texts) == 1 and isinstance(texts[0], str)


def test_vtlp_moves_formants_by_its_factor_and_keeps_the_band_edges():
    import librosa
    import torch

    from adavoice.config import MelConfig
    from adavoice.train.asr import vtlp

    cfg = MelConfig()
    centres = librosa.mel_frequencies(n_mels=cfg.n_mels + 2, fmax=cfg.fmax_hz)[1:-1]
    peak = int(abs(centres - 1000.0).argmin())
    mel = torch.full((3, cfg.n_mels, 5), -10.0)
    mel[:, peak, :] = 0.0
    mel[:, -1, :] = -9.0  # the top band
    out = vtlp(mel, cfg, [1.0, 1.15, 0.87])
    assert torch.equal(out[0], mel[0])
    for row, factor in ((1, 1.15), (2, 0.87)):
        moved = int(out[row, :, 0].argmax())
        assert abs(centres[moved] - 1000.0 * factor) < abs(centres[moved + 1] - centres[moved])
        assert float(out[row, -1, 0]) == pytest.approx(-9.0, abs=1e-4)  # pinned at the top
        assert out.shape == mel.shape and torch.isfinite(out).all()
