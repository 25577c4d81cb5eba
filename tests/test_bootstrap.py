"""Issue 20 part 2: `adavoice lang new` and `adavoice lang bootstrap` (LRSpeech), on tiny
models and a corpus of tones: the stages run end to end, a killed run continues where it
stopped, bad inputs are typed errors, the result is a self-contained base + ASR."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from adavoice.bootstrap import Bootstrap, BootstrapConfig, bootstrap
from adavoice.errors import ConfigError, DatasetError, UnknownSymbolError
from tests.conftest import one_line_error, run_cli, save_tiny_base, write_clips

CZECH = ["dobrý den", "jak se máš", "řeka teče", "žlutý kůň", "malý pes", "velký dům",
         "ano ne", "pět šest"]
TEXT = ["dnes prší", "kočka spí na okně", "voda je studená", "máme rádi čaj", "jedna dvě tři",
        "les je zelený", "- - -", "5 %"]  # a line with nothing to speak is left out


def _corpus(folder: Path, texts, language: str, speaker: str, valid: int = 0,
            freq_hz: float = 120.0) -> Path:
    write_clips(folder, texts, transcripts="manifest", seconds=0.5, step_hz=30.0,
                freq_hz=freq_hz)
    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    for index, row in enumerate(rows):
        row.update(language=language, speaker=speaker,
                   split="valid" if index < valid else "train")
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                   for r in rows), encoding="utf-8")
    return folder


def _tiny_init(folder: Path) -> Path:
    """A tiny English phoneme base with a tiny grapheme ASR in asr/."""
    from adavoice.config import MelConfig
    from adavoice.models.asr import AsrConfig, CtcRecogniser
    from adavoice.text import TextProcessor

    save_tiny_base(folder, tokenizer="phonemes")
    symbols = TextProcessor.from_language("en", tokenizer="graphemes").symbols.to_dict()
    CtcRecogniser(AsrConfig.tiny(n_tokens=len(symbols["symbols"]))).save(
        folder / "asr", MelConfig(), symbols, {"note": "random, for tests"})
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("bootstrap")
    paired = _corpus(root / "paired", CZECH, "cs", "dita", valid=2)
    unpaired = root / "unpaired"
    write_clips(unpaired / "spk1", 3, seconds=0.5, freq_hz=150.0)
    write_clips(unpaired / "spk2", 2, seconds=0.5, freq_hz=90.0)
    text = root / "text.txt"
    text.write_text("\n".join(TEXT) + "\n", encoding="utf-8")
    return {"root": root, "paired": paired, "unpaired": unpaired, "text": text,
            "init": _tiny_init(root / "init")}


def _args(world, out: Path, **overrides) -> dict:
    return {"language": "cs", "out": out, "paired": world["paired"],
            "unpaired_speech": world["unpaired"], "unpaired_text": world["text"],
            "init": world["init"], "config": BootstrapConfig.tiny(), "progress": False,
            **overrides}


def test_tiny_bootstrap_runs_every_stage_and_releases_a_base_with_its_asr(world, tmp_path):
    from adavoice.models.asr import Recogniser
    from adavoice.models.base_model import BaseModel, content_hash

    out = bootstrap(**_args(world, tmp_path / "cs"))
    report = json.loads((out / "report.json").read_text())
    assert [r["stage"] for r in report["rows"]] == ["finetune", "round-1", "distill"]
    for row in report["rows"]:
        assert 0 <= row["asr_cer_target"] and row["judge_cer_real"] >= 0 and row["wall_s"] > 0
    round_row, distill = report["rows"][1], report["rows"][2]
    assert round_row["synthetic_for_asr"] == BootstrapConfig.tiny().texts_per_round
    assert 0 <= round_row["pseudo_labels_kept"] <= 1 and round_row["pseudo_label_cer"] is None
    assert 0 <= distill["tts_kept_share"] <= 1 and 0 <= distill["asr_kept_share"] <= 1
    assert report["inputs"]["paired"] == 6 and report["inputs"]["held_out"] == 2
    assert report["inputs"]["unpaired_text"] == len(TEXT) - 1  # "- - -" left out
    assert "| round-1 |" in (out / "report.md").read_text() and (out / "report.png").is_file()
    base = BaseModel.load(out)
    assert base.cfg.language == "cs" and base.cfg.speakers == ["dita"]
    assert base.cfg.symbols["tokenizer"] == "phonemes"
    audio = base.synthesize("dobrý den", vocoder="griffin-lim")
    assert audio.samples.size > 0
    recogniser = Recogniser.load(out)  # out/asr, as `adavoice asr eval OUT DATA` finds it
    assert recogniser.symbols.language == "cs"
    assert recogniser.decoder == "beam" and (out / "asr" / "lm.json").is_file()
    assert len(recogniser.transcribe([world["paired"] / "c00.wav"])) == 1
    release = report["release"]  # the TTS chosen by read-back, the ASR of the last stage
    assert release["rule"] == "select" and release["asr_stage"] == "distill"
    assert set(release["readback_cer"]) == {"finetune", "round-1", "distill"}
    assert release["readback_cer"][release["best_stage"]] == min(release["readback_cer"].values())
    assert release["tts_stage"] in (release["best_stage"], "distill")
    assert release["sentences"] == 4 and release["sentences_trained_on"]  # 7 lines only
    assert f"the TTS of {release['tts_stage']}" in (out / "report.md").read_text()
    assert base.cfg.training["bootstrap"]["release"] == release
    chosen = BaseModel.load(out / "work" / release["tts_stage"] / "tts", precision="float32")
    released = dict(base.model.state_dict())
    for name, tensor in chosen.model.state_dict().items():
        assert torch.allclose(released[name].float(), tensor, atol=1e-2, rtol=1e-2), name
    # the released TTS got its own mel post-filter, trained on the target's paired sentences
    postfilter = report["postfilter"]
    assert postfilter["steps"] == 2 and postfilter["pairs"] == 6
    assert postfilter["segment"] <= 96 and postfilter["wall_s"] > 0
    assert set(postfilter["readback_cer"]) == {"unfiltered", "filtered"}
    assert postfilter["judge_cer_real"] == report["rows"][-1]["judge_cer_real"]
    assert {"judge_cer_ratio", "judge_cer_ratio_unfiltered"} <= set(postfilter)
    assert postfilter["installed"] == base.has_postfilter
    assert "Mel post-filter (2 steps on 6 paired" in (out / "report.md").read_text()
    if postfilter["installed"]:  # made for the released weights, with its critic beside it
        assert base.mel_postfilter("universal") is not None
        assert (out / "postfilter" / "critic").is_dir()
    # the finished run asked again writes the same release: an installed filter still fits it
    weights = content_hash(out)
    bootstrap(**_args(world, out))
    assert content_hash(out) == weights


def test_the_release_takes_the_tts_its_reader_reads_clearly_better(world, tmp_path,
                                                                   monkeypatch):
    import adavoice.bootstrap.run as run_module
    from adavoice.train.asr import token_text

    with pytest.raises(ConfigError, match="release choice"):
        BootstrapConfig(release_tts="best")
    stage_of = {}  # a fake TTS whose mel says which stage spoke it (0: finetune, 1: round-1)
    right = []  # the sentences round-1's speech reads back right; all else reads reversed

    def fake_speak(tts_dir, texts, speakers):
        stage = Path(tts_dir).parent.name
        stage_of.setdefault(stage, len(stage_of))
        return [(torch.full((80, 5), float(stage_of[stage])), True) for _ in texts]

    def fake_transcribe(self, asr_dir, mels, decoder="greedy"):
        assert Path(asr_dir).parent.name == "finetune"  # the frozen reader
        refs = [token_text(self._asr_processor().process(t).tokens)
                for t in self._selection_texts()[0]]
        round_one = mels[0][0, 0].item() == 1.0
        return ([r if round_one and i in right else r[::-1] for i, r in enumerate(refs)],
                [1.0] * len(refs))

    run = Bootstrap(**_args(world, tmp_path / "pick"))
    monkeypatch.setattr(run_module, "speak", fake_speak)
    monkeypatch.setattr(Bootstrap, "_transcribe", fake_transcribe)
    right[:] = [0, 1, 2, 3]
    choice = run.select_release()
    assert choice["tts_stage"] == "round-1" and choice["readback_cer"]["round-1"] == 0.0
    assert choice["readback_cer"]["distill"] > 0 and choice["asr_stage"] == "distill"
    assert choice["gain_over_last"] > 2 * choice["gain_se"]
    right[:] = [0]  # better on one sentence of four: within noise, the last stage stays
    choice = run.select_release()
    assert choice["best_stage"] == "round-1" and choice["tts_stage"] == "distill"
    assert 0 < choice["gain_over_last"] <= 2 * choice["gain_se"]
    last = Bootstrap(**_args(world, tmp_path / "pick", config=BootstrapConfig.tiny(
        release_tts="last"))).select_release()
    assert last == {"tts_stage": "distill", "asr_stage": "distill", "rule": "last"}


def test_a_killed_post_filter_continues_and_one_that_reads_worse_is_not_kept(
        world, tmp_path, monkeypatch):
    import adavoice.bootstrap.run as run_module
    import adavoice.train.mel_postfilter as postfilter_module
    from adavoice.models.base_model import BaseModel

    out = tmp_path / "filtered"
    real_train = postfilter_module.train_postfilter

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(postfilter_module, "train_postfilter", killed)
    with pytest.raises(KeyboardInterrupt):
        bootstrap(**_args(world, out))
    state = json.loads((out / "work" / "state.json").read_text())
    assert "release" in state and "postfilter" not in state
    assert (out / "config.json").is_file() and not (out / "postfilter").exists()

    monkeypatch.setattr(postfilter_module, "train_postfilter", real_train)
    monkeypatch.setattr(Bootstrap, "_run_stage", lambda *a: pytest.fail("a stage ran again"))
    monkeypatch.setattr(Bootstrap, "select_release", lambda self: pytest.fail("chosen again"))
    real_errors = run_module.sentence_errors
    calls = []

    def filtered_reads_worse(refs, hyps):  # the second read-back is of the filtered speech
        calls.append(1)
        errors = real_errors(refs, hyps)
        return [e + 10.0 * (i % 2 + 1) for i, e in enumerate(errors)] if len(calls) == 2 \
            else errors

    monkeypatch.setattr(run_module, "sentence_errors", filtered_reads_worse)
    bootstrap(**_args(world, out))
    report = json.loads((out / "report.json").read_text())
    postfilter = report["postfilter"]
    assert postfilter["installed"] is False
    assert postfilter["readback_cer"]["filtered"] > postfilter["readback_cer"]["unfiltered"]
    assert not (out / "postfilter").exists() and not BaseModel.load(out).has_postfilter
    assert "not installed (it read worse)" in (out / "report.md").read_text()
    assert (out / "work" / "postfilter" / "run" / "model.safetensors").is_file()
    monkeypatch.undo()
    plain = bootstrap(**_args(world, tmp_path / "plain", config=BootstrapConfig.tiny(
        postfilter_steps=0)))
    assert "postfilter" not in json.loads((plain / "report.json").read_text())
    assert not (plain / "postfilter").exists()


def test_a_run_killed_after_the_choice_releases_what_was_chosen(world, tmp_path, monkeypatch):
    out = tmp_path / "chosen"
    real_release = Bootstrap._release

    def killed(self, choice):
        raise KeyboardInterrupt

    monkeypatch.setattr(Bootstrap, "_release", killed)
    with pytest.raises(KeyboardInterrupt):
        bootstrap(**_args(world, out))
    stored = json.loads((out / "work" / "state.json").read_text())["release"]
    monkeypatch.setattr(Bootstrap, "_release", real_release)
    monkeypatch.setattr(Bootstrap, "select_release", lambda self: pytest.fail("chosen again"))
    bootstrap(**_args(world, out))
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["bootstrap"]["release"] == stored


def test_the_release_speaks_in_the_target_voice_when_no_speaker_is_named(world, tmp_path,
                                                                          monkeypatch):
    """A round's TTS holds every voice of the run, sorted by name. Released, the target is
    speaker 0 (what `adavoice synth --model OUT` speaks in), every voice keeps its own rows,
    and the release is written once: asking again does not rewrite it."""
    from adavoice.models.base_model import BaseModel

    paired = _corpus(tmp_path / "paired", CZECH, "cs", "zuzana", valid=2)  # sorts last
    monkeypatch.setattr(Bootstrap, "select_release", lambda self: {
        "tts_stage": "round-1", "asr_stage": "distill", "rule": "test"})
    out = bootstrap(**_args(world, tmp_path / "cs", paired=paired,
                            config=BootstrapConfig.tiny(postfilter_steps=0)))
    chosen = BaseModel.load(out / "work" / "round-1" / "tts", precision="float32")
    base = BaseModel.load(out, precision="float32")
    assert len(chosen.cfg.speakers) > 1 and chosen.cfg.speakers[0] != "zuzana"
    assert base.cfg.speakers[0] == "zuzana"
    assert base.cfg.speakers[1:] == [s for s in chosen.cfg.speakers if s != "zuzana"]
    for name in chosen.cfg.speakers:
        old, new = chosen.cfg.speakers.index(name), base.cfg.speakers.index(name)
        for table in ("speaker_embedding.weight", "speaker_utterance_vectors"):
            assert torch.allclose(base.model.state_dict()[table][new],
                                  chosen.model.state_dict()[table][old], atol=1e-2), name
    assert json.loads((out / "work" / "state.json").read_text())["released"] is True
    monkeypatch.setattr(Bootstrap, "_release", lambda self, choice: pytest.fail("rewritten"))
    bootstrap(**_args(world, out, paired=paired, config=BootstrapConfig.tiny(postfilter_steps=0)))


def test_a_language_without_a_pack_gets_one_made_from_its_text_and_carries_it(world, tmp_path):
    from adavoice.models.base_model import BaseModel

    paired = _corpus(tmp_path / "paired", CZECH[:5], "qz", "voice", valid=1)
    out = bootstrap(**_args(world, tmp_path / "qz", language="qz", paired=paired,
                            config=BootstrapConfig.tiny(rounds=0)))
    pack = json.loads((out / "language" / "qz" / "pack.json").read_text())
    assert pack["tokenizer"] == "graphemes" and "ř" in pack["alphabet"]
    config = json.loads((out / "config.json").read_text())
    assert config["symbols"]["pack"]["code"] == "qz"  # the model carries its front end
    assert [r["stage"] for r in json.loads((out / "report.json").read_text())["rows"]] == \
        ["finetune", "distill"]
    assert BaseModel.load(out).synthesize("malý pes", vocoder="griffin-lim").samples.size > 0


def test_a_killed_run_continues_at_the_stage_it_reached(world, tmp_path, monkeypatch):
    out = tmp_path / "resume"
    real_train_asr = Bootstrap._train_asr

    def killed_in_round(self, folder, items, init, steps):
        if folder.name == "round-1":
            raise KeyboardInterrupt  # as Ctrl-C arrives between the TTS and the ASR training
        return real_train_asr(self, folder, items, init, steps)

    monkeypatch.setattr(Bootstrap, "_train_asr", killed_in_round)
    with pytest.raises(KeyboardInterrupt):
        bootstrap(**_args(world, out))
    state = json.loads((out / "work" / "state.json").read_text())
    assert list(state["done"]) == ["finetune"]
    pseudo = out / "work" / "round-1" / "pseudo.jsonl"
    tts_release = out / "work" / "round-1" / "tts" / "model.safetensors"
    assert pseudo.is_file() and tts_release.is_file()
    stamps = pseudo.stat().st_mtime_ns, tts_release.stat().st_mtime_ns

    monkeypatch.setattr(Bootstrap, "_train_asr", real_train_asr)
    finetuned = []
    real_train_tts = Bootstrap._train_tts

    def counting_tts(self, folder, rows, init, steps):
        finetuned.append(folder.name)
        return real_train_tts(self, folder, rows, init, steps)

    monkeypatch.setattr(Bootstrap, "_train_tts", counting_tts)
    bootstrap(**_args(world, out))
    assert "finetune" not in finetuned  # the finished stage was not run again
    assert pseudo.stat().st_mtime_ns == stamps[0]  # the round's pseudo-labels were reused
    # the round's TTS had finished its steps: resuming it rewrote the release, no new steps
    tts_config = json.loads((tts_release.parent / "config.json").read_text())
    assert tts_config["training"]["steps"] == BootstrapConfig.tiny().tts_round_steps
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert [r["stage"] for r in rows] == ["finetune", "round-1", "distill"]


def test_other_inputs_into_the_same_out_are_refused(world, tmp_path):
    out = tmp_path / "twice"
    first = Bootstrap(**_args(world, out))
    first._save_state(first._state())
    with pytest.raises(ConfigError, match="other inputs"):
        Bootstrap(**_args(world, out, config=BootstrapConfig.tiny(rounds=3))).run()
    with pytest.raises(ConfigError, match="other inputs"):  # labels decoded another way
        Bootstrap(**_args(world, out, config=BootstrapConfig.tiny(
            pseudo_label_decoder="greedy"))).run()


def test_a_run_begun_before_a_setting_existed_continues_at_its_old_behaviour(world, tmp_path):
    out = tmp_path / "old"
    first = Bootstrap(**_args(world, out))
    state = first._state()
    del state["inputs"]["config"]["pseudo_label_decoder"]  # as runs begun before it stored
    first._save_state(state)
    with pytest.raises(ConfigError, match="other inputs"):  # it labelled greedily
        Bootstrap(**_args(world, out))._state()
    old = Bootstrap(**_args(world, out, config=BootstrapConfig.tiny(
        pseudo_label_decoder="greedy")))
    assert old._state()["done"] == {}


def test_pseudo_labels_decode_with_the_ngram_of_the_unpaired_text(world, tmp_path,
                                                                 monkeypatch):
    import adavoice.train.asr as asr_training
    from adavoice.models.asr import AsrConfig, CtcRecogniser

    with pytest.raises(ConfigError, match="pseudo-label decoder"):
        BootstrapConfig(pseudo_label_decoder="viterbi")
    run = Bootstrap(**_args(world, tmp_path / "lm"))
    symbols = run._asr_processor().symbols.to_dict()
    asr = tmp_path / "asr"
    CtcRecogniser(AsrConfig.tiny(n_tokens=len(symbols["symbols"]))).save(
        asr, __import__("adavoice.config").config.MelConfig(), symbols, {})
    seen = []
    real = asr_training.transcribe_mels
    monkeypatch.setattr(asr_training, "transcribe_mels",
                        lambda *a, **k: seen.append(k) or real(*a, **k))
    mels = [torch.randn(80, 60) for _ in range(3)]
    beam, confidence = run._transcribe(asr, mels, "beam")
    greedy, _ = run._transcribe(asr, mels)
    assert len(beam) == len(confidence) == len(greedy) == 3
    assert seen[0]["decoder"] == "beam" and seen[1]["decoder"] == "greedy"
    assert seen[1]["lm"] is None
    lm = seen[0]["lm"]  # the n-gram of the unpaired text ("kočka", "studená"), built once
    assert lm is run._lm and {"č", "á"} <= lm.vocabulary and "ž" not in lm.vocabulary
    run._transcribe(asr, mels, "beam")
    assert seen[2]["lm"] is lm


def test_bad_inputs_are_typed_errors_before_any_training(world, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "manifest.jsonl").write_text("")
    with pytest.raises(DatasetError, match="no transcribed"):
        bootstrap(**_args(world, tmp_path / "a", paired=empty))
    english = _corpus(tmp_path / "english", ["hello there", "good day"], "en", "x")
    with pytest.raises(DatasetError, match=r"paired data is in \['en'\]"):
        bootstrap(**_args(world, tmp_path / "b", paired=english))
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("dobrý den\nStraße und Grüße\n", encoding="utf-8")
    with pytest.raises(UnknownSymbolError, match="line 2"):
        bootstrap(**_args(world, tmp_path / "c", unpaired_text=foreign))
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n...\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no sentences"):
        bootstrap(**_args(world, tmp_path / "d", unpaired_text=blank))
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    with pytest.raises(DatasetError, match="no unpaired speech"):
        bootstrap(**_args(world, tmp_path / "e", unpaired_speech=nothing))
    assert not (tmp_path / "a" / "work").exists()


def test_cli_errors_are_one_line(world, tmp_path, capsys):
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("Straße\n", encoding="utf-8")
    code, err = run_cli(["lang", "bootstrap", "cs", "--paired", str(world["paired"]),
                         "--unpaired-speech", str(world["unpaired"]), "--unpaired-text",
                         str(foreign), "--out", str(tmp_path / "o"), "--init",
                         str(world["init"]), "--preset", "tiny", "--quiet"], capsys)
    assert code != 0 and "not in the cs alphabet" in one_line_error(err)
    code, err = run_cli(["lang", "bootstrap", "cs", "--paired", str(world["paired"]),
                         "--unpaired-speech", str(world["unpaired"]), "--unpaired-text",
                         str(world["text"]), "--out", str(tmp_path / "p"), "--init",
                         str(world["init"]), "--preset", "tiny", "--release", "best"], capsys)
    assert code != 0 and "unknown release choice 'best'" in one_line_error(err)
    assert not (tmp_path / "p").exists()
    code, err = run_cli(["lang", "bootstrap", "cs", "--paired", str(world["paired"]),
                         "--unpaired-speech", str(world["unpaired"]), "--unpaired-text",
                         str(world["text"]), "--out", str(tmp_path / "q"), "--init",
                         str(world["init"]), "--preset", "tiny", "--postfilter-steps", "-1"],
                        capsys)
    assert code != 0 and "postfilter_steps must be 0 or more" in one_line_error(err)
    assert not (tmp_path / "q").exists()


def test_lang_new_makes_a_pack_from_text(tmp_path, capsys):
    from adavoice.text import TextProcessor
    from adavoice.text.pack import LanguagePack

    text = tmp_path / "text.txt"
    text.write_text("\n".join(TEXT + CZECH) + "\n", encoding="utf-8")
    from adavoice.cli.main import main

    main(["lang", "new", "cs", "--text", str(text), "--packs-dir", str(tmp_path / "packs"),
          "--name", "Czech"])
    assert "wrote" in capsys.readouterr().out
    pack = LanguagePack.load("cs", tmp_path / "packs")
    assert pack.tokenizer == "phonemes" and pack.espeak_voice == "cs" and "r̝" in pack.phonemes
    processor = TextProcessor(pack)
    assert processor.process("řeka").tokens[0] in ("r̝", "ˈr̝")
    code, err = run_cli(["lang", "new", "cs", "--text", str(text), "--packs-dir",
                         str(tmp_path / "packs")], capsys)
    assert code != 0 and "exists already" in one_line_error(err)
    main(["lang", "new", "zz", "--text", str(text), "--packs-dir", str(tmp_path / "packs"),
          "--espeak", ""])
    assert LanguagePack.load("zz", tmp_path / "packs").tokenizer == "graphemes"


def test_the_shipped_demo_carries_an_english_asr_to_start_from():
    from adavoice.models.asr import resolve_asr_dir

    config = json.loads((resolve_asr_dir("demo") / "config.json").read_text())
    assert config["kind"] == "adavoice-asr" and config["symbols"]["language"] == "en"
    assert os.path.getsize(resolve_asr_dir("demo") / "model.safetensors") < 8_000_000


def test_the_shipped_czech_model_speaks_and_its_asr_loads_by_name():
    from adavoice.models.asr import Recogniser, resolve_asr_dir
    from adavoice.models.base_model import BaseModel

    base = BaseModel.load("cs-demo")
    assert base.cfg.language == "cs" and base.cfg.speakers[0] == "festival:czech_dita"
    assert base.synthesize("Dobrý den.", vocoder="griffin-lim").samples.size > 0
    # its learned post-filter (BENCHMARKS.md "The Czech release against cs-demo") is its own
    assert base.mel_postfilter("universal") is not None
    assert resolve_asr_dir("cs-demo").name == "asr"
    assert Recogniser.load("cs-demo").symbols.language == "cs"


def _torchrun(*args: str):
    import subprocess
    import sys

    from tests.test_training import _free_port

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", str(_free_port()),
         str(Path(__file__).with_name("bootstrap_ddp_worker.py")), *args],
        env=env, capture_output=True, text=True, timeout=400)


def test_batch_synthesis_shards_across_torchrun_workers(tmp_path):
    """2 gloo processes each speak half the texts; both end with the whole list, equal to
    what one process speaks."""
    from safetensors.torch import load_file

    from adavoice.bootstrap.run import speak

    model = save_tiny_base(tmp_path / "model")
    result = _torchrun("speak", str(model), str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    serial = speak(model, ["hello", "one two", "three", "a b c", "four"],
                   ["one", "two", "one", "two", "one"])
    for rank, share in ((0, 3), (1, 2)):
        gathered = load_file(str(tmp_path / f"rank{rank}.safetensors"))
        assert int(gathered.pop("spoken_here")) == share  # texts rank, rank + 2, ...
        assert len(gathered) == len(serial)
        for index, (mel, _) in enumerate(serial):
            assert torch.allclose(gathered[f"mel{index}"], mel, atol=1e-5)


def test_the_whole_bootstrap_runs_under_torchrun(world, tmp_path):
    """2 gloo ranks run every stage together (DDP trainings, shared synthesis and
    transcription); rank 0 alone writes, and what it wrote equals what one process computes
    from the same recogniser."""
    from adavoice.models.asr import Recogniser
    from adavoice.models.base_model import BaseModel

    out = tmp_path / "ddp"
    result = _torchrun("bootstrap", str(out), str(world["paired"]), str(world["unpaired"]),
                       str(world["text"]), str(world["init"]))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "rank0.done").is_file() and (out / "rank1.done").is_file()
    report = json.loads((out / "report.json").read_text())
    assert [r["stage"] for r in report["rows"]] == ["finetune", "round-1", "distill"]
    assert report["postfilter"]["steps"] == 2  # trained by both ranks (DDP), installed by one
    assert not list(out.rglob("*.part")) and not list(out.rglob("*.tmp"))
    BaseModel.load(out).synthesize("dobrý den")
    Recogniser.load(out)
    # the round's pseudo-labels, transcribed in shares by two ranks, are the serial ones
    serial = Bootstrap(**_args(world, tmp_path / "serial"))
    unpaired = serial.inputs.unpaired
    expected, _ = serial._transcribe(out / "work" / "finetune" / "asr",
                                     [serial._mel(u.audio) for u in unpaired], "beam")
    written = [json.loads(line) for line in
               (out / "work" / "round-1" / "pseudo.jsonl").read_text().splitlines()]
    assert [w["id"] for w in written] == [u.id for u in unpaired]
    assert [w["text"] for w in written] == expected


def test_a_tie_for_the_target_voice_goes_to_the_first_speaker_seen(world, tmp_path):
    """The target must not depend on set order (string hashing differs between processes,
    so torchrun ranks could disagree)."""
    from adavoice.bootstrap.data import read_inputs
    from adavoice.text.pack import LanguagePack

    source = [json.loads(line) for line in
              (world["paired"] / "manifest.jsonl").read_text().splitlines()]
    train = [r for r in source if r.get("split") != "valid"][:6]
    names = ["anna", "bara", "cyril", "dana", "emil", "filip"]
    for shift in range(len(names)):
        order = names[shift:] + names[:shift]
        folder = tmp_path / f"tie{shift}"
        folder.mkdir()
        rows = [{**r, "audio": str((world["paired"] / r["audio"]).resolve()), "speaker": s}
                for r, s in zip(train, order, strict=True)]  # one utterance each: all tie
        (folder / "manifest.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                       for r in rows), encoding="utf-8")
        inputs = read_inputs("cs", LanguagePack.load("cs"), folder, world["unpaired"],
                             world["text"])
        assert inputs.target == order[0]
