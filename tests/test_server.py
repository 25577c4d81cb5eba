"""Issue 19: the HTTP server over a bundle: endpoints, 4xx JSON errors, bounded concurrency."""

from __future__ import annotations

import http.client
import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf
import torch

from adavoice.runtime.server import make_server
from tests.conftest import save_tiny_base


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from adavoice.config import MelConfig
    from adavoice.export.bundle import export_bundle
    from adavoice.models.vocoder import Vocoder, VocoderConfig

    folder = save_tiny_base(tmp_path_factory.mktemp("srv") / "model", seed=3)
    torch.manual_seed(0)
    Vocoder(VocoderConfig.tiny()).save(folder / "vocoder", MelConfig())
    return export_bundle(folder, folder.parent / "bundle", vocoders=("fast",))


def _start(target, **options):
    server = make_server(target, port=0, quiet=True, **options)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _request(port, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        headers = {"Content-Type": "application/json", **(headers or {})}
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, response.getheader("Content-Type"), data


@pytest.fixture(scope="module")
def port(bundle):
    server = _start(bundle, workers=2, queue=8, max_chars=300)
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_endpoints(port):
    status, kind, data = _request(port, "GET", "/health")
    assert status == 200 and json.loads(data)["status"] == "ok"
    status, _, data = _request(port, "GET", "/voices")
    assert [v["name"] for v in json.loads(data)["voices"]] == ["one", "two"]
    status, kind, data = _request(port, "POST", "/synthesize",
                                  {"text": "Hello there.", "voice": "two", "length_scale": 1.2})
    assert status == 200 and kind == "audio/wav"
    samples, rate = sf.read(io.BytesIO(data))
    assert rate == 22050 and len(samples) >= 256


@pytest.mark.parametrize("body, status, words", [
    ({"text": ""}, 422, "empty"),
    ({"text": 5}, 400, "must be a string"),
    ({"voice": "one"}, 400, "needs a 'text'"),
    ({"text": "hi", "voice": "zz"}, 404, "no voice"),
    ({"text": "hi", "length_scale": -1}, 422, "length_scale"),
    ({"text": "hi", "pitch_shift": "up"}, 400, "must be a number"),
    ({"text": "hi", "extra": 1}, 400, "unknown field"),
    ({"text": "a" * 301}, 413, "at most 300"),
    ({"text": "hi", "vocoder": "universal"}, 422, "no 'universal' vocoder"),
    (["text"], 400, "JSON object"),
    ("{not json", 400, "not JSON"),
])
def test_bad_requests_get_json_4xx(port, body, status, words):
    headers = {"Content-Type": "application/json"}
    got, kind, data = _request(port, "POST", "/synthesize", body, headers)
    assert got == status and kind == "application/json"
    error = json.loads(data)
    assert words in error["error"] and error["status"] == status
    assert "Traceback" not in data.decode()


def test_bad_routes_methods_and_bodies(port):
    assert _request(port, "GET", "/nope")[0] == 404
    assert _request(port, "DELETE", "/voices")[0] == 405
    assert _request(port, "GET", "/synthesize")[0] == 405
    assert _request(port, "POST", "/synthesize", "x" * 70000,
                    {"Content-Type": "application/json"})[0] == 413
    assert _request(port, "POST", "/synthesize", "text=hi",
                    {"Content-Type": "application/x-www-form-urlencoded"})[0] == 415
    # a raw request with a broken header line: the standard library's own error, as JSON
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.putrequest("GET", "/health", skip_accept_encoding=True)
    connection.putheader("Content-Length", "nope")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status in (200, 400)  # GET ignores the body length it does not read
    connection.close()


def test_concurrent_responses_equal_serial(port):
    texts = [f"Sentence number {n}, spoken at once." for n in range(8)]
    serial = [_request(port, "POST", "/synthesize", {"text": t, "voice": "one"})[2]
              for t in texts]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda t: _request(port, "POST", "/synthesize",
                                                    {"text": t, "voice": "one"})[2], texts))
    assert parallel == serial


class _SlowSynth:
    """A stand-in synthesizer that holds each request for a while (overload test)."""

    voices = ["slow"]
    vocoders = {"fast": {}}
    sample_rate = 16000

    def voice(self, name):
        raise AssertionError("not used")

    def synthesize(self, text, **knobs):
        time.sleep(0.5)
        return np.zeros(160, dtype=np.float32), 16000


def test_overload_is_503_not_a_queue_without_end():
    from adavoice.runtime import Synthesizer

    class Slow(_SlowSynth, Synthesizer):  # passes make_server's isinstance check
        def __init__(self):
            pass

    server = _start(Slow(), workers=1, queue=1)
    port = server.server_address[1]
    try:
        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(lambda _: _request(port, "POST", "/synthesize",
                                                        {"text": "x"})[0], range(6)))
        assert statuses.count(200) >= 2 and statuses.count(503) >= 1
        assert set(statuses) <= {200, 503}
        assert json.loads(_request(port, "GET", "/health")[2])["busy"] == 0
    finally:
        server.shutdown()
        server.server_close()
