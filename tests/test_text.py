"""Language packs, normalisation, tokenisation, symbol tables and `adavoice lang`."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adavoice.cli import lang as lang_cli
from adavoice.errors import (
    ConfigError,
    EmptyTextError,
    UnknownLanguageError,
    UnknownSymbolError,
    UnknownVoiceError,
)
from adavoice.text import (
    PAD,
    LanguagePack,
    SymbolTable,
    TextProcessor,
    TextWarning,
    available_codes,
    espeak_phonemize,
    normalize_text,
    tokenize,
)

CORE_LANGUAGES = ("en", "cs", "it")


def quiet(code: str, tokenizer: str | None = None) -> TextProcessor:
    return TextProcessor.from_language(code, tokenizer=tokenizer, emit_warnings=False)


def test_core_packs_are_installed_and_default_to_graphemes():
    assert set(CORE_LANGUAGES) <= set(available_codes())
    for code in CORE_LANGUAGES:
        pack = LanguagePack.load(code)
        assert pack.code == code and pack.tokenizer == "graphemes"
        assert pack.phonemes, "phoneme inventory missing"


def test_composed_and_decomposed_czech_give_identical_tokens():
    composed, decomposed = "\u0159eka", "r\u030ceka"  # "řeka" as ř vs r + combining caron
    assert composed != decomposed
    processor = quiet("cs")
    a, b = processor.process(composed), processor.process(decomposed)
    assert a.tokens == b.tokens == ["ř", "e", "k", "a"]
    assert a.ids == b.ids and a.warnings == b.warnings == []


@pytest.mark.parametrize(
    "code, text, expected",
    [
        ("en", "I have 3 cats", "i have three cats"),
        ("en", "the 3rd of 1,000", "the third of one thousand"),
        ("en", "pi is 3.14", "pi is three point one four"),
        ("en", "50% off", "fifty percent off"),
        ("cs", "Mám 3 kočky", "mám tři kočky"),
        ("cs", "2,5 litru", "dva celá pět litru"),
        ("it", "Ho 3 gatti", "ho tre gatti"),
        ("it", "21 anni", "ventuno anni"),
        ("de", "3 Äpfel", "drei äpfel"),
        ("es", "3 niños", "tres niños"),
    ],
)
def test_numbers_are_spoken_as_words(code, text, expected):
    assert quiet(code).process(text).normalized == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("\u201cHi\u201d \u2014 there\u2026", "hi - there."),
        ("don\u2019t", "don't"),
        ("one; two: three", "one, two, three"),
        ("Wait!!!", "wait!"),
        ("What?!", "what?!"),
        ("  spaced \t\n out  ", "spaced out"),
        ("(yes).", "yes."),
        ("a\u00a0b\u200bc", "a bc"),
    ],
)
def test_punctuation_and_whitespace_are_normalised(text, expected):
    assert normalize_text(text, LanguagePack.load("en"), emit=False).text == expected


def test_unknown_character_warns_with_position_and_text_stays_usable():
    processor = TextProcessor.from_language("en")
    with pytest.warns(TextWarning, match=r"'€' \(U\+20AC\) at position 4"):
        out = processor.process("ten €")
    assert out.normalized == "ten"
    assert out.tokens == ["t", "e", "n"] and len(out.ids) == 3
    assert any("position 4" in w for w in out.warnings)


def test_foreign_letter_is_folded_with_a_warning():
    out = quiet("en").process("café")
    assert out.normalized == "cafe"
    assert out.warnings == ["character 'é' (U+00E9) at position 3 replaced by 'e'"]


def test_letter_without_precomposed_form_stays_one_grapheme():
    en = LanguagePack.load("en")
    pack = dataclasses.replace(en, alphabet=en.alphabet + ("x\u030c",))  # x with caron
    out = TextProcessor(pack, emit_warnings=False).process("X\u030ca")
    assert out.tokens == ["x\u030c", "a"] and out.warnings == []


@pytest.mark.parametrize("text", ["", "   ", "...", "€€", "\u200b", "\u201c\u201d"])
def test_text_with_nothing_to_speak_raises(text):
    with pytest.raises(EmptyTextError):
        quiet("en").process(text)


def test_unknown_language_raises():
    with pytest.raises(UnknownLanguageError, match="'xx'"):
        LanguagePack.load("xx")
    with pytest.raises(UnknownLanguageError):
        TextProcessor.from_language("klingon")


def test_pack_loads_from_an_explicit_folder_and_rejects_bad_json(tmp_path):
    shutil.copytree(Path(LanguagePack.load("it").path).parent, tmp_path / "it")
    assert LanguagePack.load(tmp_path / "it") == LanguagePack.load("it")
    assert LanguagePack.load("it", packs_dir=tmp_path).code == "it"
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "pack.json").write_text('{"code": "bad", "tokenizer": "letters"}')
    with pytest.raises(ConfigError):
        LanguagePack.load("bad", packs_dir=tmp_path)


@pytest.mark.parametrize("code", CORE_LANGUAGES)
@pytest.mark.parametrize("tokenizer", ["graphemes", "phonemes"])
def test_symbol_table_json_round_trip_is_exact(code, tokenizer):
    table = SymbolTable.from_pack(LanguagePack.load(code), tokenizer)
    restored = SymbolTable.from_dict(json.loads(json.dumps(table.to_dict())))
    assert restored == table and restored.symbols == table.symbols
    assert restored.symbols[0] == PAD and restored.pad_id == 0
    assert (restored.language, restored.tokenizer) == (code, tokenizer)
    assert SymbolTable.from_pack(LanguagePack.load(code), tokenizer) == table  # stable ids


def test_encode_unknown_symbol_names_symbol_and_position():
    table = SymbolTable.from_pack(LanguagePack.load("en"))
    with pytest.raises(UnknownSymbolError, match=r"'ř'.*position 2"):
        table.encode(["a", "b", "ř"])
    ids = table.encode(["a", " ", "b"])
    assert table.decode(ids) == ["a", " ", "b"]
    assert table.decode([0, *ids], skip_pad=False)[0] == PAD
    with pytest.raises(UnknownSymbolError, match="id 999"):
        table.decode([999])


def test_model_table_without_a_symbol_drops_it_with_a_warning():
    full = SymbolTable.from_pack(LanguagePack.load("en"))
    smaller = SymbolTable.from_symbols([s for s in full.symbols if s != "z"], "en")
    out = TextProcessor.from_symbols(smaller, emit_warnings=False).process("zoo")
    assert out.tokens == ["o", "o"] and out.ids == smaller.encode(["o", "o"])
    assert "'z' at token position 0" in out.warnings[0]
    with pytest.raises(ConfigError):
        TextProcessor(LanguagePack.load("en"), tokenizer="phonemes", symbols=smaller)


def test_english_phonemes_come_from_espeak_as_ipa():
    processor = quiet("en", "phonemes")
    out = processor.process("Hello, world 2.")
    assert out.normalized == "hello, world two."
    assert out.tokens[:5] == ["h", "ə", "l", "ˈoʊ", ","]  # a stress mark joins its phoneme
    assert out.tokens[-1] == "." and " " in out.tokens
    assert {"ˈɜː", "ˈuː"} <= set(out.tokens)
    assert not {"ˈ", "ˌ"} & set(out.tokens)
    assert not set(out.tokens) & set("ceo")  # spelled letters of "hello world two" are gone
    assert out.ids == processor.symbols.encode(out.tokens) and out.warnings == []


def test_a_model_table_without_stressed_tokens_keeps_stress_marks_apart():
    pack = LanguagePack.load("en").with_tokenizer("phonemes")
    old = SymbolTable.from_symbols(pack.kept_punctuation + pack.stress_marks + pack.phonemes,
                                   "en", "phonemes")
    out = TextProcessor.from_symbols(old, emit_warnings=False).process("Hello.")
    assert out.tokens == ["h", "ə", "l", "ˈ", "oʊ", "."] and out.warnings == []


@pytest.mark.parametrize(
    "code, text, phoneme", [("cs", "řeka", "r̝"), ("it", "ciao", "tʃ"), ("en", "church", "tʃ")]
)
def test_phoneme_packs_give_language_specific_ipa(code, text, phoneme):
    assert phoneme in quiet(code, "phonemes").process(text).tokens


def test_espeak_batch_falls_back_to_one_run_per_chunk(monkeypatch):
    monkeypatch.setenv("ADAVOICE_ESPEAK", "command")  # the command's path, not the library's
    real_run = tokenize._run_espeak
    calls = []

    def run_losing_paragraphs(text, voice):
        calls.append(text)
        return real_run(text, voice).replace("\n\n", "\n")

    monkeypatch.setattr(tokenize, "_run_espeak", run_losing_paragraphs)
    assert espeak_phonemize(["hello", "two"], "en-us") == ["h_ə_l_ˈoʊ", "t_ˈuː"]
    assert calls == ["hello\n\ntwo", "hello", "two"]


def test_missing_espeak_voice_is_a_typed_error():
    pack = dataclasses.replace(LanguagePack.load("en"), espeak_voice="zz")
    with pytest.raises(UnknownVoiceError, match="'zz'"):
        TextProcessor(pack, tokenizer="phonemes").process("hello")


def test_process_many_matches_process_for_phonemes():
    processor = quiet("it", "phonemes")
    texts = ["Ciao, come stai?", "Ho 3 gatti.", "Bene - grazie!"]
    assert processor.process_many(texts) == [processor.process(t) for t in texts]


def test_cli_lang_list_shows_core_packs():
    result = CliRunner().invoke(lang_cli.app, ["list"])
    assert result.exit_code == 0, result.output
    codes = {line.split()[0] for line in result.output.splitlines()[1:]}
    assert set(CORE_LANGUAGES) <= codes


def test_cli_lang_show_prints_normalised_text_tokens_and_ids():
    result = CliRunner().invoke(lang_cli.app, ["show", "en", "Hello 2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "hello two" in lines[0]
    assert lines[1].endswith("h e l l o | t w o")
    assert lines[2].startswith("ids: ")


def test_cli_lang_show_unknown_language_fails():
    result = CliRunner().invoke(lang_cli.app, ["show", "xx", "text"])
    assert result.exit_code != 0
    assert isinstance(result.exception, UnknownLanguageError)
