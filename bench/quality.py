"""Reproduce every retrieval-quality figure of bench/RESULTS.md on ../shared/eval.

    .venv/bin/python bench/quality.py                      # ~60 min on 2 cores the first time
    .venv/bin/python bench/quality.py --quick              # SciFact only, default chunking
    .venv/bin/python bench/quality.py --only financebench  # one part (scifact, chunking, financebench)

With the bundled all-MiniLM-L6-v2:
1. SciFact train (809 claims, 5,183 abstracts): nDCG@10, Recall@10/100, MRR@10 for dense,
   lexical and hybrid, and for the fusion rules that were compared to choose the default.
2. The chunking set (472 questions, gold character spans over five corpora): for each chunk
   size tried, the share of gold characters covered by the top-5 chunks (recall) and the share
   of retrieved characters that are gold (precision).
3. FinanceBench dev (42 questions over one shared collection of their 24 filings): is a gold
   evidence page among the top 5 / 10 results (what ``ragchat search -k 5`` shows), is the
   gold filing among the top 5; then the same questions answered with the configured LLM
   (``--model``, else RAGCHAT_MODEL, else the bundled SmolLM2-135M, which measures the
   plumbing: retrieval into the prompt, refusals, citation checks; not answer quality).
Collections are kept under --work, so a second run only queries. Each part's tables replace
its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ragchat.app import App  # noqa: E402
from ragchat.config import Settings  # noqa: E402
from ragchat.evaluation import (  # noqa: E402
    GoldQuestion,
    beir_scores,
    document_ranking,
    evaluate_beir,
    evaluate_gold,
    ingest_beir,
    load_beir,
    mean,
    plumbing_note,
    ranker,
    score_answer,
    summarise_answers,
)
from ragchat.retrieval import (  # noqa: E402
    DenseRetriever,
    Fusion,
    HybridRetriever,
    LexicalRetriever,
    Retriever,
    convex_fusion,
    default_fusion,
    fuse,
    name_stage,
    reciprocal_rank_fusion,
)
from ragchat.store import Hit  # noqa: E402

CHUNK_SIZES = (64, 128, 200, 256)
SECTIONS = {  # part -> (heading of its section in bench/RESULTS.md, marker name)
    "quality": "Retrieval quality",
    "financebench": "FinanceBench dev: the right page among many filings, and answers",
}

# The default (convex, dense weight 0.5) and what it was chosen against.
FUSIONS: dict[str, Fusion] = {
    "convex w=0.5 (default)": default_fusion,
    "rrf k=60": reciprocal_rank_fusion,
    "rrf k=20": lambda dense, lexical: reciprocal_rank_fusion(dense, lexical, k=20),
    **{
        f"convex w={w}": (lambda dense, lexical, w=w: convex_fusion(dense, lexical, w))
        for w in (0.3, 0.4, 0.6, 0.7)
    },
}


def app_for(work: Path, collection: str, chunk_tokens: int | None = None) -> App:
    settings = Settings(
        embedding_model="bundled",
        collection=collection,
        **({"chunk_tokens": chunk_tokens} if chunk_tokens else {}),
    )
    return App(work, settings, explicit=frozenset({"embedding_model"}))


def scifact_app(
    eval_data: Path, work: Path, chunk_tokens: int, log: Callable[[str], None]
) -> tuple[App, Any]:
    data = load_beir(eval_data / "scifact", "train")
    app = app_for(work, f"scifact-c{chunk_tokens}", chunk_tokens)
    report = ingest_beir(app, data)
    log(
        f"scifact c{chunk_tokens}: {report.chunks_embedded} chunks embedded in {report.seconds:.0f}s"
    )
    return app, data


def scifact_chunk_sizes(
    eval_data: Path, work: Path, sizes: list[int], log: Callable[[str], None]
) -> list[str]:
    lines = [
        "SciFact train by chunk size (a document scores as its best chunk):",
        "",
        "| chunk tokens | chunks | dense nDCG@10 | lexical nDCG@10 | hybrid nDCG@10 | hybrid Recall@100 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for size in sizes:
        app, data = scifact_app(eval_data, work, size, log)
        figures = evaluate_beir(data, ranker(app))
        chunks = app.collection.counts()[1]
        lines.append(
            f"| {size} | {chunks} | {figures['dense']['ndcg@10']:.3f} | {figures['lexical']['ndcg@10']:.3f}"
            f" | {figures['hybrid']['ndcg@10']:.3f} | {figures['hybrid']['recall@100']:.3f} |"
        )
    return lines


def scifact(eval_data: Path, work: Path, log: Callable[[str], None]) -> list[str]:
    started = time.perf_counter()
    app, data = scifact_app(eval_data, work, Settings().chunk_tokens, log)
    rank = ranker(app, ("dense", "lexical"))
    rows: dict[str, list[dict[str, float]]] = {}
    for n, (query_id, relevant) in enumerate(data.qrels.items(), start=1):
        query = data.queries[query_id]
        rankings = rank(query)
        dense_hits, lexical_hits = rankings["dense"], rankings["lexical"]
        for name, fusion in FUSIONS.items():  # each with the document stage, as hybrid has
            hits = fuse(dense_hits, lexical_hits, fusion)
            rankings[f"hybrid, {name}"] = name_stage(hits, app.collection, query)
        for name, hits in rankings.items():
            rows.setdefault(name, []).append(beir_scores(document_ranking(hits, 100), relevant))
        if n % 200 == 0:
            log(f"scifact: {n}/{len(data.qrels)} queries")
    documents, chunks = app.collection.counts()
    lines = [
        f"SciFact **train** ({len(data.qrels)} queries, {documents} abstracts in {chunks} chunks),"
        f" bundled all-MiniLM-L6-v2, default chunking ({app.settings.chunk_tokens} tokens);"
        f" {time.perf_counter() - started:.0f}s.",
        "",
        "| ranking | nDCG@10 | Recall@10 | Recall@100 | MRR@10 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, scores in rows.items():
        figures = mean(scores)
        lines.append(
            f"| {name} | "
            + " | ".join(
                f"{figures[m]:.3f}" for m in ("ndcg@10", "recall@10", "recall@100", "mrr@10")
            )
            + " |"
        )
    return lines


def chunking_questions(folder: Path) -> list[GoldQuestion]:
    questions = []
    with (folder / "questions.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            path = str((folder / "corpora" / f"{row['corpus_id']}.md").resolve())
            spans = [
                (path, r["start_index"], r["end_index"]) for r in json.loads(row["references"])
            ]
            questions.append(
                GoldQuestion(row["question"], spans=[(p, int(s), int(e)) for p, s, e in spans])
            )
    return questions


def chunking(eval_data: Path, work: Path, log: Callable[[str], None]) -> list[str]:
    folder = eval_data / "chunking"
    questions = chunking_questions(folder)
    lines = [
        f"Chunking set ({len(questions)} questions, gold character spans over 5 corpora), bundled"
        " all-MiniLM-L6-v2, top 5 chunks of the whole collection:",
        "",
        "| chunk tokens | chunks | mean chunk chars | mode | span recall@5 | span precision@5 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for size in CHUNK_SIZES:
        app = app_for(work, f"chunking-c{size}", size)
        report = app.ingest(folder / "corpora")
        log(f"chunking c{size}: {report.chunks_embedded} chunks embedded in {report.seconds:.0f}s")
        figures = evaluate_gold(questions, ranker(app, hydrate=5), ks=(5,))
        chunks = app.store._collection(app.collection.name).get(include=["metadatas"])["metadatas"]
        mean_chars = sum(m["end"] - m["start"] for m in chunks) / len(chunks)
        for mode, scores in figures.items():
            lines.append(
                f"| {size} | {len(chunks)} | {mean_chars:.0f} | {mode} | {scores['span_recall@5']:.3f} | {scores['span_precision@5']:.3f} |"
            )
    return lines


# FinanceBench


@dataclass(frozen=True)
class FinanceQuestion:
    id: str
    question: str
    answer: str
    document: str  # the filing's file name without .pdf
    pages: frozenset[tuple[str, int]]  # (file name without .pdf, 1-based page)


def financebench_questions(folder: Path) -> list[FinanceQuestion]:
    """questions-dev.jsonl; its evidence pages are 0-based in pypdf's order, ragchat's 1-based."""
    questions = []
    with (folder / "questions-dev.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            pages = frozenset(
                (e["doc_name"], int(e["evidence_page_num"]) + 1) for e in row["evidence"]
            )
            questions.append(
                FinanceQuestion(
                    row["financebench_id"], row["question"], row["answer"], row["doc_name"], pages
                )
            )
    return questions


def stem(path: str) -> str:
    return Path(path).name.removesuffix(".pdf")


def page_scores(question: FinanceQuestion, hits: list[Hit]) -> dict[str, float]:
    """Gold page among the top 5 / 10 results, gold filing among the top 5, distinct pages
    among the 5 that ``ragchat search -k 5`` shows."""
    found = [(stem(h.path), h.page) for h in hits]
    return {
        "page@5": float(any(f in question.pages for f in found[:5])),
        "page@10": float(any(f in question.pages for f in found[:10])),
        "doc@5": float(any(d == question.document for d, _ in found[:5])),
        "distinct pages@5": float(len(set(found[:5]))),
    }


class Unmerged(Retriever):
    """A ranking's chunks as they come, several per page: what page merging is compared to."""

    def __init__(self, inner: Retriever) -> None:
        self.inner = inner
        self.collection = inner.collection

    def candidates(self, query: str, k: int, paths: Any = None) -> list[Hit]:
        return self.inner.candidates(query, k, paths)

    def retrieve(self, query: str, k: int, paths: Any = None) -> list[Hit]:
        return self.collection.hydrate(self.candidates(query, k, paths))


