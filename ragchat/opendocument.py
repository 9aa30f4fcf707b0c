"""OpenDocument: text (.odt), spreadsheets (.ods) and presentations (.odp).

An OpenDocument file is a zip whose ``content.xml`` holds the whole document in one
well-specified vocabulary; it is read here with the standard library's ElementTree through
defusedxml (no DTDs with entities, nothing external), after the zip-bomb check. The libraries
made for ODF were weighed and not taken: odfpy has had no release since 2020, and odfdo parses
with lxml's default parser and expands repeated rows and columns (a sheet saved by LibreOffice
declares ~1,048,000 repeated empty rows), while this walk needs neither.

- .odt: headings (text:h and its outline level) give the heading path, paragraphs and list
  items are blocks, tables rows under their header row, text boxes, footnotes and comments kept.
- .ods: one page per sheet, cited by its name, rows under the header row (the text a cell
  shows, so formulas give their values), capped like Excel sheets.
- .odp: one page per slide, cited "slide N", its title as heading, speaker notes kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragchat.archives import check_zip, parse_xml, xml_errors
from ragchat.errors import LoadError
from ragchat.office import MAX_ROWS, MAX_SCANNED_ROWS, Budget, sheet_page
from ragchat.pages import Page
from ragchat.pagewriter import PageWriter

OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
DRAW = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}"
PRESENTATION = "{urn:oasis:names:tc:opendocument:xmlns:presentation:1.0}"
DC = "{http://purl.org/dc/elements/1.1/}"

_NOT_INLINE = {TEXT + "note", OFFICE + "annotation", DRAW + "frame", DRAW + "custom-shape"}
_CONTAINERS = {
    TEXT + "section", TEXT + "list", TEXT + "list-item", TEXT + "list-header",
    TEXT + "soft-page-break", OFFICE + "text", DRAW + "text-box", TABLE + "table-cell",
}  # fmt: skip
_ROW_GROUPS = {TABLE + "table-header-rows", TABLE + "table-rows", TABLE + "table-row-group"}
MAX_REPEAT = 100  # copies of a repeated cell or row that has content


def odf_text(element: Any) -> str:
    """The text of a paragraph or heading: spaces (text:s), tabs and line breaks kept,
    notes, comments and frames left to their own blocks."""
    parts = [element.text or ""]
    for child in element:
        tag = child.tag
        if tag == TEXT + "s":
            parts.append(" " * min(int(child.get(TEXT + "c", "1") or 1), 100))
        elif tag == TEXT + "tab":
            parts.append("\t")
        elif tag == TEXT + "line-break":
            parts.append("\n")
        elif tag not in _NOT_INLINE:
            parts.append(odf_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _content(path: Path) -> bytes:
    import zipfile

    check_zip(path)
    with zipfile.ZipFile(path) as archive:
        try:
            return archive.read("content.xml")
        except KeyError:
            raise LoadError("not an OpenDocument file (no content.xml)") from None


def _body(path: Path, kind: str) -> Any:
    """The office:text or office:presentation element of the document."""
    found = parse_xml(_content(path), "content.xml").find(f"{OFFICE}body/{OFFICE}{kind}")
    if found is None:
        raise LoadError(f"not an OpenDocument {kind} (no office:{kind})")
    return found


class _Reader:
    def __init__(self) -> None:
        self.writer = PageWriter()
        self.footnotes: list[str] = []
        self.comments: list[str] = []

    def body(self, container: Any) -> None:
        for child in container:
            tag = child.tag
            if tag == TEXT + "h":
                level = child.get(TEXT + "outline-level", "1") or "1"
                self.writer.heading(odf_text(child), int(level) if level.isdigit() else 1)
                self.inner(child)
            elif tag == TEXT + "p":
                self.writer.paragraph(odf_text(child))
                self.inner(child)
            elif tag == TABLE + "table":
                self.writer.table(table_rows(child))
            elif tag in _CONTAINERS:
                self.body(child)
            elif tag in (DRAW + "frame", DRAW + "custom-shape", DRAW + "g", DRAW + "rect"):
                self.shape(child)

    def inner(self, paragraph: Any) -> None:
        """What a paragraph holds besides its text: frames, notes, comments."""
        for child in paragraph.iter():
            if child.tag in (DRAW + "text-box",):
                self.body(child)
            elif child.tag == TEXT + "note":
                citation = child.find(TEXT + "note-citation")
                mark = (citation.text or "").strip() if citation is not None else ""
                note_body = child.find(TEXT + "note-body")
                if note_body is not None:
                    self.footnotes.append(f"[{mark}] " + _paragraphs(note_body))
            elif child.tag == OFFICE + "annotation":
                author = child.find(DC + "creator")
                name = (author.text or "").strip() if author is not None else ""
                self.comments.append((f"{name}: " if name else "") + _paragraphs(child))

    def shape(self, shape: Any) -> None:
        for child in shape:
            if child.tag in (DRAW + "text-box", DRAW + "g"):
                self.body(child)
            elif child.tag == TABLE + "table":
                self.writer.table(table_rows(child))
            elif child.tag == TEXT + "p":
                self.writer.paragraph(odf_text(child))
            elif child.tag in (DRAW + "frame", DRAW + "custom-shape"):
                self.shape(child)

    def close(self) -> None:
        for title, items in (("Footnotes", self.footnotes), ("Comments", self.comments)):
            for item in items:
                self.writer.paragraph(item, (title,))


def _paragraphs(element: Any) -> str:
    return " ".join(odf_text(p) for p in element.iter(TEXT + "p")).strip()


def table_rows(table: Any) -> Iterator[list[str]]:
    """The rows of a table:table as cell texts, repeated rows and cells expanded when they
    hold something (at most MAX_REPEAT times), empty ones dropped."""
    scanned = 0
    for row in _rows(table):
        scanned += 1
        if scanned > MAX_SCANNED_ROWS:
            return
        cells: list[str] = []
        for cell in row:
            if cell.tag not in (TABLE + "table-cell", TABLE + "covered-table-cell"):
                continue
            text = _paragraphs(cell)
            repeat = _repeat(cell, TABLE + "number-columns-repeated")
            cells.extend([text] * (min(repeat, MAX_REPEAT) if text else min(repeat, 1)))
        if any(cells):
            yield from [cells] * min(_repeat(row, TABLE + "number-rows-repeated"), MAX_REPEAT)


def _rows(table: Any) -> Iterator[Any]:
    for child in table:
        if child.tag == TABLE + "table-row":
            yield child
        elif child.tag in _ROW_GROUPS:
            yield from _rows(child)


def _repeat(element: Any, attribute: str) -> int:
    value = element.get(attribute, "1") or "1"
    return int(value) if value.isdigit() else 1


def load_odt(path: Path) -> list[Page]:
    reader = _Reader()
    reader.body(_body(path, "text"))
    reader.close()
    return [reader.writer.page()]


def load_odp(path: Path) -> list[Page]:
    pages = []
    for number, slide in enumerate(_body(path, "presentation").iter(DRAW + "page"), start=1):
        reader = _Reader()
        for frame in slide:
            if frame.get(PRESENTATION + "class") == "title":
                reader.writer.heading(_paragraphs(frame))
        for frame in slide:
            if frame.tag == PRESENTATION + "notes":
                for notes in frame.iter(DRAW + "frame"):
                    if notes.get(PRESENTATION + "class") == "notes":
                        headings = (*reader.writer.headings, "Speaker notes")
                        reader.writer.paragraph(_paragraphs(notes), headings)
            elif frame.get(PRESENTATION + "class") != "title":
                reader.shape(frame)
        reader.close()
        pages.append(reader.writer.page(number, f"slide {number}"))
    return pages


def load_ods(path: Path) -> list[Page]:
    """Streamed, a row at a time: a sheet's content.xml can be large."""
    import io

    from defusedxml.ElementTree import iterparse

    data = _content(path)
    pages: list[Page] = []
    budget = Budget()
    rows: list[list[str]] = []
    depth = 0  # tables inside cells are text of their cell, not sheets
    name = ""
    with xml_errors("content.xml"):
        for event, element in iterparse(io.BytesIO(data), events=("start", "end")):
            if element.tag != TABLE + "table":
                if event == "end" and element.tag == TABLE + "table-row" and depth == 1:
                    if len(rows) <= MAX_ROWS + 1:
                        rows.extend(table_rows([element]))
                    element.clear()
                continue
            if event == "start":
                depth += 1
                if depth == 1:
                    name, rows = element.get(TABLE + "name", "") or "", []
            else:
                depth -= 1
                if depth == 0:
                    pages.append(sheet_page(rows, budget, name, len(pages) + 1))
                    element.clear()
    return pages
