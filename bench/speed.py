"""Speed of ragchat against baselines measured in the same run; writes bench/RESULTS.md.

    .venv/bin/python bench/speed.py              # ~30 min on 2 cores (the first time)
    .venv/bin/python bench/speed.py --quick      # 1,000 documents: a smoke run, not for the table

Every figure is a median with min and max over >= 5 runs, beside a baseline timed in the same
run (these machines are noisy; the ratio is the figure to read):

1. Ingest throughput on SciFact's 5,183 abstracts (one .txt file each): `ragchat ingest`, a fresh
   process each run, against `SentenceTransformer.encode` (fp32, batch 32, model already loaded).
   The corpus is split in --runs equal slices; run i adds slice i to the same folder and
   re-runs `ragchat ingest`, which embeds only the new files (so each document is embedded once
   per method, and the collection ends up whole). Plus SciFact train nDCG@10 of the int8
   collection against the fp32 one (`ragchat eval`, both backends).
2. Cold query: a fresh `ragchat search` process on that collection, start to results, against a
   fresh process doing the same query the plain way (import sentence-transformers and chromadb).
3. Unchanged re-ingest of that collection, against listing and stat-ing the folder in Python.
4. Answer overhead: generated tokens/s through `ragchat ask` against raw llama-cpp-python on the
   same messages, model, threads and greedy sampling.
5. Retrieval latency at 100k chunks (hybrid, warm, query embedding included), against a plain
   Chroma top-10 query of the same vectors.
6. A peer: simonw/llm `embed-multi` (ingest) and `similar` (query) with llm-sentence-transformers
   on the same model and files.
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
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
START, END = "<!-- speed:start -->", "<!-- speed:end -->"
QUERIES = [
    "vitamin D deficiency and risk of fractures",
    "how do statins affect cholesterol",
    "gene expression in cancer stem cells",
    "antibiotic resistance in hospital infections",
    "effects of exercise on insulin sensitivity",
    "T cell response to viral infection",
    "sleep duration and heart disease",
]
QUESTION = "What is known about vitamin D and bone fractures?"


def median_row(name: str, values: Sequence[float], unit: str, digits: int = 2) -> str:
    return (
        f"| {name} | {statistics.median(values):.{digits}f} {unit} | {min(values):.{digits}f} |"
        f" {max(values):.{digits}f} | {len(values)} |"
    )


def run(
    command: Sequence[str], env: dict[str, str], check: bool = True
) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = subprocess.run(list(command), capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if check and result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return seconds, result


class Bench:
    def __init__(
        self, work: Path, eval_data: Path, runs: int, limit: int | None, log: Callable[[str], None]
    ) -> None:
        self.work, self.eval_data, self.runs, self.log = work, eval_data, runs, log
        self.home = work / "home"
        self.env = {
            **os.environ,
            "RAGCHAT_HOME": str(self.home),
            "RAGCHAT_CACHE": str(work / "cache"),
            "RAGCHAT_EMBEDDING_MODEL": "bundled",
            "RAGCHAT_MODEL": "bundled",
            "HF_HUB_OFFLINE": "1",
            "LLM_USER_PATH": str(work / "llm"),
        }
        rows = [json.loads(line) for line in (eval_data / "scifact" / "corpus.jsonl").open()]
        self.documents = [(str(r["_id"]), f"{r.get('title', '')}\n\n{r['text']}") for r in rows][
            :limit
        ]
        self.docs = work / "docs"
        self.lines: list[str] = []

    def ragchat(self, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
        return run([str(BIN / "ragchat"), *args], self.env)

    # 1. ingest throughput (and the peer's) ------------------------------------------------

    def ingest(self) -> dict[str, list[float]]:
        from sentence_transformers import SentenceTransformer

        from ragchat.bundled import bundled_embedding_model

        model_path = bundled_embedding_model()
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.docs, ignore_errors=True)
        shutil.rmtree(self.work / "llm", ignore_errors=True)
        self.docs.mkdir(parents=True)
        self.setup_peer(str(model_path))
        self.log("exporting the int8 model (once per model; not part of the timings)")
        export_seconds, _ = run(
            [
                sys.executable,
                "-c",
                "from pathlib import Path; from ragchat.config import model_cache;"
                " from ragchat.embedders import OnnxEmbedder;"
                " OnnxEmbedder('bundled', model_cache() / 'models').dimension",
            ],
            self.env,
        )
        reference = SentenceTransformer(str(model_path), device="cpu")
        reference.encode(["warm up"])
        figures: dict[str, list[float]] = {
            "baseline": [],
            "chunks": [],
            "ragchat": [],
            "peer": [],
            "ratio": [],
            "chunk_ratio": [],
            "peer_ratio": [],
        }
        size = -(-len(self.documents) // self.runs)
        for index in range(self.runs):
            part = self.documents[index * size : (index + 1) * size]
            folder = self.work / "slices" / str(index)
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            for doc_id, text in part:
                (folder / f"{doc_id}.txt").write_text(text)
                (self.docs / f"{doc_id}.txt").write_text(text)
            start = time.perf_counter()
            reference.encode([text for _, text in part], batch_size=32)
            baseline = len(part) / (time.perf_counter() - start)
            seconds, result = self.ragchat("ingest", str(self.docs), "--json")
            report = json.loads(result.stdout)
            start = time.perf_counter()  # the same work: the chunk texts ragchat embedded
            chunk_texts = self.chunk_texts(report["added"])
            reference.encode(chunk_texts, batch_size=32)
            same_work = len(part) / (time.perf_counter() - start)
            assert len(report["added"]) == len(part), (
                report["summary"] if "summary" in report else len(report["added"])
            )
            ours = len(part) / seconds
            seconds, _ = run(
                [
                    str(BIN / "llm"),
                    "embed-multi",
                    "scifact",
                    "--files",
                    str(folder),
                    "*.txt",
                    "-m",
                    "minilm",
                    "-d",
                    str(self.work / "llm" / "embeddings.db"),
                ],
                self.env,
            )
            peer = len(part) / seconds
            for key, value in (
                ("baseline", baseline),
                ("chunks", same_work),
                ("ragchat", ours),
                ("peer", peer),
                ("ratio", ours / baseline),
                ("chunk_ratio", ours / same_work),
                ("peer_ratio", ours / peer),
            ):
                figures[key].append(value)
            self.log(
                f"ingest run {index + 1}/{self.runs}: {len(part)} docs; encode {baseline:.1f} docs/s, encode chunks"
                f" {same_work:.1f} docs/s, ragchat {ours:.1f} docs/s ({ours / baseline:.2f}x, {ours / same_work:.2f}x),"
                f" llm embed-multi {peer:.1f} docs/s"
            )
        del reference
        chunks = json.loads(self.ragchat("status", "--json")[1].stdout)["collections"][0]["chunks"]
        self.lines += [
            "### 1. Ingest throughput",
            "",
            f"{len(self.documents):,} SciFact abstracts (one .txt file each) in {self.runs} runs of"
            f" ~{size:,} new files, {chunks:,} chunks in all. ragchat = `ragchat ingest` (a fresh process,"
            " default int8 ONNX backend, chunking, Chroma and the lexical index included); baselines ="
            " `SentenceTransformer.encode` fp32 (batch 32, model already loaded) of A: each abstract"
            " whole (which it truncates at 256 tokens: it embeds ~30% fewer tokens than ragchat, which"
            " keeps every word), B: the chunk texts ragchat embedded for those files; peer ="
            " `llm embed-multi` with llm-sentence-transformers (same model and files). The one-time"
            f" int8 export of the model ({export_seconds:.0f} s here; about 0 when already in the cache)"
            " is not in these figures.",
            "",
            "| | median | min | max | runs |",
            "|---|---|---|---|---|",
            median_row(
                "baseline A: encode fp32 of the abstracts", figures["baseline"], "docs/s", 1
            ),
            median_row(
                "baseline B: encode fp32 of the chunk texts ragchat embeds",
                figures["chunks"],
                "docs/s",
                1,
            ),
            median_row("ragchat ingest", figures["ragchat"], "docs/s", 1),
            median_row("peer: llm embed-multi", figures["peer"], "docs/s", 1),
            median_row("**ratio ragchat / baseline A** (target >= 2.5)", figures["ratio"], "x"),
            median_row(
                "**ratio ragchat / baseline B** (same texts embedded)", figures["chunk_ratio"], "x"
            ),
            median_row("ratio ragchat / llm embed-multi", figures["peer_ratio"], "x"),
            "",
        ]
        return figures

    def chunk_texts(self, paths: list[str]) -> list[str]:
        """What ragchat embedded for these files: each chunk's heading path and text."""
        from ragchat.lexical import LexicalIndex
        from ragchat.manifest import Manifest

        wanted = set(paths)
        index = LexicalIndex(Manifest(self.home / "manifest.sqlite3"), "default")
        try:
            return [text for _, path, text in index.entries() if path in wanted]
        finally:
            index.close()

    def setup_peer(self, model_path: str) -> None:
        folder = self.work / "llm"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "sentence-transformers.json").write_text(json.dumps([{"name": model_path}]))
        run(
            [str(BIN / "llm"), "aliases", "set", "minilm", f"sentence-transformers/{model_path}"],
            self.env,
        )

    # 1b. quality of the int8 vectors --------------------------------------------------------

    def quality(self) -> None:
        figures = {}
        for backend in ("torch", "onnx"):
            seconds, result = self.ragchat(
                "eval",
                str(self.eval_data / "scifact"),
                "--split",
                "train",
                "--mode",
                "dense",
                "--mode",
                "hybrid",
                "--collection",
                f"scifact-{backend}",
                "--embedding-backend",
                backend,
                "--json",
            )
            figures[backend] = json.loads(result.stdout)["modes"]
            self.log(f"SciFact train with {backend}: {figures[backend]} ({seconds:.0f} s)")
        self.lines += [
            "SciFact **train** nDCG@10 (`ragchat eval ../shared/eval/scifact --split train --embedding-backend B`):",
            "",
            "| mode | torch fp32 | int8 ONNX (default) | difference |",
            "|---|---|---|---|",
            *(
                f"| {mode} | {figures['torch'][mode]['ndcg@10']:.4f} | {figures['onnx'][mode]['ndcg@10']:.4f} |"
                f" {figures['onnx'][mode]['ndcg@10'] - figures['torch'][mode]['ndcg@10']:+.4f} |"
                for mode in ("dense", "hybrid")
            ),
            "",
        ]

    # 2 and 6. cold queries -----------------------------------------------------------------

    def cold_query(self) -> None:
        from ragchat.bundled import bundled_embedding_model

        model_path = bundled_embedding_model()
        plain = (
            "import sys, chromadb\n"
            "from chromadb.config import Settings\n"
            "from sentence_transformers import SentenceTransformer\n"
            f"vector = SentenceTransformer({str(model_path)!r}, device='cpu').encode(sys.argv[1], normalize_embeddings=True)\n"
            f"client = chromadb.PersistentClient({str(self.home / 'chroma')!r}, settings=Settings(anonymized_telemetry=False))\n"
            "found = client.get_collection('default').query(query_embeddings=[vector.tolist()], n_results=10)\n"
            "print(found['ids'][0][0], found['documents'][0][0][:60])\n"
        )
        ours, baseline, peer = [], [], []
        for index in range(max(self.runs, 5)):
            query = QUERIES[index % len(QUERIES)]
            seconds, result = self.ragchat("search", query, "-k", "10")
            assert result.stdout.strip(), result.stderr
            ours.append(seconds)
            baseline.append(run([sys.executable, "-c", plain, query], self.env)[0])
            peer.append(
                run(
                    [
                        str(BIN / "llm"),
                        "similar",
                        "scifact",
                        "-c",
                        query,
                        "-n",
                        "10",
                        "-d",
                        str(self.work / "llm" / "embeddings.db"),
                    ],
                    self.env,
                )[0]
            )
            self.log(
                f"cold query {index + 1}: ragchat {ours[-1]:.2f} s, plain {baseline[-1]:.2f} s, llm similar {peer[-1]:.2f} s"
            )
        self.lines += [
            "### 2. Cold query",
            "",
            "A fresh `ragchat search QUERY -k 10` process (default hybrid ranking) on the collection above,"
            " start to printed results; baseline = a fresh process doing a dense top-10 the plain way"
            " (`SentenceTransformer(...).encode` + `chromadb.PersistentClient(...).query`); peer = `llm similar -n 10`.",
            "",
            "| | median | min | max | runs |",
            "|---|---|---|---|---|",
            median_row("**ragchat search** (target <= 1.0 s)", ours, "s"),
            median_row("baseline: sentence-transformers + chromadb", baseline, "s"),
            median_row("peer: llm similar", peer, "s"),
            median_row(
                "ratio baseline / ragchat (x faster)",
                [b / o for b, o in zip(baseline, ours, strict=True)],
                "x",
            ),
            median_row(
                "ratio llm similar / ragchat (x faster)",
                [p / o for p, o in zip(peer, ours, strict=True)],
                "x",
            ),
            "",
        ]

    # 3. unchanged re-ingest ----------------------------------------------------------------

    def reingest(self) -> None:
        listing = (
            f"import os; print(sum(1 for e in os.scandir({str(self.docs)!r}) if e.stat().st_size))"
        )
        ours, baseline = [], []
        for _ in range(max(self.runs, 5)):
            seconds, result = self.ragchat("ingest", str(self.docs), "--json")
            report = json.loads(result.stdout)
            assert not (report["added"] or report["updated"] or report["removed"]), (
                "re-ingest changed something"
            )
            ours.append(seconds)
            baseline.append(run([sys.executable, "-c", listing], self.env)[0])
        self.log(f"unchanged re-ingest: {statistics.median(ours):.2f} s")
        self.lines += [
            "### 3. Unchanged re-ingest",
            "",
            f"`ragchat ingest` again on the {len(self.documents):,} unchanged files (a fresh process);"
            " baseline = a fresh Python process listing and stat-ing the same folder.",
            "",
            "| | median | min | max | runs |",
            "|---|---|---|---|---|",
            median_row("**ragchat ingest, nothing changed** (target <= 3 s)", ours, "s"),
            median_row("baseline: python scandir + stat", baseline, "s"),
            "",
        ]

    # 4. answer overhead --------------------------------------------------------------------

    def answer(self) -> None:
        raw_script = ROOT / "bench" / "raw_llama.py"
        ours, raw = [], []

        def ask() -> dict:
            return json.loads(
                self.ragchat(
                    "ask", QUESTION, "--json", "--max-tokens", "160", "--temperature", "0"
                )[1].stdout
            )

        def raw_run(
            answer_text: str,
        ) -> dict:  # also counts ragchat's answer with the same tokenizer
            return json.loads(
                run(
                    [sys.executable, str(raw_script), QUESTION, "160"],
                    {**self.env, "ANSWER": answer_text},
                )[1].stdout
            )

        answer: dict = {}
        for index in range(2 * max(self.runs, 5)):  # short answers (~60 tokens) are noisy: 10 pairs
            if index % 2 == 0:  # alternate which of the two runs first (greedy: the same answer)
                answer = ask()
                figures = raw_run(answer["answer"])
            else:
                figures = raw_run(answer["answer"])
                answer = ask()
            decode = answer["timings"]["last_token_s"] - answer["timings"]["first_token_s"]
            ours.append((figures["ragchat_tokens"] - 1) / decode)
            raw.append(figures["tokens_per_s"])
            self.log(
                f"answer {index + 1}: ragchat {ours[-1]:.1f} tok/s, raw {raw[-1]:.1f} tok/s ({figures['tokens']} vs {figures['ragchat_tokens']} tokens)"
            )
        self.lines += [
            "### 4. Answer overhead",
            "",
            "Generated tokens per second after the first token, bundled SmolLM2-135M, greedy, up to 160"
            " tokens, 10 pairs of fresh processes, which of the pair runs first alternating:"
            " `ragchat ask --json` (its own timings) against raw llama-cpp-python"
            " (`create_chat_completion(stream=True)`) on the same messages, context size and threads"
            " (`bench/raw_llama.py`).",
            "",
            "| | median | min | max | runs |",
            "|---|---|---|---|---|",
            median_row("ragchat ask", ours, "tok/s", 1),
            median_row("raw llama-cpp-python", raw, "tok/s", 1),
            median_row(
                "**ratio** (target >= 0.95)", [o / r for o, r in zip(ours, raw, strict=True)], "x"
            ),
            "",
        ]

    # 5. retrieval latency at 100k chunks ---------------------------------------------------

    def latency(self, size: int) -> None:
        _, result = run(
            [
                sys.executable,
                str(ROOT / "bench" / "latency.py"),
                str(self.work / "big"),
                str(size),
                str(self.home),
            ],
            self.env,
        )
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        self.log(f"latency at {size}: {figures}")
        p50 = figures["p50_ms"]
        self.lines += [
            f"### 5. Retrieval latency at {figures['chunks']:,} chunks",
            "",
            f"Hybrid `retrieve(query, 10)` in a warm process ({figures['queries']} SciFact queries, query"
            " embedding included), against a plain Chroma top-10 query of the same vectors. The"
            f" {figures['chunks']:,} chunks are SciFact's real chunks and vectors, repeated with small"
            " random changes to the vectors (and a tag in the text) until there are that many, in"
            f" {figures['files']:,} files named after the first words of their title, so that the"
            " document stage over file names has names to match"
            f" ({figures['queries_with_a_name_match']} of the {figures['queries']} queries have a"
            " result boosted by its name) (`bench/latency.py`).",
            "",
            "| | p50 | p90 | max |",
            "|---|---|---|---|",
            f"| **ragchat hybrid** (target p50 <= 20 ms) | {p50['hybrid']:.1f} ms | {figures['p90_ms']['hybrid']:.1f} ms | {figures['max_ms']['hybrid']:.1f} ms |",
            f"| hybrid without the document stage over file names | {p50['hybrid_no_names']:.1f} ms | {figures['p90_ms']['hybrid_no_names']:.1f} ms | {figures['max_ms']['hybrid_no_names']:.1f} ms |",
            f"| hybrid, chunks as ranked (no merging of a page's chunks) | {p50['hybrid_chunks']:.1f} ms | {figures['p90_ms']['hybrid_chunks']:.1f} ms | {figures['max_ms']['hybrid_chunks']:.1f} ms |",
            f"| hybrid with 600 candidates a ranking (not the default) | {p50['hybrid_600']:.1f} ms | {figures['p90_ms']['hybrid_600']:.1f} ms | {figures['max_ms']['hybrid_600']:.1f} ms |",
            f"| the document stage alone (two searches of the name index) | {p50['names']:.1f} ms | {figures['p90_ms']['names']:.1f} ms | {figures['max_ms']['names']:.1f} ms |",
            f"| query embedding alone | {p50['embed']:.1f} ms | {figures['p90_ms']['embed']:.1f} ms | {figures['max_ms']['embed']:.1f} ms |",
            f"| BM25 top-300 alone (tantivy; in a hybrid it runs beside the dense half) | {p50['lexical']:.1f} ms | {figures['p90_ms']['lexical']:.1f} ms | {figures['max_ms']['lexical']:.1f} ms |",
            f"| baseline: Chroma top-10 | {p50['chroma']:.1f} ms | {figures['p90_ms']['chroma']:.1f} ms | {figures['max_ms']['chroma']:.1f} ms |",
            f"| ratio hybrid / baseline (p50) | {p50['hybrid'] / p50['chroma']:.1f}x | | |",
            "",
        ]


