"""Typed errors a user can cause.

Every error carries the offending ``path`` (when there is one) and a ``fix`` that says what to do.
``str(err)`` is a single line, which is what the CLI prints before exiting non-zero.

>>> err = EmptyTranscriptError("line 3 has no text", path="data/metadata.csv",
...                             fix="add the sentence")
>>> str(err)
'data/metadata.csv: line 3 has no text (fix: add the sentence)'
"""

from __future__ import annotations

from pathlib import Path


class AdavoiceError(Exception):
    """Base class of every error adavoice raises on purpose."""

    default_fix = ""

    def __init__(self, message: str, *, path: str | Path | None = None, fix: str | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.fix = fix if fix is not None else self.default_fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        head = f"{self.path}: {self.message}" if self.path else self.message
        # a message that quotes another error already carries that error's fix: one is enough
        return f"{head} (fix: {self.fix})" if self.fix and "(fix: " not in head else head


class MissingFileError(AdavoiceError, FileNotFoundError):
    default_fix = "check the path"


class AudioReadError(AdavoiceError):
    default_fix = "re-export the file as WAV, FLAC or OGG"


class EmptyAudioError(AudioReadError):
    default_fix = "remove the file or replace it with a recording that has samples"


class SampleRateError(AdavoiceError):
    default_fix = "resample the audio (adavoice.audio.load_audio resamples for you)"


class TranscriptError(AdavoiceError):
    default_fix = "save the transcript as UTF-8 text"


class EmptyTranscriptError(TranscriptError):
    default_fix = ("give every utterance some text, or leave the transcript out to mark it "
                   "untranscribed")


class MetadataFormatError(AdavoiceError):
    default_fix = "use one '<file stem>|<text>' line per utterance"


class UnknownEngineError(AdavoiceError):
    default_fix = "use one of espeak, flite, festival"


class UnknownVoiceError(AdavoiceError):
    default_fix = "list the installed voices with the engine's own command"


class EngineError(AdavoiceError):
    default_fix = "check that the engine is installed (make install-system)"


class UnknownLanguageError(AdavoiceError):
    default_fix = "run `adavoice lang list` to see the installed language packs"


class EmptyTextError(AdavoiceError):
    default_fix = "pass some text to speak"


class TextTooLongError(AdavoiceError):
    default_fix = "break the text with spaces or punctuation"


class UnknownSymbolError(AdavoiceError):
    default_fix = "normalise the text or add the symbol to the language pack"


class UnknownSpeakerError(AdavoiceError):
    default_fix = "run `adavoice synth --list-speakers` to see the speakers"


class ConfigError(AdavoiceError):
    default_fix = "check the configuration values"


class ModelFormatError(AdavoiceError):
    default_fix = "re-export the model with this version of adavoice"


class AdapterMismatchError(AdavoiceError):
    default_fix = "load the adapter with the base model it was made for, or adapt again"


class CheckpointError(AdavoiceError):
    default_fix = ("only the last checkpoint is kept: move it aside and train into a new --out "
                   "folder (warm-started from a release with --init where the command has it)")


class DatasetError(AdavoiceError):
    default_fix = "check the dataset folder layout"


class OutputError(ConfigError):
    """A file cannot be written where it was asked for (a ConfigError, since the output path is
    the user's setting: callers that catch ConfigError for a bad ``--out`` keep working)."""

    default_fix = "check that the folder exists, can be written to and has free space"
