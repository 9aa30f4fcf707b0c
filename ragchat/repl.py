"""``ragchat chat``: a prompt-toolkit REPL that streams cited answers.

With a terminal: persistent history with suggestions, tab completion of /commands, Esc+Enter
(or a paste) for multi-line input, Ctrl-C stops an answer (or clears the line), Ctrl-D exits.
Without one (stdin is a pipe), each line is a question or a command.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from ragchat import citations, interrupts
from ragchat.config import MODES
from ragchat.engine import Answer
from ragchat.errors import RagchatError
from ragchat.prompting import Turn
from ragchat.render import answer_context, source_line, sources_view, stream_markdown, why_view
from ragchat.text import display_path, location, sanitize

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession

    from ragchat.app import App

COMMANDS = {
    "/help": "this help",
    "/sources": "the sources of the last answer, with their text",
    "/why": "what was searched, every excerpt retrieved with its scores, which went into the prompt",
    "/k": "N: retrieve N excerpts per question",
    "/mode": f"{'|'.join(MODES)}: how excerpts are ranked",
    "/collection": "NAME: ask another collection",
    "/model": "the models in use",
    "/clear": "forget the conversation",
    "/save": "FILE: save the conversation as Markdown",
    "/exit": "leave (or Ctrl-D)",
}
HELP = "\n".join(f"  {name:<12} {text}" for name, text in COMMANDS.items()) + (
    "\n\n  @path in a question searches only that file or folder."
    "\n  Esc+Enter adds a line; Ctrl-C stops an answer or clears the line."
)


class Repl:
    """The chat loop over ``app``, printing to ``console``. Its input is ``lines`` when given
    (tests, scripts), else the terminal, else stdin line by line."""

    def __init__(self, app: App, console: Console, lines: Iterable[str] | None = None) -> None:
        self.app = app
        self.console = console
        self.input = lines
        self.engine = app.engine()
        self.turns: list[Turn] = []
        self.answers: list[Answer] = []

    @property
    def last(self) -> Answer | None:
        return self.answers[-1] if self.answers else None

    def lines(self) -> Iterator[str]:
        if self.input is not None:
            yield from self.input
            return
        if not sys.stdin.isatty():
            yield from (line.rstrip("\n") for line in sys.stdin)
            return
        session = self._session()
        while True:
            try:
                yield session.prompt("› ")
            except KeyboardInterrupt:
                interrupts.handled()
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                return

    def _session(self) -> PromptSession[str]:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
        from prompt_toolkit.completion import WordCompleter
        from prompt_toolkit.history import FileHistory
        from prompt_toolkit.key_binding import KeyBindings

        bindings = KeyBindings()

        @bindings.add("escape", "enter")
        def _newline(event: Any) -> None:
            event.current_buffer.insert_text("\n")

        return PromptSession(
            history=FileHistory(str(self.app.home / "history")),
            auto_suggest=AutoSuggestFromHistory(),
            completer=WordCompleter(list(COMMANDS) + [f"/mode {m}" for m in MODES], sentence=True),
            complete_while_typing=False,
            key_bindings=bindings,
        )

    def run(self) -> None:
        with self.console.status("Loading models…"):
            self.engine.warm_up()
        self.console.print(
            Text.assemble(
                ("ragchat", "bold"),
                f" — collection {self.engine.collection!r}, LLM {self.app.llm.id}."
                " /help for commands, Ctrl-D to leave.",
            )
        )
        if self.app.llm.destination:
            self.console.print(
                Text(
                    f"Document excerpts are sent to {self.app.llm.destination} for every answer.",
                    style="yellow",
                )
            )
        for line in self.lines():
            text = line.strip()
            if not text:
                continue
            try:
                if text.startswith("/"):
                    if not self.command(text):
                        return
                else:
                    self.answer(text)
            except KeyboardInterrupt:  # before any text arrived
                interrupts.handled()
                self.console.print("[answer stopped]", style="yellow", markup=False)
            except RagchatError as exc:  # the session survives what a question can break
                self.console.print(f"Error: {exc}", style="red", markup=False)
            except Exception as exc:  # a dead store server, a bug: still not the end of the session
                self.console.print(
                    f"Error: unexpected {type(exc).__name__}: {sanitize(str(exc))[:300]}",
                    style="red",
                    markup=False,
                )

    # commands

    def command(self, line: str) -> bool:
        """Run a /command; False means leave."""
        name, _, argument = line.partition(" ")
        name, argument = name.lower(), argument.strip()
        if name in ("/exit", "/quit"):
            return False
        handler = getattr(self, "do_" + name[1:], None)
        if name not in COMMANDS or handler is None:
            self.console.print(f"Unknown command {name}; /help lists them.", markup=False)
        else:
            handler(argument)
        return True

    def do_help(self, _: str) -> None:
        self.console.print(HELP, markup=False, highlight=False)

    def do_sources(self, _: str) -> None:
        if self.last is None or not self.last.sources:
            self.console.print("No sources yet: ask a question first.", markup=False)
            return
        for n, hit in enumerate(self.last.sources, start=1):
            self.console.print(source_line(n, hit))
            self.console.print(Text(sanitize(hit.text.strip()), style="dim"))
            self.console.print()

    def do_why(self, _: str) -> None:
        if self.last is None:
            self.console.print("Nothing to explain yet: ask a question first.", markup=False)
            return
        self.console.print(why_view(self.last))

    def do_k(self, argument: str) -> None:
        if not argument.isdigit() or int(argument) < 1:
            self.console.print(f"Usage: /k N (now {self.engine.top_k})", markup=False)
            return
        self.engine.top_k = int(argument)
        self.console.print(f"Retrieving {argument} excerpts per question.", markup=False)

    def do_mode(self, argument: str) -> None:
        if argument not in MODES:
            self.console.print(
                f"Usage: /mode {'|'.join(MODES)} (now {self.app.settings.mode})", markup=False
            )
            return
        self.app = self.app.switch(mode=argument)
        self.engine.retriever = self.app.retriever()
        self.console.print(f"Ranking excerpts by {argument}.", markup=False)

    def do_collection(self, argument: str) -> None:
        if not argument:
            self.console.print(
                f"Usage: /collection NAME (now {self.engine.collection})", markup=False
            )
            return
        app = self.app.switch(collection=argument)
        engine = app.engine()
        self.app, self.engine = app, engine
        self.turns.clear()
        self.console.print(f"Asking collection {argument!r} (conversation cleared).", markup=False)

    def do_model(self, _: str) -> None:
        self.console.print(
            Text(
                f"LLM: {self.app.llm.id} (context {self.app.llm.n_ctx} tokens)\n"
                f"Embeddings: {self.app.embedder.id}\n"
                f"Ranking: {self.app.settings.mode}, {self.engine.top_k} excerpts"
            )
        )

    def do_clear(self, _: str) -> None:
        self.turns.clear()
        self.console.print("Conversation forgotten.", markup=False)

    def do_save(self, argument: str) -> None:
        if not argument:
            self.console.print("Usage: /save FILE", markup=False)
            return
        path = Path(shlex.split(argument)[0]).expanduser()
        try:
            path.write_text(transcript(self.answers), encoding="utf-8")
        except OSError as exc:
            self.console.print(f"Cannot write {path}: {exc.strerror or exc}", markup=False)
            return
        self.console.print(f"Saved {len(self.answers)} answers to {path}.", markup=False)

    # questions

    def scope(self, question: str) -> tuple[str, list[str] | None]:
        """The question without its @path words, and the ingested files they name."""
        words, paths, unknown = [], [], []
        for word in question.split():
            if word.startswith("@") and len(word) > 1:
                found = self.app.collection.files_under(Path(word[1:]).expanduser())
                (paths.extend(found) if found else unknown.append(word[1:]))
            else:
                words.append(word)
        for name in unknown:
            self.console.print(
                f"Nothing ingested under {name}; searching everything.",
                style="yellow",
                markup=False,
            )
        return " ".join(words), (paths or None)

    def answer(self, question: str) -> None:
        text, paths = self.scope(question)
        answer = self.engine.ask(text or question, history=self.turns, paths=paths)
        self.answers.append(answer)
        try:
            stream_markdown(self.console, answer.stream())
        except KeyboardInterrupt:
            interrupts.handled()
            answer.generation.close()
            self.console.print("[answer stopped]", style="yellow", markup=False)
            return
        self.turns.append(Turn(answer.question, answer.text))
        self.console.print(sources_view(answer.sources))
        for problem in citations.check(answer.text, [h.text for h in answer.sources]):
            self.console.print(Text("⚠ " + sanitize(problem), style="yellow"))
        self.console.print(answer_context(answer, self.app.llm.n_ctx))


def transcript(answers: list[Answer]) -> str:
    """The conversation as Markdown."""
    lines = [f"# ragchat conversation, {time.strftime('%Y-%m-%d %H:%M')}", ""]
    for answer in answers:
        lines += [f"## {answer.question}", "", answer.text.strip() or "(no answer)", ""]
        if answer.sources:
            lines.append("Sources:")
            lines.append("")
            for n, hit in enumerate(answer.sources, start=1):
                lines.append(f"{n}. {location(display_path(hit.path), hit.line, hit.page)}")
            lines.append("")
    return sanitize("\n".join(lines))
