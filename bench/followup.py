"""Follow-up questions in a chat: what retrieval finds for them, and how soon they answer.

    .venv/bin/python bench/followup.py --retrieval   # what each way of searching a follow-up finds
    .venv/bin/python bench/followup.py [--runs 5]    # time to first token, warm vs fresh model

--retrieval: 15 two-question conversations over corpora/harbor (12 follow-ups that lean on
the first question, "And what time does it start?", and 3 that change the subject); the first
question is answered by the bundled SmolLM2-135M, which then rewrites the follow-up. A
follow-up is found when a top-5 excerpt holds its gold phrase. Each way of searching it is
scored on the same rewrites.

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


# (first question, follow-up, gold file name, gold phrase in the excerpt)
CONVERSATIONS = [
    ("What is the joining fee for members?", "And how much does a share cost?", "handbook.md", "shares cost 20 crowns"),
    ("Who can join the cooperative?", "Can a business join more than once?", "handbook.md", "limited to one membership"),
    ("When is the annual general meeting held?", "And what time does it start?", "handbook.md", "half past ten"),
    ("What did the board decide about the inverter?", "How much did it cost?", "meeting-notes-2025-09.txt", "18,400 crowns"),
    ("Can I visit the installation?", "And how long does it take?", "faq.html", "forty minutes"),
    ("Where are the solar panels?", "What rent is paid for that roof?", "faq.html", "peppercorn rent"),
    ("What should I do if the power goes off?", "When is it staffed?", "faq.html", "staffed by volunteers"),
    ("What is an inverter?", "Why do they need replacing?", "glossary.md", "wear out"),
    ("What did the treasurer report?", "Why was it lower than last year?", "meeting-notes-2025-09.txt", "repair costs in july"),
    ("How much electricity did the array produce in 2024?", "And how much can the battery store?", "annual-report-2024.pdf", "480 kilowatt-hours"),
    ("How do I leave the cooperative?", "Do I get the fee back?", "handbook.md", "joining fee is not returned"),
    ("Who examined the accounts?", "What dividend does the board propose?", "annual-report-2024.pdf", "3.2 per cent"),
    ("What is the joining fee?", "Where are the solar panels?", "faq.html", "old wrenmouth fish market"),
    ("What is an inverter?", "How many directors does the board have?", "handbook.md", "seven directors"),
    ("Can I visit the installation?", "What is a feed-in tariff?", "glossary.md", "fixed price"),
]  # fmt: skip


def retrieval_quality(settings: Settings) -> None:
    from ragchat.engine import usable_rewrite
    from ragchat.retrieval import fuse_rankings

    home = Path(tempfile.mkdtemp(prefix="ragchat-bench-"))
    app = App(home, settings, explicit=frozenset({"embedding_model"}))
    app.ingest(ROOT / "corpora" / "harbor")
    engine = app.engine()
    retriever = engine.retriever
    k = 5

    def found(hits, gold_file: str, phrase: str) -> bool:
        return any(
            Path(h.path).name == gold_file and phrase in " ".join(h.text.lower().split())
            for h in hits[:k]
        )

    def rrf(queries: list[str]):
        def ranking(depth: int):
            return fuse_rankings([retriever.candidates(q, depth) for q in queries])[:depth]

        return retriever.retrieve_ranked(ranking, k)

    names = {
        "follow-up alone": lambda f, p, r, usable: retriever.retrieve(f, k),
        "rewrite whenever the model gives one (before)": lambda f, p, r, usable: retriever.retrieve(r or f, k),
        "rewrite only if a question, else the follow-up": lambda f, p, r, usable: retriever.retrieve(r if usable else f, k),
        "previous question + follow-up, one query": lambda f, p, r, usable: retriever.retrieve(f"{p} {f}", k),
        "fused: usable rewrite, previous question + follow-up (chosen)": lambda f, p, r, usable: rrf(([r] if usable else []) + [f"{p} {f}"]),
        "fused: usable rewrite, follow-up, previous question": lambda f, p, r, usable: rrf(([r] if usable else []) + [f, p]),
        "fused: usable rewrite, follow-up, previous question + follow-up": lambda f, p, r, usable: rrf(([r] if usable else []) + [f, f"{p} {f}"]),
    }  # fmt: skip
    scores: dict[str, list[bool]] = {name: [] for name in names}
    discarded = 0
    for previous, follow_up, gold_file, phrase in CONVERSATIONS:
        first = engine.ask(previous)
        answer = "".join(first.stream())
        history = [Turn(previous, answer)]
        rewritten, truncated = engine.rewrite(follow_up, history)
        usable = not truncated and usable_rewrite(rewritten, follow_up, history)
        discarded += not usable
        print(
            f"{'kept' if usable else 'DISCARDED'}: {follow_up!r} -> {rewritten[:100]!r}",
            file=sys.stderr,
        )
        for name, search in names.items():
            scores[name].append(
                found(search(follow_up, previous, rewritten, usable), gold_file, phrase)
            )
    leaning = len(CONVERSATIONS) - 3
    print(
        f"Follow-up retrieval, corpora/harbor, bundled models, {len(CONVERSATIONS)} conversations"
        f" ({leaning} follow-ups that lean on the first question, 3 that change the subject);"
        f" {discarded} of {len(CONVERSATIONS)} rewrites discarded as not a question or a copy of the answer."
        " Found = a top-5 excerpt holds the gold phrase.\n"
    )
    print("| searched | found, leaning follow-ups | found, new subject | found, all |")
    print("| --- | --- | --- | --- |")
    for name, hits in scores.items():
        print(
            f"| {name} | {sum(hits[:leaning])}/{leaning} | {sum(hits[leaning:])}/3 | {sum(hits)}/{len(hits)} |"
        )


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
    parser.add_argument(
        "--retrieval",
        action="store_true",
        help="score what each way of searching a follow-up finds",
    )
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ragchat-bench-"))
    settings = Settings(
        embedding_model="bundled", model="bundled", n_ctx=2048, max_tokens=48, temperature=0.0
    )
    if args.retrieval:
        retrieval_quality(settings)
        return
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
