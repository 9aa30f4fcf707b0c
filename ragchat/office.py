"""Office documents: Word (.docx), PowerPoint (.pptx), Excel (.xlsx), CSV and RTF.

- Word, through python-docx: headings (by style or outline level) give the heading path,
  paragraphs are blocks, tables are kept as rows ("cell | cell") under their header row; text
  boxes, footnotes, endnotes and comments are kept, tracked deletions are not.
- PowerPoint, through python-pptx: one page per slide, cited "slide N", its title as heading,
  text frames, tables, grouped shapes and the speaker notes.
- Excel, through openpyxl (read-only, cached values of formulas, never the formulas), CSV
  through the csv module: one page per sheet, cited by its name; rows as blocks under the
  header row; sheets capped (``MAX_ROWS`` a sheet, ``MAX_CHARS`` a file) with a note.
- RTF, through striprtf.

Zip-based files are checked for zip bombs first (see archives.py). python-docx, python-pptx
and openpyxl parse XML without resolving entities (lxml with ``resolve_entities=False``;
openpyxl's streaming reader through defusedxml, which ragchat installs).
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragchat.archives import check_zip
from ragchat.errors import LoadError
from ragchat.pages import Page, read_text
from ragchat.pagewriter import PageWriter, row_line

MAX_ROWS = 5_000  # rows kept per sheet
MAX_CHARS = 2_000_000  # text kept per file (~2,500 chunks): sheets, not books
MAX_CELL_CHARS = 5_000  # text kept per cell
MAX_SCANNED_ROWS = 200_000  # rows looked at per sheet, empty ones included

# Word's XML
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_TEXT_BOX = W + "txbxContent"
_SKIPPED = {W + "pPr", W + "rPr", W + "tblPr", W + "trPr", W + "tcPr", MC_FALLBACK, _TEXT_BOX}
_HEADING_NAME = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def word_text(element: Any) -> str:
    """The text of a Word paragraph (or any run container) as it reads: tabs and breaks
    kept, tracked deletions, field codes and properties left out, text boxes left to
    ``text_boxes``."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        for child in node:
            tag = child.tag
            if not isinstance(tag, str) or tag in _SKIPPED:
                continue
            if tag == W + "t":
                parts.append(child.text or "")
            elif tag == W + "tab":
                parts.append("\t")
            elif tag in (W + "br", W + "cr"):
                parts.append("\n")
            elif tag == W + "noBreakHyphen":
                parts.append("-")
            else:
                walk(child)

    walk(element)
    return "".join(parts)


def _outside_fallback(element: Any) -> bool:
    """Not inside mc:Fallback, the copy of a drawing kept for old readers."""
    return next(element.iterancestors(MC_FALLBACK), None) is None


def _heading_levels(styles_element: Any) -> dict[str, int]:
    """Heading level of each paragraph style id: "Heading N" by name, "Title" is 0, else its
    outline level, else its base style's."""
    own: dict[str, int | None] = {}
    based: dict[str, str] = {}
    for style in styles_element.iter(W + "style"):
        style_id = style.get(W + "styleId")
        if not style_id:
            continue
        name_element = style.find(W + "name")
        name = (name_element.get(W + "val") if name_element is not None else "") or ""
        match = _HEADING_NAME.match(name.strip())
        outline = style.find(f"{W}pPr/{W}outlineLvl")
        if name.strip().lower() == "title":
            own[style_id] = 0
        elif match:
            own[style_id] = int(match.group(1))
        elif outline is not None and (outline.get(W + "val") or "").isdigit():
            level = int(outline.get(W + "val")) + 1
            own[style_id] = level if level <= 9 else None  # 9 means "body text"
        else:
            own[style_id] = None
        base = style.find(W + "basedOn")
        if base is not None and base.get(W + "val"):
            based[style_id] = base.get(W + "val")
    levels: dict[str, int] = {}
    for style_id in own:
        current: str | None = style_id
        for _ in range(10):  # a base chain that loops must not
            if current is None:
                break
            found = own.get(current)
            if found is not None:
                levels[style_id] = found
                break
            current = based.get(current)
    return levels


