"""Hybrid retrieval latency on a large collection (for bench/speed.py).

    python bench/latency.py WORK SIZE SOURCE_HOME [SOURCE_COLLECTION]

Builds (once) under WORK a ragchat store of SIZE chunks from the real chunks and vectors of
SOURCE_HOME's collection (default "default"): repeated with small random changes to the
vectors (and a replica tag in the text) until there are SIZE. Each replica of a document is a
file named after the first words of its title (``r3/zebra-stripes-confuse-4983.txt``), so the
document stage over file names does its whole work for the many questions that share a word
with a name. Then, in a fresh process, times hybrid ``retrieve(query, 10)`` for SciFact
queries after a warm-up (also without the document stage, without page merging, and with 600
candidates a ranking), and a plain Chroma top-10 query of the same vectors. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUERY_FILE = ROOT.parent / "shared" / "eval" / "scifact" / "queries-train.jsonl"
QUERIES = 200


def replica_path(path: str, headings: str, replica: int) -> str:
    """A file name of the first words of the document's title, in a folder per replica."""
    words = re.findall(r"[a-z0-9]+", headings.lower())[:4]
    return f"/bench/r{replica}/{'-'.join(words)}-{Path(path).name}.txt"


def build(work: Path, size: int, source_home: Path, source_name: str) -> None:
    import chromadb
    import numpy as np
    from chromadb.config import Settings

    from ragchat.ids import chunk_id, parse_chunk_id
    from ragchat.lexical import LexicalIndex
    from ragchat.manifest import FileRecord, Manifest
    from ragchat.store import VectorStore

    client = chromadb.PersistentClient(
        str(source_home / "chroma"), settings=Settings(anonymized_telemetry=False)
    )
    source = client.get_collection(source_name)
    data = source.get(include=["embeddings", "documents", "metadatas"])
    found = Manifest(source_home / "manifest.sqlite3").collection(source_name)
    assert found is not None
    record = replace(found, name="default")
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
        metadatas = [
            {**meta, "path": replica_path(meta["path"], meta.get("headings") or "", replica)}
            for meta in data["metadatas"][:take]
        ]
        ids = [
            chunk_id(meta["path"], parse_chunk_id(original)[1])
            for original, meta in zip(data["ids"][:take], metadatas, strict=True)
        ]
        texts = [
            f"{text} [replica {replica}]" if replica else text for text in data["documents"][:take]
        ]
        store.upsert("default", ids, noisy.tolist(), texts, metadatas)
        by_path: dict[str, tuple[list[str], list[str]]] = {}
        for chunk, text, meta in zip(ids, texts, metadatas, strict=True):
            heading = meta.get("headings") or ""
            entry = by_path.setdefault(meta["path"], ([], []))
            entry[0].append(chunk)
            entry[1].append(f"{heading}\n{text}" if heading else text)
        for path, (chunk_ids, chunk_texts) in by_path.items():
            lexical.add(path, chunk_ids, chunk_texts)  # new paths: nothing to replace
        lexical.commit()
        with manifest.transaction():
            for path, (chunk_ids, _) in by_path.items():
                manifest.put_file("default", FileRecord(path, 0, 0, "", len(chunk_ids)))
        made += take
        replica += 1
        print(f"built {made}/{size}", file=sys.stderr, flush=True)
    (work / "built").write_text(f"{size} named")


def measure(work: Path) -> dict:
    from ragchat.app import App
    from ragchat.config import Settings
    from ragchat.retrieval import HYBRID_DEPTH, HybridRetriever, convex_fusion

    app = App(work, Settings(embedding_model="bundled"))
    retriever = app.retriever("hybrid")
    assert isinstance(retriever, HybridRetriever)
    dense, lexical_half = retriever.dense, retriever.lexical
    variants = {
        "hybrid_no_names": HybridRetriever(dense, lexical_half, name_weight=0.0),
        "hybrid_600": HybridRetriever(
            dense, lexical_half, lambda d, lex: convex_fusion(d, lex, 0.5, 600), depth=600
        ),
    }
    embedder = app.embedder
    queries = [json.loads(line)["text"] for line in QUERY_FILE.open()][: QUERIES + 10]
    for query in queries[:10]:  # warm: model loaded, index pages in memory
        retriever.retrieve(query, 10)
        for variant in variants.values():
            variant.retrieve(query, 10)
    collection = app.store.client.get_collection("default")
    times: dict[str, list[float]] = {
        "hybrid": [],
        **{name: [] for name in variants},
        "hybrid_chunks": [],
        "embed": [],
        "lexical": [],
        "names": [],
        "chroma": [],
    }
    lexical = app.retriever("lexical")
    named = 0
    for query in queries[10:]:
        start = time.perf_counter()
        hits = retriever.retrieve(query, 10)
        times["hybrid"].append((time.perf_counter() - start) * 1000)
        assert hits
        named += any("name" in h.scores for h in hits)
        for name, variant in variants.items():
            start = time.perf_counter()
            variant.retrieve(query, 10)
            times[name].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()  # chunks as they rank, several a page, not merged
        app.collection.hydrate(retriever.candidates(query, 10))
        times["hybrid_chunks"].append((time.perf_counter() - start) * 1000)
        candidates = retriever.candidates(query, HYBRID_DEPTH)
        documents = {h.id.rpartition("-")[0] for h in candidates}
        start = time.perf_counter()
        app.collection.lexical.name_scores(query, documents)
        times["names"].append((time.perf_counter() - start) * 1000)
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
        "files": app.collection.counts()[0],
        "queries": len(times["hybrid"]),
        "queries_with_a_name_match": named,
        "p50_ms": {k: statistics.median(v) for k, v in times.items()},
        "p90_ms": {k: quantile(v, 0.9) for k, v in times.items()},
        "max_ms": {k: max(v) for k, v in times.items()},
    }


def main() -> None:
    work, size, source_home = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    source_name = sys.argv[4] if len(sys.argv) > 4 else "default"
    marker = work / "built"
    if not (marker.exists() and marker.read_text() == f"{size} named"):
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        build(work, size, source_home, source_name)
        os.execv(sys.executable, [sys.executable, *sys.argv])  # measure in a fresh process
    print(json.dumps(measure(work)))


if __name__ == "__main__":
    main()
