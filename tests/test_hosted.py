"""The OpenAI-compatible backend against a real llama.cpp server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
from helpers import JsonHandler, free_port, llama_cpp_serving, ragchat, stub_server

pytestmark = pytest.mark.slow

KEY = "sk-test-4242-secret"
WRONG_KEY = "sk-wrong-9999-secret"


@pytest.fixture(scope="module")
def server():
    with llama_cpp_serving(KEY, "--n_ctx", "2048") as url:
        yield url


def hosted_env(home: Path, url: str, key: str = KEY, model: str = "openai:smol") -> dict[str, str]:
    return {
        "RAGCHAT_HOME": str(home),
        "RAGCHAT_MODEL": model,
        "RAGCHAT_BASE_URL": url,
        "RAGCHAT_API_KEY": key,
    }


def test_ask_through_the_openai_backend(ingested, server):
    home, docs = ingested
    result = ragchat("ask", "--json", "What is the joining fee?", env=hosted_env(home, server))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["answer"].strip() and data["models"]["llm"] == "openai:smol"
    assert str(docs / "handbook.md") in [s["path"] for s in data["sources"]]
    assert "sent to" not in result.stderr  # loopback: nothing leaves the machine, no notice
    assert KEY not in result.stdout + result.stderr


def test_chat_streams_through_the_openai_backend(ingested, server):
    home, _ = ingested
    result = ragchat(
        "chat", input="Where are the solar panels?\n/exit\n", env=hosted_env(home, server)
    )
    assert result.returncode == 0, result.stderr
    assert "Sources" in result.stdout and "faq.html" in result.stdout


def test_wrong_key_is_a_clear_error_without_the_key(ingested, server):
    home, _ = ingested
    result = ragchat("ask", "What is the joining fee?", env=hosted_env(home, server, key=WRONG_KEY))
    assert result.returncode == 1
    assert result.stderr.startswith("Error: API key rejected by 127.0.0.1:")
    assert "Traceback" not in result.stderr
    for secret in (KEY, WRONG_KEY):
        assert secret not in result.stdout + result.stderr


class _ApiStub(JsonHandler):
    """A minimal OpenAI-style server for the error paths llama.cpp's server cannot show."""

    status = 404
    requests = 0

    def do_GET(self):  # /v1/models
        self.send_json(
            200,
            {
                "object": "list",
                "data": [{"id": "alpha", "object": "model"}, {"id": "beta", "object": "model"}],
            },
        )

    def do_POST(self):  # /v1/chat/completions
        type(self).requests += 1
        self.read_json()
        self.send_json(self.status, {"error": {"message": "nope", "type": "error", "code": None}})


@pytest.fixture
def stub():
    _ApiStub.requests = 0
    with stub_server(_ApiStub) as url:
        yield url, _ApiStub


def test_unknown_model_lists_what_the_server_offers(ingested, stub):
    home, _ = ingested
    url, handler = stub
    handler.status = 404
    result = ragchat(
        "ask", "What is the joining fee?", env=hosted_env(home, url, model="openai:gamma")
    )
    assert result.returncode == 1, result.stdout
    assert "has no model 'gamma'; it offers: alpha, beta" in result.stderr


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limits_and_server_errors_are_retried_then_reported(ingested, stub, status):
    home, _ = ingested
    url, handler = stub
    handler.status = status
    result = ragchat("ask", "What is the joining fee?", env=hosted_env(home, url))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert handler.requests == 4  # the first try and 3 retries
    assert ("HTTP 429" if status == 429 else "HTTP 503") in result.stderr


def test_dead_server_is_a_clear_error(ingested):
    home, _ = ingested
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = ragchat("ask", "What is the joining fee?", env=hosted_env(home, url))
    assert (
        result.returncode == 1
        and "Cannot reach 127.0.0.1:" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_remote_endpoint_without_consent_is_refused_before_connecting(ingested, monkeypatch):
    """In process, with every outgoing connection made to fail loudly."""
    from ragchat.app import App
    from ragchat.config import Settings
    from ragchat.llms import RemoteNotAllowed

    home, _ = ingested

    def no_network(*args, **kwargs):
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    settings = Settings(
        model="openai:gpt-4o-mini", base_url="http://llm.example.invalid/v1", api_key=KEY
    )
    with pytest.raises(RemoteNotAllowed, match=r"llm\.example\.invalid.*--allow-remote"):
        App(home, settings).engine()


def test_remote_refusal_through_the_cli(ingested):
    home, _ = ingested
    result = ragchat(
        "ask", "What is the joining fee?", env=hosted_env(home, "http://llm.example.invalid/v1")
    )
    assert result.returncode == 1
    assert "Refusing to send document excerpts to llm.example.invalid" in result.stderr
    assert "--allow-remote" in result.stderr


def test_a_stalled_server_is_one_line_within_the_deadline(ingested, stub):
    """The server accepts the connection and never answers: one error, at the deadline
    (RAGCHAT_LLM_TIMEOUT), naming the host; not four timeouts in a row."""
    import time

    home, _ = ingested

    def timed(url: str) -> tuple[subprocess.CompletedProcess, float]:
        started = time.monotonic()
        result = ragchat(
            "ask",
            "What is the joining fee?",
            env={**hosted_env(home, url), "RAGCHAT_LLM_TIMEOUT": "3"},
        )
        return result, time.monotonic() - started

    stub_url, handler = stub
    handler.status = 401  # refused at once, never retried: start-up and retrieval alone
    _, baseline = timed(stub_url)
    server = socket.create_server(("127.0.0.1", 0))  # accepted by the kernel, never read
    url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    try:
        result, elapsed = timed(url)
    finally:
        server.close()
    assert result.returncode == 1
    host = url.removeprefix("http://").removesuffix("/v1")
    assert result.stderr.startswith(f"Error: No answer from {host} within 3 s (retries included)")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert elapsed - baseline < 8  # one deadline of 3 s, not 4 x 3 s and 3.5 s of back-off
