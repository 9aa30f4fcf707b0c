"""--embedding-model openai:NAME: an OpenAI-compatible embeddings server does the embedding.

Against a real ``python -m llama_cpp.server --embedding true`` serving the bundled GGUF on
127.0.0.1, and a small stub server for what llama.cpp cannot be made to do (another
dimension, errors, many models)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import ClassVar

import pytest
from helpers import JsonHandler, free_port, llama_cpp_serving, ragchat, stub_server

from ragchat.config import Settings
from ragchat.errors import EmbedderMismatch, EmbeddingError
from ragchat.llms import CHARS_PER_TOKEN, RemoteNotAllowed
from ragchat.remote_embedder import REQUEST_BATCH, OpenAIEmbedder

KEY = "sk-embed-4242-secret"
BLACKHOLE = "http://10.255.255.1:9/v1"  # routable nowhere: a connection would hang, not fail


def remote(model: str, url: str, **settings) -> OpenAIEmbedder:
    return OpenAIEmbedder.from_settings(
        f"openai:{model}", Settings(embedding_base_url=url, **settings)
    )


class _Embeddings(JsonHandler):
    """An OpenAI-style /v1/embeddings: vectors of ``dimension`` (or one per word when
    ``per_token``), or ``status`` as an error."""

    dimension = 3
    per_token = False
    status = 200
    inputs: ClassVar[list[list[str]]] = []

    def do_GET(self):  # /v1/models
        self.send_json(200, {"object": "list", "data": [{"id": "alpha"}, {"id": "beta"}]})

    def do_POST(self):
        body = self.read_json()
        type(self).inputs.append(body["input"])
        if self.status != 200:
            self.send_json(self.status, {"error": {"message": "nope", "type": "error"}})
            return
        data = []
        for index, text in enumerate(body["input"]):
            vector = [float(len(text) % 7 + 1), *([0.5] * (self.dimension - 1))]
            words = text.split() or [""]
            data.append(
                {
                    "object": "embedding",
                    "index": index,
                    "embedding": [vector] * len(words) if self.per_token else vector,
                }
            )
        data.reverse()  # the index, not the order, says which text a vector belongs to
        self.send_json(200, {"object": "list", "model": body["model"], "data": data})


@pytest.fixture
def stub():
    _Embeddings.dimension, _Embeddings.per_token, _Embeddings.status = 3, False, 200
    _Embeddings.inputs = []
    with stub_server(_Embeddings) as url:
        yield url, _Embeddings


def test_vectors_come_in_order_normalised_and_in_batches(stub):
    url, handler = stub
    embedder = remote("alpha", url)
    texts = [f"text number {i}" + "x" * (i % 5) for i in range(REQUEST_BATCH * 2 + 3)]
    vectors = embedder.embed_passages(texts)
    assert [len(batch) for batch in handler.inputs] == [REQUEST_BATCH, REQUEST_BATCH, 3]
    assert len(vectors) == len(texts) and embedder.dimension == 3
    for text, vector in zip(texts, vectors, strict=True):
        assert abs(sum(x * x for x in vector) - 1) < 1e-5
        first = (len(text) % 7 + 1) / (((len(text) % 7 + 1) ** 2 + 0.5) ** 0.5)
        assert abs(vector[0] - first) < 1e-5  # its own vector, whatever order they came in


def test_a_vector_per_token_is_mean_pooled(stub):
    url, handler = stub
    handler.per_token = True
    assert len(remote("alpha", url).embed_query("three short words")) == 3


def test_e5_prefixes_are_applied_by_model_name(stub):
    url, handler = stub
    embedder = remote("intfloat/e5-large-v2", url)
    embedder.embed_query("battery")
    embedder.embed_passages(["The battery holds 40 kWh."])
    assert handler.inputs == [["query: battery"], ["passage: The battery holds 40 kWh."]]


def test_a_changed_dimension_is_refused(stub):
    url, handler = stub
    built = remote("alpha", url, allow_remote=False)
    built.embed_passages(["a"])
    handler.dimension = 4  # the server now serves another model
    with pytest.raises(EmbedderMismatch, match=r"now returns 4-d vectors for 'alpha'.*3-d"):
        built.embed_query("b")
    collection = OpenAIEmbedder.from_settings(
        "openai:alpha", Settings(embedding_base_url=url), dimension=3
    )  # a new process, querying a collection built with 3-d vectors
    with pytest.raises(EmbedderMismatch, match="--reindex"):
        collection.embed_query("b")


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "API key rejected by 127.0.0.1:"),
        (404, "has no model 'gamma'; it offers: alpha, beta (use --embedding-model openai:NAME)"),
        pytest.param(  # retried with backoff: seconds of waiting
            503, "failed with HTTP 503 (after 3 retries)", marks=pytest.mark.slow
        ),
    ],
)
def test_server_errors_are_one_line(stub, status, message):
    url, handler = stub
    handler.status = status
    with pytest.raises(EmbeddingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        remote("gamma", url, embedding_api_key=KEY).embed_query("x")
    assert len(handler.inputs) == (4 if status == 503 else 1)  # 5xx retried with backoff


@pytest.mark.slow
def test_a_dead_server_is_one_line():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(
        EmbeddingError, match=f"Cannot reach 127.0.0.1:.*is the server running at {url}"
    ):
        remote("alpha", url).embed_query("x")


def test_a_remote_endpoint_without_consent_is_refused_before_connecting(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    with pytest.raises(RemoteNotAllowed, match=r"10\.255\.255\.1:9, which is not this machine"):
        remote("text-embedding-3-small", BLACKHOLE)
    allowed = remote("text-embedding-3-small", BLACKHOLE, allow_remote=True)
    assert allowed.destination == "10.255.255.1:9"


def test_the_refusal_through_the_cli_is_immediate(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Some private text.")
    started = time.monotonic()
    result = ragchat(
        "ingest",
        str(docs),
        env={
            "RAGCHAT_EMBEDDING_MODEL": "openai:nomic-embed-text",
            "RAGCHAT_EMBEDDING_BASE_URL": BLACKHOLE,
        },
    )
    seconds = time.monotonic() - started
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Refusing to send text to be embedded to 10.255.255.1:9")
    assert "--allow-remote" in result.stderr
    assert seconds < 30  # a connection to the black hole would wait out the 120 s timeout


def test_tokens_are_counted_by_the_models_own_tokenizer_when_it_is_here(stub):
    url, _ = stub
    exact = remote("sentence-transformers/all-MiniLM-L6-v2", url)
    assert exact.tokenizer is not None
    assert exact.count_tokens(["hello world"]) == [4]  # [CLS] hello world [SEP]
    estimated = remote("text-embedding-3-small", url)
    assert estimated.tokenizer is None
    text = "The joining fee is 75 crowns and it is not refundable."
    assert estimated.count_tokens([text]) == [len(text) // CHARS_PER_TOKEN + 2]
    assert estimated.count_tokens([text])[0] > exact.count_tokens([text])[0]  # errs high


# a real llama.cpp embeddings server


@pytest.fixture(scope="module")
def llama_server():
    with llama_cpp_serving(KEY, "--embedding", "true") as url:
        yield url


@pytest.mark.slow
def test_a_collection_embedded_by_a_llama_cpp_server_answers_search(llama_server, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()  # short texts: this server embeds a token at a time (~0.1 s a token here)
    (docs / "otters.md").write_text("Sea otters hold hands while they sleep.")
    (docs / "tides.md").write_text("Spring tides follow the full moon.")
    (docs / "fees.md").write_text("The joining fee is 75 crowns.")
    env = {
        "RAGCHAT_HOME": str(tmp_path / "home"),
        "RAGCHAT_EMBEDDING_MODEL": "openai:smol",
        "RAGCHAT_EMBEDDING_BASE_URL": llama_server,
        "RAGCHAT_EMBEDDING_API_KEY": KEY,
    }
    ingest = ragchat("ingest", str(docs), env=env)
    assert ingest.returncode == 0, ingest.stderr
    assert "3 added" in ingest.stderr and "sent to" not in ingest.stderr  # loopback: no notice
    status = json.loads(ragchat("status", "--json", env=env).stdout)
    assert status["collections"][0]["embedder"] == "openai:smol"
    assert status["collections"][0]["dimension"] == 576  # SmolLM2's hidden size

    found = ragchat("search", "--json", "joining fee crowns", env=env)
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)["results"]
    assert Path(results[0]["path"]).name == "fees.md"
    assert "dense" in results[0]["scores"]  # the query was embedded by the server too
    dense = ragchat("search", "--json", "--mode", "dense", "otters sleeping", env=env)
    assert dense.returncode == 0 and len(json.loads(dense.stdout)["results"]) == 3

    wrong = ragchat("search", "x", env={**env, "RAGCHAT_EMBEDDING_API_KEY": "sk-wrong-1"})
    assert wrong.returncode == 1
    assert (
        "API key rejected by 127.0.0.1:" in wrong.stderr
        and "RAGCHAT_EMBEDDING_API_KEY" in wrong.stderr
    )
    assert KEY not in wrong.stderr + wrong.stdout and "sk-wrong-1" not in wrong.stderr

    other = ragchat("search", "x", env={**env, "RAGCHAT_EMBEDDING_MODEL": "bundled"})
    assert other.returncode == 1 and "was built with embedding model 'openai:smol'" in other.stderr
