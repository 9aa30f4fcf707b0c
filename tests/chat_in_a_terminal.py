"""``ragchat chat`` as the CLI wires it (its consoles, the REPL), with the fake embedder and
a fake LLM that streams a known answer slowly: run in a pseudo-terminal by test_repl.py.

Usage: python chat_in_a_terminal.py HOME DOCS ANSWER
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from fakes import FakeEmbedder, FakeLLM

from ragchat.app import App
from ragchat.cli_options import consoles
from ragchat.config import Settings
from ragchat.llms import Generation, Message
from ragchat.repl import Repl


class SlowLLM(FakeLLM):
    """Streams its reply a word every 30 ms, like a model on a slow CPU."""

    def stream(
        self, messages: Sequence[Message], max_tokens: int, temperature: float
    ) -> Generation:
        generation = super().stream(messages, max_tokens, temperature)
        pieces = generation._pieces

        def slowly() -> Iterator[tuple[str, str | None]]:
            for piece in pieces:
                time.sleep(0.03)
                yield piece

        return Generation(slowly())


def main() -> None:
    home, docs, answer = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    settings = Settings(embedding_model="fake/bag-of-words")
    llm = SlowLLM([answer] * 10, n_ctx=4096)
    app = App(home, settings, frozenset({"embedding_model"}), FakeEmbedder(), llm)
    app.ingest(docs)
    out, err = consoles()
    Repl(app, out, errors=err).run()


if __name__ == "__main__":
    main()
