"""Measuring retrieval and answers: standard metrics on BEIR data, recall on a user's own
gold set, and the answers themselves when the gold set has them.

BEIR (corpus.jsonl, queries.jsonl, a qrels TSV): nDCG@10, Recall@10, Recall@100 and MRR@10
per mode. A document split into several chunks scores as its best chunk, so the figures are
comparable with published whole-document results.

Gold set (JSONL, one question a line): ``{"question": ..., "sources": [path, ...]}`` scores
recall@k of the source files; ``{"question": ..., "spans": [{"path", "start", "end"}]}`` scores
the share of gold characters covered by the top-k chunks (recall) and the share of retrieved
characters that are gold (precision).

Answers (a gold line with ``"answer"``, or ``"unanswerable": true``): each question is asked as
``ragchat ask`` asks it, with the configured LLM, and scored: correct (every number of the gold
answer, years aside, within 2.5% in the answer; for a gold answer without numbers, token F1 of
at least 0.5 after normalising), refused (the relevance floor said "not found", or the model
said the documents do not say), citations valid (cited [n] exist, quotations verbatim, numbers
found in the excerpts) and evidence found (a gold source among the excerpts the LLM was given).

``run_beir``, ``run_gold`` and ``run_answers`` are what ``ragchat eval`` runs (and
bench/quality.py reuses): a BEIR corpus is ingested under the store's write lock into the
App's collection, every query is ranked once per component, and a temporary collection is
dropped at the end.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragchat.citations import declines, numbers
from ragchat.collection import Collection
from ragchat.config import MODES
from ragchat.document_vectors import DOCS_SUFFIX
from ragchat.errors import ConfigError
from ragchat.ids import document_id, parse_chunk_id
from ragchat.ingest import IngestReport, Progress, TextSource
from ragchat.lexical import STOPWORDS
from ragchat.retrieval import default_fusion, fuse, name_stage, one_per_page
from ragchat.store import Hit
from ragchat.text import is_under, plural

if TYPE_CHECKING:
    from ragchat.app import App
    from ragchat.engine import Answer, Engine

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
    stage: Callable[[list[Hit], str], list[Hit]] | None = None,
) -> Rank:
    """Rank a query once per component and fuse, then ``stage`` (the document stage over
    file names), as the hybrid retriever does."""

    def rank(query: str) -> dict[str, list[Hit]]:
        dense_hits = dense(query, depth) if {"dense", "hybrid"} & set(modes) else []
        lexical_hits = lexical(query, depth) if {"lexical", "hybrid"} & set(modes) else []
        result = {"dense": dense_hits, "lexical": lexical_hits}
        if "hybrid" in modes:
            hybrid = fuse(dense_hits, lexical_hits, default_fusion)
            result["hybrid"] = stage(hybrid, query) if stage else hybrid
        return {m: result[m] for m in modes}

    return rank


# gold sets


@dataclass
class GoldQuestion:
    question: str
    sources: list[str] = field(default_factory=list)
    spans: list[tuple[str, int, int]] = field(default_factory=list)  # (path, start, end)
    answer: str = ""  # the gold answer, when answers are scored
    unanswerable: bool = False  # the documents do not answer it: it should be refused

    @property
    def scores_answer(self) -> bool:
        return bool(self.answer) or self.unanswerable


def load_gold(path: Path) -> list[GoldQuestion]:
    """Questions with gold sources, spans or answers; relative paths are relative to the
    gold file."""
    base = path.resolve().parent

    def resolve(p: str) -> str:
        return str((base / p).resolve()) if not Path(p).is_absolute() else p

    questions = []
    for number, row in enumerate(_jsonl(path), start=1):
        gold = ("sources", "spans", "answer", "unanswerable")
        if "question" not in row or not any(row.get(key) for key in gold):
            raise ConfigError(
                f'{path}:{number} needs "question" and "sources", "spans", "answer" or'
                ' "unanswerable": true.'
            )
        questions.append(
            GoldQuestion(
                row["question"],
                [resolve(p) for p in row.get("sources", [])],
                [
                    (resolve(s["path"]), int(s["start"]), int(s["end"]))
                    for s in row.get("spans", [])
                ],
                str(row.get("answer") or ""),
                bool(row.get("unanswerable")),
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


# answers

NUMBER_TOLERANCE = 0.025  # relative: 1,577 for a gold 1,560 is right, 1,600 is not
F1_THRESHOLD = 0.5  # token overlap that counts as right for a gold answer without numbers
_TOKENS = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_MARKERS = re.compile(r"\[\d{1,3}\]")


def _value(number: str) -> float:
    return float(number.replace(",", ""))


def _year(number: str) -> bool:
    return number.isdigit() and len(number) == 4 and 1900 <= int(number) <= 2100


def gold_numbers(gold: str) -> list[float]:
    """The numbers a right answer must give: those of the gold answer, years left out
    unless they are all it has."""
    found = numbers(gold)
    kept = [n for n in found if not _year(n)] or found
    return [_value(n) for n in kept]


def close(gold: float, value: float, tolerance: float = NUMBER_TOLERANCE) -> bool:
    """Within ``tolerance`` relative, also after a change of scale by thousands (a table in
    millions against an answer in billions)."""
    for scale in (1.0, 1e3, 1e-3, 1e6, 1e-6):
        if abs(value * scale - gold) <= tolerance * abs(gold) + 1e-12:
            return True
    return False


def normal_tokens(text: str) -> list[str]:
    """Lower case, without citation markers, punctuation and common English words (so "at
    six in the morning" and "at 7 in the evening" share nothing)."""
    text = _MARKERS.sub(" ", text.lower()).replace(",", "")
    return [t for t in _TOKENS.findall(text) if t not in STOPWORDS]


def token_f1(gold: str, answer: str) -> float:
    """SQuAD's token overlap F1, of the normalised tokens (``normal_tokens``)."""
    expected, got = normal_tokens(gold), normal_tokens(answer)
    if not expected or not got:
        return float(expected == got)
    common = sum(min(expected.count(t), got.count(t)) for t in set(expected))
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def correct(gold: str, answer: str) -> tuple[bool, str, float]:
    """(right?, how it was judged: "numbers" or "tokens", token F1)."""
    f1 = token_f1(gold, answer)
    wanted = gold_numbers(gold)
    if wanted:
        given = [_value(n) for n in numbers(answer)]
        return all(any(close(w, g) for g in given) for w in wanted), "numbers", f1
    return f1 >= F1_THRESHOLD, "tokens", f1


def score_answer(question: GoldQuestion, answer: Answer, seconds: float) -> dict[str, Any]:
    """One question's row: the answer and how it scored."""
    refused = not answer.found or declines(answer.text)
    row: dict[str, Any] = {
        "question": question.question,
        "gold": question.answer,
        "unanswerable": question.unanswerable,
        "status": answer.status,
        "answer": answer.text if answer.found else "",
        "refused": refused,
        "support": answer.support.to_dict() if answer.support is not None else None,
        "sources": [h.location for h in answer.sources],
        "seconds": round(seconds, 3),
    }
    if not question.unanswerable:
        right, method, f1 = (
            correct(question.answer, answer.text) if answer.found else (False, "", 0.0)
        )
        row.update(correct=right and not refused, judged_by=method, f1=round(f1, 4))
    if answer.found:
        review = answer.review
        row.update(
            citations_valid=review.citations_valid,
            uncited=review.uncited,
            citation_problems=review.problems,
        )
    if question.sources:
        used = {h.path for h in answer.sources}
        row["evidence"] = any(is_under(p, s) for s in question.sources for p in used)
    return row


def summarise_answers(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The figures over all questions (each share over the questions it applies to)."""

    def share(key: str, among: Sequence[dict[str, Any]]) -> float | None:
        values = [r[key] for r in among if r.get(key) is not None]
        return sum(map(bool, values)) / len(values) if values else None

    answerable = [r for r in rows if not r["unanswerable"]]
    unanswerable = [r for r in rows if r["unanswerable"]]
    answered = [r for r in rows if "citations_valid" in r]
    f1 = [r["f1"] for r in answerable]
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "correct": share("correct", answerable),
        "mean_f1": sum(f1) / len(f1) if f1 else None,
        "refusal_rate": share("refused", unanswerable),
        "false_refusals": share("refused", answerable),
        "citations_valid": share("citations_valid", answered),
        "uncited": share("uncited", answered),
        "evidence_recall": share("evidence", answerable),
        "seconds_per_question": sum(r["seconds"] for r in rows) / len(rows) if rows else None,
    }


def evaluate_answers(
    questions: Sequence[GoldQuestion], engine: Engine, progress: Callable[[], None] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ask every question (one at a time, no conversation) and score the answers."""
    rows = []
    for question in questions:
        started = time.perf_counter()
        answer = engine.ask(question.question)
        for _ in answer.stream():
            pass
        rows.append(score_answer(question, answer, time.perf_counter() - started))
        if progress:
            progress()
    return summarise_answers(rows), rows


def plumbing_note(llm_id: str) -> str | None:
    """Said with the figures when the LLM is the bundled one."""
    from ragchat.bundled import BUNDLED_LLM_ID

    if llm_id != BUNDLED_LLM_ID:
        return None
    return (
        "The LLM is the bundled SmolLM2-135M: these figures measure the plumbing (retrieval,"
        " refusals, citation checks), not how well a real model answers; use --model for that."
    )


# running an evaluation (``ragchat eval``, bench/quality.py)


TEMPORARY = re.compile(r"eval-tmp-(\d+)")


def temporary_collection() -> str:
    """A collection name for a corpus that is dropped once scored."""
    return f"eval-tmp-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def drop_abandoned(app: App) -> list[str]:
    """Drop the temporary collections of evaluations whose process is gone (killed before
    it could drop its own): their names say their PID. Returns the names dropped."""
    names = {c.name for c in app.collections()}
    names.update(n for n in app.store.collection_names() if not n.endswith(DOCS_SUFFIX))
    abandoned = sorted(
        n for n in names if (m := TEMPORARY.fullmatch(n)) and not _alive(int(m.group(1)))
    )
    if abandoned:
        with app.writing():
            for name in abandoned:
                Collection(name, app.store, app.manifest).drop()
    return abandoned


class _Stopped(Exception):
    """SIGTERM or SIGHUP arrived during an evaluation: unwind, dropping its collection."""


@contextmanager
def _dropped_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP end the process without running ``finally``: make them unwind it
    (then exit as they would have, 128 + the signal)."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise _Stopped(signum)

    wanted = (signal.SIGTERM, signal.SIGHUP)
    try:
        before = {s: signal.signal(s, stop) for s in wanted}
    except ValueError:  # not the main thread: leave the signals alone
        yield
        return
    try:
        yield
    except _Stopped as stopped:
        raise SystemExit(128 + stopped.args[0]) from None
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def ranker(app: App, modes: Sequence[str] = (), hydrate: int = 0) -> Rank:
    """query -> hits per mode over the App's collection, each component retrieved once,
    ranked as ``ragchat search`` ranks them; the first ``hydrate`` results of each mode come
    with their text and spans, one per page (gold sets need them). Without text, pages are
    not merged: merging never changes the order in which documents first appear, which is
    all the BEIR metrics read."""
    dense = app.retriever("dense")
    lexical = app.retriever("lexical")
    collection = app.collection
    paths = {document_id(p): p for p in collection.files()}

    def dense_with_paths(query: str, k: int) -> list[Hit]:
        hits = dense.candidates(query, k)
        for hit in hits:
            hit.path = paths.get(parse_chunk_id(hit.id)[0], "")
        return hits

    rank = all_modes(
        dense_with_paths,
        lexical.candidates,
        modes=modes or MODES,
        stage=lambda hits, query: name_stage(hits, collection, query),
    )
    if not hydrate:
        return rank

    def hydrated(query: str) -> dict[str, list[Hit]]:
        return {mode: one_per_page(collection, hits, hydrate) for mode, hits in rank(query).items()}

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
    drop_abandoned(app)
    with nullcontext() if keep else _dropped_on_signals():
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
    collection; answer scores (``run_answers``) when the set has answers."""
    questions = load_gold(path)
    if any(q.scores_answer for q in questions):
        return run_answers(app, path, questions, querying)
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


def run_answers(
    app: App,
    path: Path,
    questions: Sequence[GoldQuestion] | None = None,
    querying: Querying | None = None,
) -> dict[str, Any]:
    """Answer scores of the gold set at ``path`` (its questions with an answer or marked
    unanswerable), asked of the App's collection with its LLM."""
    questions = [q for q in (questions or load_gold(path)) if q.scores_answer]
    engine = app.engine()
    with _querying(querying, len(questions)) as advance:
        summary, rows = evaluate_answers(questions, engine, advance)
    return {
        "title": f"{path.name} ({len(questions)} questions, collection {app.collection.name!r},"
        f" LLM {app.llm.id})",
        "data": str(path),
        "questions": len(questions),
        "collection": app.collection.name,
        "embedder": app.embedder.id,
        "llm": app.llm.id,
        "note": plumbing_note(app.llm.id),
        "answers": summary,
        "per_question": rows,
    }
