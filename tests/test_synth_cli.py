"""End to end on a tiny corpus: corpus build -> train base (tiny) -> synth CLI and API."""

from __future__ import annotations

import pytest
import soundfile as sf
import torch

from adavoice.api import BaseModel
from adavoice.cli.main import main
from adavoice.cli.synth import output_names
from adavoice.data.corpus.build import build_corpus
from adavoice.errors import ConfigError, EmptyTextError, UnknownSpeakerError
from adavoice.train.acoustic import train_base
from adavoice.train.loop import TrainConfig


@pytest.fixture(scope="module")
def trained_model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    build_corpus(root / "corpus", "en", ["espeak:en-us", "flite:kal16"], utterances=4, seed=0)
    cfg = TrainConfig(steps=4, warmup_steps=1, checkpoint_every=2, validate_every=2,
                      max_frames=3000)
    return train_base(root / "corpus", root / "model", preset="tiny", train_cfg=cfg,
                      progress=False)


@pytest.mark.parametrize("count,first,last", [(1, "00.wav", "00.wav"), (10, "00.wav", "09.wav"),
                                             (101, "000.wav", "100.wav")])
def test_output_names_are_zero_padded(count, first, last):
    names = output_names(count)
    assert names[0] == first and names[-1] == last and len(set(names)) == count


def test_train_run_writes_release_and_run_files(trained_model_dir):
    for name in ("config.json", "model.safetensors", "curves.csv", "curves.png",
                 "checkpoints/last.pt", "validation.csv"):
        assert (trained_model_dir / name).is_file(), name
    assert list((trained_model_dir / "samples").glob("*.wav"))


def test_synthesize_api_and_errors(trained_model_dir):
    model = BaseModel.load(trained_model_dir)
    assert model.speakers == ["espeak:en-us", "flite:kal16"]
    audio = model.synthesize("Hello there.", speaker="flite:kal16", vocoder="griffin-lim")
    assert audio.sample_rate == 22050 and len(audio.samples) > 0
    with pytest.raises(UnknownSpeakerError):
        model.synthesize("Hello.", speaker="nobody")
    with pytest.raises(EmptyTextError):
        model.synthesize("   ", speaker="flite:kal16")
    with pytest.raises(ConfigError):
        model.synthesize("Hello.", speaker="flite:kal16", vocoder="hifigan")


def test_synth_cli_batch_and_list(trained_model_dir, tmp_path, capsys):
    lines = tmp_path / "lines.txt"
    lines.write_text("One line.\n\nTwo lines here.\nThree.\n", encoding="utf-8")
    main(["synth", "--model", str(trained_model_dir), "--text-file", str(lines),
          "--out-dir", str(tmp_path / "out"), "--speaker", "espeak:en-us"])
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["00.wav", "02.wav", "03.wav"]  # by line position; line 2 is blank
    assert sf.info(str(tmp_path / "out" / "00.wav")).samplerate == 22050
    main(["synth", "--model", str(trained_model_dir), "--list-speakers"])
    assert "flite:kal16" in capsys.readouterr().out


