"""Fast stand-ins for the embedder and the LLM, for unit tests."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Sequence

from ragchat.embedders import Embedder, ModelProfile
from ragchat.llms import LLM, Generation, Message

_WORDS = re.compile(r"\w+")


class FakeEmbedder(Embedder):
    """Bag of hashed words: texts sharing words are close. One token per word, plus 2."""

    def __init__(
        self, model_id: str = "fake/bag-of-words", dimension: int = 64, limit: int = 64
    ) -> None:
        self.id = model_id
        self.profile = ModelProfile()
        self._dimension = dimension
        self._limit = limit
        self.embedded: list[str] = []

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._limit

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORDS.findall(t)) + 2 for t in texts]

    def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        vectors = []
        for text in texts:
            vector = [0.0] * self._dimension
            for word in _WORDS.findall(text.lower()):
                vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % self._dimension] += 1.0
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            vectors.append([x / norm for x in vector])
        return vectors


class FakeLLM(LLM):
    """Answers with queued replies (default: cite excerpt 1); one token per word."""

    def __init__(self, replies: Sequence[str] = (), n_ctx: int = 2048) -> None:
        self.id = "fake-llm"
        self.n_ctx = n_ctx
        self.replies = list(replies)
        self.prompts: list[list[Message]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(
        self, messages: Sequence[Message], max_tokens: int, temperature: float
    ) -> Generation:
        self.prompts.append(list(messages))
        reply = self.replies.pop(0) if self.replies else "The answer is in the excerpt [1]."
        words = reply.split(" ")

        def pieces() -> Iterator[tuple[str, str | None]]:
            for i, word in enumerate(words[:max_tokens]):
                yield (word if i == 0 else " " + word), None
            yield "", "length" if len(words) > max_tokens else "stop"

        return Generation(pieces())
