"""Chunking: pages of blocks become chunks that fit the embedder.

Paragraphs are the unit. Short neighbours (same page, same heading path) are merged up to the
target size; a paragraph over it is split at sentence boundaries, and a sentence over the
embedder's hard limit at word boundaries. Sizes are counted with the embedder's own tokenizer,
prefix and special tokens included, so no chunk is ever truncated by the embedder. Table rows
(a block with a ``header``) are split only between rows, and every chunk of them starts with
the header row, so a row never travels without the names of its columns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ragchat.pages import Block, Page
from ragchat.text import trimmed_span

CHUNKER_VERSION = "3"  # 3: CSV and TSV files as table rows; 2: Python files by function and class

# Counts the tokens the embedder will see for each text (prefix and special tokens included).
TokenCounter = Callable[[Sequence[str]], list[int]]


@dataclass(frozen=True)
class Chunk:
    text: str
    page: int | None
    headings: tuple[str, ...]
    start: int  # character span in the page text
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
        return f"{self.heading_path}\n{self.text}" if self.heading_path else self.text


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    cost: int


_SENTENCE_END = re.compile(r"(?<=[.!?;:])[\"')\]]*\s+|\n+")
_LINE_END = re.compile(r"\n+")  # code is split only between lines
_WORD = re.compile(r"\S+\s*")


def chunk_pages(
    pages: Sequence[Page], count_tokens: TokenCounter, target: int, limit: int
) -> list[Chunk]:
    """Chunks of at most ``limit`` embedder tokens, aiming at ``target``."""
    target = min(target, limit)
    overhead = count_tokens([""])[0]
    costs_of = _cost_function(count_tokens, overhead)
    chunks: list[Chunk] = []
    for page in pages:
        blocks = [b for b in page.blocks if page.text[b.start : b.end].strip()]
        if not blocks:
            continue
        heading_costs = costs_of(
            [
                (" > ".join(b.headings) + "\n" if b.headings else "")
                + (b.header + "\n" if b.header else "")
                for b in blocks
            ]
        )
        costs = costs_of([page.text[b.start : b.end] for b in blocks])
        group: list[_Unit] = []
        group_block: Block | None = None  # the block whose headings, symbol and header it has
        for block, cost, heading_cost in zip(blocks, costs, heading_costs, strict=True):
            room_target = max(target - overhead - heading_cost, 1)
            room_limit = max(limit - overhead - heading_cost, 1)
            units = [_Unit(block.start, block.end, cost)]
            if cost > room_target:
                pattern = _LINE_END if page.code or block.header else _SENTENCE_END
                units = _split(
                    page.text, block.start, block.end, costs_of, room_target, room_limit, pattern
                )
            for unit in units:
                size = sum(u.cost for u in group) + unit.cost
                if group_block and (not _same_context(block, group_block) or size > room_target):
                    chunks.extend(_emit(page, group, group_block))
                    group = []
                group.append(unit)
                group_block = block
        if group_block and group:
            chunks.extend(_emit(page, group, group_block))
    return _enforce_limit(chunks, count_tokens, limit)


def _cost_function(count_tokens: TokenCounter, overhead: int) -> Callable[[list[str]], list[int]]:
    """Tokens each text adds on top of the fixed cost (prefix and special tokens)."""

    def costs(texts: list[str]) -> list[int]:
        return [max(c - overhead, 0) for c in count_tokens(texts)] if texts else []

    return costs


def _same_context(block: Block, other: Block) -> bool:
    """May their text share a chunk? Only under the same headings, symbol and table header."""
    return (block.headings, block.symbol, block.header) == (
        other.headings,
        other.symbol,
        other.header,
    )


def _emit(page: Page, group: list[_Unit], block: Block) -> list[Chunk]:
    start, end = group[0].start, group[-1].end
    text = page.text[start:end]
    if block.header:
        text = f"{block.header}\n{text}"
    if not page.code:
        return [
            Chunk(
                text, page.number, block.headings, start, end, label=page.label, header=block.header
            )
        ]
    line = page.text.count("\n", 0, start) + 1
    end_line = line + page.text.count("\n", start, end)
    return [
        Chunk(
            text, page.number, block.headings, start, end, block.symbol, line, end_line, page.label
        )
    ]


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
    pieces = _spans(pattern, text, start, end)
    costs = costs_of([text[s:e] for s, e in pieces])
    units: list[_Unit] = []
    for (s, e), cost in zip(pieces, costs, strict=True):
        if cost <= limit:
            units.append(_Unit(s, e, cost))
            continue
        words = _spans(_WORD, text, s, e)
        word_costs = costs_of([text[ws:we] for ws, we in words])
        units.extend(
            _pack([_Unit(ws, we, c) for (ws, we), c in zip(words, word_costs, strict=True)], limit)
        )
    return _pack(units, target)


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


def _enforce_limit(chunks: list[Chunk], count_tokens: TokenCounter, limit: int) -> list[Chunk]:
    """Token counts of joined text are not exactly additive: re-check, and halve any overflow."""
    counts = count_tokens([c.embed_text for c in chunks]) if chunks else []
    result: list[Chunk] = []
    for chunk, count in zip(chunks, counts, strict=True):
        if count <= limit:
            result.append(chunk)
            continue
        prefix = f"{chunk.header}\n" if chunk.header else ""  # kept atop both halves
        body = chunk.text[len(prefix) :]
        pieces = _spans(_LINE_END, body, 0, len(body)) if chunk.header else []
        if len(pieces) < 2:
            pieces = _spans(_WORD, body, 0, len(body))
        if len(pieces) < 2:
            result.append(chunk)  # one enormous "word": nothing sensible left to split at
            continue
        half = len(pieces) // 2
        halves = [(0, pieces[half - 1][1]), (pieces[half][0], len(body))]
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
