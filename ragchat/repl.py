"""``ragchat chat``: a prompt-toolkit REPL that streams cited answers.

With a terminal: persistent history, suggestions from history, Ctrl-C stops an answer (or
clears the line), Ctrl-D exits. Without one (stdin is a pipe), each line is a question.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.text import Text

from ragchat.engine import Answer
from ragchat.render import context_line, sanitize, source_line, sources_view

HELP = """Commands:
  /help      this help
  /sources   the sources of the last answer, with their text
  /exit      leave (or Ctrl-D)
Ctrl-C stops an answer in progress; at the prompt it clears the line."""


class Repl:
    def __init__(self, app: Any, console: Console) -> None:
        self.app = app
        self.console = console
        self.engine = app.engine()
        self.last: Answer | None = None

    def lines(self) -> Iterator[str]:
        if not sys.stdin.isatty():
            yield from (line.rstrip("\n") for line in sys.stdin)
            return
        from prompt_toolkit import PromptSession
        from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
        from prompt_toolkit.history import FileHistory

        session: PromptSession[str] = PromptSession(
            history=FileHistory(str(self.app.home / "history")),
            auto_suggest=AutoSuggestFromHistory(),
        )
        while True:
            try:
                yield session.prompt("› ")
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                return

    def run(self) -> None:
        with self.console.status("Loading models…"):
            self.engine.warm_up()
        self.console.print(
            Text.assemble(
                ("ragchat", "bold"),
                f" — collection {self.engine.collection!r}, LLM {self.app.llm.id}. /help for commands, Ctrl-D to leave.",
            )
        )
        for line in self.lines():
            question = line.strip()
            if not question:
                continue
            if question.startswith("/"):
                if not self.command(question):
                    return
                continue
            try:
                self.answer(question)
            except KeyboardInterrupt:  # during retrieval, before any text arrived
                self.console.print("[answer stopped]", style="yellow", markup=False)

    def command(self, line: str) -> bool:
        """Run a /command; False means leave."""
        name = line.split()[0].lower()
        if name in ("/exit", "/quit"):
            return False
        if name == "/help":
            self.console.print(HELP, markup=False)
        elif name == "/sources":
            if self.last is None or not self.last.sources:
                self.console.print("No sources yet: ask a question first.", markup=False)
            for n, hit in enumerate(self.last.sources if self.last else [], start=1):
                self.console.print(source_line(n, hit))
                self.console.print(Text(sanitize(hit.text.strip()), style="dim"), "")
        else:
            self.console.print(f"Unknown command {name}; /help lists them.", markup=False)
        return True

    def answer(self, question: str) -> None:
        answer = self.engine.ask(question)
        self.last = answer
        stream = answer.stream()
        try:
            for piece in stream:
                self.console.file.write(sanitize(piece))
                self.console.file.flush()
        except KeyboardInterrupt:
            stream.close()
            answer.generation.close()
            self.console.print()
            self.console.print("[answer stopped]", style="yellow", markup=False)
            return
        self.console.print()
        self.console.print(sources_view(answer.sources))
        self.console.print(
            context_line(
                len(answer.sources),
                len(answer.packed.dropped),
                answer.packed.prompt_tokens,
                self.app.llm.n_ctx,
                answer.truncated,
            )
        )
