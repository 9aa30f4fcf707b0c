"""Chunking: pages of blocks become chunks that fit the embedder.

Paragraphs are the unit. Short neighbours (same page, same heading path) are merged up to the
target size; a paragraph over it is split at sentence boundaries, a sentence over the
embedder's hard limit at word boundaries, and a "word" over it (a line of base64, minified
JSON) at characters. Sizes are counted with the embedder's own tokenizer, prefix and special
tokens included, so no chunk is ever truncated by the embedder. Table rows (a block with a
``header``) are split only between rows, and every chunk of them starts with the header row,
so a row never travels without the names of its columns.

Work and memory grow linearly with the text: pages are chunked one at a time as they come (a
big text file arrives as windows of it, see loaders.py), the tokenizer sees bounded batches,
and a paragraph too long to be one chunk is not counted whole, only its pieces.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from ragchat.pages import Block, Page
from ragchat.text import trimmed_span, with_headings

CHUNKER_VERSION = "3"  # 3: CSV and TSV files as table rows; 2: Python files by function and class

# Counts the tokens the embedder will see for each text (prefix and special tokens included).
TokenCounter = Callable[[Sequence[str]], list[int]]


@dataclass(frozen=True)
class Chunk:
    text: str
    page: int | None
    headings: tuple[str, ...]
    start: int  # character span in the page text (in the file's text for a window)
    end: int
    symbol: str = ""  # code: the function or class the chunk is (part of)
    line: int | None = None  # code: first and last line in the file, from 1
    end_line: int | None = None
    label: str = ""  # the page as cited when not "page N": "slide 3", "sheet Revenue"
    header: str = ""  # table rows: the header row the text starts with (not in start..end)

    @property
    def heading_path(self) -> str:
        return " > ".join(h for h in self.headings if h)

    @property
    def embed_text(self) -> str:
        """What the embedder sees: the heading path gives a paragraph its context."""
        return with_headings(self.heading_path, self.text)


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    cost: int


_SENTENCE_END = re.compile(r"(?<=[.!?;:])[\"')\]]*\s+|\n+")
_LINE_END = re.compile(r"\n+")  # code is split only between lines
_WORD = re.compile(r"\S+\s*")
# A block longer than this many characters per token of the limit is split before it is
# counted: counting it whole would only say that it must be split (and tokenizing a
# megabyte-long line at once is slow and takes a lot of memory).
LONG_BLOCK_CHARS_PER_TOKEN = 16
COUNT_BATCH_CHARS = 1 << 18  # characters handed to the tokenizer at once


def chunk_pages(
    pages: Iterable[Page], count_tokens: TokenCounter, target: int, limit: int
) -> list[Chunk]:
    """Chunks of at most ``limit`` embedder tokens, aiming at ``target``."""
    return list(iter_chunks(pages, count_tokens, target, limit))


def iter_chunks(
    pages: Iterable[Page], count_tokens: TokenCounter, target: int, limit: int
) -> Iterator[Chunk]:
    """``chunk_pages``, page by page: pages are read from ``pages`` only as chunks are taken."""
    target = min(target, limit)
    count_tokens = _batched(count_tokens)
    overhead = count_tokens([""])[0]
    costs_of = _cost_function(count_tokens, overhead)
    for page in pages:
        yield from _enforce_limit(
            _page_chunks(page, costs_of, overhead, target, limit), count_tokens, limit
        )


def _page_chunks(
    page: Page,
    costs_of: Callable[[list[str]], list[int]],
    overhead: int,
    target: int,
    limit: int,
) -> list[Chunk]:
    blocks = [b for b in page.blocks if page.text[b.start : b.end].strip()]
    if not blocks:
        return []
    heading_costs = costs_of(
        [
            (" > ".join(b.headings) + "\n" if b.headings else "")
            + (b.header + "\n" if b.header else "")
            for b in blocks
        ]
    )
    long_block = LONG_BLOCK_CHARS_PER_TOKEN * limit
    counted = [b for b in blocks if b.end - b.start <= long_block]
    costs = dict(zip(counted, costs_of([page.text[b.start : b.end] for b in counted]), strict=True))
    lines = _LineIndex(page.text) if page.code else None
    chunks: list[Chunk] = []
    group: list[_Unit] = []
    group_size = 0
    group_block: Block | None = None  # the block whose headings, symbol and header it has
    for block, heading_cost in zip(blocks, heading_costs, strict=True):
        room_target = max(target - overhead - heading_cost, 1)
        room_limit = max(limit - overhead - heading_cost, 1)
        cost = costs.get(block)
        if cost is not None and cost <= room_target:
            units = [_Unit(block.start, block.end, cost)]
        else:
            pattern = _LINE_END if page.code or block.header else _SENTENCE_END
            units = _split(
                page.text, block.start, block.end, costs_of, room_target, room_limit, pattern
            )
        for unit in units:
            if (
                group_block
                and group
                and (not _same_context(block, group_block) or group_size + unit.cost > room_target)
            ):
                chunks.append(_emit(page, group, group_block, lines))
                group, group_size = [], 0
            group.append(unit)
            group_size += unit.cost
            group_block = block
    if group_block and group:
        chunks.append(_emit(page, group, group_block, lines))
    return chunks


def _batched(count_tokens: TokenCounter) -> TokenCounter:
    """``count_tokens`` handed at most about COUNT_BATCH_CHARS characters at a time, so a
    page of a million lines does not become a million tokenizer encodings at once."""

    def count(texts: Sequence[str]) -> list[int]:
        counts: list[int] = []
        start = 0
        while start < len(texts):
            end, size = start, 0
            while end < len(texts) and (
                end == start or size + len(texts[end]) <= COUNT_BATCH_CHARS
            ):
                size += len(texts[end])
                end += 1
            counts.extend(count_tokens(texts[start:end]))
            start = end
        return counts

    return count


def _cost_function(count_tokens: TokenCounter, overhead: int) -> Callable[[list[str]], list[int]]:
    """Tokens each text adds on top of the fixed cost (prefix and special tokens)."""

    def costs(texts: list[str]) -> list[int]:
        return [max(c - overhead, 0) for c in count_tokens(texts)] if texts else []

    return costs


class _LineIndex:
    """Line numbers of character offsets in a text, by binary search (not by counting)."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line(self, offset: int) -> int:
        """The 1-based line that ``offset`` is on."""
        return bisect_right(self.starts, offset)


