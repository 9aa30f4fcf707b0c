"""Hybrid retrieval latency on a large collection (for bench/speed.py).

    python bench/latency.py WORK SIZE SOURCE_HOME

Builds (once) under WORK a ragchat store of SIZE chunks from the real chunks and vectors of
SOURCE_HOME's collection "default": repeated with small random changes to the vectors (and a
replica tag in the text) until there are SIZE. Then, in a fresh process, times hybrid
``retrieve(query, 10)`` for SciFact queries after a warm-up, and a plain Chroma top-10 query of
the same vectors. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUERY_FILE = ROOT.parent / "shared" / "eval" / "scifact" / "queries-train.jsonl"
QUERIES = 200


def build(work: Path, size: int, source_home: Path) -> None:
    import chromadb
    import numpy as np
    from chromadb.config import Settings

    from ragchat.lexical import LexicalIndex
    from ragchat.manifest import Manifest
    from ragchat.store import VectorStore

    client = chromadb.PersistentClient(
        str(source_home / "chroma"), settings=Settings(anonymized_telemetry=False)
    )
    source = client.get_collection("default")
    data = source.get(include=["embeddings", "documents", "metadatas"])
    record = Manifest(source_home / "manifest.sqlite3").collection("default")
    assert record is not None
    manifest = Manifest(work / "manifest.sqlite3")
    manifest.add_collection(record)
    store = VectorStore(work / "chroma")
    store.create("default", dict(source.metadata or {}))
    lexical = LexicalIndex(manifest, "default")
    vectors = np.asarray(data["embeddings"], dtype=np.float32)
    random = np.random.default_rng(0)
    made, replica = 0, 0
    while made < size:
        take = min(len(vectors), size - made)
        noisy = vectors[:take] + (random.normal(0, 0.01, vectors[:take].shape) if replica else 0)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        ids = [f"r{replica}x{chunk_id}" for chunk_id in data["ids"][:take]]
        texts = [
            f"{text} [replica {replica}]" if replica else text for text in data["documents"][:take]
        ]
        metadatas = [
            {**meta, "path": f"{meta['path']}#r{replica}"} for meta in data["metadatas"][:take]
        ]
        store.upsert("default", ids, noisy.tolist(), texts, metadatas)
        by_path: dict[str, tuple[list[str], list[str]]] = {}
        for chunk_id, text, meta in zip(ids, texts, metadatas, strict=True):
            heading = meta.get("headings") or ""
            entry = by_path.setdefault(meta["path"], ([], []))
            entry[0].append(chunk_id)
            entry[1].append(f"{heading}\n{text}" if heading else text)
        for path, (chunk_ids, chunk_texts) in by_path.items():
            lexical.add(path, chunk_ids, chunk_texts)  # new paths: nothing to replace
        lexical.commit()
        made += take
        replica += 1
        print(f"built {made}/{size}", file=sys.stderr, flush=True)
    (work / "built").write_text(str(size))


def measure(work: Path) -> dict:
    from ragchat.app import App
    from ragchat.config import Settings
    from ragchat.retrieval import HYBRID_DEPTH

    app = App(work, Settings(embedding_model="bundled"))
    retriever = app.retriever("hybrid")
    embedder = app.embedder
    queries = [json.loads(line)["text"] for line in QUERY_FILE.open()][: QUERIES + 10]
    for query in queries[:10]:  # warm: model loaded, index pages in memory
        retriever.retrieve(query, 10)
    collection = app.store.client.get_collection("default")
    times: dict[str, list[float]] = {"hybrid": [], "embed": [], "lexical": [], "chroma": []}
    lexical = app.retriever("lexical")
    for query in queries[10:]:
        start = time.perf_counter()
        hits = retriever.retrieve(query, 10)
        times["hybrid"].append((time.perf_counter() - start) * 1000)
        assert hits
        start = time.perf_counter()
        lexical.candidates(query, HYBRID_DEPTH)  # the BM25 half of the hybrid, as deep
        times["lexical"].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        vector = embedder.embed_query(query)
        times["embed"].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        collection.query(query_embeddings=[vector], n_results=10)
        times["chroma"].append((time.perf_counter() - start) * 1000)

    def quantile(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q * 100) - 1]

    return {
        "chunks": app.store.count("default"),
        "queries": len(times["hybrid"]),
        "p50_ms": {k: statistics.median(v) for k, v in times.items()},
        "p90_ms": {k: quantile(v, 0.9) for k, v in times.items()},
        "max_ms": {k: max(v) for k, v in times.items()},
    }


def main() -> None:
    work, size, source_home = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    marker = work / "built"
    if not (marker.exists() and marker.read_text() == str(size)):
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        build(work, size, source_home)
        os.execv(sys.executable, [sys.executable, *sys.argv])  # measure in a fresh process
    print(json.dumps(measure(work)))


if __name__ == "__main__":
    main()
