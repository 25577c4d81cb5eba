"""Speak from an exported bundle with numpy + onnxruntime + soundfile only: no torch.

>>> import tempfile
>>> from adavoice.export.bundle import export_bundle
>>> bundle = export_bundle("demo", Path(tempfile.mkdtemp()) / "b", speakers=["flite:rms"],
...                        vocoders=())
>>> tts = Synthesizer.load(bundle)
>>> tts.voices
['flite:rms']
>>> mel = tts.mel("Hello there.", voice="flite:rms")
>>> mel.shape[0], mel.shape[1] > 20
(80, True)

A bundle without a vocoder (as above) makes mels only; ``synthesize`` returns
``(samples float32, sample_rate)``. One ``Synthesizer`` serves many threads: sessions are
onnxruntime's (thread-safe ``run``) and voices are read once, at load.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adavoice.config import MAX_ABS_LOG_MEL, MAX_LOG_DURATION, SynthesisConfig, read_json
from adavoice.errors import (
    AdapterMismatchError,
    ConfigError,
    MissingFileError,
    ModelFormatError,
    UnknownSpeakerError,
)
from adavoice.postfilter import check_sharpening, sharpen_mel_np
from adavoice.runtime.format import (
    BUNDLE_FORMAT_VERSION,
    BUNDLE_JSON,
    BUNDLE_KIND,
    KNOBS,
    POSTFILTER_INPUTS,
    VOICE_KIND,
    VOICE_TENSORS,
    VOICES_DIR,
    sha256_of,
)
from adavoice.windows import plan_passes

__all__ = ["Synthesizer", "RuntimeVoice"]


@dataclass(frozen=True)
class RuntimeVoice:
    """A voice of a bundle: its graph inputs, defaults and (lora/decoder kinds) own graph."""

    name: str
    kind: str
    inputs: dict
    defaults: dict
    graph: Path | None
    graph_sha256: str | None = None
    postfilter: dict | None = None  # the post-filter graph's voice inputs (postfilter.*)


class Synthesizer:
    """A loaded bundle. ``threads``: onnxruntime's intra-op threads per call (None: its
    default); ``providers``: override the bundle's (e.g. ``["CPUExecutionProvider"]``)."""

    def __init__(self, folder: Path, config: dict, voices: dict[str, RuntimeVoice],
                 threads: int | None, providers: list[str] | None):
        self.folder, self.config, self._voices = folder, config, voices
        self.threads = threads
        self.providers = providers or list(config.get("providers", ["CPUExecutionProvider"]))
        self._lock = threading.Lock()
        self._sessions: dict[str, object] = {}
        self.processor = _text_processor(config, folder)
        graphs = config["graphs"]
        self._acoustic = self._session(folder / graphs["acoustic"]["file"],
                                       graphs["acoustic"].get("sha256"))
        self.vocoders = dict(graphs.get("vocoders", {}))

    # ---- loading --------------------------------------------------------------------------
    @classmethod
    def load(cls, bundle: str | Path, threads: int | None = None,
             providers: list[str] | None = None) -> "Synthesizer":
        """Read ``bundle`` (a folder written by ``adavoice export``): MissingFileError,
        ModelFormatError or AdapterMismatchError naming the file for anything missing,
        damaged or made for another base."""
        folder = Path(bundle)
        config = read_bundle_json(folder)
        voices = _read_voices(folder, config)
        return cls(folder, config, voices, threads, providers)

    def _session(self, path: Path, sha256: str | None):
        """An onnxruntime session for ``path`` (checked against its recorded sha256), cached."""
        import onnxruntime as ort

        key = str(path)
        with self._lock:
            if key in self._sessions:
                return self._sessions[key]
            if not path.is_file():
                raise MissingFileError("a graph of the bundle is missing", path=path,
                                       fix="copy the whole bundle folder again")
            if sha256 is not None and sha256_of(path) != sha256:
                raise ModelFormatError("the graph's checksum does not match bundle.json: the "
                                       "file is damaged", path=path,
                                       fix="copy the bundle again, or export it again")
            options = ort.SessionOptions()
            if self.threads:
                options.intra_op_num_threads = int(self.threads)
                options.inter_op_num_threads = 1
            provider_options = self.config.get("provider_options", {})
            providers = [(p, provider_options.get(p, {})) for p in self.providers]
            try:
                session = ort.InferenceSession(str(path), options, providers=providers)
            except Exception as exc:  # onnxruntime raises its own classes for bad graphs
                raise ModelFormatError(f"onnxruntime cannot load the graph "
                                       f"({' '.join(str(exc).split())[:200]})", path=path) from exc
            self._sessions[key] = session
            return session

    # ---- what it has ----------------------------------------------------------------------
    @property
    def voices(self) -> list[str]:
        return list(self._voices)

    @property
    def sample_rate(self) -> int:
        return int(self.config["sample_rate_hz"])

    def voice(self, name: str | None) -> RuntimeVoice:
        """The voice ``name`` (None: the bundle's default, else its first)."""
        if name is None:
            name = self.config.get("defaults", {}).get("voice") or next(iter(self._voices), None)
        if name not in self._voices:
            shown = ", ".join(list(self._voices)[:8]) + (" ..." if len(self._voices) > 8 else "")
            raise UnknownSpeakerError(f"no voice {name!r} in this bundle ({len(self._voices)} "
                                      f"voices: {shown})", path=self.folder,
                                      fix="see `python -m adavoice.runtime BUNDLE "
                                          "--list-voices`")
        return self._voices[name]

    # ---- speaking -------------------------------------------------------------------------
    def settings(self, voice: RuntimeVoice, vocoder: str | None = None,
                 **knobs) -> SynthesisConfig:
        """The knobs given over the voice's defaults over neutral (ConfigError if out of
        range, as in the torch path)."""
        given = SynthesisConfig(**{k: knobs.get(k) for k in KNOBS}, vocoder=vocoder)
        own = SynthesisConfig(**{k: voice.defaults.get(k) for k in KNOBS})
        return given.over(own).over(SynthesisConfig.neutral())

    def token_pieces(self, text: str) -> list[list[int]]:
        from adavoice.text.chunks import token_pieces

        return token_pieces(self.processor, text)

    def mel_pieces(self, text: str, voice: str | None = None, **knobs):
        """Yield one (n_mels, T) float32 mel per piece of ``text`` (all pieces are tokenised,
        and bad text refused, before the first is spoken)."""
        chosen = self.voice(voice)
        settings = self.settings(chosen, **knobs)
        session = self._acoustic if chosen.graph is None else self._session(
            chosen.graph, chosen.graph_sha256)
        feeds = {**chosen.inputs,
                 "length_scale": np.array(settings.length_scale, dtype=np.float32),
                 "pitch_shift": np.array(settings.pitch_shift, dtype=np.float32),
                 "energy_scale": np.array(settings.energy_scale, dtype=np.float32)}
        for ids in self.token_pieces(text):
            mel, _, log_duration = session.run(
                None, {"tokens": np.asarray([ids], dtype=np.int64), **feeds})
            if not (np.abs(log_duration) <= MAX_LOG_DURATION).all():
                raise ModelFormatError("the duration predictor gave non-finite durations: "
                                       "the graph or the voice's tensors are damaged",
                                       path=self.folder)
            if not (np.abs(mel) <= MAX_ABS_LOG_MEL).all():
                raise ModelFormatError("synthesis gave a non-finite or out-of-range mel: the "
                                       "graph or the voice's tensors are damaged",
                                       path=self.folder)
            yield mel[0]

    def mel(self, text: str, voice: str | None = None, **knobs) -> np.ndarray:
        """(n_mels, T) log-mel of the whole text, pieces joined."""
        return np.concatenate(list(self.mel_pieces(text, voice, **knobs)), axis=-1)

    def stream(self, text: str, voice: str | None = None, vocoder: str | None = None, **knobs):
        """Yield float32 waves, one per piece of ``text``: memory stays flat in its length."""
        kind = self._vocoder_kind(vocoder)
        sharpening = float(self.vocoders[kind].get("mel_sharpening", 1.0))
        entry = self.vocoders[kind].get("postfilter")
        postfilter = None if entry is None else self._session(self.folder / entry["file"],
                                                              entry.get("sha256"))
        own = {}
        if postfilter is not None:  # the voice's own post-filter values, where the graph
            wanted = {i.name: i.shape for i in postfilter.get_inputs() if i.name != "mel"}
            chosen = self.voice(voice)  # (the graph takes them)
            own = {name: (chosen.postfilter or {}).get(name) for name in wanted}
            missing = sorted(name for name, value in own.items() if value is None)
            misfit = sorted(name for name, value in own.items()
                            if value is not None and list(value.shape) != list(wanted[name]))
            if misfit:
                raise ModelFormatError(f"voice {chosen.name!r} has post-filter inputs of the "
                                       f"wrong shape ({', '.join(misfit[:3])})",
                                       path=self.folder, fix="export the voice again")
            if missing:
                raise ModelFormatError(f"voice {chosen.name!r} lacks the post-filter inputs "
                                       f"{', '.join(missing[:3])}", path=self.folder,
                                       fix="export the voice again: adavoice export "
                                           "--add-voice DIR --overwrite")
        for mel in self.mel_pieces(text, voice, vocoder=vocoder, **knobs):
            if sharpening != 1.0:  # as the torch base does before this renderer
                mel = sharpen_mel_np(mel, sharpening)
            if postfilter is not None:  # likewise
                mel = postfilter.run(None, {"mel": np.ascontiguousarray(
                    mel[None], dtype=np.float32), **own})[0][0]
            yield self.vocode(mel, kind)

    def synthesize(self, text: str, voice: str | None = None, length_scale: float | None = None,
                   pitch_shift: float | None = None, energy_scale: float | None = None,
                   vocoder: str | None = None) -> tuple[np.ndarray, int]:
        """Speak ``text``: ``(samples float32 in [-1, 1], sample_rate)``. Unset knobs are the
        voice's defaults; ``vocoder``: auto | universal | fast."""
        waves = list(self.stream(text, voice, vocoder, length_scale=length_scale,
                                 pitch_shift=pitch_shift, energy_scale=energy_scale))
        return (waves[0] if len(waves) == 1 else np.concatenate(waves)), self.sample_rate

    def _vocoder_kind(self, vocoder: str | None) -> str:
        kind = vocoder or "auto"
        if kind == "auto":
            kind = self.config.get("defaults", {}).get("vocoder")
        if kind not in self.vocoders:
            have = ", ".join(self.vocoders) or "none: export with a vocoder"
            raise ConfigError(f"this bundle has no {kind or 'auto'!r} vocoder (it has: {have})",
                              path=self.folder)
        return kind

    def vocode(self, mel: np.ndarray, vocoder: str | None = None) -> np.ndarray:
        """(n_mels, T) log-mel -> float32 wave ((T - 1) * hop,), cut into passes exactly as
        the torch renderer cuts it."""
        kind = self._vocoder_kind(vocoder)
        entry = self.vocoders[kind]
        session = self._session(self.folder / entry["file"], entry.get("sha256"))
        hop = int(entry["hop_length"])
        pieces = []
        for piece in plan_passes(mel.shape[-1], tuple(entry.get("pass_frames") or ()) or None,
                                 int(entry.get("context_frames", 0))):
            part = mel[:, piece.first:piece.stop]
            if piece.length > part.shape[-1]:
                tail = np.repeat(part[:, -1:], piece.length - part.shape[-1], axis=1)
                part = np.concatenate([part, tail], axis=1)
            wave = session.run(None, {"mel": np.ascontiguousarray(part[None],
                                                                  dtype=np.float32)})[0][0]
            pieces.append(wave[piece.keep_from * hop:piece.keep_to * hop])
        wave = np.clip(np.concatenate(pieces), -1.0, 1.0).astype(np.float32, copy=False)
        if not np.isfinite(wave).all():
            raise ModelFormatError("the vocoder gave non-finite samples: its graph is damaged",
                                   path=self.folder / entry["file"])
        return wave


