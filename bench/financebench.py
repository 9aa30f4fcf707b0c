"""FinanceBench retrieval on the dev split: is the gold evidence page among the results?

    .venv/bin/python bench/financebench.py                 # ~5 min on 2 cores the first time
    .venv/bin/python bench/financebench.py --json out.json # per question, for a closer look

One shared collection over the 24 filings of ../shared/eval/financebench/pdfs (bundled
all-MiniLM-L6-v2, default settings), the 42 questions of questions-dev.jsonl asked as they are.
Per question: is a gold evidence page among the top 5 / 10 results (a result is a chunk and
cites its PDF page; the gold ``evidence_page_num`` is 0-based in pypdf's page order, ragchat's
pages 1-based), is the gold filing among the top 5, and how many distinct pages the 5 results
that ``ragchat search -k 5`` shows cover. The collection is kept under --work, so a second run
only queries.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from quality import app_for  # noqa: E402

from ragchat.app import App  # noqa: E402
from ragchat.ingest import FileSource, IngestReport  # noqa: E402
from ragchat.loaders import Page  # noqa: E402
from ragchat.store import Hit  # noqa: E402
from ragchat.text import is_under  # noqa: E402

KS = (5, 10)


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str
    document: str  # the filing's file name without .pdf
    pages: frozenset[tuple[str, int]]  # (file name without .pdf, 1-based page)


def load_questions(folder: Path) -> list[Question]:
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
                Question(
                    row["financebench_id"], row["question"], row["answer"], row["doc_name"], pages
                )
            )
    return questions


def build(app: App, pdfs: Path, reader: Callable[[Path], list[Page]] | None = None) -> IngestReport:
    """Ingest the PDFs (the default loader in its worker unless ``reader`` is given)."""
    if reader is None:
        return app.ingest(pdfs)
    scope = str(pdfs.resolve())
    with app.writing():
        sources = [FileSource(p.resolve(), reader) for p in sorted(pdfs.glob("*.pdf"))]
        return app.ingestor().sync(sources, lambda key: is_under(key, scope))


def stem(path: str) -> str:
    return Path(path).name.removesuffix(".pdf")


def score(question: Question, hits: Sequence[Hit]) -> dict[str, Any]:
    """Figures of one question's ranked results (chunks, or pages)."""
    found = [(stem(h.path), h.page) for h in hits]
    row: dict[str, Any] = {}
    for k in KS:
        row[f"page@{k}"] = float(any(f in question.pages for f in found[:k]))
    row["doc@5"] = float(any(d == question.document for d, _ in found[:5]))
    row["distinct_pages@5"] = float(len(set(found[:5])))
    rank = next((n for n, f in enumerate(found, start=1) if f in question.pages), None)
    row["rank"] = rank
    return row


Rank = Callable[[str], list[Hit]]


def evaluate(questions: Sequence[Question], rank: Rank) -> tuple[dict[str, float], list[dict]]:
    rows = []
    for question in questions:
        started = time.perf_counter()
        hits = rank(question.question)
        row = score(question, hits)
        row["seconds"] = time.perf_counter() - started
        row["id"] = question.id
        row["document"] = question.document
        row["gold"] = sorted(p for _, p in question.pages)
        row["top"] = [f"{stem(h.path)} p{h.page}" for h in hits[:5]]
        rows.append(row)
    keys = ["page@5", "page@10", "doc@5", "distinct_pages@5", "seconds"]
    means = {k: sum(r[k] for r in rows) / len(rows) for k in keys}
    return means, rows


def table(results: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        "| ranking | page@5 | page@10 | doc@5 | distinct pages in top 5 | s/question |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in results.items():
        lines.append(
            f"| {name} | {m['page@5']:.3f} | {m['page@10']:.3f} | {m['doc@5']:.3f}"
            f" | {m['distinct_pages@5']:.2f} | {m['seconds']:.3f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--eval-data",
        type=Path,
        default=Path(os.environ.get("RAGCHAT_EVAL_DATA", ROOT.parent / "shared" / "eval")),
    )
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / ".work")
    parser.add_argument("--collection", default="financebench")
    parser.add_argument("--json", type=Path, help="write per-question rows here")
    args = parser.parse_args()
    folder = args.eval_data / "financebench"
    if not folder.is_dir():
        sys.exit(f"No FinanceBench data at {folder}; pass --eval-data or set RAGCHAT_EVAL_DATA.")
    questions = load_questions(folder)
    app = app_for(args.work, args.collection)
    report = build(app, folder / "pdfs")
    print(
        f"ingest: {len(report.added) + len(report.updated)} filings, {report.chunks_embedded}"
        f" chunks embedded in {report.seconds:.0f}s",
        file=sys.stderr,
    )
    results, per_question = {}, {}
    for mode in ("dense", "lexical", "hybrid"):
        retriever = app.retriever(mode)
        results[mode], per_question[mode] = evaluate(
            questions, lambda q, r=retriever: r.retrieve(q, max(KS))
        )
    documents, chunks = app.collection.counts()
    print(
        f"FinanceBench dev ({len(questions)} questions, {documents} filings in {chunks} chunks),"
        " bundled all-MiniLM-L6-v2, default settings:\n"
    )
    print("\n".join(table(results)))
    if args.json:
        args.json.write_text(json.dumps(per_question, indent=1))


if __name__ == "__main__":
    main()
