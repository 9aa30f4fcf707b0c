"""The int8 ONNX embedder against the reference (sentence-transformers fp32): vectors,
token counts, rankings, and a query process that never loads torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import CORPUS, ragchat

from ragchat.bundled import bundled_embedding_model
from ragchat.config import model_cache
from ragchat.embedders import OnnxEmbedder, make_embedder

pytestmark = pytest.mark.slow

TEXTS = [
    "The harbor's solar array produced 1.94 gigawatt-hours in 2024.",
    "short",
    "Mitochondria are the powerhouse of the cell, making ATP through oxidative phosphorylation.",
    "def retry(request, attempts=3):\n    for attempt in range(attempts):\n        try: return request()\n        except IOError: sleep(2 ** attempt)",
    "Ünïcödé — ﬁne “quotes” and emoji 🚢 survive tokenisation.",
    " ".join(["A very long passage about tides and ferries."] * 80),  # past the 256-token limit
]


@pytest.fixture(scope="module")
def onnx_embedder() -> OnnxEmbedder:
    return OnnxEmbedder("bundled", model_cache() / "models")


def test_onnx_vectors_match_the_reference(onnx_embedder, bundled_embedder):
    fast = np.array(onnx_embedder.embed_passages(TEXTS))
    reference = np.array(bundled_embedder.embed_passages(TEXTS))
    assert fast.shape == reference.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    cosine = (fast * reference).sum(axis=1)
    # int8 weights move each vector a little; never far (per-tensor quantisation gave ~0.90)
    assert cosine.min() > 0.97, cosine
    assert cosine.mean() > 0.985, cosine


def test_a_text_gets_the_same_vector_whatever_it_is_embedded_with(onnx_embedder):
    """int8 activations are scaled per call: batching would tie a vector to its batch-mates."""
    together = np.array(onnx_embedder.embed_passages(TEXTS))
    alone = np.array([onnx_embedder.embed_passages([t])[0] for t in TEXTS])
    assert np.array_equal(together, alone)


def test_onnx_token_counts_equal_the_reference(onnx_embedder, bundled_embedder):
    assert onnx_embedder.count_tokens(TEXTS) == bundled_embedder.count_tokens(TEXTS)
    assert onnx_embedder.max_tokens == bundled_embedder.max_tokens == 256
    assert onnx_embedder.dimension == bundled_embedder.dimension


def test_onnx_ranks_like_the_reference(onnx_embedder, bundled_embedder):
    passages = [p.read_text() for p in sorted(CORPUS.glob("*.md"))] + TEXTS
    queries = [
        "How much energy did the solar array produce?",
        "how do cells make energy",
        "retry a failed request",
    ]
    for query in queries:
        rankings = []
        for embedder in (onnx_embedder, bundled_embedder):
            scores = np.array(embedder.embed_passages(passages)) @ np.array(
                embedder.embed_query(query)
            )
            rankings.append(list(np.argsort(-scores)[:3]))
        assert rankings[0][0] == rankings[1][0], query
        assert len(set(rankings[0]) & set(rankings[1])) >= 2, query


def test_search_process_queries_with_the_ingest_vectors_and_never_imports_torch(
    tmp_path, corpus, ragchat_home
):
    result = ragchat("ingest", str(corpus))
    assert result.returncode == 0, result.stderr
    import chromadb

    stored = chromadb.PersistentClient(str(ragchat_home / "chroma")).get_collection("default")
    record = stored.get(limit=1, include=["embeddings", "documents", "metadatas"])
    headings = record["metadatas"][0]["headings"]
    text = f"{headings}\n{record['documents'][0]}" if headings else record["documents"][0]
    # A fresh process runs the real search command with a stored chunk's own text as the
    # query, then reports what it imported and the query vector it computed.
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import json, sys\n"
        "from ragchat import cli\n"
        "from ragchat.embedders import OnnxEmbedder\n"
        "vectors = []\n"
        "original = OnnxEmbedder.embed_query\n"
        "OnnxEmbedder.embed_query = lambda self, text: vectors.append(original(self, text)) or vectors[-1]\n"
        "try:\n"
        "    cli.main(['search', '--json', sys.argv[1]], standalone_mode=False)\n"
        "finally:\n"
        "    heavy = sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules)\n"
        "    print(json.dumps({'heavy': heavy, 'vector': vectors[0]}), file=sys.stderr)\n"
    )
    env = {**os.environ, "RAGCHAT_EMBEDDING_MODEL": "bundled"}
    run = subprocess.run(
        [sys.executable, str(probe), text], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stderr.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert json.loads(run.stdout)["results"][0]["text"] == record["documents"][0]
    # all-MiniLM has no query/passage prefixes: the query vector of a chunk's text is the
    # vector the ingest process stored for it
    query, passage = np.array(report["vector"]), np.array(record["embeddings"][0])
    assert 1 - float(query @ passage) < 1e-3


def test_a_collection_keeps_the_backend_that_built_it(corpus):
    assert ragchat("ingest", str(corpus), "--embedding-backend", "torch").returncode == 0
    status = ragchat("status", "--json")
    from ragchat.app import App
    from ragchat.config import load_settings_explained, resolve_home

    app = App(resolve_home(), load_settings_explained(resolve_home())[0])
    assert app.manifest.collection("default").backend == "torch"
    assert app.embedder.backend == "torch"  # the default (onnx) does not override the collection
    assert status.returncode == 0
    found = ragchat("search", "solar array energy 2024", "--json")
    assert found.returncode == 0, found.stderr
    # --reindex rebuilds on the configured backend (onnx by default)
    assert ragchat("ingest", str(corpus), "--reindex").returncode == 0
    assert (
        App(resolve_home(), load_settings_explained(resolve_home())[0])
        .manifest.collection("default")
        .backend
        == "onnx"
    )


def test_export_is_redone_when_the_model_folder_changes(tmp_path):
    source = bundled_embedding_model()
    assert source is not None
    local = tmp_path / "my-model"
    shutil.copytree(source, local)
    cache = tmp_path / "cache"
    notices: list[str] = []
    first = make_embedder(str(local), "onnx", cache, notices.append)
    vector = first.embed_query("tides")
    assert len(notices) == 1 and len(vector) == 384
    again = make_embedder(str(local), "onnx", cache, notices.append)
    again.embed_query("tides")
    assert len(notices) == 1  # reused
    config = local / "config_sentence_transformers.json"
    config.write_text(config.read_text() + "\n")
    changed = make_embedder(str(local), "onnx", cache, notices.append)
    changed.embed_query("tides")
    assert len(notices) == 2  # the source changed: exported again


def test_a_damaged_export_is_a_one_line_error(tmp_path, corpus):
    cache = tmp_path / "cache"
    env = {"RAGCHAT_CACHE": str(cache)}
    assert ragchat("ingest", str(corpus), env=env).returncode == 0
    (model,) = cache.glob("models/*/model_int8.onnx")
    model.write_bytes(b"not an onnx file")
    result = ragchat("search", "solar", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Cannot load the int8 embedding model")
    assert "delete that folder" in result.stderr and "Traceback" not in result.stderr


def test_a_model_that_cannot_be_exported_names_the_torch_backend(tmp_path):
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    embedder = make_embedder(str(broken), "onnx", tmp_path / "cache")
    from ragchat.errors import ModelNotAvailable

    with pytest.raises(ModelNotAvailable, match="--embedding-backend torch"):
        embedder.embed_query("tides")


def test_the_optimized_graph_is_saved_once_and_gives_the_same_vectors(onnx_embedder, tmp_path):
    """A cold query loads the graph ONNX Runtime optimized on first use (issue 17.4) and gets
    the very vectors the model gave before (ONNX Runtime's default: optimized at each load)."""
    import onnxruntime

    onnx_embedder.info  # noqa: B018 - exported
    cache = tmp_path / "models"
    shutil.copytree(onnx_embedder.folder, cache / onnx_embedder.folder.name)
    for saved in cache.glob("*/model_int8.opt-*.onnx"):
        saved.unlink()
    before = OnnxEmbedder("bundled", cache)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    model = before.folder / "model_int8.onnx"
    before.__dict__["runtime"] = (
        onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"]),
        before.info["inputs"],
    )
    reference = before.embed_passages(TEXTS)
    first = OnnxEmbedder("bundled", cache)
    assert first.embed_passages(TEXTS) == reference
    (saved,) = before.folder.glob("model_int8.opt-*.onnx")
    assert not list(before.folder.glob("*.part"))
    stamp = saved.stat().st_mtime_ns
    again = OnnxEmbedder("bundled", cache)
    assert again.embed_passages(TEXTS) == reference
    assert saved.stat().st_mtime_ns == stamp  # loaded as it was, not optimized again
    saved.write_bytes(b"damaged")  # a damaged copy is made again, not an error
    assert OnnxEmbedder("bundled", cache).embed_passages(TEXTS) == reference
    (remade,) = before.folder.glob("model_int8.opt-*.onnx")
    assert remade.stat().st_size > 1000