def _same_context(block: Block, other: Block) -> bool:
    """May their text share a chunk? Only under the same headings, symbol and table header."""
    return (block.headings, block.symbol, block.header) == (
        other.headings,
        other.symbol,
        other.header,
    )


def _emit(page: Page, group: list[_Unit], block: Block, lines: _LineIndex | None) -> Chunk:
    start, end = group[0].start, group[-1].end
    text = page.text[start:end]
    if block.header:
        text = f"{block.header}\n{text}"
    at = page.offset  # a window's spans are kept in the file's text
    if lines is None:
        return Chunk(
            text,
            page.number,
            block.headings,
            at + start,
            at + end,
            label=page.label,
            header=block.header,
        )
    line, end_line = lines.line(start), lines.line(max(end - 1, start))
    return Chunk(
        text,
        page.number,
        block.headings,
        at + start,
        at + end,
        block.symbol,
        line,
        end_line,
        page.label,
    )


def _split(
    text: str,
    start: int,
    end: int,
    costs_of: Callable[[list[str]], list[int]],
    target: int,
    limit: int,
    pattern: re.Pattern[str] = _SENTENCE_END,
) -> list[_Unit]:
    """Sentence-sized (or line-sized) units of ``text[start:end]``, packed up to ``target``
    tokens each."""
    units: list[_Unit] = []
    for s, e in _spans(pattern, text, start, end):
        units.extend(_fitting(text, s, e, costs_of, limit))
    return _pack(units, target)


def _fitting(
    text: str, start: int, end: int, costs_of: Callable[[list[str]], list[int]], limit: int
) -> list[_Unit]:
    """Units of at most ``limit`` tokens covering ``text[start:end]``: the piece itself when
    it fits, else runs of whole words of at most ``limit`` characters (a word longer than that
    is cut into slices), halved until they fit."""
    if end - start <= LONG_BLOCK_CHARS_PER_TOKEN * limit:
        (cost,) = costs_of([text[start:end]])
        if cost <= limit:
            return [_Unit(start, end, cost)]
    runs: list[tuple[int, int]] = []
    for s, e in _spans(_WORD, text, start, end):
        if e - s > limit:  # a line of base64 or minified JSON: one "word"
            runs.extend((at, min(at + limit, e)) for at in range(s, e, limit))
        elif runs and e - runs[-1][0] <= limit:
            runs[-1] = (runs[-1][0], e)
        else:
            runs.append((s, e))
    units: list[_Unit] = []
    for (s, e), cost in zip(runs, costs_of([text[s:e] for s, e in runs]), strict=True):
        units.extend([_Unit(s, e, cost)] if cost <= limit else _halved(text, s, e, costs_of, limit))
    return _pack(units, limit)


