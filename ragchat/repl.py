"""``ragchat chat``: a prompt-toolkit REPL that streams cited answers.

With a terminal: persistent history with suggestions, tab completion of /commands, Esc+Enter
(or a paste) for multi-line input, Ctrl-C stops an answer (or clears the line), Ctrl-D exits.
Without one (stdin is a pipe), each line is a question or a command.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, WordCompleter
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from ragchat import interrupts
from ragchat.config import MODES
from ragchat.engine import NOT_FOUND_TEXT, Answer
from ragchat.errors import RagchatError
from ragchat.prompting import Turn
from ragchat.render import (
    StatusLine,
    answer_context,
    not_found_view,
    source_line,
    sources_view,
    stream_markdown,
    warning_line,
    why_view,
)
from ragchat.text import display_path, escaped, location, plural, sanitize, shown_path

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.document import Document
    from prompt_toolkit.history import History

    from ragchat.app import App

COMMANDS = {
    "/help": "this help",
    "/sources": "the sources of the last answer, with their text",
    "/why": "what was searched, every excerpt retrieved with its scores, which went into the prompt",
    "/k": "N: retrieve N excerpts per question",
    "/mode": f"{'|'.join(MODES)}: how excerpts are ranked",
    "/collection": "NAME: ask another collection",
    "/model": "[NAME]: the models in use; with NAME, answer with that LLM from now on",
    "/clear": "forget the conversation",
    "/save": "FILE: save the conversation as Markdown",
    "/exit": "leave (also /quit, /q, exit, quit, or Ctrl-D)",
}
LEAVE = frozenset({"/exit", "/quit", "/q"})
LEAVE_WORDS = frozenset({"exit", "quit"})  # typed without the slash, alone on the line
NOTES = (
    '@path in a question searches only that file or folder (@"name with spaces.md"; Tab'
    " completes ingested paths).",
    "Esc+Enter adds a line; Ctrl-C stops an answer or clears the line.",
)
# @path, @"a path" or @'a path'; an unquoted path ends before trailing punctuation
_AT_PATH = re.compile(r"""@(?:"([^"]+)"|'([^']+)'|(\S+?))([?!.,;:)\]]*)(?=\s|$)""")


def help_view() -> RenderableType:
    """The commands in two columns: a description that wraps stays in its column."""
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(min_width=20)
    for name, text in COMMANDS.items():
        table.add_row(f"  {name:<12}", text)
    table.add_row("", "")
    for note in NOTES:
        table.add_row("", note)
    return table


