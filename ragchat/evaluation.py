"""Measuring retrieval: standard metrics on BEIR data, and recall on a user's own gold set.

BEIR (corpus.jsonl, queries.jsonl, a qrels TSV): nDCG@10, Recall@10, Recall@100 and MRR@10
per mode. A document split into several chunks scores as its best chunk, so the figures are
comparable with published whole-document results.

Gold set (JSONL, one question a line): ``{"question": ..., "sources": [path, ...]}`` scores
recall@k of the source files; ``{"question": ..., "spans": [{"path", "start", "end"}]}`` scores
the share of gold characters covered by the top-k chunks (recall) and the share of retrieved
characters that are gold (precision).

``run_beir`` and ``run_gold`` are what ``ragchat eval`` runs (and bench/quality.py reuses): a
BEIR corpus is ingested under the store's write lock into the App's collection, every query
is ranked once per component, and a temporary collection is dropped at the end.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragchat.config import MODES
from ragchat.errors import ConfigError
from ragchat.ids import document_id, parse_chunk_id
from ragchat.ingest import IngestReport, Progress, TextSource
from ragchat.retrieval import default_fusion, fuse
from ragchat.store import Hit
from ragchat.text import is_under, plural

if TYPE_CHECKING:
    from ragchat.app import App

# Progress bars the caller may show: one while a corpus is ingested, one per query scored
# (given the number of queries, it yields the function that advances it by one).
Ingesting = AbstractContextManager[Progress | None]
Querying = Callable[[int], AbstractContextManager[Callable[[], None] | None]]

BEIR_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
CHUNK_DEPTH = 300  # chunks retrieved per query, enough for 100 distinct documents
GOLD_KS = (5, 10)  # gold sets are scored on the top 5 and top 10 chunks

# metric functions: ``ranked`` is a list of document ids, best first; ``relevant`` maps
# relevant ids to their graded relevance (> 0).


def ndcg_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    gains = [relevant.get(doc, 0) for doc in ranked[:k]]
    dcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(gains))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    wanted = {doc for doc, gain in relevant.items() if gain > 0}
    return len(wanted.intersection(ranked[:k])) / len(wanted) if wanted else 0.0


def mrr_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    for rank, doc in enumerate(ranked[:k], start=1):
        if relevant.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def document_ranking(hits: Sequence[Hit], n: int) -> list[str]:
    """Documents in the order of their best chunk."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(hit.path, None)
        if len(seen) == n:
            break
    return list(seen)


def beir_scores(ranked: Sequence[str], relevant: dict[str, int]) -> dict[str, float]:
    return {
        "ndcg@10": ndcg_at_k(ranked, relevant, 10),
        "recall@10": recall_at_k(ranked, relevant, 10),
        "recall@100": recall_at_k(ranked, relevant, 100),
        "mrr@10": mrr_at_k(ranked, relevant, 10),
    }


def mean(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}


@dataclass
class BeirData:
    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str

    def sources(self) -> list[TextSource]:
        return [TextSource(doc_id, text, title) for doc_id, (title, text) in self.corpus.items()]


