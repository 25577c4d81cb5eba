"""Evaluation: MCD, F0 metrics, CER/WER, directory reports, the eval CLI and the timing helper."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import lfilter

from adavoice.audio import save_audio
from adavoice.errors import ConfigError, DatasetError, EmptyTranscriptError
from adavoice.evaluate import (
    AnalysisConfig,
    cer,
    evaluate_dirs,
    f0_metrics,
    mcd_from_cepstra,
    measure,
    mel_cepstral_distortion,
    mel_cepstrum,
    normalize_text,
    wer,
)
from tests.conftest import tone

SR = 16000
VOWEL_FORMANTS_HZ = {"a": (730, 1090, 2440), "i": (270, 2290, 3010), "u": (300, 870, 2240)}
FORMANT_BANDWIDTHS_HZ = (90, 110, 160)


def vowel_utterance(
    f0_hz: float, formant_scale: float, stretch: float = 1.0, seed: int = 0, vowels: str = "aiu"
) -> np.ndarray:
    """A synthetic "speaker": harmonic source with vibrato through three formant resonators
    per vowel. ``formant_scale`` plays vocal-tract length, ``stretch`` speaking rate."""
    rng = np.random.default_rng(seed)
    segments = []
    for vowel in vowels:
        n = int(0.25 * stretch * SR)
        t = np.arange(n) / SR
        phase = 2 * np.pi * np.cumsum(f0_hz * (1 + 0.02 * np.sin(2 * np.pi * 4 * t))) / SR
        harmonics = range(1, int(SR / 2 / (f0_hz * 1.05)))
        y = sum(np.sin(h * phase) / h for h in harmonics) + 1e-3 * rng.standard_normal(n)
        formants = zip(VOWEL_FORMANTS_HZ[vowel], FORMANT_BANDWIDTHS_HZ, strict=True)
        for formant_hz, bandwidth_hz in formants:
            r = np.exp(-np.pi * bandwidth_hz / SR)
            theta = 2 * np.pi * formant_hz * formant_scale / SR
            y = lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], y)
        segments.append(y)
    wave = np.concatenate(segments)
    return (0.5 * wave / np.abs(wave).max()).astype(np.float32)


def hand_mcd(c_ref: np.ndarray, c_hyp: np.ndarray) -> float:
    """The textbook formula, frame by frame, written without the library's helpers."""
    per_frame = []
    for a, b in zip(c_ref, c_hyp, strict=True):
        squared = sum((x - y) ** 2 for x, y in zip(a, b, strict=True))
        per_frame.append((10.0 / math.log(10.0)) * math.sqrt(2.0 * squared))
    return sum(per_frame) / len(per_frame)


# --- MCD -------------------------------------------------------------------------------------


def test_mcd_of_a_signal_with_itself_is_zero():
    wave = vowel_utterance(120, 1.0)
    assert mel_cepstral_distortion(wave, wave, SR) == 0.0
    assert mel_cepstral_distortion(wave, 0.3 * wave, SR) < 1e-4  # c0 (level) is left out


def test_mcd_from_cepstra_matches_hand_computation():
    rng = np.random.default_rng(0)
    c_ref, c_hyp = rng.normal(size=(30, 24)), rng.normal(size=(30, 24))
    assert mcd_from_cepstra(c_ref, c_hyp, align=False) == pytest.approx(hand_mcd(c_ref, c_hyp))
    # DTW finds the time-stretched copy (every frame twice) at zero distance; linear pairing
    # of the stretched copy is not zero.
    stretched = np.repeat(c_ref, 2, axis=0)
    assert mcd_from_cepstra(c_ref, stretched, align=True) == pytest.approx(0.0, abs=1e-12)
    assert mcd_from_cepstra(c_ref, stretched[5:], align=False) > 1.0


