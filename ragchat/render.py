"""What ragchat shows: rich renderables and safe text.

Text from documents or models is printed as plain ``Text`` (never parsed as markup) after
``sanitize`` removed terminal control sequences from it.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
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
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from ragchat.store import Hit
from ragchat.text import (
    is_under,
    location_suffix,
    page_name,
    plural,
    sanitize,
    shorten,
    shown_path,
    snippet,
)

if TYPE_CHECKING:
    from rich.markdown import Markdown
    from rich.status import Status

    from ragchat.engine import Answer
    from ragchat.explore import Axis, Cluster, Placed, Related
    from ragchat.ingest import IngestReport
    from ragchat.preview import Split


def source_line(n: int, hit: Hit) -> Text:
    line = Text(f"[{n}] ", style="bold cyan")
    path = shown_path(hit.path)
    if os.path.isabs(hit.path):  # a clickable file:// link where the terminal supports OSC 8
        line.append(path, style=Style(link=file_link(hit.path, hit.page)))
    else:
        line.append(path)
    line.append(sanitize(location_suffix(hit.line, hit.page, hit.page_label)))  # labels: text
    if hit.symbol:  # code: the function or class instead of headings
        line.append(f" — {sanitize(hit.symbol)}", style="dim")
    elif hit.headings and hit.line is None:
        line.append(f" — {sanitize(hit.headings)}", style="dim")
    line.append(f"  ({score_label(hit)})", style="dim")
    return line


def file_link(path: str, page: int | None = None) -> str:
    """The file:// URL a source line links to; a PDF's opens at the cited page."""
    uri = Path(path).as_uri()
    return f"{uri}#page={page}" if page is not None and path.lower().endswith(".pdf") else uri


def score_label(hit: Hit) -> str:
    """A hit's score named by the ranking that gave it: "fused 1.00" is a rank score of the
    hybrid ranking (the best hit always has 1.00), not a probability."""
    kind = "fused" if "fused" in hit.scores else next(iter(hit.scores), "")
    return f"{kind} {hit.score:.2f}" if kind else f"{hit.score:.2f}"


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


def search_view(hits: Sequence[Hit], query: str = "") -> RenderableType:
    """Each hit's source line and component scores, and a snippet of its text around the
    words of ``query`` it contains."""
    if not hits:
        return Text("Nothing found.", style="yellow")
    parts: list[RenderableType] = []
    for n, hit in enumerate(hits, start=1):
        line = source_line(n, hit)
        components = "  ".join(f"{k} {v:.3f}" for k, v in sorted(hit.scores.items()))
        parts.append(line.append(f"  [{components}]", style="dim") if components else line)
        parts.append(Text("    " + snippet(sanitize(hit.text), query, 240)))
    return Group(*parts)


_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]*)>?[^)]*\)")


def safe_markdown(text: str) -> Markdown:
    """Markdown of model output that fetches nothing and links nothing: images become their
    alt text and plain URL, links show their URL, no OSC 8 hyperlinks are emitted."""
    from rich.markdown import Markdown

    text = _IMAGE.sub(lambda m: f"{m.group(1) or 'image'} ({m.group(2)})", sanitize(text))
    return Markdown(text, hyperlinks=False)


_TOKEN = re.compile(r"\w+")