def write_results(lines: list[str], command: str, minutes: float) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    body = "\n".join(
        [
            START,
            "## Speed",
            "",
            f"Command: `{command}` ({minutes:.0f} min, 2 cores)",
            "",
            *lines,
            END,
        ]
    )
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if START in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: body, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + body + "\n"
    path.write_text(text)


def replace_part(lines: list[str], command: str) -> None:
    """Swap one "### N." part of the speed section in RESULTS.md for a fresh measurement."""
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text()
    number = lines[0].split()[1]  # "### 5. Retrieval ..." -> "5."
    part = (
        "\n".join(
            [
                lines[0],
                "",
                f"Re-measured alone, after the full run above: `{command}`",
                "",
                *lines[2:],
            ]
        ).rstrip()
        + "\n\n"
    )
    pattern = re.escape(f"### {number}") + r".*?(?=^### |" + re.escape(END) + ")"
    path.write_text(re.sub(pattern, lambda _: part, text, count=1, flags=re.S | re.M))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/ragchat-speed"))
    parser.add_argument("--eval-data", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1,000 documents and 20k chunks; does not write RESULTS.md",
    )
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to skip: quality,latency,answer"
    )
    parser.add_argument(
        "--only-latency",
        action="store_true",
        help="re-measure part 5 alone (on the store an earlier full run built) and rewrite only its table",
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f}s] {message}", file=sys.stderr, flush=True)

    bench = Bench(args.work, args.eval_data, args.runs, 1000 if args.quick else None, log)
    if args.only_latency:
        bench.latency(100_000)
        print("\n".join(bench.lines))
        replace_part(bench.lines, "python bench/speed.py --only-latency")
        return
    bench.ingest()
    if "quality" not in skip:
        bench.quality()
    bench.cold_query()
    bench.reingest()
    if "answer" not in skip:
        bench.answer()
    if "latency" not in skip:
        bench.latency(20_000 if args.quick else 100_000)
    print("\n".join(bench.lines))
    if not args.quick:
        write_results(
            bench.lines,
            "python " + " ".join(["bench/speed.py", *sys.argv[1:]]),
            (time.perf_counter() - started) / 60,
        )


if __name__ == "__main__":
    main()
