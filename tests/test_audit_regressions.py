"""Cases a bad-input audit of this session's code found (issue 17), each a behaviour that can
fail: a typed one-line error or the documented result, never a traceback or a silent answer."""

from __future__ import annotations

import warnings

import pytest

from adavoice.api import BaseModel
from adavoice.errors import ConfigError, MissingFileError
from adavoice.threads import choose_threads
from tests.conftest import one_line_error, run_cli, write_tone


def test_a_foreign_warning_during_synth_is_shown_once_and_synth_ends(tiny_model_dir, tmp_path,
                                                                     capsys, monkeypatch):
    """Re-showing a library warning inside the recording block recorded it again: the loop
    over the records never ended and the process grew until the kernel killed it."""
    from adavoice.cli.main import main

    real = BaseModel.synthesize_stream

    def warns(self, *args, **kwargs):
        warnings.warn("a library's own warning", UserWarning, stacklevel=1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(BaseModel, "synthesize_stream", warns)
    with pytest.warns(UserWarning, match="a library's own warning"):
        main(["synth", "Hello.", "--model", str(tiny_model_dir), "--out",
              str(tmp_path / "a.wav"), "--vocoder", "griffin-lim"])
    assert (tmp_path / "a.wav").is_file()


@pytest.mark.parametrize("call, error", [
    (lambda base: base.synthesize("Hi.", config="fast"), ConfigError),
    (lambda base: BaseModel.load(None), MissingFileError),
    (lambda base: BaseModel.load(""), MissingFileError),
])
def test_api_misuse_is_typed(tiny_model_dir, call, error):
    with pytest.raises(error):
        call(BaseModel.load(tiny_model_dir))


@pytest.mark.parametrize("value, expected", [("²", 3), ("2", 2), (" 1 ", 1), ("0", 3),
                                             ("x", 3)])
def test_omp_num_threads_that_is_no_count_is_ignored(value, expected):
    assert choose_threads(None, cores=4, load=1.0, environ={"OMP_NUM_THREADS": value}) == expected


def test_weights_that_do_not_fit_are_one_line(tiny_model_dir, tmp_path):
    import json
    import shutil

    from adavoice.artifacts import sha256_file
    from adavoice.errors import ModelFormatError

    other = shutil.copytree(tiny_model_dir, tmp_path / "other")
    tiny = tmp_path / "tiny"
    from tests.conftest import save_tiny_base

    save_tiny_base(tiny, speakers=("a",))  # another speaker count: weights of another shape
    shutil.copy(tiny / "model.safetensors", other / "model.safetensors")
    config = json.loads((other / "config.json").read_text())
    config["weights_sha256"] = sha256_file(other / "model.safetensors")
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError) as caught:
        BaseModel.load(other)
    assert "\n" not in str(caught.value) and "\t" not in str(caught.value)


def _eval_dirs(tmp_path):
    for folder in ("ref", "hyp"):
        write_tone(tmp_path / folder / "a.wav", 0.6, freq_hz=200.0)
    (tmp_path / "metadata.csv").write_text("a|hello\n", encoding="utf-8")
    return ["eval", "--ref", tmp_path / "ref", "--hyp", tmp_path / "hyp", "--no-mos"]


@pytest.mark.parametrize("extra, message", [
    (["--recognizer", "builtins:len"], "failed (TypeError"),
    (["--recognizer", "builtins:pow"], "not text"),
    (["--sample-rate", "0"], "--sample-rate is 0"),
])
def test_eval_bad_options_are_one_line_errors(tmp_path, capsys, extra, message):
    args = _eval_dirs(tmp_path)
    if "--recognizer" in extra:
        args += ["--transcripts", tmp_path / "metadata.csv"]
    code, err = run_cli([*args, *extra, "--out-dir", tmp_path / "report"], capsys)
    assert code == 1 and message in one_line_error(err)


def test_eval_report_under_a_file_is_an_output_error(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, err = run_cli([*_eval_dirs(tmp_path), "--json", tmp_path / "afile" / "r.json"], capsys)
    assert code == 1 and "cannot write the report" in one_line_error(err)


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers is 0"),
    (["--as-file"], "path is a file"),
])
def test_corpus_build_refuses_bad_out_and_workers(tmp_path, capsys, args, message):
    out = tmp_path / "corpus"
    if "--as-file" in args:
        out.write_text("x")
        args = []
    code, err = run_cli(["corpus", "build", out, "--language", "en", "--utterances", "1",
                         "--no-progress", "--voices", "espeak:en-us", *args], capsys)
    assert code == 1 and message in one_line_error(err)


def test_an_output_name_too_long_is_a_one_line_error(tiny_model_dir, tmp_path, capsys):
    code, err = run_cli(["synth", "Hi.", "--model", tiny_model_dir, "--out",
                         tmp_path / ("n" * 300 + ".wav"), "--vocoder", "griffin-lim"], capsys)
    assert code == 1 and "cannot use this path" in one_line_error(err)