class _WordReader:
    def __init__(self, levels: dict[str, int]) -> None:
        self.levels = levels
        self.writer = PageWriter()

    def level(self, paragraph: Any) -> int | None:
        outline = paragraph.find(f"{W}pPr/{W}outlineLvl")
        if outline is not None and (outline.get(W + "val") or "").isdigit():
            level = int(outline.get(W + "val")) + 1
            return level if level <= 9 else None
        style = paragraph.find(f"{W}pPr/{W}pStyle")
        return self.levels.get(style.get(W + "val")) if style is not None else None

    def body(self, container: Any) -> None:
        for child in container:
            if child.tag == W + "p":
                self.paragraph(child)
            elif child.tag == W + "tbl":
                self.table(child)
            elif child.tag in (W + "sdt", W + "sdtContent", W + "customXml", W + "ins"):
                self.body(child)  # content controls and the like: their content in place

    def paragraph(self, paragraph: Any) -> None:
        text = word_text(paragraph)
        level = self.level(paragraph)
        if level is not None and text.strip():
            self.writer.heading(text, level + 1)  # Title (0) stays above Heading 1
        else:
            self.writer.paragraph(text)
        for box in paragraph.iter(_TEXT_BOX):
            if _outside_fallback(box):
                self.body(box)

    def table(self, table: Any) -> None:
        rows = []
        for row in table.iter(W + "tr"):
            if next(row.iterancestors(W + "tbl")) is not table:
                continue  # a nested table's rows are text of its cell
            cells = [c for c in row.iter(W + "tc") if next(c.iterancestors(W + "tr")) is row]
            rows.append([self.cell_text(cell) for cell in cells])
        self.writer.table(rows)

    @staticmethod
    def cell_text(cell: Any) -> str:
        return " ".join(word_text(p) for p in cell.iter(W + "p") if _outside_fallback(p))

    def notes(self, title: str, root: Any, tag: str) -> None:
        """Footnotes, endnotes or comments, each a paragraph under ``title``."""
        for note in root.iter(tag):
            if note.get(W + "type") in ("separator", "continuationSeparator", "continuationNotice"):
                continue
            text = " ".join(word_text(p) for p in note.iter(W + "p")).strip()
            if not text:
                continue
            author = note.get(W + "author")
            label = f"{author}: " if author else f"[{note.get(W + 'id')}] "
            self.writer.paragraph(label + text, (title,))


def load_docx(path: Path) -> list[Page]:
    check_zip(path)
    from docx.oxml.parser import parse_xml

    document = _word_document(path)
    try:
        levels = _heading_levels(document.styles.element)
    except (KeyError, ValueError):  # no styles part
        levels = {}
    reader = _WordReader(levels)
    reader.body(document.element.body)
    parts: dict[str, list[Any]] = {}
    for relation in document.part.rels.values():
        if not relation.is_external:
            kind = relation.reltype.rsplit("/", 1)[-1]
            parts.setdefault(kind, []).append(relation.target_part)
    for kind, tag in (("footnotes", "footnote"), ("endnotes", "endnote"), ("comments", "comment")):
        for part in parts.get(kind, [])[:1]:
            root = parse_xml(part.blob)  # python-docx's parser: no entities resolved
            reader.notes(kind.capitalize(), root, W + tag)
    seen: set[str] = set()  # sections share headers and footers, or repeat them
    for part in parts.get("header", []) + parts.get("footer", []):
        for paragraph in parse_xml(part.blob).iter(W + "p"):
            text = word_text(paragraph).strip()
            if text and text not in seen and _outside_fallback(paragraph):
                seen.add(text)
                reader.writer.paragraph(text, ("Headers and footers",))
    return [reader.writer.page()]


# python-docx opens only the .docx kind of main part; templates and macro-enabled documents
# hold the same WordprocessingML under other content types.
_WORD_MAIN_TYPES = (
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
    "application/vnd.ms-word.document.macroEnabled.main+xml",
    "application/vnd.ms-word.template.macroEnabledTemplate.main+xml",
)


def _word_document(path: Path) -> Any:
    import docx  # noqa: F401 - registers python-docx's part classes
    from docx.opc.part import PartFactory
    from docx.package import Package
    from docx.parts.document import DocumentPart

    for content_type in _WORD_MAIN_TYPES:
        PartFactory.part_type_for.setdefault(content_type, DocumentPart)
    part = Package.open(str(path)).main_document_part
    if not isinstance(part, DocumentPart):
        raise LoadError(f"not a Word document (its main part is {part.content_type})")
    return part.document


def load_pptx(path: Path) -> list[Page]:
    check_zip(path)
    from pptx import Presentation

    deck = Presentation(str(path))
    pages = []
    for number, slide in enumerate(deck.slides, start=1):
        writer = PageWriter()
        title = slide.shapes.title
        if title is not None and title.has_text_frame:
            writer.heading(_slide_text(title.text_frame.text))
        for shape in _reading_order(slide.shapes):
            if title is None or shape.shape_id != title.shape_id:
                _slide_shape(writer, shape)
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None:
                writer.paragraph(_slide_text(notes.text), (*writer.headings, "Speaker notes"))
        pages.append(writer.page(number, f"slide {number}"))
    return pages


