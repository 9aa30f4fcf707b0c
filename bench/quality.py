"""Reproduce every retrieval-quality figure of bench/RESULTS.md on ../shared/eval.

    .venv/bin/python bench/quality.py            # ~25 min on 2 cores the first time
    .venv/bin/python bench/quality.py --quick    # SciFact only, default chunking

With the bundled all-MiniLM-L6-v2:
1. SciFact train (809 claims, 5,183 abstracts): nDCG@10, Recall@10/100, MRR@10 for dense,
   lexical and hybrid, and for the fusion rules that were compared to choose the default.
2. The chunking set (472 questions, gold character spans over five corpora): for each chunk
   size tried, the share of gold characters covered by the top-5 chunks (recall) and the share
   of retrieved characters that are gold (precision).
Collections are kept under --work, so a second run only queries. The tables replace the
"Retrieval quality" section of bench/RESULTS.md.
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
    ranker,
)
from ragchat.retrieval import (  # noqa: E402
    Fusion,
    convex_fusion,
    default_fusion,
    fuse,
    reciprocal_rank_fusion,
)

CHUNK_SIZES = (64, 128, 200, 256)
START, END = "<!-- quality:start -->", "<!-- quality:end -->"

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
        rankings = rank(data.queries[query_id])
        dense_hits, lexical_hits = rankings["dense"], rankings["lexical"]
        for name, fusion in FUSIONS.items():
            rankings[f"hybrid, {name}"] = fuse(dense_hits, lexical_hits, fusion)
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


def write_results(sections: list[list[str]], command: str) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    body = "\n".join(
        [START, "## Retrieval quality", "", f"Command: `{command}`", ""]
        + [line for section in sections for line in [*section, ""]]
        + [END]
    )
    if START in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: body, text, flags=re.S)
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
        "--scifact-chunks",
        default="",
        help="also compare these chunk sizes on SciFact, e.g. 128,200,256",
    )
    args = parser.parse_args()
    if not (args.eval_data / "scifact").is_dir():
        sys.exit(
            f"No evaluation data at {args.eval_data}; pass --eval-data or set RAGCHAT_EVAL_DATA."
        )

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    sections = [scifact(args.eval_data, args.work, log)]
    if args.scifact_chunks:
        sizes = [int(x) for x in args.scifact_chunks.split(",")]
        sections.append(scifact_chunk_sizes(args.eval_data, args.work, sizes, log))
    if not args.quick:
        sections.append(chunking(args.eval_data, args.work, log))
    for section in sections:
        print("\n".join(section) + "\n")
    if not args.quick:
        command = "python bench/quality.py" + (
            f" --scifact-chunks {args.scifact_chunks}" if args.scifact_chunks else ""
        )
        write_results(sections, command)


if __name__ == "__main__":
    main()