class AnswerView:
    """An answer as Markdown, wrapped at words to the console's width; as plain text when
    the Markdown would show less than the text (a reply of bare list markers such as
    "1. 1. 2." renders as nothing, raw HTML is dropped): never less than what the model said."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        options = options.update(no_wrap=False, overflow="fold")
        lines = console.render_lines(safe_markdown(self.text), options, pad=False)
        shown = "".join(segment.text for line in lines for segment in line)
        if _loses_words(self.text, shown):
            yield Text(sanitize(self.text), overflow="fold")
            return
        for line in lines:
            yield from line
            yield Segment.line()


def _loses_words(text: str, shown: str) -> bool:
    """Does ``shown`` miss a word of ``text``? Numbers count once each (lists renumber)."""
    wanted, got = Counter(_TOKEN.findall(text)), Counter(_TOKEN.findall(shown))
    return any(
        token not in got if token.isdigit() else got[token] < count
        for token, count in wanted.items()
    )


def stream_markdown(
    console: Console, pieces: Iterator[str], waiting: Callable[[], None] = lambda: None
) -> str:
    """Print an answer as it streams: re-rendered as Markdown on a terminal (wrapped at words,
    see ``AnswerView``), plain otherwise. ``waiting`` is called once the first text arrived
    (it ends a status line)."""
    text = ""
    if not console.is_terminal:
        for piece in pieces:
            if not text:
                waiting()
            text += piece
            console.file.write(sanitize(piece))
            console.file.flush()
        waiting()
        console.file.write("\n")
        return text
    from rich.live import Live

    for piece in pieces:  # nothing is drawn (and the status line stays) until text comes
        text += piece
        break
    waiting()
    with Live(
        AnswerView(text), console=console, refresh_per_second=12, vertical_overflow="visible"
    ) as live:
        for piece in pieces:
            text += piece
            live.update(AnswerView(text))
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
                f"With {plural(len(answer.packed.history), 'earlier turn')} of the conversation.",
                style="dim",
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
    text = f"{plural(used, 'excerpt')}, {prompt_tokens} of {n_ctx} context tokens"
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


# Tables fold a value that does not fit (a model name, a path) onto the next line instead of
# cutting it with "…": these are values users must read, and copy.


def key_value_table(rows: Sequence[tuple[str, Any]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:  # a Text is shown as it is (its maker sanitized it)
        table.add_row(key, value if isinstance(value, Text) else Text(sanitize(str(value))))
    return table


def collections_table(rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="Collections", title_justify="left")
    numbers = ("documents", "chunks", "dimension")
    for column in ("collection", "documents", "chunks", "embedder", "dimension"):
        table.add_column(
            column,
            justify="right" if column in numbers else "left",
            overflow="fold",
            min_width=len(column) if column in numbers else None,
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
    table.add_column("mode", no_wrap=True)
    for metric in metrics:  # "source recall@5": a header too wide wraps at its words
        table.add_column(metric.replace("_", " "), justify="right", overflow="fold", min_width=5)
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


class StatusLine:
    """A transient line on a terminal (spinner and text: "loading the model…") saying what
    ragchat waits for; ``stop`` erases it (the first token arrived). Nothing at all when the
    console is not a terminal or is quiet."""

    def __init__(self, console: Console, text: str = "") -> None:
        self.status: Status | None = None
        if console.is_terminal and not console.quiet:
            self.status = console.status(Text(text, style="dim"), spinner="dots")
            self.status.start()

    def update(self, text: str) -> None:
        if self.status is not None:
            self.status.update(Text(text, style="dim"))

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def __enter__(self) -> StatusLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _progress(console: Console, *columns: ProgressColumn | str) -> Progress:
    """A transient one-line progress bar: its bar takes the width the other columns leave,
    so the line fits any terminal (80 columns included)."""
    return Progress(
        SpinnerColumn(),
        *columns[:1],
        BarColumn(bar_width=None),
        *columns[1:],
        TimeElapsedColumn(),
        console=console,
        transient=True,
        expand=True,
        disable=not console.is_terminal or console.quiet,
    )


@contextmanager
def counting_progress(
    console: Console, description: str, total: int
) -> Iterator[Callable[[], None]]:
    """A progress bar with count and rate; yields the function that advances it by one."""
    bar = _progress(console, TextColumn(description), MofNCompleteColumn(), _PerSecondColumn())
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
        rate = f" {chunks / elapsed:.1f}/s" if elapsed > 0 and chunks else ""
        return Text(f"{plural(chunks, 'chunk')}{rate}", style="cyan")


class IngestProgress:
    """A rich progress bar for an ingest: files done of total, chunks embedded and their rate;
    ``note`` says what it waits for (the embedding model loading), "" when that is done."""

    def __init__(self, console: Console) -> None:
        self.bar = _progress(
            console,
            TextColumn("{task.description}"),
            MofNCompleteColumn(),
            TextColumn("files"),
            _RateColumn(),
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

    def note(self, text: str) -> None:
        if self.task is not None:
            self.bar.update(self.task, description=text or "Ingesting")

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
    summary = Text(shown_path(split.path), style="bold")
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
        f"{shown_path(str(path))}: {report.summary()}"
        f" ({plural(report.chunks_embedded, 'chunk')} embedded in {report.seconds:.1f}s){then}",
        report,
    )


def sync_line(report: IngestReport, root: Path) -> str:
    """One line per sync of ``ragchat watch`` (when, what changed: paths under ``root`` when
    few, how long), and a line for each file with notes."""
    import time

    def under(path: str) -> str:
        return shown_path(os.path.relpath(path, root) if is_under(path, str(root)) else path)

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
        f" ({plural(report.chunks_embedded, 'chunk')} embedded): {'; '.join(parts)}",
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
        line.append(shown_path(item.path))
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
        heading.append(f"  ({plural(len(cluster.members), 'document')})", style="dim")
        if cluster.name and cluster.keywords:
            heading.append(f"  [{sanitize(', '.join(cluster.keywords))}]", style="dim")
        parts.append(heading)
        if cluster.rejected:
            parts.append(
                Text(
                    f"  named by its words: the model's reply was not a short name"
                    f" ({sanitize(cluster.rejected)!r})",
                    style="dim yellow",
                )
            )
        shown = cluster.shown(members)
        for document in shown:
            line = Text("  ")
            line.append(shown_path(document.path))
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
                line.append(shown_path(item.location) + "  ", style="dim")
            line.append(shorten(sanitize(item.text), 160))
            parts.append(line)
    return Group(*parts)
