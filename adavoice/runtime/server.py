"""``adavoice serve BUNDLE``: a small HTTP server over the runtime, standard library only.

- ``GET /health`` -> ``{"status": "ok", "voices": N, "busy": k, "waiting": w}``
- ``GET /voices`` -> ``{"voices": [{"name", "kind", "defaults"}], "sample_rate": ...}``
- ``POST /synthesize`` with JSON ``{"text", "voice", "length_scale", "pitch_shift",
  "energy_scale", "vocoder"}`` (all but ``text`` optional) -> ``audio/wav`` (16-bit PCM)

Every error is a JSON body ``{"error": "...", "status": N}`` with a 4xx status (5xx only for
overload, 503, and for a fault of the server itself, 500, whose details go to the server's log,
never to the client). Text length, request size and concurrency are bounded: ``workers``
requests synthesise at once, ``queue`` more wait, and any beyond get 503 at once with
``Retry-After``. Connections that send nothing for ``READ_TIMEOUT_S`` are dropped.

The standard library's threading server measured as well as a FastAPI app would need to here
(BENCHMARKS.md: synthesis is ~100 ms a request, the server's own share under 1 ms), and the
runtime keeps no dependency beyond numpy, onnxruntime and soundfile.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from adavoice.errors import (
    AdavoiceError,
    ConfigError,
    EmptyTextError,
    ModelFormatError,
    TextTooLongError,
    UnknownSpeakerError,
    UnknownSymbolError,
)

MAX_BODY_BYTES = 64 * 1024
DEFAULT_MAX_CHARS = 2000
READ_TIMEOUT_S = 30
FIELDS = {"text": str, "voice": str, "length_scale": float, "pitch_shift": float,
          "energy_scale": float, "vocoder": str}


class RequestError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class Admission:
    """At most ``workers`` requests synthesise at once and ``queue`` wait; others are refused."""

    def __init__(self, workers: int, queue: int):
        self.workers, self.queue = workers, queue
        self._slots = threading.Semaphore(workers)
        self._lock = threading.Lock()
        self.inside = 0  # admitted: running or waiting

    def __enter__(self):
        with self._lock:
            if self.inside >= self.workers + self.queue:
                raise RequestError(503, "the server is busy; try again shortly",
                                   {"Retry-After": "1"})
            self.inside += 1
        self._slots.acquire()
        return self

    def __exit__(self, *exc):
        self._slots.release()
        with self._lock:
            self.inside -= 1

    def counts(self) -> tuple[int, int]:
        with self._lock:
            inside = self.inside
        return min(inside, self.workers), max(0, inside - self.workers)


class TTSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, synthesizer, workers: int, queue: int, max_chars: int,
                 quiet: bool = False):
        self.synthesizer, self.max_chars, self.quiet = synthesizer, max_chars, quiet
        self.admission = Admission(workers, queue)
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    server: TTSServer
    timeout = READ_TIMEOUT_S
    server_version = "adavoice"
    protocol_version = "HTTP/1.1"

    # ---- routing ----------------------------------------------------------------------------
    def do_GET(self):
        self._handle({"/health": self._health, "/voices": self._voices}, "GET")

    def do_POST(self):
        self._handle({"/synthesize": self._synthesize}, "POST")

    def do_PUT(self):
        self._handle({}, "PUT")

    def do_DELETE(self):
        self._handle({}, "DELETE")

    def _handle(self, routes: dict, method: str) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path not in routes:
                if path in ("/health", "/voices", "/synthesize"):
                    raise RequestError(405, f"{method} is not allowed on {path}")
                raise RequestError(404, f"no such endpoint {path!r}; see /health, /voices, "
                                        f"/synthesize")
            status, body, content_type = routes[path]()
        except RequestError as err:
            self._drain()
            self._send_json(err.status, {"error": err.message, "status": err.status},
                            err.headers)
        except Exception:  # a fault of the server: logged here, a plain 500 to the client
            traceback.print_exc(file=sys.stderr)
            self._send_json(500, {"error": "internal error", "status": 500},
                            {"Connection": "close"})
        else:
            self._send(status, body, content_type)

    # ---- endpoints ------------------------------------------------------------------------
    def _health(self):
        busy, waiting = self.server.admission.counts()
        return 200, _json({"status": "ok", "voices": len(self.server.synthesizer.voices),
                           "busy": busy, "waiting": waiting}), "application/json"

    def _voices(self):
        tts = self.server.synthesizer
        voices = [{"name": voice.name, "kind": voice.kind, "defaults": voice.defaults}
                  for voice in map(tts.voice, tts.voices)]
        return 200, _json({"voices": voices, "sample_rate": tts.sample_rate,
                           "vocoders": list(tts.vocoders)}), "application/json"

    def _synthesize(self):
        request = self._read_json()
        text = request.get("text")
        if text is None:
            raise RequestError(400, "the request needs a 'text' field")
        if len(text) > self.server.max_chars:
            raise RequestError(413, f"the text has {len(text)} characters; this server takes "
                                    f"at most {self.server.max_chars}")
        knobs = {k: v for k, v in request.items() if k != "text"}
        with self.server.admission:
            try:
                samples, rate = self.server.synthesizer.synthesize(text, **knobs)
            except UnknownSpeakerError as err:
                raise RequestError(404, err.message) from err
            except (EmptyTextError, TextTooLongError, UnknownSymbolError, ConfigError) as err:
                raise RequestError(422, err.message) from err
            except ModelFormatError:
                raise  # the bundle is damaged: a server fault (500), logged
            except AdavoiceError as err:
                raise RequestError(422, err.message) from err
        return 200, wav_bytes(samples, rate), "audio/wav"

    # ---- I/O -------------------------------------------------------------------------------
    def _read_json(self) -> dict:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise RequestError(411, "send a Content-Length (chunked bodies are not taken)")
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError(411, "send a Content-Length with the JSON body")
        try:
            size = int(length)
        except ValueError:
            raise RequestError(400, "Content-Length is not a number") from None
        if size < 0:
            raise RequestError(400, "Content-Length is negative")
        if size > MAX_BODY_BYTES:
            raise RequestError(413, f"the body has {size} bytes; at most {MAX_BODY_BYTES}")
        kind = self.headers.get("Content-Type", "application/json").split(";")[0].strip()
        raw = self.rfile.read(size)
        self._body_read = True
        if kind != "application/json":
            raise RequestError(415, f"send JSON (Content-Type application/json), not {kind!r}")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise RequestError(400, f"the body is not JSON ({str(exc)[:100]})") from None
        if not isinstance(data, dict):
            raise RequestError(400, "the body must be a JSON object")
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise RequestError(400, f"unknown field(s) {unknown[:5]}; known: {sorted(FIELDS)}")
        for key, value in data.items():
            if value is None:
                continue
            want = FIELDS[key]
            ok = (isinstance(value, str) if want is str
                  else isinstance(value, (int, float)) and not isinstance(value, bool))
            if not ok:
                what = "a string" if want is str else "a number"
                raise RequestError(400, f"'{key}' must be {what}")
        return {k: v for k, v in data.items() if v is not None}

    def _drain(self) -> None:
        """Read an unread body so the connection stays usable (small bodies only)."""
        if getattr(self, "_body_read", False):
            return
        try:
            size = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            size = 0
        if 0 < size <= MAX_BODY_BYTES:
            self.rfile.read(size)
        elif size:
            self.close_connection = True

    def _send_json(self, status: int, data: dict, headers: dict | None = None) -> None:
        self._send(status, _json(data), "application/json", headers)

    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if (headers or {}).get("Connection") == "close":
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def send_error(self, code, message=None, explain=None):
        """The standard library's own errors (malformed request line, headers): JSON too."""
        self.close_connection = True
        try:
            text = message or HTTPStatus(code).phrase
        except ValueError:
            text = "bad request"
        body = _json({"error": text, "status": int(code)})
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 (the standard library's name)
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


def _json(data: dict) -> bytes:
    return (json.dumps(data, ensure_ascii=False) + "\n").encode("utf-8")


def wav_bytes(samples, rate: int) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def make_server(bundle, host: str = "127.0.0.1", port: int = 8080, workers: int | None = None,
                queue: int | None = None, max_chars: int | None = None, threads: int = 1,
                quiet: bool = False) -> TTSServer:
    """A bound server (``port=0``: any free port, see ``server.server_address``); call
    ``serve_forever()`` on it. ``bundle``: a folder or a loaded Synthesizer."""
    from adavoice.runtime import Synthesizer

    workers = workers or max(1, os.cpu_count() or 1)
    queue = 4 * workers if queue is None else queue
    max_chars = max_chars or DEFAULT_MAX_CHARS
    if workers < 1 or queue < 0 or max_chars < 1:
        raise ConfigError("workers and max_chars must be >= 1 and queue >= 0")
    tts = bundle if isinstance(bundle, Synthesizer) else Synthesizer.load(Path(bundle),
                                                                           threads=threads)
    try:
        return TTSServer((host, port), tts, workers, queue, max_chars, quiet)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc})",
                          fix="pick another --port or --host") from exc


def serve(bundle, host: str = "127.0.0.1", port: int = 8080, **options) -> None:
    server = make_server(bundle, host, port, **options)
    address = server.server_address
    print(f"serving {len(server.synthesizer.voices)} voices on http://{address[0]}:{address[1]}"
          f" (workers {server.admission.workers}, queue {server.admission.queue}); Ctrl-C stops",
          file=sys.stderr)
    try:
        server.serve_forever()
    finally:
        server.server_close()