@pytest.mark.parametrize("alpha", [0.0, 0.41])
def test_mel_cepstrum_matches_analytic_minimum_phase_filter(alpha):
    """H(z) = 1 - a z~^-1 in the warped domain has mel-cepstrum c_k = -a^k / k exactly, so the
    extraction and the MCD between two such filters can be checked against closed forms."""
    cfg = AnalysisConfig(alpha=alpha, window_ms=50.0, trim_top_db=None)
    frame, hop = 40, cfg.frame_config(SR).hop_length
    k = np.arange(1, cfg.order + 1)
    measured, analytic = [], []
    for a in (0.5, -0.3):
        impulse = np.zeros(SR // 2)
        impulse[frame * hop] = 1.0
        wave = lfilter([1 + a * alpha, -(a + alpha)], [1, -alpha], impulse)
        measured.append(mel_cepstrum(wave, SR, cfg)[frame])
        analytic.append(-(a**k) / k)
        np.testing.assert_allclose(measured[-1], analytic[-1], atol=2e-4)
    expected_db = hand_mcd(analytic[:1], analytic[1:])
    assert expected_db == pytest.approx(4.9487, abs=1e-3)
    got_db = mcd_from_cepstra(measured[0][None], measured[1][None], align=False)
    assert got_db == pytest.approx(expected_db, abs=0.01)


def test_mcd_orders_same_speaker_far_below_different_speakers():
    speaker_a = vowel_utterance(120, 1.0)
    # same "speaker", another "engine": slightly other pitch and formants, slower, other noise
    speaker_a_again = vowel_utterance(124, 1.02, stretch=1.15, seed=1)
    speaker_b = vowel_utterance(200, 1.18, seed=2)
    same = mel_cepstral_distortion(speaker_a, speaker_a_again, SR)
    different = mel_cepstral_distortion(speaker_a, speaker_b, SR)
    assert same < 2.5
    assert different > 2.5 * same and different - same > 3.0


@pytest.mark.parametrize(
    "kwargs", [{"order": 0}, {"frame_shift_ms": 30.0}, {"alpha": 1.2}, {"floor_db": -1.0}]
)
def test_analysis_config_rejects_bad_values(kwargs):
    with pytest.raises(ConfigError):
        AnalysisConfig(**kwargs)


# --- F0 --------------------------------------------------------------------------------------


def test_f0_rmse_of_a_semitone_is_about_100_cents():
    metrics = f0_metrics(tone(0.5, 220.0, SR, amplitude=0.5),
                         tone(0.5, 233.08, SR, amplitude=0.5), SR)
    assert metrics["log_f0_rmse_cents"] == pytest.approx(100.0, abs=8.0)
    assert metrics["voiced_pairs"] > 50


def test_vuv_error_zero_for_identical_and_counts_devoiced_half():
    voiced = tone(1.0, 220.0, SR, amplitude=0.5)
    assert f0_metrics(voiced, voiced, SR)["vuv_error"] == 0.0
    half_noise = voiced.copy()
    half_noise[SR // 2:] = 0.3 * np.random.default_rng(0).uniform(-1, 1, SR // 2)
    metrics = f0_metrics(voiced, half_noise, SR, align=False)
    assert 0.35 < metrics["vuv_error"] < 0.65
    assert metrics["log_f0_rmse_cents"] < 10.0  # the frames voiced in both still agree


# --- CER / WER -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference, hypothesis, expected_cer, expected_wer",
    [
        ("Hello, world!", "hello world", 0.0, 0.0),
        ("the cat sat", "the bat sat", 1 / 11, 1 / 3),
        ("one two three four", "one three four", 4 / 18, 1 / 4),
        ("abc", "", 1.0, 1.0),
    ],
)
def test_error_rates_on_known_strings(reference, hypothesis, expected_cer, expected_wer):
    assert cer(reference, hypothesis) == pytest.approx(expected_cer)
    assert wer(reference, hypothesis) == pytest.approx(expected_wer)


def test_text_normalisation_and_empty_reference():
    assert normalize_text("It's  A\tTEST -- ok?") == "its a test ok"
    with pytest.raises(EmptyTranscriptError):
        wer("?!", "anything")


# --- directory report and CLI ----------------------------------------------------------------


@pytest.fixture()
def audio_dirs(tmp_path: Path) -> tuple[Path, Path]:
    ref_dir, hyp_dir = tmp_path / "ref", tmp_path / "hyp"
    save_audio(ref_dir / "a.wav", vowel_utterance(120, 1.0, vowels="ai"), SR)
    save_audio(ref_dir / "b.wav", vowel_utterance(200, 1.15, vowels="ua"), 22050)
    save_audio(ref_dir / "only_ref.wav", tone(0.3, 300.0, SR, amplitude=0.5), SR)
    save_audio(hyp_dir / "a.flac", vowel_utterance(125, 1.02, seed=1, vowels="ai"), SR)
    save_audio(hyp_dir / "b.wav", vowel_utterance(190, 1.1, seed=2, vowels="ua"), SR)
    save_audio(hyp_dir / "only_hyp.wav", tone(0.3, 300.0, SR, amplitude=0.5), SR)
    (tmp_path / "notes.txt").write_text("not audio")
    return ref_dir, hyp_dir


def test_evaluate_dirs_writes_reports_and_lists_unmatched(audio_dirs, tmp_path):
    ref_dir, hyp_dir = audio_dirs
    heard = []

    def recognizer(samples: np.ndarray, sample_rate_hz: int) -> str:
        heard.append(sample_rate_hz)
        return "hello word"

    out_dir = tmp_path / "out"
    report = evaluate_dirs(ref_dir, hyp_dir, {"a": "Hello world."}, recognizer, out_dir=out_dir)
    assert [p.stem for p in report.pairs] == ["a", "b"]
    assert report.missing_in_hyp == ["only_ref"] and report.missing_in_ref == ["only_hyp"]
    a, b = report.pairs
    assert b.sample_rate_hz == SR  # 22.05 kHz reference analysed at the hypothesis's rate
    assert 0 < a.mcd_db < 5 and a.voiced_pairs > 0 and 0 <= a.vuv_error <= 1
    assert a.wer == pytest.approx(0.5) and a.ref_wer == pytest.approx(0.5) and b.wer is None
    assert heard == [SR, SR]  # hypothesis and reference of "a" only

    data = json.loads((out_dir / "report.json").read_text())
    assert data["summary"]["pairs"] == 2 and len(data["pairs"]) == 2
    assert data["summary"]["mean_mcd_db"] == pytest.approx((a.mcd_db + b.mcd_db) / 2)
    assert data["missing_in_ref"] == ["only_hyp"]
    markdown = (out_dir / "report.md").read_text()
    assert "| a |" in markdown and "| b |" in markdown and "mel.png" in markdown
    assert "only_ref" in markdown
    assert (out_dir / "mel.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_dirs_without_any_pair_is_a_dataset_error(tmp_path):
    save_audio(tmp_path / "ref" / "x.wav", tone(0.2, 200.0, SR, amplitude=0.5), SR)
    save_audio(tmp_path / "hyp" / "y.wav", tone(0.2, 200.0, SR, amplitude=0.5), SR)
    with pytest.raises(DatasetError, match="no audio file names match"):
        evaluate_dirs(tmp_path / "ref", tmp_path / "hyp")


def _eval_app():
    import typer

    from adavoice.cli.evaluate import eval_command

    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.command(name="eval")(eval_command)
    return app


def test_eval_cli_prints_summary_and_writes_json(audio_dirs, tmp_path):
    from typer.testing import CliRunner

    ref_dir, hyp_dir = audio_dirs
    transcripts = tmp_path / "metadata.csv"
    transcripts.write_text("a|Hello world.\nb|raw text|spoken text\n", encoding="utf-8")
    json_out = tmp_path / "results" / "eval.json"
    result = CliRunner().invoke(_eval_app(), [
        "--ref", str(ref_dir), "--hyp", str(hyp_dir), "--json", str(json_out),
        "--transcripts", str(transcripts),
    ])
    assert result.exit_code == 0, result.output
    assert "mean" in result.output and "missing from hyp (1): only_ref" in result.output
    assert json.loads(json_out.read_text())["summary"]["pairs"] == 2
    assert (json_out.parent / "report.md").is_file() and (json_out.parent / "mel.png").is_file()


def test_eval_cli_loads_a_recogniser_by_name(audio_dirs, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from adavoice.cli.evaluate import load_recognizer

    (tmp_path / "fake_asr_for_eval.py").write_text(
        "class Parrot:\n    def __call__(self, samples, sample_rate_hz):\n"
        "        return 'hello world'\n"
        "not_callable = 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_recognizer("fake_asr_for_eval:Parrot")(np.zeros(4), SR) == "hello world"
    for bad in ("fake_asr_for_eval", "fake_asr_for_eval:missing", "fake_asr_for_eval:not_callable"):
        with pytest.raises(ConfigError):
            load_recognizer(bad)

    ref_dir, hyp_dir = audio_dirs
    transcripts = tmp_path / "metadata.csv"
    transcripts.write_text("a|Hello, world!\nb|goodbye world\n", encoding="utf-8")
    result = CliRunner().invoke(_eval_app(), [
        "--ref", str(ref_dir), "--hyp", str(hyp_dir), "--out-dir", str(tmp_path / "out"),
        "--transcripts", str(transcripts), "--recognizer", "fake_asr_for_eval:Parrot",
    ])
    assert result.exit_code == 0, result.output
    pairs = json.loads((tmp_path / "out" / "report.json").read_text())["pairs"]
    assert [p["cer"] for p in pairs] == [0.0, pytest.approx(7 / 13)]  # goodbye->hello: 7 edits


def test_eval_cli_surfaces_typed_errors(tmp_path):
    from typer.testing import CliRunner

    result = CliRunner().invoke(_eval_app(), [
        "--ref", str(tmp_path / "nope"), "--hyp", str(tmp_path), "--pitch-method", "yin",
    ])
    assert result.exit_code != 0
    assert "audio folder not found" in str(result.exception)


# --- timing ----------------------------------------------------------------------------------


def test_measure_reports_rtf_and_memory_of_the_call():
    import time

    import torch

    def synthesize(n_bytes: int) -> tuple[np.ndarray, int]:
        block = np.ones(n_bytes // 8)  # touched, so resident
        time.sleep(0.02)  # give the RSS sampler time to see it
        return block[:SR], SR

    report = measure(synthesize, 64 * 1024 * 1024)
    assert report.audio_s == pytest.approx(1.0)
    assert report.rtf == pytest.approx(report.wall_s) and report.rtf > 0
    assert report.rss_increase_mb > 40 and report.peak_traced_mb > 40
    assert report.result[1] == SR

    before = torch.get_num_threads()
    threaded = measure(torch.get_num_threads, audio_seconds_fn=lambda _: 1.0, threads=1)
    assert threaded.result == 1 and torch.get_num_threads() == before


def test_pocketsphinx_transcript_does_not_depend_on_what_came_before(tmp_path):
    import subprocess

    from adavoice.audio import load_audio
    from adavoice.evaluate.sphinx import PocketSphinxRecognizer

    # voices and loudness that differ, as between a real and a synthesized clip; without a
    # reset per call the decoder's carried-over features changed clips 1 and 4's transcripts
    specs = [("en-us", 100, "The leftmost digit is seven."),
             ("en-us+f3", 200, "Her lips puckered slowly."),
             ("en-us+m3", 20, "Perspective changes everything we see."),
             ("en-gb", 150, "Only as an accountable influence that hinders progress."),
             ("en-us+f4", 50, "He was hardly more than sixteen years old.")]
    waves = []
    for index, (voice, amplitude, text) in enumerate(specs):
        path = tmp_path / f"{index}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-a", str(amplitude), "-w", str(path), text],
                       check=True)
        waves.append(load_audio(path, 16000))
    warm = PocketSphinxRecognizer()
    in_order = [warm(w, 16000) for w in waves]
    reversed_order = [warm(w, 16000) for w in reversed(waves)][::-1]
    fresh = [PocketSphinxRecognizer()(w, 16000) for w in waves]
    assert in_order == reversed_order == fresh
