"""Time to first token of a follow-up question: in a running chat vs a freshly loaded model.

    .venv/bin/python bench/followup.py [--runs 5]

With the bundled models on corpora/harbor. "warm" is what `ragchat chat` does: the model that
answered the first question answers the follow-up, reusing its saved state for the prompt's
unchanged prefix (system prompt, earlier turns). "fresh" loads the model again and answers the
same follow-up with the same history. Both include rewriting the follow-up into a standalone
query; the figures are seconds from the question to the first token of the answer.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ragchat.app import App  # noqa: E402
from ragchat.config import Settings  # noqa: E402
from ragchat.llms import LlamaCppLLM  # noqa: E402
from ragchat.prompting import Turn  # noqa: E402

QUESTIONS = [
    "What is the joining fee for members?",
    "Who can join the cooperative?",
    "How are members told about meetings?",
]
FOLLOW_UP = "And when is the annual general meeting held?"


def first_token(app: App, question: str, history: list[Turn]) -> tuple[float, str]:
    started = time.perf_counter()
    answer = app.engine().ask(question, history=history)
    stream = answer.stream()
    next(stream)
    elapsed = time.perf_counter() - started
    for _ in stream:
        pass
    return elapsed, answer.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--turns", type=int, default=2, help="the follow-up is question number N (2-4)"
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="without the state cache, for comparison"
    )
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ragchat-bench-"))
    settings = Settings(
        embedding_model="bundled", model="bundled", n_ctx=2048, max_tokens=48, temperature=0.0
    )
    base = App(home, settings, explicit=frozenset({"embedding_model"}))
    base.ingest(ROOT / "corpora" / "harbor")
    embedder = base.embedder
    warm, fresh = [], []
    for _ in range(args.runs):
        llm = LlamaCppLLM("bundled", n_ctx=2048, threads=settings.threads)
        if args.no_cache:
            llm.llama.set_cache(None)
        app = App(home, settings, embedder=embedder, llm=llm)
        history: list[Turn] = []
        for question in QUESTIONS[: args.turns - 1]:
            history.append(Turn(question, first_token(app, question, history)[1]))
        warm.append(first_token(app, FOLLOW_UP, history)[0])
        cold = App(
            home,
            settings,
            embedder=embedder,
            llm=LlamaCppLLM("bundled", n_ctx=2048, threads=settings.threads),
        )
        cold.llm.count_tokens("load the model before timing")
        fresh.append(first_token(cold, FOLLOW_UP, history)[0])

    def row(name: str, values: list[float]) -> str:
        return (
            f"| {name} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} |"
        )

    ratio = statistics.median(fresh) / statistics.median(warm)
    cache = "without" if args.no_cache else "with"
    print(
        f"Follow-up (question {args.turns}) time to first token, bundled SmolLM2-135M, {cache} the state cache, {args.runs} runs (seconds):\n"
    )
    print("| model | median | min | max |\n| --- | --- | --- | --- |")
    print(row("fresh (model just loaded)", fresh))
    print(row("warm (same chat, state cache)", warm))
    print(f"\nfresh / warm = {ratio:.2f}x (median)")


if __name__ == "__main__":
    main()