# ---- reading a bundle ------------------------------------------------------------------------
def read_bundle_json(folder: Path) -> dict:
    """bundle.json checked for kind, format version and the fields the runtime reads."""
    path = folder / BUNDLE_JSON
    if not folder.is_dir():
        raise MissingFileError("no such bundle folder", path=folder,
                               fix="write one with `adavoice export --out DIR`")
    if not path.is_file():
        raise MissingFileError("not a bundle (no bundle.json)", path=folder,
                               fix="write one with `adavoice export --out DIR`")
    config = read_json(path)
    if config.get("kind") != BUNDLE_KIND:
        raise ModelFormatError(f"not an adavoice bundle (kind {config.get('kind')!r})", path=path)
    if config.get("format_version") != BUNDLE_FORMAT_VERSION:
        raise ModelFormatError(f"bundle format {config.get('format_version')!r}; this runtime "
                               f"reads format {BUNDLE_FORMAT_VERSION}", path=path,
                               fix="export the bundle again with this adavoice")
    try:
        base_hash = config["base"]["weights_sha256"]
        config["graphs"]["acoustic"]["file"]
        int(config["sample_rate_hz"])
        config["text"]["symbols"], config["text"]["pack"]
        shapes = config["acoustic"]
        int(shapes["norms"]), int(shapes["hidden"]), int(shapes["speaker_dim"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"bundle.json lacks or garbles {exc}", path=path) from exc
    if not isinstance(base_hash, str):
        raise ModelFormatError("bundle.json names no base hash", path=path)
    for kind, entry in (config["graphs"].get("vocoders") or {}).items():
        amount = entry.get("mel_sharpening", 1.0) if isinstance(entry, dict) else None
        try:
            check_sharpening(amount)
        except ConfigError as exc:
            raise ModelFormatError(f"vocoder {kind!r} mel_sharpening: {exc.message}",
                                   path=path) from exc
        postfilter = entry.get("postfilter")
        if postfilter is not None and not (isinstance(postfilter, dict)
                                           and isinstance(postfilter.get("file"), str)):
            raise ModelFormatError(f"vocoder {kind!r} names a post-filter without a graph file",
                                   path=path)
    return config


def _read_voices(folder: Path, config: dict) -> dict[str, RuntimeVoice]:
    voices: dict[str, RuntimeVoice] = {}
    for meta_path in sorted((folder / VOICES_DIR).glob("*.json")):
        voice = _read_voice(meta_path, config)
        if voice.name in voices:
            raise ModelFormatError(f"two voice files name the voice {voice.name!r}",
                                   path=meta_path)
        voices[voice.name] = voice
    return voices


def _read_voice(meta_path: Path, config: dict) -> RuntimeVoice:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    meta = read_json(meta_path)
    if meta.get("kind") != VOICE_KIND or not isinstance(meta.get("name"), str):
        raise ModelFormatError("not a bundle voice file", path=meta_path)
    if meta.get("base_weights_sha256") != config["base"]["weights_sha256"]:
        raise AdapterMismatchError("this voice was exported from another base than the "
                                   "bundle's", path=meta_path,
                                   fix="add it again: adavoice export --add-voice DIR --out "
                                       "BUNDLE")
    tensors_path = meta_path.parent / str(meta.get("tensors", ""))
    if not tensors_path.is_file():
        raise MissingFileError(f"voice {meta['name']!r} has no tensors file", path=tensors_path,
                               fix="copy the bundle's voices folder again")
    data = tensors_path.read_bytes()
    import hashlib

    if hashlib.sha256(data).hexdigest() != meta.get("tensors_sha256"):
        raise ModelFormatError("the voice's tensors do not match their checksum: the file is "
                               "damaged", path=tensors_path)
    try:
        tensors = load(data)
    except (SafetensorError, ValueError) as exc:
        raise ModelFormatError(f"unreadable voice tensors ({exc})", path=tensors_path) from exc
    shapes = config["acoustic"]
    want = {"speaker_vector": (shapes["speaker_dim"],), "utterance_vector": (shapes["hidden"],),
            "norm_scale": (shapes["norms"], shapes["hidden"]),
            "norm_bias": (shapes["norms"], shapes["hidden"])}
    for name in VOICE_TENSORS:
        array = tensors.get(name)
        if array is None or array.shape != want[name] or array.dtype != np.float32:
            raise ModelFormatError(f"voice tensor {name!r} is missing or not float32 of shape "
                                   f"{want[name]}", path=tensors_path)
        if not np.isfinite(array).all():
            raise ModelFormatError(f"voice tensor {name!r} holds non-finite numbers",
                                   path=tensors_path)
    graph = meta.get("graph")
    graph_path = None
    if graph:
        graph_path = meta_path.parent / str(graph)
        if not graph_path.is_file():
            raise MissingFileError(f"voice {meta['name']!r} has no graph file", path=graph_path)
    defaults = meta.get("defaults") or {}
    SynthesisConfig(**{k: defaults.get(k) for k in KNOBS})  # a bad default: ConfigError now
    inputs = {name: tensors[name] for name in VOICE_TENSORS}
    postfilter = {name: array for name, array in tensors.items()
                  if name.startswith(POSTFILTER_INPUTS)}
    for name, array in postfilter.items():
        if array.dtype != np.float32 or not np.isfinite(array).all():
            raise ModelFormatError(f"voice tensor {name!r} is not finite float32",
                                   path=tensors_path)
    return RuntimeVoice(meta["name"], str(meta.get("adapter_kind", "")), inputs, defaults,
                        graph_path, meta.get("graph_sha256"), postfilter or None)


def _text_processor(config: dict, folder: Path):
    from adavoice.text.pack import LanguagePack
    from adavoice.text.symbols import SymbolTable
    from adavoice.text.tokenize import TextProcessor

    try:
        symbols = SymbolTable.from_dict(config["text"]["symbols"])
        pack = LanguagePack.from_dict(config["text"]["pack"], folder / BUNDLE_JSON)
        return TextProcessor(pack, tokenizer=symbols.tokenizer, symbols=symbols)
    except ConfigError as exc:
        raise ModelFormatError(f"bundle.json's text settings are not valid ({exc.message})",
                               path=folder / BUNDLE_JSON) from exc
