"""Writing the page of a structured document: headings, paragraphs and table rows.

Word, OpenDocument, slide, sheet, e-mail and e-book loaders walk their document and tell a
``PageWriter`` what they meet; it lays out the page text and its blocks as the chunker wants
them: a paragraph is a block under the heading path above it, and a table's rows (one row a
line, cells joined by " | ") are one block carrying the header row, which the chunker repeats
atop every chunk it cuts from those rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ragchat.pages import Block, Page

_SPACES = re.compile(r"\s+")
CELL_SEPARATOR = " | "


def clean(text: str) -> str:
    """One line of text: runs of white space (line ends included) become one space."""
    return _SPACES.sub(" ", text).strip()


def row_line(cells: Iterable[str]) -> str:
    """A table row on one line, trailing empty cells dropped: "Revenue | 1,577 | 1,373"."""
    values = [clean(cell) for cell in cells]
    while values and not values[-1]:
        values.pop()
    return CELL_SEPARATOR.join(values)


class PageWriter:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.blocks: list[Block] = []
        self.notes: list[str] = []
        self.length = 0
        self.path: list[tuple[int, str]] = []  # (level, title) of the headings above

    @property
    def headings(self) -> tuple[str, ...]:
        return tuple(title for _, title in self.path)

    def heading(self, title: str, level: int = 1) -> None:
        """A heading at ``level`` (1 is the top): it replaces those at its level and below."""
        title = clean(title)
        if title:
            self.path = [h for h in self.path if h[0] < level] + [(level, title)]

    def _append(self, text: str) -> int:
        """Put ``text`` on the page, after a blank line; its start offset."""
        if self.parts:
            self.parts.append("\n\n")
            self.length += 2
        start = self.length
        self.parts.append(text)
        self.length += len(text)
        return start

    def paragraph(self, text: str, headings: Sequence[str] | None = None) -> None:
        text = text.strip()
        if text:
            start = self._append(text)
            self.blocks.append(Block(start, start + len(text), self._headings(headings)))

    def table(self, rows: Iterable[Sequence[str]], headings: Sequence[str] | None = None) -> None:
        """Rows of cells; the first non-empty row is the header."""
        lines = [line for line in (row_line(row) for row in rows) if line]
        if len(lines) < 2:
            for line in lines:
                self.paragraph(line, headings)
            return
        self.rows(lines[0], lines[1:], headings)

    def rows(
        self, header: str, lines: Sequence[str], headings: Sequence[str] | None = None
    ) -> None:
        """Rows already on one line each, under their ``header`` row."""
        if not lines:
            self.paragraph(header, headings)
            return
        start = self._append(header + "\n" + "\n".join(lines)) + len(header) + 1
        self.blocks.append(Block(start, self.length, self._headings(headings), header=header))

    def _headings(self, headings: Sequence[str] | None) -> tuple[str, ...]:
        return self.headings if headings is None else tuple(h for h in headings if h)

    def page(self, number: int | None = None, label: str = "") -> Page:
        return Page(
            text="".join(self.parts),
            number=number,
            blocks=self.blocks,
            label=label,
            notes=self.notes,
        )
