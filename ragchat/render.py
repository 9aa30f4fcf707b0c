"""What ragchat shows: rich renderables and safe text.

Text from documents or models is printed as plain ``Text`` (never parsed as markup) after
``sanitize`` removed terminal control sequences from it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.style import Style
from rich.table import Table
from rich.text import Text

from ragchat.store import Hit
from ragchat.text import display_path, location_suffix, sanitize, shorten

if TYPE_CHECKING:
    from rich.markdown import Markdown

    from ragchat.engine import Answer
    from ragchat.explore import Axis, Cluster, Placed, Related


def source_line(n: int, hit: Hit) -> Text:
    line = Text(f"[{n}] ", style="bold cyan")
    path = sanitize(display_path(hit.path))
    if os.path.isabs(hit.path):  # a clickable file:// link where the terminal supports OSC 8
        line.append(path, style=Style(link=Path(hit.path).as_uri()))
    else:
        line.append(path)
    line.append(location_suffix(hit.line, hit.page))
    if hit.symbol:  # code: the function or class instead of headings
        line.append(f" — {sanitize(hit.symbol)}", style="dim")
    elif hit.headings and hit.line is None:
        line.append(f" — {sanitize(hit.headings)}", style="dim")
    line.append(f"  ({hit.score:.2f})", style="dim")
    return line


def sources_view(hits: Sequence[Hit]) -> RenderableType:
    if not hits:
        return Text("No sources: nothing relevant was found in the collection.", style="yellow")
    return Group(Text("Sources", style="bold"), *(source_line(n, h) for n, h in enumerate(hits, 1)))


def not_found_view(answer: Answer) -> RenderableType:
    """The collection does not support the question: say so, with the nearest excerpts."""
    from ragchat.engine import NOT_FOUND_TEXT

    parts: list[RenderableType] = [Text(NOT_FOUND_TEXT, style="bold yellow")]
    if answer.closest:
        parts.append(Text("Closest, not relevant:", style="dim"))
        parts.extend(source_line(n, h) for n, h in enumerate(answer.closest, 1))
    return Group(*parts)


def warning_line(warning: str) -> Text:
    """One problem with an answer (weak support, a citation or number the excerpts lack)."""
    return Text("⚠ " + sanitize(warning), style="yellow")


def search_view(hits: Sequence[Hit]) -> RenderableType:
    if not hits:
        return Text("Nothing found.", style="yellow")
    parts: list[RenderableType] = []
    for n, hit in enumerate(hits, start=1):
        line = source_line(n, hit)
        components = "  ".join(f"{k} {v:.3f}" for k, v in sorted(hit.scores.items()))
        parts.append(line.append(f"  [{components}]", style="dim") if components else line)
        parts.append(Text("    " + shorten(sanitize(hit.text), 240)))
    return Group(*parts)


_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]*)>?[^)]*\)")


def safe_markdown(text: str) -> Markdown:
    """Markdown of model output that fetches nothing and links nothing: images become their
    alt text and plain URL, links show their URL, no OSC 8 hyperlinks are emitted."""
    from rich.markdown import Markdown

    text = _IMAGE.sub(lambda m: f"{m.group(1) or 'image'} ({m.group(2)})", sanitize(text))
    return Markdown(text, hyperlinks=False)


def stream_markdown(console: Console, pieces: Iterator[str]) -> str:
    """Print an answer as it streams: re-rendered as Markdown on a terminal, plain otherwise."""
    text = ""
    if not console.is_terminal:
        for piece in pieces:
            text += piece
            console.file.write(sanitize(piece))
            console.file.flush()
        console.file.write("\n")
        return text
    from rich.live import Live

    with Live(console=console, refresh_per_second=12, vertical_overflow="visible") as live:
        for piece in pieces:
            text += piece
            live.update(safe_markdown(text))
    return text


def why_view(answer: Answer) -> RenderableType:
    """What was searched, every excerpt retrieved with its scores, and which went in."""
    used = {hit.id for hit in answer.sources}
    dropped = {hit.id for hit in answer.packed.dropped}
    parts: list[RenderableType] = [
        Text.assemble(("Searched: ", "bold"), sanitize(query)) for query in answer.queries
    ]
    if answer.support is not None:
        support = answer.support
        parts.append(
            Text(
                f"Support: {support.level} (dense z {support.dense_z:.1f},"
                f" lexical z {support.lexical_z:.1f} over the collection's probe questions)",
                style="dim",
            )
        )
    if answer.packed.history:
        parts.append(
            Text(
                f"With {len(answer.packed.history)} earlier turns of the conversation.", style="dim"
            )
        )
    for n, hit in enumerate(answer.hits, start=1):
        status = (
            "in prompt"
            if hit.id in used
            else "dropped for space"
            if hit.id in dropped
            else "not used"
        )
        scores = "  ".join(f"{k} {v:.3f}" for k, v in sorted(hit.scores.items()))
        line = source_line(n, hit).append(f"  [{scores}]  ", style="dim")
        line.append(status, style="green" if hit.id in used else "yellow")
        parts.append(line)
    parts.append(
        Text(
            f"Prompt: {answer.packed.prompt_tokens} of {answer.packed.budget} tokens available for it.",
            style="dim",
        )
    )
    return Group(*parts)


def context_line(used: int, dropped: int, prompt_tokens: int, n_ctx: int, truncated: bool) -> Text:
    text = f"{used} excerpts, {prompt_tokens} of {n_ctx} context tokens"
    if dropped:
        text += f", {dropped} dropped for space"
    line = Text(text, style="dim")
    if truncated:
        line = Text("[answer cut off at --max-tokens] ", style="yellow") + line
    return line


def answer_context(answer: Answer, n_ctx: int) -> Text:
    """The quiet line after an answer: excerpts used, tokens of the context, any cut-off."""
    return context_line(
        len(answer.sources),
        len(answer.packed.dropped),
        answer.packed.prompt_tokens,
        n_ctx,
        answer.truncated,
    )


def key_value_table(rows: Sequence[tuple[str, Any]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, Text(sanitize(str(value))))
    return table


def collections_table(rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="Collections", title_justify="left")
    for column in ("collection", "documents", "chunks", "embedder", "dimension"):
        table.add_column(
            column, justify="right" if column in ("documents", "chunks", "dimension") else "left"
        )
    for row in rows:
        table.add_row(
            *(
                sanitize(str(row[c]))
                for c in ("name", "documents", "chunks", "embedder", "dimension")
            )
        )
    return table


def eval_table(title: str, modes: dict[str, dict[str, float]]) -> Table:
    table = Table(title=title, title_justify="left")
    metrics = list(dict.fromkeys(m for figures in modes.values() for m in figures))
    table.add_column("mode")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for mode, figures in modes.items():
        table.add_row(mode, *(f"{figures[m]:.3f}" if m in figures else "" for m in metrics))
    return table


ANSWER_FIGURES = (
    ("correct", "correct (answerable questions)"),
    ("mean_f1", "mean token F1 (answerable)"),
    ("false_refusals", "false refusals (answerable refused)"),
    ("refusal_rate", "refusal rate (unanswerable refused)"),
    ("citations_valid", "citations valid (answered)"),
    ("uncited", "answers citing nothing (answered)"),
    ("evidence_recall", "evidence recall (a gold source among the excerpts)"),
    ("seconds_per_question", "seconds per question"),
)


def answers_table(title: str, figures: dict[str, Any], note: str | None) -> RenderableType:
    """ragchat eval's answer scores: one figure a row, then the note on what they measure."""
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("questions", f"{figures['questions']} ({figures['unanswerable']} unanswerable)")
    for key, label in ANSWER_FIGURES:
        value = figures.get(key)
        if value is not None:
            table.add_row(
                label, f"{value:.2f}" if key == "seconds_per_question" else f"{value:.3f}"
            )
    return Group(table, Text(note, style="yellow")) if note else table