def financebench(
    eval_data: Path,
    work: Path,
    log: Callable[[str], None],
    collection: str,
    answers: bool,
    model: str,
    max_tokens: int,
) -> list[str]:
    folder = eval_data / "financebench"
    questions = financebench_questions(folder)
    app = app_for(work, collection)
    report = app.ingest(folder / "pdfs")
    log(
        f"financebench: {report.summary()}, {report.chunks_embedded} chunks in {report.seconds:.0f}s"
    )
    documents, chunks = app.collection.counts()
    dense, lexical = DenseRetriever(app.embedder, app.collection), LexicalRetriever(app.collection)
    rankings: dict[str, Retriever] = {
        "dense": dense,
        "lexical": lexical,
        "hybrid (default: fused, document stage over file names, a result a page)": HybridRetriever(
            dense, lexical
        ),
        "hybrid without the document stage": HybridRetriever(dense, lexical, name_weight=0.0),
        "hybrid, chunks not merged by page": Unmerged(HybridRetriever(dense, lexical)),
        "hybrid, 600 candidates from each ranking": HybridRetriever(
            dense, lexical, lambda d, lex: convex_fusion(d, lex, 0.5, 600), depth=600
        ),
    }
    lines = [
        f"FinanceBench **dev** ({len(questions)} questions, {documents} filings in {chunks}"
        " chunks, one shared collection), bundled all-MiniLM-L6-v2, default settings; a result"
        " is a page's best chunk unless said otherwise. page@k: a gold evidence page among the"
        " top k; doc@5: the gold filing among the top 5.",
        "",
        "| ranking | page@5 | page@10 | doc@5 | distinct pages in top 5 | ms/question |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, retriever in rankings.items():
        retriever.retrieve("warm up", 1)
        started = time.perf_counter()
        scores = [page_scores(q, retriever.retrieve(q.question, 10)) for q in questions]
        ms = (time.perf_counter() - started) * 1000 / len(questions)
        figures = mean(scores)
        lines.append(
            f"| {name} | {figures['page@5']:.3f} | {figures['page@10']:.3f}"
            f" | {figures['doc@5']:.3f} | {figures['distinct pages@5']:.2f} | {ms:.0f} |"
        )
    if answers:
        lines += ["", *financebench_answers(app, questions, folder, log, model, max_tokens)]
    return lines


def financebench_answers(
    app: App,
    questions: list[FinanceQuestion],
    folder: Path,
    log: Callable[[str], None],
    model: str,
    max_tokens: int,
) -> list[str]:
    """The same questions asked as ``ragchat ask`` asks them, scored as ``ragchat eval``
    scores a gold file with answers (plus: a gold page among the excerpts the LLM saw)."""
    answering = app.switch(model=model, max_tokens=max_tokens)
    engine = answering.engine()
    rows = []
    for n, question in enumerate(questions, start=1):
        gold = GoldQuestion(
            question.question,
            sources=[str((folder / "pdfs" / f"{question.document}.pdf").resolve())],
            answer=question.answer,
        )
        started = time.perf_counter()
        answer = engine.ask(question.question)
        for _ in answer.stream():
            pass
        row = score_answer(gold, answer, time.perf_counter() - started)
        row["evidence_page"] = any((stem(h.path), h.page) in question.pages for h in answer.sources)
        rows.append(row)
        if n % 10 == 0:
            log(f"financebench answers: {n}/{len(questions)}")
    summary = summarise_answers(rows)
    page = sum(r["evidence_page"] for r in rows) / len(rows)
    note = plumbing_note(answering.llm.id)
    lines = [
        f"Answers to the same questions, LLM {answering.llm.id} (max_tokens {max_tokens}),"
        " scored as `ragchat eval` scores a gold file with answers:",
        "",
        "| correct | mean token F1 | refused (all are answerable) | citations valid | answers citing nothing | gold filing among the excerpts | gold page among the excerpts | s/question |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {summary['correct']:.3f} | {summary['mean_f1']:.3f} | {summary['false_refusals']:.3f}"
        f" | {summary['citations_valid'] or 0:.3f} | {summary['uncited'] or 0:.3f}"
        f" | {summary['evidence_recall']:.3f} | {page:.3f} | {summary['seconds_per_question']:.1f} |",
    ]
    if note:
        lines += ["", note]
    return lines


def write_results(part: str, sections: list[list[str]], command: str) -> None:
    """Replace the part's section of bench/RESULTS.md (or add it at the end)."""
    path = ROOT / "bench" / "RESULTS.md"
    start, end = f"<!-- {part}:start -->", f"<!-- {part}:end -->"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    body = "\n".join(
        [start, f"## {SECTIONS[part]}", "", f"Command: `{command}`", ""]
        + [line for section in sections for line in [*section, ""]]
        + [end]
    )
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: body, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--eval-data",
        type=Path,
        default=Path(os.environ.get("RAGCHAT_EVAL_DATA", ROOT.parent / "shared" / "eval")),
    )
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / ".work")
    parser.add_argument("--quick", action="store_true", help="SciFact only")
    parser.add_argument(
        "--only", default="", help="comma-separated parts: scifact, chunking, financebench"
    )
    parser.add_argument(
        "--scifact-chunks",
        default="",
        help="also compare these chunk sizes on SciFact, e.g. 128,200,256",
    )
    parser.add_argument(
        "--financebench-collection", default="financebench", help="its collection under --work"
    )
    parser.add_argument(
        "--no-answers", action="store_true", help="FinanceBench: retrieval only, no LLM"
    )
    parser.add_argument(
        "--model",
        default=os.environ.get("RAGCHAT_MODEL", "bundled"),
        help="FinanceBench answers: the LLM [default: RAGCHAT_MODEL, else bundled]",
    )
    parser.add_argument("--max-tokens", type=int, default=256, help="FinanceBench answers")
    args = parser.parse_args()
    parts = set(filter(None, args.only.split(","))) or (
        {"scifact"} if args.quick else {"scifact", "chunking", "financebench"}
    )
    if not (args.eval_data / "scifact").is_dir():
        sys.exit(
            f"No evaluation data at {args.eval_data}; pass --eval-data or set RAGCHAT_EVAL_DATA."
        )

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    sections = []
    if "scifact" in parts:
        sections.append(scifact(args.eval_data, args.work, log))
        if args.scifact_chunks:
            sizes = [int(x) for x in args.scifact_chunks.split(",")]
            sections.append(scifact_chunk_sizes(args.eval_data, args.work, sizes, log))
    if "chunking" in parts:
        sections.append(chunking(args.eval_data, args.work, log))
    for section in sections:
        print("\n".join(section) + "\n")
    if {"scifact", "chunking"} <= parts and not args.quick:
        command = "python bench/quality.py --only scifact,chunking" + (
            f" --scifact-chunks {args.scifact_chunks}" if args.scifact_chunks else ""
        )
        write_results("quality", sections, command)
    if "financebench" in parts:
        lines = financebench(
            args.eval_data,
            args.work,
            log,
            args.financebench_collection,
            not args.no_answers,
            args.model,
            args.max_tokens,
        )
        print("\n".join(lines) + "\n")
        command = "python bench/quality.py --only financebench" + (
            f" --model {args.model}" if args.model != "bundled" else ""
        )
        write_results("financebench", [lines], command)


if __name__ == "__main__":
    main()
