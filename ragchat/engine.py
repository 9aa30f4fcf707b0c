"""The answer loop: retrieve, pack into the token budget, stream the LLM's answer."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ragchat.llms import LLM, Generation
from ragchat.prompting import Packed, Prompts, Turn, condense_messages, pack
from ragchat.retrieval import Retriever
from ragchat.store import Hit

CONDENSE_TOKENS = 96  # most tokens a rewritten follow-up may have


@dataclass
class Answer:
    """One answer in progress: iterate ``stream()`` for its text, then read the rest."""

    question: str
    query: str  # what was searched: the question, or its standalone rewrite in a conversation
    hits: list[Hit]
    packed: Packed
    generation: Generation
    models: dict[str, str]
    collection: str
    timings: dict[str, float] = field(default_factory=dict)
    _started: float = 0.0

    @property
    def sources(self) -> list[Hit]:
        """The excerpts the LLM saw; source n is cited as [n]."""
        return self.packed.used

    @property
    def text(self) -> str:
        return self.generation.text

    @property
    def truncated(self) -> bool:
        return self.generation.truncated

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
        return {
            "question": self.question,
            "query": self.query,
            "answer": self.text,
            "truncated": self.truncated,
            "finish_reason": self.generation.finish_reason,
            "collection": self.collection,
            "sources": [hit.to_dict(n) for n, hit in enumerate(self.sources, start=1)],
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
    ) -> None:
        self.retriever = retriever
        self.llm = llm
        self.prompts = prompts
        self.embedder_id = embedder_id
        self.collection = collection
        self.top_k = top_k
        self.max_tokens = max_tokens
        self.temperature = temperature

    def warm_up(self) -> None:
        """Load both models now, so the first question is not slower than the rest."""
        self.retriever.retrieve("warm up", 1)
        self.llm.count_tokens("warm up")

    def standalone_query(self, question: str, history: Sequence[Turn]) -> str:
        """A follow-up rewritten with the conversation into a query retrieval can use alone."""
        if not history:
            return question
        allowance = (self.llm.n_ctx - CONDENSE_TOKENS) // 2
        messages = condense_messages(self.llm, self.prompts, question, history, allowance)
        generation = self.llm.stream(messages, CONDENSE_TOKENS, 0.0)
        text = "".join(generation).strip()
        rewritten = text.splitlines()[0].strip().strip('"“”') if text else ""
        # a tiny model may ramble or echo the prompt: then the question itself is safer
        if not rewritten or generation.truncated or len(rewritten) > 4 * len(question) + 200:
            return question
        return rewritten

    def ask(
        self,
        question: str,
        k: int | None = None,
        history: Sequence[Turn] = (),
        paths: Sequence[str] | None = None,
    ) -> Answer:
        """Retrieve for ``question`` (rewritten with ``history`` when it is a follow-up),
        pack, and start streaming the answer."""
        started = time.perf_counter()
        query = self.standalone_query(question, history)
        condensed = time.perf_counter()
        hits = self.retriever.retrieve(query, k or self.top_k, paths)
        retrieved = time.perf_counter()
        packed = pack(self.llm, self.prompts, question, hits, self.max_tokens, history)
        generation = self.llm.stream(packed.messages, self.max_tokens, self.temperature)
        answer = Answer(
            question=question,
            query=query,
            hits=hits,
            packed=packed,
            generation=generation,
            models={"embedder": self.embedder_id, "llm": self.llm.id},
            collection=self.collection,
            _started=started,
        )
        if history:
            answer.timings["condense_s"] = condensed - started
        answer.timings["retrieve_s"] = retrieved - condensed
        answer.timings["pack_s"] = time.perf_counter() - retrieved
        return answer