@contextmanager
def counting_progress(
    console: Console, description: str, total: int
) -> Iterator[Callable[[], None]]:
    """A progress bar with count and rate; yields the function that advances it by one."""
    bar = Progress(
        SpinnerColumn(),
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        _PerSecondColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal or console.quiet,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)


class _PerSecondColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0
        return Text(f"{task.completed / elapsed:.1f}/s" if elapsed > 0 else "", style="cyan")


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        chunks = task.fields.get("chunks", 0)
        elapsed = task.elapsed or 0
        rate = chunks / elapsed if elapsed > 0 else 0.0
        return Text(f"{chunks} chunks, {rate:.1f} chunks/s", style="cyan")


class IngestProgress:
    """A rich progress bar for an ingest: files done of total, chunks embedded and their rate."""

    def __init__(self, console: Console) -> None:
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files"),
            _RateColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task: TaskID | None = None
        self.live = False

    def __enter__(self) -> IngestProgress:
        self.live = self.bar.console.is_terminal and not self.bar.console.quiet
        if self.live:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.bar.stop()

    def start(self, total_files: int) -> None:
        self.task = self.bar.add_task("Ingesting", total=total_files, chunks=0)

    def advance(self, files: int = 0, chunks: int = 0) -> None:
        if self.task is None:
            return
        done = self.bar.tasks[0].fields.get("chunks", 0) + chunks
        self.bar.update(self.task, advance=files, chunks=done)


