"""What a newcomer tripped over in the CLI (issue 17 §6), each as a behaviour that can fail."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from adavoice.cli.main import main
from adavoice.errors import AdavoiceError, ConfigError
from tests.test_cli_robustness import one_line_error, run_cli

SR = 22050


def run_ok(args, capsys) -> tuple[str, str]:
    """(stdout, stderr) of a command that must succeed."""
    main([str(a) for a in args])
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.mark.parametrize("command", ["", "synth", "adapt", "eval", "vocode", "corpus build",
                                     "lang show", "train base", "train vocoder"])
def test_help_has_no_bool_metavar(command, capsys):
    out, _ = run_ok([*command.split(), "--help"], capsys)
    assert "--help" in out and "<bool>" not in out


def test_corpus_languages_are_those_with_a_pack_and_a_text_source(tmp_path, capsys):
    from adavoice.cli.corpus import corpus_languages
    from adavoice.data.corpus.text_sources import languages
    from adavoice.text import available_codes

    assert corpus_languages() == sorted(set(available_codes()) & set(languages()))
    assert "sk" not in corpus_languages() and "en" in corpus_languages()
    out, _ = run_ok(["corpus", "build", "--help"], capsys)
    assert ", ".join(corpus_languages()) in " ".join(out.split())
    code, err = run_cli(["corpus", "build", tmp_path / "c", "--language", "de", "--voices",
                         "espeak:de", "--utterances", "1"], capsys)
    assert code == 1 and "use one of" in one_line_error(err)
    assert not (tmp_path / "c").exists()


def test_lang_show_names_its_tokenizer_and_follows_a_model(capsys):
    out, _ = run_ok(["lang", "show", "en", "Hello 2"], capsys)
    assert "tokenizer: graphemes (the pack's default" in out and "--model demo" in out
    out, _ = run_ok(["lang", "show", "en", "Hello 2", "--model", "demo"], capsys)
    assert "tokenizer: phonemes (the model demo)" in out and "ˈ" in out


def test_one_fix_clause_even_when_a_message_quotes_another_error():
    inner = ConfigError("bad value", fix="use 1")
    outer = AdavoiceError(f"the config is invalid ({inner})", path="x.json", fix="rewrite it")
    assert str(outer).count("(fix:") == 1


def test_adapt_out_that_is_a_file_says_so(tmp_path, capsys):
    out = tmp_path / "voice"
    out.write_text("not a folder")
    code, err = run_cli(["adapt", tmp_path, "--out", out], capsys)
    assert code == 1 and "is a file" in one_line_error(err)


def test_threads_option_sets_torch_threads(capsys):
    before = torch.get_num_threads()
    try:
        run_ok(["--threads", "1", "lang", "list"], capsys)
        assert torch.get_num_threads() == 1
        code, err = run_cli(["--threads", "0", "lang", "list"], capsys)
        assert code == 1 and "--threads" in one_line_error(err)
    finally:
        torch.set_num_threads(before)


def test_synth_refuses_to_overwrite_and_conflicting_inputs(tiny_model_dir, tmp_path,
                                                           capsys):
    out = tmp_path / "a.wav"
    out.write_bytes(b"earlier")
    code, err = run_cli(["synth", "Hello.", "--model", tiny_model_dir, "--out", out], capsys)
    assert code == 1 and "exists" in one_line_error(err) and out.read_bytes() == b"earlier"
    run_ok(["synth", "Hello.", "--model", tiny_model_dir, "--out", out, "--overwrite",
            "--vocoder", "griffin-lim"], capsys)
    assert sf.info(str(out)).samplerate == SR
    lines = tmp_path / "lines.txt"
    lines.write_text("Hello.\n", encoding="utf-8")
    code, _ = run_cli(["synth", "Hello.", "--text-file", lines, "--out-dir", tmp_path / "o"],
                      capsys)
    assert code == 2  # TEXT with --text-file is a usage error, not silently ignored


def test_unknown_characters_are_warning_lines(tiny_model_dir, tmp_path, capsys):
    out, err = run_ok(["synth", "Hello ☃ there.", "--model", tiny_model_dir, "--out",
                       tmp_path / "a.wav", "--vocoder", "griffin-lim"], capsys)
    warnings = [line for line in err.splitlines() if line.strip()]
    assert warnings and all(line.startswith("warning: ") for line in warnings), err
    assert "TextWarning" not in err and "wrote" in out


def _eval_args(tmp_path) -> list:
    """`adavoice eval` over one matching ref/hyp tone pair with the transcript 'hello'."""
    t = np.arange(int(0.6 * SR)) / SR
    for folder in ("ref", "hyp"):
        (tmp_path / folder).mkdir()
        sf.write(str(tmp_path / folder / "a.wav"), 0.3 * np.sin(2 * np.pi * 200 * t), SR)
    (tmp_path / "metadata.csv").write_text("a|hello\n", encoding="utf-8")
    return ["eval", "--ref", tmp_path / "ref", "--hyp", tmp_path / "hyp", "--transcripts",
            tmp_path / "metadata.csv", "--out-dir", tmp_path / "report", "--no-mos"]


def test_eval_uses_the_built_in_recogniser_for_english(tmp_path, capsys, monkeypatch):
    from adavoice.evaluate import sphinx

    heard = []

    class FakeSphinx:
        def __call__(self, samples, sample_rate_hz):
            heard.append(len(samples))
            return "hello"

    monkeypatch.setattr(sphinx, "PocketSphinxRecognizer", FakeSphinx)
    args = _eval_args(tmp_path)
    out, _ = run_ok(args, capsys)
    assert heard and "0.000" in out.splitlines()[1]  # CER computed, not "-"
    heard.clear()
    out, err = run_ok([*args, "--language", "cs"], capsys)
    assert not heard and "CER/WER not computed" in err


def test_eval_without_pocketsphinx_still_reports_and_says_why(tmp_path, capsys, monkeypatch):
    from adavoice.errors import EngineError
    from adavoice.evaluate import sphinx

    def missing():
        raise EngineError("pocketsphinx is not installed", fix="pip install 'adavoice[eval]'")

    monkeypatch.setattr(sphinx, "PocketSphinxRecognizer", missing)
    out, err = run_ok(_eval_args(tmp_path), capsys)
    assert "CER/WER not computed (pocketsphinx is not installed" in err
    assert out.splitlines()[1].split()[1] != "-"  # MCD still computed
    assert (tmp_path / "report" / "report.md").exists()
