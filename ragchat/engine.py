"""The answer loop: retrieve, judge the support, pack into the token budget, stream the answer.

A question the collection does not support (relevance.py) is answered "not found" without
the LLM: it is not called, nor loaded. A follow-up in a conversation is searched twice and
the two rankings fused: as the LLM's standalone rewrite (when the rewrite is a question, not
a copy of the last answer), and as itself with the question before it, so a weak model's bad
rewrite cannot take retrieval with it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ragchat import citations
from ragchat.llms import LLM, Generation
from ragchat.prompting import Packed, Prompts, Turn, condense_messages, pack
from ragchat.retrieval import Retriever
from ragchat.store import Hit

if TYPE_CHECKING:
    from ragchat.relevance import Floor, Support

CONDENSE_TOKENS = 96  # most tokens a rewritten follow-up may have
ANSWERED, NOT_FOUND = "answered", "not_found"
NOT_FOUND_TEXT = "Nothing in your documents answers this."
WEAK_TEXT = (
    "Weak support: the excerpts only loosely match the question; check the answer against them."
)
_WORD = re.compile(r"\w+")
QUESTION_WORDS = frozenset(
    [
        "what",
        "how",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "which",
        "is",
        "are",
        "was",
        "were",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "will",
        "shall",
        "has",
        "have",
        "had",
        "may",
        "might",
        "must",
        "list",
        "show",
        "tell",
        "explain",
        "describe",
        "summarise",
        "summarize",
        "compare",
        "give",
        "find",
        "name",
    ]
)
COPY_RUN = 8  # a rewrite sharing this many consecutive words with the last answer copies it


@dataclass
class Answer:
    """One answer in progress: iterate ``stream()`` for its text, then read the rest."""

    question: str
    queries: list[str]  # what was searched: the question, or a follow-up's rewrite and itself
    hits: list[Hit]
    packed: Packed
    generation: Generation
    models: dict[str, str]
    collection: str
    status: str = ANSWERED  # or NOT_FOUND: the documents do not say, and no LLM ran
    support: Support | None = None  # None when no relevance floor was asked
    timings: dict[str, float] = field(default_factory=dict)
    _started: float = 0.0

    @property
    def query(self) -> str:
        return self.queries[0]

    @property
    def found(self) -> bool:
        return self.status == ANSWERED

    @property
    def sources(self) -> list[Hit]:
        """The excerpts the LLM saw; source n is cited as [n]."""
        return self.packed.used

    @property
    def closest(self) -> list[Hit]:
        """When nothing answers the question: the nearest excerpts, none of them relevant."""
        return [] if self.found else self.hits

    @property
    def text(self) -> str:
        return self.generation.text

    @property
    def truncated(self) -> bool:
        return self.generation.truncated

    @cached_property
    def review(self) -> citations.Review:
        """The answer checked against its excerpts; read it once the answer has streamed."""
        return citations.review(self.text, [h.text for h in self.sources], self.question)

    @property
    def warnings(self) -> list[str]:
        """Warning lines to show with the answer: weak support, then each citation problem."""
        if not self.found:
            return []
        weak = [WEAK_TEXT] if self.support is not None and self.support.level == "weak" else []
        return weak + self.review.problems

    def stream(self) -> Iterator[str]:
        start = time.perf_counter()
        try:
            for piece in self.generation:
                now = time.perf_counter() - start
                self.timings.setdefault("first_token_s", now)
                self.timings["last_token_s"] = now
                yield piece
        finally:
            self.timings["generate_s"] = time.perf_counter() - start
            self.timings["total_s"] = time.perf_counter() - self._started

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": self.status,
            "question": self.question,
            "query": self.query,
            "queries": self.queries,
            "answer": self.text if self.found else NOT_FOUND_TEXT,
            "truncated": self.truncated,
            "finish_reason": self.generation.finish_reason,
            "collection": self.collection,
            "support": self.support.to_dict() if self.support is not None else None,
            "sources": [hit.to_dict(n) for n, hit in enumerate(self.sources, start=1)],
            "closest": [hit.to_dict(n) for n, hit in enumerate(self.closest, start=1)],
            "checks": self.review.to_dict() if self.found else None,
            "warnings": self.warnings,
            "context": {
                "retrieved": len(self.hits),
                "used": len(self.packed.used),
                "dropped": len(self.packed.dropped),
                "prompt_tokens": self.packed.prompt_tokens,
                "budget_tokens": self.packed.budget,
            },
            "models": self.models,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
        return data


def is_question(text: str) -> bool:
    """Does ``text`` read as a question or a request (not as an answer)?"""
    words = _WORD.findall(text.lower())
    return bool(words) and (text.rstrip().endswith("?") or words[0] in QUESTION_WORDS)


def copies(text: str, answer: str, run: int = COPY_RUN) -> bool:
    """Does ``text`` repeat ``run`` consecutive words of ``answer`` (or most of a short one)?"""
    words = _WORD.findall(text.lower())
    source = _WORD.findall(answer.lower())
    if not words or not source:
        return False
    run = min(run, max(len(words) * 3 // 4, 1))
    grams = {tuple(source[i : i + run]) for i in range(len(source) - run + 1)}
    return any(tuple(words[i : i + run]) in grams for i in range(len(words) - run + 1))


def usable_rewrite(rewritten: str, question: str, history: Sequence[Turn]) -> bool:
    """Is a model's rewrite of ``question`` worth searching? Not when it is empty, rambles,
    reads as an answer rather than a question, or copies the last answer."""
    return bool(
        rewritten
        and len(rewritten) <= 4 * len(question) + 200
        and is_question(rewritten)
        and not (history and copies(rewritten, history[-1].answer))
    )


class Engine:
    def __init__(
        self,
        retriever: Retriever,
        llm: LLM,
        prompts: Prompts,
        embedder_id: str,
        collection: str,
        top_k: int = 5,
        max_tokens: int = 512,
        temperature: float = 0.2,
        floor: Floor | None = None,
    ) -> None:
        self.retriever = retriever
        self.llm = llm
        self.prompts = prompts
        self.embedder_id = embedder_id
        self.collection = collection
        self.top_k = top_k
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.floor = floor

    def warm_up(self) -> None:
        """Load both models (and calibrate the relevance floor) now, so the first question is
        not slower than the rest."""
        self.retriever.retrieve("warm up", 1)
        if self.floor is not None:
            self.floor.nulls()
        self.llm.count_tokens("warm up")

    def rewrite(self, question: str, history: Sequence[Turn]) -> tuple[str, bool]:
        """The LLM's standalone rewrite of a follow-up (its first line), and whether it was
        cut off by the token limit."""
        allowance = (self.llm.n_ctx - CONDENSE_TOKENS) // 2
        messages = condense_messages(self.llm, self.prompts, question, history, allowance)
        generation = self.llm.stream(messages, CONDENSE_TOKENS, 0.0)
        text = "".join(generation).strip()
        return (text.splitlines()[0].strip().strip('"“”') if text else ""), generation.truncated

    def standalone_query(self, question: str, history: Sequence[Turn]) -> str:
        """A follow-up rewritten with the conversation into a query retrieval can use alone;
        "" when the model's rewrite is unusable (``usable_rewrite``)."""
        if not history:
            return question
        rewritten, truncated = self.rewrite(question, history)
        return rewritten if not truncated and usable_rewrite(rewritten, question, history) else ""

    def queries(self, question: str, history: Sequence[Turn]) -> list[str]:
        """What to search: the question; for a follow-up, its usable rewrite and the
        follow-up with the question before it."""
        if not history:
            return [question]
        rewritten = self.standalone_query(question, history)
        joined = f"{history[-1].question} {question}"
        return [rewritten, joined] if rewritten else [joined]

    def ask(
        self,
        question: str,
        k: int | None = None,
        history: Sequence[Turn] = (),
        paths: Sequence[str] | None = None,
    ) -> Answer:
        """Retrieve for ``question`` (searched with ``history`` when it is a follow-up),
        judge the support, pack, and start streaming the answer; or, when nothing in the
        collection supports the question, an answer with status "not_found" and no LLM."""
        started = time.perf_counter()
        queries = self.queries(question, history)
        condensed = time.perf_counter()
        hits = self.retriever.retrieve_many(queries, k or self.top_k, paths)
        retrieved = time.perf_counter()
        support = self.floor.support(queries, paths) if self.floor and hits else None
        judged = time.perf_counter()
        answer = Answer(
            question=question,
            queries=queries,
            hits=hits,
            packed=Packed([], [], [], 0, self.llm.n_ctx - self.max_tokens),
            generation=Generation(iter([("", "stop")])),
            models={"embedder": self.embedder_id, "llm": self.llm.id},
            collection=self.collection,
            support=support,
            _started=started,
        )
        if history:
            answer.timings["condense_s"] = condensed - started
        answer.timings["retrieve_s"] = retrieved - condensed
        if support is not None:
            answer.timings["support_s"] = judged - retrieved
        if not hits or (support is not None and not support.found):
            answer.status = NOT_FOUND
            return answer
        answer.packed = pack(self.llm, self.prompts, question, hits, self.max_tokens, history)
        answer.generation = self.llm.stream(
            answer.packed.messages, self.max_tokens, self.temperature
        )
        answer.timings["pack_s"] = time.perf_counter() - judged
        return answer