def _halved(
    text: str, start: int, end: int, costs_of: Callable[[list[str]], list[int]], limit: int
) -> list[_Unit]:
    """``text[start:end]``, which has more tokens than its characters usually make (emoji,
    scripts the tokenizer spells byte by byte), cut in halves until each fits."""
    middle = _middle(text, start, end)
    if middle is None:  # one character: nothing left to cut
        return [_Unit(start, end, costs_of([text[start:end]])[0])]
    halves = [h for h in (trimmed_span(text, start, middle), trimmed_span(text, middle, end)) if h]
    units: list[_Unit] = []
    for (s, e), cost in zip(halves, costs_of([text[s:e] for s, e in halves]), strict=True):
        units.extend([_Unit(s, e, cost)] if cost <= limit else _halved(text, s, e, costs_of, limit))
    return units


def _middle(text: str, start: int, end: int) -> int | None:
    """Where to cut ``text[start:end]`` in two: at the space or line end nearest its middle,
    else at its middle character; None when it is one character."""
    if end - start < 2:
        return None
    middle = (start + end) // 2
    spaces = [
        at
        for space in " \n"
        for at in (text.rfind(space, start + 1, middle + 1), text.find(space, middle, end - 1))
        if at > start
    ]
    return min(spaces, key=lambda at: abs(at - middle)) if spaces else middle


def _pack(units: list[_Unit], budget: int) -> list[_Unit]:
    packed: list[_Unit] = []
    for unit in units:
        if packed and packed[-1].cost + unit.cost <= budget:
            last = packed[-1]
            packed[-1] = _Unit(last.start, unit.end, last.cost + unit.cost)
        else:
            packed.append(unit)
    return packed


def _spans(pattern: re.Pattern[str], text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Non-blank pieces of ``text[start:end]`` cut after each match of ``pattern``."""
    spans = []
    position = start
    for match in pattern.finditer(text, start, end):
        if match.end() > position:
            spans.append((position, match.end()))
            position = match.end()
    if position < end:
        spans.append((position, end))
    return [span for s, e in spans if (span := trimmed_span(text, s, e))]


def _halfway(body: str, rows: bool) -> int | None:
    """Where to halve a chunk's text: between table rows near the middle (``rows``), else as
    ``_middle`` says; None when nothing is left to cut."""
    if rows:
        pieces = _spans(_LINE_END, body, 0, len(body))
        if len(pieces) >= 2:
            return pieces[len(pieces) // 2][0]
    return _middle(body, 0, len(body))


def _enforce_limit(chunks: list[Chunk], count_tokens: TokenCounter, limit: int) -> list[Chunk]:
    """Token counts of joined text are not exactly additive: re-check, and halve any overflow."""
    counts = count_tokens([c.embed_text for c in chunks]) if chunks else []
    result: list[Chunk] = []
    for chunk, count in zip(chunks, counts, strict=True):
        prefix = f"{chunk.header}\n" if chunk.header else ""  # kept atop both halves
        body = chunk.text[len(prefix) :]
        cut = _halfway(body, rows=bool(chunk.header)) if count > limit else None
        if cut is None:
            result.append(chunk)
            continue
        halves = [h for h in (trimmed_span(body, 0, cut), trimmed_span(body, cut, len(body))) if h]
        parts = [
            replace(
                chunk,
                text=prefix + body[s:e],
                start=chunk.start + s,
                end=chunk.start + e,
                line=None if chunk.line is None else chunk.line + body.count("\n", 0, s),
                end_line=None if chunk.line is None else chunk.line + body.count("\n", 0, e),
            )
            for s, e in halves
        ]
        result.extend(_enforce_limit(parts, count_tokens, limit))
    return result
