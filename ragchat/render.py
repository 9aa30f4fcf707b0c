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
from ragchat.text import display_path, is_under, location_suffix, page_name, sanitize, shorten

if TYPE_CHECKING:
    from rich.markdown import Markdown

    from ragchat.engine import Answer
    from ragchat.explore import Axis, Cluster, Placed, Related
    from ragchat.ingest import IngestReport
    from ragchat.preview import Split


def source_line(n: int, hit: Hit) -> Text:
    line = Text(f"[{n}] ", style="bold cyan")
    path = sanitize(display_path(hit.path))
    if os.path.isabs(hit.path):  # a clickable file:// link where the terminal supports OSC 8
        line.append(path, style=Style(link=Path(hit.path).as_uri()))
    else:
        line.append(path)
    line.append(sanitize(location_suffix(hit.line, hit.page, hit.page_label)))  # labels: text
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
    parts: list[RenderableType] = [Text.assemble(("Searched: ", "bold"), sanitize(answer.query))]
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
    for key, value in rows:  # a Text is shown as it is (its maker sanitized it)
        table.add_row(key, value if isinstance(value, Text) else Text(sanitize(str(value))))
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
        self.bar.update(self.task, advance=files, chunks=done, description="Ingesting")

    def step(self, text: str) -> None:
        """The file being read says what it is at (a long OCR: "scan.pdf: OCR page 3 of 40")."""
        if self.task is not None:
            from rich.markup import escape

            self.bar.update(self.task, description=f"Ingesting · {escape(sanitize(text)[:60])}")


def chunks_view(split: Split) -> RenderableType:
    """``ragchat chunks``: each chunk with its line or page (as citations name it), headings,
    size and the start of its text."""
    parts: list[RenderableType] = []
    total = sum(split.tokens)
    summary = Text(sanitize(display_path(split.path)), style="bold")
    summary.append(
        f": {len(split.chunks)} chunks, {total:,} tokens (target {split.target}, limit"
        f" {split.limit}, {sanitize(split.embedder)})",
        style="dim",
    )
    parts.append(summary)
    for note in split.notes:
        parts.append(Text(f"note: {sanitize(note)}", style="yellow"))
    for n, (chunk, tokens) in enumerate(zip(split.chunks, split.tokens, strict=True), start=1):
        line = Text(f"[{n}] ", style="bold cyan")
        place = page_name(chunk.page, chunk.label)
        if chunk.line is not None:
            place = f"line {chunk.line}" + (f", {place}" if place else "")
        line.append(sanitize(place))
        if chunk.heading_path:
            line.append(f" — {sanitize(chunk.heading_path)}", style="dim")
        line.append(f"  ({tokens} tokens)", style="dim")
        parts.append(line)
        parts.append(Text("    " + shorten(sanitize(chunk.text), 200)))
    return Group(*parts)


def ingest_line(path: Path | str, report: IngestReport, then: str = "") -> str:
    """What an ingest of ``path`` did, on one line (``then`` added to it), and a line for
    each file with notes."""
    return _with_notes(
        f"{path}: {report.summary()}"
        f" ({report.chunks_embedded} chunks embedded in {report.seconds:.1f}s){then}",
        report,
    )


def sync_line(report: IngestReport, root: Path) -> str:
    """One line per sync of ``ragchat watch`` (when, what changed: paths under ``root`` when
    few, how long), and a line for each file with notes."""
    import time

    def under(path: str) -> str:
        return os.path.relpath(path, root) if is_under(path, str(root)) else path

    parts = []
    for verb, paths in (
        ("added", report.added),
        ("updated", report.updated),
        ("removed", report.removed),
    ):
        if paths:
            names = ", ".join(under(p) for p in paths) if len(paths) <= 3 else len(paths)
            parts.append(f"{verb} {names}")
    if report.skipped:
        parts.append("skipped " + ", ".join(f"{under(p)} ({why})" for p, why in report.skipped))
    return _with_notes(
        f"{time.strftime('%H:%M:%S')} synced in {report.seconds:.1f}s"
        f" ({report.chunks_embedded} chunks embedded): {'; '.join(parts)}",
        report,
    )


def _with_notes(line: str, report: IngestReport) -> str:
    return sanitize("\n  ".join([line, *report.note_lines()]))


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
        shown = cluster.shown(members)
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