# exploring: similar, cluster, spectrum


def related_view(title: str, related: Sequence[Related]) -> RenderableType:
    if not related:
        return Text("No other documents in the collection.", style="yellow")
    parts: list[RenderableType] = [Text(f"Documents most like {sanitize(title)}", style="bold")]
    for n, item in enumerate(related, start=1):
        line = Text(f"{n:>2}. ", style="bold cyan")
        line.append(f"{item.score:.3f}  ", style="cyan")
        line.append(sanitize(display_path(item.path)))
        line.append(f" — {sanitize(item.title)}", style="dim")
        parts.append(line)
    return Group(*parts)


def clusters_view(clusters: Sequence[Cluster], members: int = 0) -> RenderableType:
    """Each cluster: its name (or keywords) and size, then its members nearest the centre
    first (all of them, or the first ``members``)."""
    parts: list[RenderableType] = []
    for cluster in clusters:
        heading = Text(f"Cluster {cluster.number}: ", style="bold")
        heading.append(sanitize(cluster.label), style="bold green")
        heading.append(f"  ({len(cluster.members)} documents)", style="dim")
        if cluster.name and cluster.keywords:
            heading.append(f"  [{sanitize(', '.join(cluster.keywords))}]", style="dim")
        parts.append(heading)
        shown = cluster.members[:members] if members else cluster.members
        for document in shown:
            line = Text("  ")
            line.append(sanitize(display_path(document.path)))
            line.append(f" — {sanitize(document.title)}", style="dim")
            parts.append(line)
        if len(shown) < len(cluster.members):
            parts.append(Text(f"  … and {len(cluster.members) - len(shown)} more", style="dim"))
        parts.append(Text(""))
    return Group(*parts[:-1])


def spectrum_view(
    axis: Axis, groups: Sequence[tuple[str, Sequence[Placed]]], width: int = 21
) -> RenderableType:
    """Texts with their score and a marker on a small ruler from A (0) to B (1)."""
    parts: list[RenderableType] = [
        Text.assemble(
            ("0 = ", "dim"),
            (sanitize(axis.a_label), "bold"),
            ("   1 = ", "dim"),
            (sanitize(axis.b_label), "bold"),
        )
    ]
    for heading, placed in groups:
        if heading:
            parts.append(Text(heading, style="bold"))
        for item in placed:
            position = min(max(round(item.score * (width - 1)), 0), width - 1)
            ruler = "".join("●" if i == position else "·" for i in range(width))
            line = Text(f"{item.score:7.3f} ", style="cyan")
            line.append(ruler + " ", style="dim")
            if item.location:
                line.append(sanitize(display_path(item.location)) + "  ", style="dim")
            line.append(shorten(sanitize(item.text), 160))
            parts.append(line)
    return Group(*parts)
