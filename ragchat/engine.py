"""The answer loop: retrieve, pack into the token budget, stream the LLM's answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ragchat.llms import LLM, Generation
from ragchat.prompting import Packed, Prompts, pack
from ragchat.retrieval import Retriever
from ragchat.store import Hit


@dataclass
class Answer:
    """One answer in progress: iterate ``stream()`` for its text, then read the rest."""

    question: str
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
                if "first_token_s" not in self.timings:
                    self.timings["first_token_s"] = time.perf_counter() - start
                yield piece
        finally:
            self.timings["generate_s"] = time.perf_counter() - start
            self.timings["total_s"] = time.perf_counter() - self._started

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
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

    def ask(self, question: str, k: int | None = None) -> Answer:
        started = time.perf_counter()
        hits = self.retriever.retrieve(question, k or self.top_k)
        retrieved = time.perf_counter()
        packed = pack(self.llm, self.prompts, question, hits, self.max_tokens)
        generation = self.llm.stream(packed.messages, self.max_tokens, self.temperature)
        answer = Answer(
            question=question,
            hits=hits,
            packed=packed,
            generation=generation,
            models={"embedder": self.embedder_id, "llm": self.llm.id},
            collection=self.collection,
            _started=started,
        )
        answer.timings["retrieve_s"] = retrieved - started
        answer.timings["pack_s"] = time.perf_counter() - retrieved
        return answer