def _find(folder: Path, names: Iterable[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def load_beir(folder: Path, split: str | None = None) -> BeirData:
    """A BEIR folder: corpus.jsonl, queries[-SPLIT].jsonl, qrels/SPLIT.tsv or qrels-SPLIT.tsv."""
    corpus_path = folder / "corpus.jsonl"
    if not corpus_path.is_file():
        raise ConfigError(
            f"{folder} has no corpus.jsonl; give a BEIR-format folder or a gold-set .jsonl file."
        )
    splits = sorted(
        {p.stem.removeprefix("qrels-") for p in folder.glob("qrels-*.tsv")}
        | {p.stem for p in (folder / "qrels").glob("*.tsv")}
    )
    if split is None:
        split = "test" if "test" in splits else (splits[0] if len(splits) == 1 else None)
        if split is None:
            raise ConfigError(
                f"{folder} has qrels for {', '.join(splits) or 'no split'}; choose one with --split."
            )
    qrels_path = _find(folder, [f"qrels-{split}.tsv", f"qrels/{split}.tsv"])
    queries_path = _find(folder, [f"queries-{split}.jsonl", "queries.jsonl"])
    if qrels_path is None or queries_path is None:
        raise ConfigError(
            f"{folder} has no qrels or queries for split {split!r} (splits: {', '.join(splits)})."
        )
    corpus = {}
    for row in _jsonl(corpus_path):
        corpus[str(row["_id"])] = (row.get("title") or "", row.get("text") or "")
    queries = {str(row["_id"]): row["text"] for row in _jsonl(queries_path)}
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    qrels = {q: docs for q, docs in qrels.items() if q in queries}
    return BeirData(corpus, queries, qrels, split)


def _jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(
                        f"{path}:{number} is not valid JSON ({exc.msg}); fix that line."
                    ) from exc


Rank = Callable[[str], dict[str, list[Hit]]]  # query -> hits per mode


def evaluate_beir(
    data: BeirData, rank: Rank, progress: Callable[[], None] | None = None
) -> dict[str, dict[str, float]]:
    """Mean BEIR metrics per mode over the queries that have judgements."""
    rows: dict[str, list[dict[str, float]]] = {}
    for query_id, relevant in data.qrels.items():
        for mode, hits in rank(data.queries[query_id]).items():
            rows.setdefault(mode, []).append(beir_scores(document_ranking(hits, 100), relevant))
        if progress:
            progress()
    return {mode: mean(scores) for mode, scores in rows.items()}


def all_modes(
    dense: Callable[[str, int], list[Hit]],
    lexical: Callable[[str, int], list[Hit]],
    depth: int = CHUNK_DEPTH,
    modes: Sequence[str] = MODES,
) -> Rank:
    """Rank a query once per component and fuse, as the hybrid retriever does."""

    def rank(query: str) -> dict[str, list[Hit]]:
        dense_hits = dense(query, depth) if {"dense", "hybrid"} & set(modes) else []
        lexical_hits = lexical(query, depth) if {"lexical", "hybrid"} & set(modes) else []
        result = {"dense": dense_hits, "lexical": lexical_hits}
        if "hybrid" in modes:
            result["hybrid"] = fuse(dense_hits, lexical_hits, default_fusion)
        return {m: result[m] for m in modes}

    return rank


# gold sets


@dataclass
class GoldQuestion:
    question: str
    sources: list[str] = field(default_factory=list)
    spans: list[tuple[str, int, int]] = field(default_factory=list)  # (path, start, end)


def load_gold(path: Path) -> list[GoldQuestion]:
    """Questions with gold sources or spans; relative paths are relative to the gold file."""
    base = path.resolve().parent

    def resolve(p: str) -> str:
        return str((base / p).resolve()) if not Path(p).is_absolute() else p

    questions = []
    for number, row in enumerate(_jsonl(path), start=1):
        if "question" not in row or not (row.get("sources") or row.get("spans")):
            raise ConfigError(f'{path}:{number} needs "question" and "sources" or "spans".')
        questions.append(
            GoldQuestion(
                row["question"],
                [resolve(p) for p in row.get("sources", [])],
                [
                    (resolve(s["path"]), int(s["start"]), int(s["end"]))
                    for s in row.get("spans", [])
                ],
            )
        )
    return questions


def source_recall(hits: Sequence[Hit], sources: Sequence[str], k: int) -> float:
    found = {h.path for h in hits[:k]}
    hit = [s for s in sources if any(is_under(p, s) for p in found)]
    return len(hit) / len(sources)


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> int:
    return sum(max(0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


def span_scores(
    hits: Sequence[Hit], spans: Sequence[tuple[str, int, int]], k: int
) -> tuple[float, float]:
    """(recall, precision) in characters of the top-k chunks against the gold spans."""
    paths = {p for p, _, _ in spans} | {h.path for h in hits[:k]}
    gold_total = retrieved_total = common = 0
    for path in paths:
        gold = _merge((s, e) for p, s, e in spans if p == path)
        got = _merge((h.start, h.end) for h in hits[:k] if h.path == path)
        gold_total += sum(e - s for s, e in gold)
        retrieved_total += sum(e - s for s, e in got)
        common += _overlap(gold, got)
    return (
        common / gold_total if gold_total else 0.0,
        common / retrieved_total if retrieved_total else 0.0,
    )


def evaluate_gold(
    questions: Sequence[GoldQuestion],
    rank: Rank,
    ks: Sequence[int] = GOLD_KS,
    progress: Callable[[], None] | None = None,
) -> dict[str, dict[str, float]]:
    rows: dict[str, list[dict[str, float]]] = {}
    for question in questions:
        for mode, hits in rank(question.question).items():
            row: dict[str, float] = {}
            for k in ks:
                if question.sources:
                    row[f"source_recall@{k}"] = source_recall(hits, question.sources, k)
                if question.spans:
                    recall, precision = span_scores(hits, question.spans, k)
                    row[f"span_recall@{k}"] = recall
                    row[f"span_precision@{k}"] = precision
            rows.setdefault(mode, []).append(row)
        if progress:
            progress()
    return {mode: _mean_present(r) for mode, r in rows.items()}


def _mean_present(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    keys = dict.fromkeys(k for r in rows for k in r)
    return {k: sum(r[k] for r in rows if k in r) / sum(1 for r in rows if k in r) for k in keys}


# running an evaluation (``ragchat eval``, bench/quality.py)


def temporary_collection() -> str:
    """A collection name for a corpus that is dropped once scored."""
    return f"eval-tmp-{os.getpid()}"


def ranker(app: App, modes: Sequence[str] = (), hydrate: int = 0) -> Rank:
    """query -> hits per mode over the App's collection, each component retrieved once; the
    first ``hydrate`` hits of each mode come with their text and spans (gold sets need them)."""
    dense = app.retriever("dense")
    lexical = app.retriever("lexical")
    collection = app.collection
    paths = {document_id(p): p for p in collection.files()}

    def dense_with_paths(query: str, k: int) -> list[Hit]:
        hits = dense.candidates(query, k)
        for hit in hits:
            hit.path = paths.get(parse_chunk_id(hit.id)[0], "")
        return hits

    rank = all_modes(dense_with_paths, lexical.candidates, modes=modes or MODES)
    if not hydrate:
        return rank

    def hydrated(query: str) -> dict[str, list[Hit]]:
        return {
            mode: collection.hydrate(hits[:hydrate]) + hits[hydrate:]
            for mode, hits in rank(query).items()
        }

    return hydrated


def ingest_beir(app: App, data: BeirData, progress: Progress | None = None) -> IngestReport:
    """The corpus into the App's collection, under the store's write lock; a collection that
    already holds it only gets what changed."""
    with app.writing():
        return app.ingestor(progress).sync(data.sources(), lambda key: True)


def _querying(
    querying: Querying | None, total: int
) -> AbstractContextManager[Callable[[], None] | None]:
    return querying(total) if querying else nullcontext(None)


def run_beir(
    app: App,
    folder: Path,
    split: str | None = None,
    modes: Sequence[str] = (),
    keep: bool = False,
    ingesting: Ingesting | None = None,
    querying: Querying | None = None,
) -> dict[str, Any]:
    """nDCG@10, Recall@10/100 and MRR@10 per mode of the BEIR data in ``folder``: its corpus
    is ingested into the App's collection, which is dropped afterwards unless ``keep``."""
    data = load_beir(folder, split)
    try:
        with ingesting or nullcontext(None) as progress:
            report = ingest_beir(app, data, progress)
        with _querying(querying, len(data.qrels)) as advance:
            figures = evaluate_beir(data, ranker(app, modes), advance)
    finally:
        if not keep:
            app.drop_collection()
    return {
        "title": f"{folder.name} ({data.split}: {plural(len(data.qrels), 'query', 'queries')}, {plural(len(data.corpus), 'document')})",
        "data": str(folder),
        "split": data.split,
        "queries": len(data.qrels),
        "documents": len(data.corpus),
        "chunks": app.collection.counts()[1] if keep else report.chunks_embedded,
        "embedder": app.embedder.id,
        "backend": app.embedder.backend,
        "modes": figures,
    }


def run_gold(
    app: App, path: Path, modes: Sequence[str] = (), querying: Querying | None = None
) -> dict[str, Any]:
    """Source and span recall per mode of the gold set at ``path`` against the App's
    collection."""
    questions = load_gold(path)
    with _querying(querying, len(questions)) as advance:
        figures = evaluate_gold(
            questions, ranker(app, modes, hydrate=GOLD_KS[-1]), GOLD_KS, progress=advance
        )
    return {
        "title": f"{path.name} ({plural(len(questions), 'question')}, collection {app.collection.name!r})",
        "data": str(path),
        "questions": len(questions),
        "collection": app.collection.name,
        "embedder": app.embedder.id,
        "modes": figures,
    }
