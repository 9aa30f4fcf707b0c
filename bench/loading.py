"""Loading in parallel (issue 17.1): the whole ingest of a folder of PDFs against one loader and
against a plain serial pypdf loop over the same pages, all timed in the same run.

    python bench/loading.py                  # FinanceBench's 24 dev filings, 3 runs of each
    python bench/loading.py --runs 1 --pdfs DIR

Each run, in an order that rotates from run to run:

- baseline: a fresh Python process that opens every PDF with pypdf and calls
  ``page.extract_text()`` on every page, one after the other (no chunking, no embedding, no
  store);
- ``ragchat ingest --workers 1`` into a fresh store (a fresh process, bundled embedder);
- ``ragchat ingest`` with the default workers (one per core) into a fresh store.

The ingests report where their time went (``--json`` timings: read, summed over the workers,
read_wait, chunk, embed, embed_wait, write). The load average is printed before and after each
figure: the machine is shared, so the ratios to the same-run baseline are the figures to read.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- loading:start -->", "<!-- loading:end -->"
SERIAL = """
import sys, time
from pathlib import Path
from pypdf import PdfReader
import logging
logging.getLogger("pypdf").setLevel(logging.ERROR)
pages = 0
for path in sorted(Path(sys.argv[1]).glob("*.pdf")):
    for page in PdfReader(path).pages:
        page.extract_text()
        pages += 1
print(pages)
"""


def load() -> float:
    return os.getloadavg()[0]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str, float, float]:
    before = load()
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return seconds, result.stdout, before, load()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pdfs", type=Path, default=ROOT.parent / "shared" / "eval" / "financebench" / "pdfs"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/ragchat-loading"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = parser.parse_args()
    env = {
        **os.environ,
        "RAGCHAT_CACHE": str(args.work / "cache"),
        "RAGCHAT_EMBEDDING_MODEL": "bundled",
        "HF_HUB_OFFLINE": "1",
    }
    # the int8 export of the bundled model, once, outside the timings
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from ragchat.config import model_cache; from ragchat.embedders import OnnxEmbedder;"
            " OnnxEmbedder('bundled', model_cache() / 'models').dimension",
        ],
        env=env,
        check=True,
    )
    methods = ["serial", "one", "pool"]
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    loads: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
    reports: dict[str, list[dict]] = {"one": [], "pool": []}
    pages = 0
    for run in range(args.runs):
        for method in methods[run % 3 :] + methods[: run % 3]:
            if method == "serial":
                took, out, before, after = timed(
                    [sys.executable, "-c", SERIAL, str(args.pdfs)], env
                )
                pages = int(out)
            else:
                home = args.work / "home"
                shutil.rmtree(home, ignore_errors=True)
                workers = ["--workers", "1"] if method == "one" else []
                took, out, before, after = timed(
                    [sys.executable, "-m", "ragchat", "ingest", str(args.pdfs), "--json", *workers],
                    {**env, "RAGCHAT_HOME": str(home)},
                )
                reports[method].append(json.loads(out))
            seconds[method].append(took)
            loads[method].append((before, after))
            print(f"run {run + 1} {method}: {took:.1f}s (load {before:.1f} -> {after:.1f})")
    shutil.rmtree(args.work / "home", ignore_errors=True)
    lines = table(seconds, loads, reports, pages, args)
    print("\n".join(lines))
    if not args.no_write:
        write(lines)


def table(
    seconds: dict[str, list[float]],
    loads: dict[str, list[tuple[float, float]]],
    reports: dict[str, list[dict]],
    pages: int,
    args: argparse.Namespace,
) -> list[str]:
    names = {
        "serial": "baseline: serial pypdf `extract_text()`, parse only",
        "one": "`ragchat ingest --workers 1` (whole ingest)",
        "pool": f"`ragchat ingest` (whole ingest, {os.cpu_count()} workers: one per core)",
    }
    chunks = reports["pool"][0]["chunks_embedded"]
    lines = [
        "## Loading in parallel",
        "",
        f"Command: `python bench/loading.py {' '.join(sys.argv[1:])}` ({len(seconds['serial'])} runs,"
        f" the order rotating; {pages:,} pages of {len(list(args.pdfs.glob('*.pdf')))} PDFs,"
        f" {chunks:,} chunks; bundled all-MiniLM-L6-v2 int8; {os.cpu_count()} cores shared"
        " with other work: load average (1 min) before -> after each run).",
        "",
        "| | median | pages/s | ratio to the serial parse | runs (s, load) |",
        "| --- | --- | --- | --- | --- |",
    ]
    base = statistics.median(seconds["serial"])
    for method in ("serial", "one", "pool"):
        median = statistics.median(seconds[method])
        ratios = [t / b for t, b in zip(seconds[method], seconds["serial"], strict=True)]
        runs = ", ".join(
            f"{t:.0f} ({a:.1f}->{b:.1f})"
            for t, (a, b) in zip(seconds[method], loads[method], strict=True)
        )
        lines.append(
            f"| {names[method]} | {median:.1f} s | {pages / median:.1f} |"
            f" {statistics.median(ratios):.2f}x | {runs} |"
        )
    pool_ratio = statistics.median(
        [p / o for p, o in zip(seconds["pool"], seconds["one"], strict=True)]
    )
    lines += [
        "",
        f"Pool / one loader, same run (median of the runs' ratios): {pool_ratio:.2f}x;"
        f" serial parse / whole ingest with the pool: {base / statistics.median(seconds['pool']):.2f}x.",
        "",
        "Where the time goes (seconds, median over the runs, from `ragchat ingest --json`"
        " `timings`; read is summed over the workers reading side by side, the embedder runs"
        " beside the rest):",
        "",
        "| | whole | read (sum) | waiting for reads | chunk | embed | waiting for embed | write |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method in ("one", "pool"):
        stages = ("read", "read_wait", "chunk", "embed", "embed_wait", "write")
        cells = [
            f"{statistics.median([r['timings'].get(s, 0.0) for r in reports[method]]):.1f}"
            for s in stages
        ]
        whole = statistics.median(r["seconds"] for r in reports[method])
        lines.append(f"| {names[method]} | {whole:.1f} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def write(lines: list[str]) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    body = "\n".join([START, *lines, END])
    text = path.read_text()
    if START in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: body, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + body + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