def test_synth_cli_unknown_speaker_is_one_line_error(trained_model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["synth", "Hi.", "--model", str(trained_model_dir), "--speaker", "nobody",
              "--out", str(tmp_path / "a.wav")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "Traceback" not in err[0]


def test_precision_is_chosen_at_load_and_keeps_durations(trained_model_dir, tmp_path, capsys):
    full = BaseModel.load(trained_model_dir, precision="float32")
    low = BaseModel.load(trained_model_dir, precision="bfloat16")
    assert (full.precision, low.precision) == ("float32", "bfloat16")
    from adavoice.nn.transformer import fast_bfloat16_cpu

    expected = "bfloat16" if fast_bfloat16_cpu() else "float32"
    assert BaseModel.load(trained_model_dir).precision == expected  # auto
    a = full.mel("Hello there.", full.model.speaker_condition(1))
    b = low.mel("Hello there.", low.model.speaker_condition(1))
    assert a.shape == b.shape and not torch.equal(a, b)
    main(["synth", "Hi.", "--model", str(trained_model_dir), "--speaker", "flite:kal16",
          "--precision", "float32", "--vocoder", "griffin-lim", "--out", str(tmp_path / "a.wav")])
    assert (tmp_path / "a.wav").is_file()
    with pytest.raises(SystemExit) as exit_info:
        main(["synth", "Hi.", "--model", str(trained_model_dir), "--speaker", "flite:kal16",
              "--precision", "float16", "--out", str(tmp_path / "b.wav")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "precision" in err[0]


def test_init_warm_starts_a_new_run_and_maps_symbols_and_speakers(trained_model_dir, tmp_path):
    from adavoice.models.base_model import load_base_model

    old, old_cfg = load_base_model(trained_model_dir)
    cfg = TrainConfig(steps=1, warmup_steps=1, checkpoint_every=1, validate_every=10,
                      max_frames=3000, learning_rate=1e-12)
    out = train_base(trained_model_dir.parent / "corpus", tmp_path / "warm", preset="tiny",
                     train_cfg=cfg, progress=False, init=trained_model_dir, tokenizer="phonemes")
    new, new_cfg = load_base_model(out)
    report = new_cfg.training["init"]
    assert report["aligner_copied"] and report["speakers_copied"] == 2
    # a grapheme table and a phoneme table share the word separator and punctuation rows
    assert 0 < report["token_rows_copied"] < new_cfg.acoustic.n_symbols
    old_symbols, new_symbols = old_cfg.symbols["symbols"], new_cfg.symbols["symbols"]
    row = new_symbols.index(" ")
    assert torch.allclose(new.token_embedding.weight[row],
                          old.token_embedding.weight[old_symbols.index(" ")], atol=1e-6)
    # with a learning rate of 1e-12 one step leaves the copied decoder where it was
    assert torch.allclose(new.decoder.state_dict()["blocks.0.conv1.weight"],
                          old.decoder.state_dict()["blocks.0.conv1.weight"], atol=1e-6)


def test_init_refuses_another_mel_front_end(trained_model_dir, tmp_path):
    import json
    import shutil

    other = tmp_path / "other"
    shutil.copytree(trained_model_dir, other,
                    ignore=shutil.ignore_patterns("checkpoints", "samples"))
    config = json.loads((other / "config.json").read_text())
    config["mel"]["n_fft"] = 2048
    (other / "config.json").write_text(json.dumps(config))
    cfg = TrainConfig(steps=1, warmup_steps=1, max_frames=3000)
    with pytest.raises(ConfigError, match="mel front end"):
        train_base(trained_model_dir.parent / "corpus", tmp_path / "warm", preset="tiny",
                   train_cfg=cfg, progress=False, init=other)


def test_mel_encoder_run_resumes_with_the_encoder_it_began_with(trained_model_dir, tmp_path):
    import json

    from adavoice.models.speech_encoder import SpeechEncoder
    from adavoice.train.speech_encoder import train_mel_encoder

    corpus, out = trained_model_dir.parent / "corpus", tmp_path / "encoder"

    def run(steps, **kw):
        cfg = TrainConfig(steps=steps, warmup_steps=1, checkpoint_every=1,
                          validate_every=10**9, max_frames=3000)
        train_mel_encoder(trained_model_dir, corpus, out, train_cfg=cfg, progress=False, **kw)

    run(2, input_norm=True, layers=1)
    first = SpeechEncoder.from_dir(out).cfg
    assert first.input_norm and first.layers == 1
    run(3, resume=True, input_norm=False, layers=2)  # other flags: the run keeps its encoder
    assert SpeechEncoder.from_dir(out).cfg == first
    assert json.loads((out / "config.json").read_text())["training"]["steps"] == 3
    (out / "encoder-config.json").unlink()  # a run from before that file: its release says
    run(4, resume=True, layers=2)
    assert SpeechEncoder.from_dir(out).cfg == first
    (out / "encoder-config.json").unlink()
    (out / "config.json").unlink()  # nothing says how it was built: refuse, lose nothing
    with pytest.raises(ConfigError, match="resumed"):
        run(5, resume=True)
    assert (out / "checkpoints" / "last.pt").is_file()


def test_postfilter_run_trains_on_the_base_s_own_mels_resumes_and_installs(trained_model_dir,
                                                                          tmp_path):
    import json
    import shutil

    from adavoice.models.base_model import content_hash
    from adavoice.models.mel_postfilter import MelPostfilter
    from adavoice.train.mel_postfilter import PAIRS_NAME, train_postfilter

    corpus, out = trained_model_dir.parent / "corpus", tmp_path / "pf"
    base = shutil.copytree(trained_model_dir, tmp_path / "base",
                           ignore=shutil.ignore_patterns("checkpoints", "samples"))

    def run(steps, **kw):
        cfg = TrainConfig(steps=steps, warmup_steps=1, checkpoint_every=1, log_every=1,
                          validate_every=2, grad_clip=10.0)
        return train_postfilter(base, corpus, out, train_cfg=cfg, progress=False, segment=8,
                                batch=2, critic_warmup=1, **kw)

    run(2, channels=4, layers=3)
    first = MelPostfilter.from_dir(out)
    assert (first.cfg.channels, first.cfg.layers) == (4, 3)
    assert (out / PAIRS_NAME).is_file()  # the base's mels, computed once per run
    pairs_written = (out / PAIRS_NAME).stat().st_mtime_ns
    run(3, resume=True, channels=16, install=True)  # other flags: the run keeps its shape
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["steps"] == 3
    assert config["training"]["base_weights_sha256"] == content_hash(base)
    assert (out / PAIRS_NAME).stat().st_mtime_ns == pairs_written
    validation = config["training"]["validation"]
    assert validation["input_mel_l1"] > 0 and validation["detail_ratio"] > 0
    assert (out / "validation.csv").read_text().count("\n") == 2  # header + step 2
    installed = MelPostfilter.from_dir(base / "postfilter")
    assert installed.cfg == first.cfg
    assert BaseModel.load(base).mel_postfilter("universal") is not None
    assert "critic_loss" in (out / "curves.csv").read_text().splitlines()[0]
    # the critic goes with it (voices tune their own post-filter values against it)
    from adavoice.models.mel_postfilter import CRITIC_DIR, MelCritic

    assert MelCritic.from_dir(base / "postfilter" / CRITIC_DIR).channels == (32, 64, 128, 128)
    assert (out / CRITIC_DIR / "config.json").is_file()
    (out / PAIRS_NAME).write_bytes(b"damaged")  # only a cache: computed again, never trusted
    run(4, resume=True)
    assert (out / PAIRS_NAME).stat().st_size > 100
    assert json.loads((out / "config.json").read_text())["training"]["steps"] == 4
    # the L1 alone (a regression postnet): no critic trained, none installed
    l1_only = tmp_path / "pn"
    cfg = TrainConfig(steps=2, warmup_steps=1, log_every=1, validate_every=2)
    train_postfilter(base, corpus, l1_only, train_cfg=cfg, progress=False, segment=8, batch=2,
                     channels=4, layers=3, adversarial=False, install=True)
    assert "critic_loss" not in (l1_only / "curves.csv").read_text().splitlines()[0]
    assert not (base / "postfilter" / CRITIC_DIR).exists()
    assert json.loads((l1_only / "config.json").read_text())["training"]["adversarial"] is False


def test_train_postfilter_cli_writes_a_release_and_refuses_bad_settings(trained_model_dir,
                                                                        tmp_path, capsys):
    from adavoice.models.mel_postfilter import MelPostfilter
    from tests.conftest import one_line_error, run_cli

    args = ["train", "postfilter", str(trained_model_dir.parent / "corpus"), "--model",
            str(trained_model_dir), "--out", str(tmp_path / "pf"), "--steps", "1"]
    main(args + ["--channels", "4", "--layers", "3"])
    assert "post-filter written" in capsys.readouterr().out
    assert MelPostfilter.from_dir(tmp_path / "pf").cfg.channels == 4
    assert (tmp_path / "pf" / "critic" / "config.json").is_file()
    l1_only = [a if a != str(tmp_path / "pf") else str(tmp_path / "pn") for a in args]
    main(l1_only + ["--channels", "4", "--layers", "3", "--l1-only"])
    capsys.readouterr()  # its progress lines
    assert MelPostfilter.from_dir(tmp_path / "pn").provenance["adversarial"] is False
    assert not (tmp_path / "pn" / "critic").exists()
    code, err = run_cli(args[:-4] + ["--out", str(tmp_path / "bad"), "--layers", "1"], capsys)
    assert code != 0 and "layers" in one_line_error(err)