class Repl:
    """The chat loop over ``app``, printing to ``console``. Its input is ``lines`` when given
    (tests, scripts), else the terminal, else stdin line by line."""

    def __init__(
        self,
        app: App,
        console: Console,
        lines: Iterable[str] | None = None,
        errors: Console | None = None,
    ) -> None:
        self.app = app
        self.console = console
        self.errors = errors or console  # where the transient status lines go (stderr)
        self.input = lines
        self.engine = app.engine()
        self.turns: list[Turn] = []
        self.answers: list[Answer] = []
        self.questions: list[str] = []  # as typed, @path words included (for /save)
        self._paths: list[str] | None = None

    @property
    def last(self) -> Answer | None:
        return self.answers[-1] if self.answers else None

    def lines(self) -> Iterator[str]:
        if self.input is not None:
            yield from self.input
            return
        if not sys.stdin.isatty():
            try:
                yield from (line.rstrip("\n") for line in sys.stdin)
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else exc
                self.console.print(f"Cannot read stdin ({reason}); leaving.", markup=False)
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
        from prompt_toolkit.key_binding import KeyBindings

        bindings = KeyBindings()

        @bindings.add("escape", "enter")
        def _newline(event: Any) -> None:
            event.current_buffer.insert_text("\n")

        return PromptSession(
            history=self._history(),
            auto_suggest=AutoSuggestFromHistory(),
            completer=ChatCompleter(self.completable_paths),
            complete_while_typing=False,
            key_bindings=bindings,
        )

    def _history(self) -> History:
        """The history file, or (when it cannot be used: a folder, unwritable) none kept."""
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        path = self.app.home / "history"
        try:
            with path.open("ab"):
                pass
        except OSError as exc:
            self.console.print(
                f"Cannot keep the chat history in {escaped(str(path))} ({exc.strerror or exc});"
                " this chat keeps none.",
                style="yellow",
                markup=False,
            )
            return InMemoryHistory()
        return FileHistory(str(path))

    def completable_paths(self) -> list[str]:
        """Ingested files and the folders above them, as @path can name them: relative to
        the working directory when under it."""
        if self._paths is None:
            shown: set[str] = set()
            for key in self.app.collection.files():
                path = display_path(key)
                shown.add(path)
                parent = os.path.dirname(path)
                while parent and parent not in shown and parent != os.sep:
                    shown.add(parent + os.sep)
                    parent = os.path.dirname(parent)
            self._paths = sorted(shown)
        return self._paths

    @contextlib.contextmanager
    def _keys_not_echoed(self) -> Iterator[None]:
        """While an answer streams, what is typed is not echoed into it (it stays queued for
        the next prompt)."""
        if self.input is not None or not sys.stdin.isatty():
            yield
            return
        import termios

        descriptor = sys.stdin.fileno()
        try:
            saved = termios.tcgetattr(descriptor)
        except termios.error:
            yield
            return
        quiet = list(saved)
        quiet[3] &= ~termios.ECHO
        termios.tcsetattr(descriptor, termios.TCSANOW, quiet)
        try:
            yield
        finally:
            termios.tcsetattr(descriptor, termios.TCSANOW, saved)

    def run(self) -> None:
        with StatusLine(self.errors, "Loading the models…"):
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
            if text.lower() in LEAVE_WORDS:
                return
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
                self.console.print(f"Error: {escaped(str(exc))}", style="red", markup=False)
            except Exception as exc:  # a dead store server, a bug: still not the end of the session
                self.console.print(
                    f"Error: unexpected {type(exc).__name__}: {escaped(str(exc))[:300]}",
                    style="red",
                    markup=False,
                )

    # commands

    def command(self, line: str) -> bool:
        """Run a /command; False means leave."""
        name, _, argument = line.partition(" ")
        name, argument = name.lower(), argument.strip()
        if name in LEAVE:
            return False
        handler = getattr(self, "do_" + name[1:], None)
        if name not in COMMANDS or handler is None:
            self.console.print(f"Unknown command {name}; /help lists them.", markup=False)
        else:
            handler(argument)
        return True

    def do_help(self, _: str) -> None:
        self.console.print(help_view(), markup=False, highlight=False)

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
        if argument.isdigit() and int(argument) == 0:
            self.console.print(
                f"/k 0 would retrieve no excerpts, so nothing to answer from; give 1 or more"
                f" (now {self.engine.top_k}).",
                markup=False,
            )
            return
        if not argument.isdigit():
            self.console.print(f"Usage: /k N (now {self.engine.top_k})", markup=False)
            return
        self.engine.top_k = int(argument)
        self.console.print(
            f"Retrieving {plural(int(argument), 'excerpt')} per question.", markup=False
        )

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
        self._use(app)
        self._paths = None
        self.turns.clear()
        self.console.print(f"Asking collection {argument!r} (conversation cleared).", markup=False)

    def _use(self, app: App) -> None:
        """Answer through ``app`` from now on, keeping the number of excerpts asked for."""
        top_k = self.engine.top_k
        self.engine = app.engine()
        self.engine.top_k = top_k
        self.app = app

    def do_model(self, argument: str) -> None:
        if argument:
            app = self.app.switch(model=argument)
            with StatusLine(self.errors, f"Loading {argument}…"):
                app.llm.check()
                app.llm.count_tokens("warm up")  # loads it now, not at the next question
            self._use(app)
            self.console.print(
                f"Answering with {app.llm.id} (collection and conversation kept).", markup=False
            )
            return
        self.console.print(
            Text(
                f"LLM: {self.app.llm.id} (context {self.app.llm.n_ctx} tokens)\n"
                f"Embeddings: {self.app.embedder.id}\n"
                f"Ranking: {self.app.settings.mode}, {plural(self.engine.top_k, 'excerpt')}"
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
            path.write_text(transcript(self.answers, self.questions), encoding="utf-8")
        except OSError as exc:
            self.console.print(
                f"Cannot write {escaped(str(path))}: {exc.strerror or exc}", markup=False
            )
            return
        self.console.print(
            f"Saved {plural(len(self.answers), 'answer')} to {escaped(str(path))}.", markup=False
        )

    # questions

    def scope(self, question: str) -> tuple[str, list[str] | None]:
        """The question without its @path words, and the ingested files they name."""
        paths: list[str] = []
        unknown: list[str] = []

        def take(match: re.Match[str]) -> str:
            name = next(group for group in match.groups()[:3] if group)
            found = self.app.collection.files_under(Path(name).expanduser())
            (paths.extend(found) if found else unknown.append(name))
            return ""

        text = " ".join(_AT_PATH.sub(take, question).split())
        for name in unknown:
            self.console.print(
                f"Nothing ingested under {escaped(name)}; searching everything.",
                style="yellow",
                markup=False,
            )
        return text, (paths or None)

    def answer(self, question: str) -> None:
        text, paths = self.scope(question)
        with StatusLine(self.errors, "Searching…") as status:
            answer = self.engine.ask(text or question, history=self.turns, paths=paths)
            self.answers.append(answer)
            self.questions.append(question)
            if not answer.found:  # said, and the chat goes on; the turn is not part of it
                status.stop()
                self.console.print(not_found_view(answer))
                return
            status.update(f"Reading {plural(len(answer.sources), 'excerpt')}…")
            try:
                with self._keys_not_echoed():
                    stream_markdown(self.console, answer.stream(), waiting=status.stop)
            except KeyboardInterrupt:
                interrupts.handled()
                answer.generation.close()
                status.stop()
                self.console.print("[answer stopped]", style="yellow", markup=False)
                return
        self.turns.append(Turn(answer.question, answer.text))
        self.console.print(sources_view(answer.sources))
        for warning in answer.warnings:
            self.console.print(warning_line(warning))
        self.console.print(answer_context(answer, self.app.llm.n_ctx))


class ChatCompleter(Completer):
    """Tab completion: /commands at the start of the line, and after an @ the ingested paths
    (quoted when they hold a space)."""

    def __init__(self, paths: Callable[[], list[str]]) -> None:
        self.paths = paths
        self.commands = WordCompleter(list(COMMANDS) + [f"/mode {m}" for m in MODES], sentence=True)

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterator[Completion]:
        before = document.text_before_cursor
        word = re.search(r"""@(["']?)([^"']*)$""", before) or re.search(r"@()(\S*)$", before)
        if word is None:
            if before.startswith("/"):
                yield from self.commands.get_completions(document, event)
            return
        quote, typed = word.groups()
        if not quote and " " in typed:
            return
        for path in self.paths():
            if path.startswith(typed):
                mark = quote or ('"' if " " in path else "")
                closing = mark if mark and not path.endswith(os.sep) else ""
                yield Completion(
                    mark + path + closing,
                    start_position=-len(quote + typed),
                    display=path,
                )


def transcript(answers: list[Answer], questions: list[str] | None = None) -> str:
    """The conversation as Markdown; each question as typed (``questions``) when given."""
    lines = [f"# ragchat conversation, {time.strftime('%Y-%m-%d %H:%M')}", ""]
    for n, answer in enumerate(answers):
        question = questions[n] if questions else answer.question
        text = answer.text.strip() if answer.found else NOT_FOUND_TEXT
        lines += [f"## {question}", "", text or "(no answer)", ""]
        if answer.sources:
            lines.append("Sources:")
            lines.append("")
            for number, hit in enumerate(answer.sources, start=1):
                where = location(shown_path(hit.path), hit.line, hit.page, hit.page_label)
                lines.append(f"{number}. {where}")
            lines.append("")
    return sanitize("\n".join(lines))
