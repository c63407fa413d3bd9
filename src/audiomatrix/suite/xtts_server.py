"""A small XTTS HTTP service, shaped like the FastAPI microservices users put in front of XTTS.

Those services (coqui's xtts-streaming-server among them) load the model once at startup,
clone the voice once, and answer `POST /tts` with `{"text", "language"}` from a plain `def`
route, which the framework runs in a thread pool: requests reach the one loaded model from
several threads at once. This server does the same with the standard library's
`ThreadingHTTPServer` (one thread per request) on loopback, so that the suite needs nothing
the cell does not have and the container's network can stay off. The answer is the waveform
as a float32 WAV, so the client gets the model's samples exactly.

Decoding is greedy, as a service that must answer the same request with the same audio uses it.
"""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import soundfile as sf


def synthesize(model: Any, voice: tuple[Any, Any], text: str, language: str) -> np.ndarray:
    """One request's waveform: `Xtts.inference` with the cloned voice, greedy."""
    latent, embedding = voice
    wav = model.inference(text, language, latent, embedding, do_sample=False)["wav"]
    if hasattr(wav, "detach"):
        wav = wav.detach().cpu().numpy()
    return np.asarray(wav, dtype=np.float32).reshape(-1)


def _handler(model: Any, voice: tuple[Any, Any], rate: int) -> type[BaseHTTPRequestHandler]:
    class TTSHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/tts":
                self.send_error(404)
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            try:
                wav = synthesize(model, voice, body["text"], body["language"])
            except Exception as exc:  # the service answers 500 with the error, as FastAPI does
                self.send_error(500, f"{type(exc).__name__}: {exc}"[:200])
                return
            buffer = io.BytesIO()
            sf.write(buffer, wav, rate, format="WAV", subtype="FLOAT")
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(buffer.tell()))
            self.end_headers()
            self.wfile.write(buffer.getvalue())

        def log_message(self, format: str, *args: Any) -> None:
            print(f"server: {format % args}")

    return TTSHandler


@contextmanager
def serving(model: Any, voice: tuple[Any, Any], rate: int) -> Iterator[str]:
    """The service on an ephemeral loopback port for the block; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(model, voice, rate))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Loopback is reached directly, whatever proxy the environment names."""


def request(url: str, text: str, language: str = "en") -> tuple[np.ndarray, int]:
    """POST /tts as a client does: the decoded samples and the rate the WAV states."""
    data = json.dumps({"text": text, "language": language}).encode()
    call = urllib.request.Request(
        f"{url}/tts", data=data, headers={"Content-Type": "application/json"}
    )
    with _DIRECT.open(call, timeout=120) as answer:
        samples, rate = sf.read(io.BytesIO(answer.read()), dtype="float32")
    return samples, rate
