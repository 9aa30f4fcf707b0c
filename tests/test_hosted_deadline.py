"""A hosted model that stalls: one deadline for the answer to begin, retries included, and no
retry once text has streamed. Real HTTP servers on 127.0.0.1, a 2-second deadline."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ragchat.errors import LLMError
from ragchat.llms import OpenAILLM

DEADLINE = 2.0
MESSAGES = [{"role": "user", "content": "When is the boiler serviced?"}]


@pytest.fixture
def silent() -> Iterator[tuple[str, list[socket.socket]]]:
    """A server that accepts every connection and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/v1", accepted
    server.close()
    for connection in accepted:
        connection.close()


class _Handler(BaseHTTPRequestHandler):
    """Streams three pieces of an answer, then stalls (``words``), or always fails (``status``)."""

    words: tuple[str, ...] = ()
    status = 200
    requests = 0
    release = threading.Event()

    def do_POST(self) -> None:
        type(self).requests += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.status != 200:
            body = json.dumps({"error": {"message": "busy", "type": "error"}}).encode()
            self.send_response(self.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for word in self.words:
            chunk = {
                "id": "1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.release.wait(30)  # stalls mid-answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stalling() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"requests": 0, "release": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    handler.release.set()
    server.shutdown()
    server.server_close()


def llm(url: str) -> OpenAILLM:
    model = OpenAILLM("m", url, timeout=DEADLINE)
    model.client  # noqa: B018 - the client (and the openai import) before the clock starts
    return model


def test_a_server_that_never_answers_fails_once_at_the_deadline(silent):
    url, accepted = silent
    model = llm(url)
    started = time.monotonic()
    with pytest.raises(LLMError) as caught:
        "".join(model.stream(MESSAGES, 16, 0.0))
    elapsed = time.monotonic() - started
    assert DEADLINE - 0.1 < elapsed < DEADLINE + 1.0  # not 4 x 2 s plus back-off
    host = url.removeprefix("http://").removesuffix("/v1")
    assert str(caught.value).startswith(f"No answer from {host} within 2 s (retries included)")
    assert len(accepted) == 1


def test_an_answer_that_stalls_after_some_text_is_not_retried(stalling):
    url, handler = stalling
    handler.words = ("The", " boiler", " is")
    generation = llm(url).stream(MESSAGES, 16, 0.0)
    pieces = iter(generation)
    assert next(pieces) == "The"
    began = time.monotonic()
    with pytest.raises(LLMError, match=r"stopped answering: nothing more came for 2 s after"):
        for _ in pieces:
            pass
    assert generation.text == "The boiler is"
    assert time.monotonic() - began < DEADLINE + 1.0
    assert handler.requests == 1


def test_retries_of_a_failing_server_stop_at_the_deadline(stalling):
    url, handler = stalling
    handler.status = 503
    started = time.monotonic()
    with pytest.raises(LLMError, match=r"failed with HTTP 503 \(after 2 retries\)"):
        "".join(llm(url).stream(MESSAGES, 16, 0.0))
    # 0.5 s and 1 s of back-off fit in 2 s; the third (2 s) would not (the requests themselves
    # take some time on a busy machine)
    assert time.monotonic() - started < DEADLINE + 1.0
    assert handler.requests == 3