def _reading_order(shapes: Iterable[Any]) -> list[Any]:
    """Top to bottom, then left to right (the order of the file is the order of drawing)."""
    return sorted(shapes, key=lambda s: (s.top or 0, s.left or 0))


def _slide_text(text: str) -> str:
    return text.replace("\v", "\n")  # PowerPoint's line break within a paragraph


def _slide_shape(writer: PageWriter, shape: Any) -> None:
    from pptx.shapes.group import GroupShape

    if isinstance(shape, GroupShape):
        for inner in _reading_order(shape.shapes):
            _slide_shape(writer, inner)
    elif getattr(shape, "has_table", False) and shape.has_table:
        writer.table([[cell.text for cell in row.cells] for row in shape.table.rows])
    elif shape.has_text_frame:
        writer.paragraph(_slide_text(shape.text_frame.text))


def load_xlsx(path: Path) -> list[Page]:
    check_zip(path)
    import openpyxl

    with warnings.catch_warnings():  # "extension is not supported" and the like
        warnings.simplefilter("ignore")
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            budget = Budget()
            pages = []
            for number, sheet in enumerate(workbook.worksheets, start=1):
                if not hasattr(sheet, "iter_rows"):  # a chart sheet
                    continue
                sheet.reset_dimensions()  # a wrong <dimension> would truncate or pad rows
                rows = ([cell_text(cell) for cell in row] for row in sheet.iter_rows())
                pages.append(sheet_page(rows, budget, sheet.title, number))
        finally:
            workbook.close()
    return pages


@dataclass
class Budget:
    """The text a file's sheets may still keep, shared by them."""

    chars: int = MAX_CHARS


def sheet_page(
    rows: Iterable[Sequence[str]], budget: Budget, name: str = "", number: int | None = None
) -> Page:
    """A sheet as one page: its first non-empty row is the header of all the others."""
    writer = PageWriter()
    header: str | None = None
    lines: list[str] = []
    for scanned, cells in enumerate(rows, start=1):
        if scanned > MAX_SCANNED_ROWS:
            writer.notes.append(f"stopped after {MAX_SCANNED_ROWS:,} rows")
            break
        line = row_line(cell[:MAX_CELL_CHARS] for cell in cells)
        if not line:
            continue
        if budget.chars <= 0:
            writer.notes.append(f"capped: the file's first {MAX_CHARS:,} characters kept")
            break
        budget.chars -= len(line)
        if header is None:
            header = line
            continue
        if len(lines) >= MAX_ROWS:
            writer.notes.append(f"capped at {MAX_ROWS:,} rows")
            break
        lines.append(line)
    if header is not None:
        writer.rows(header, lines, (name,) if name else ())
    return writer.page(number, f"sheet {name}" if name else "")


_DECIMALS = re.compile(r"\.(0+)")


def cell_text(cell: Any) -> str:
    """A cell as Excel shows it, roughly: percentages, thousands separators and decimals
    of its number format; dates as ISO dates."""
    value = getattr(cell, "value", None)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return format_number(value, getattr(cell, "number_format", "General") or "General")
    if isinstance(value, dt.datetime):
        return value.isoformat(" ").removesuffix(" 00:00:00")
    return str(value)


def format_number(value: float, number_format: str) -> str:
    section = number_format.split(";")[0]
    match = _DECIMALS.search(section)
    decimals = len(match.group(1)) if match else 0
    if "%" in section:
        return f"{value * 100:.{decimals}f}%"
    if "#,##" in section:
        return f"{value:,.{decimals}f}"
    if match and "0" in section[: match.start()]:
        return f"{value:.{decimals}f}"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.15g}" if isinstance(value, float) else str(value)


def load_csv(path: Path) -> list[Page]:
    import csv
    import io

    text = read_text(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else _delimiter(text[:16384])
    rows: Iterator[list[str]] = csv.reader(io.StringIO(text), delimiter=delimiter)
    return [sheet_page(rows, Budget())]


def _delimiter(sample: str) -> str:
    import csv

    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:  # one column, or too little to tell
        return ","


def load_rtf(path: Path) -> list[Page]:
    from striprtf.striprtf import rtf_to_text

    data = path.read_bytes()
    if not data.lstrip()[:5] == b"{\\rtf":
        raise LoadError("not an RTF file (no {\\rtf header)")
    text = rtf_to_text(data.decode("latin-1"), errors="replace")
    writer = PageWriter()
    for line in text.replace("\r\n", "\n").split("\n"):
        writer.paragraph(line.replace("|", " | ").strip(" |") if "|" in line else line)
    return [writer.page()]
