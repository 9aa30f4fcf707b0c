"""Document loaders: a file becomes pages of text, each split into blocks (paragraphs).

One seam: a loader is a function ``path -> list[Page]``, registered by file suffix. A page
keeps its number (PDFs) and its blocks keep their character span in the page text and the
heading path above them (Markdown, HTML). A file that cannot be read raises ``LoadError``
with the reason the ingest summary shows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragchat.errors import LoadError
from ragchat.text import trimmed_span


@dataclass(frozen=True)
class Block:
    """A paragraph-like piece of a page: ``page.text[start:end]``, under ``headings``."""

    start: int
    end: int
    headings: tuple[str, ...] = ()
    symbol: str = ""  # code: the qualified name of the function or class it is


@dataclass
class Page:
    text: str
    number: int | None = None  # 1-based page number for paginated formats
    blocks: list[Block] = field(default_factory=list)
    code: bool = False  # source code: split at line ends, cited by line number


Loader = Callable[[Path], list[Page]]
LOADERS: dict[str, Loader] = {}


def register(*suffixes: str) -> Callable[[Loader], Loader]:
    def decorate(loader: Loader) -> Loader:
        for suffix in suffixes:
            LOADERS[suffix] = loader
        return loader

    return decorate


def loader_for(path: Path) -> Loader | None:
    return LOADERS.get(path.suffix.lower())


def load(path: Path) -> list[Page]:
    """Pages of ``path``; raises LoadError (with the reason) when it cannot be read."""
    loader = loader_for(path)
    if loader is None:
        raise LoadError(unsupported_reason(path))
    try:
        return loader(path)
    except LoadError:
        raise
    except MemoryError:
        raise LoadError("too large to load in memory") from None
    except OSError as exc:
        raise LoadError(f"cannot read ({exc.strerror or exc})") from exc
    except Exception as exc:  # a broken file must never stop the ingest
        raise LoadError(
            f"unreadable {path.suffix.lstrip('.') or 'file'} ({type(exc).__name__}: {exc})"
        ) from exc


def unsupported_reason(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            head = handle.read(8192)
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    if is_binary(head):
        return "binary"
    return f"unsupported type ({path.suffix or 'no extension'})"


def is_binary(data: bytes) -> bool:
    return b"\x00" in data[:8192]


def decode_text(data: bytes) -> str:
    """Text of a file: UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252 (the usual
    legacy encoding of Western text), else whatever charset-normalizer detects."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise LoadError("undecodable UTF-16 text") from None
    if is_binary(data):
        raise LoadError("binary")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise LoadError("undecodable text (not UTF-8 and no other encoding fits)")
    return str(best)


_BLANK_LINES = re.compile(r"\n[^\S\n]*\n\s*")


def paragraph_blocks(text: str, offset: int = 0, headings: tuple[str, ...] = ()) -> list[Block]:
    """Blocks separated by blank lines, with spans relative to the page text."""
    blocks = []
    position = 0
    for match in [*_BLANK_LINES.finditer(text), None]:
        end = match.start() if match else len(text)
        span = trimmed_span(text, position, end)
        if span:
            blocks.append(Block(offset + span[0], offset + span[1], headings))
        if match:
            position = match.end()
    return blocks


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def read_text(path: Path) -> str:
    """A text file's content: control characters become spaces (so character offsets still
    point into the file), line ends become \\n."""
    text = decode_text(path.read_bytes()).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub(" ", text)


_HYPHENATED = re.compile(r"(\w)-\n(\w)")
_DIGITS = re.compile(r"\d+")


def clean_pdf_pages(texts: list[str]) -> list[str]:
    """Text extracted from PDF pages, cleaned: ligatures and compatibility characters unified
    (NFKC), control characters dropped, words hyphenated across line ends joined, and header or
    footer lines that repeat on most pages (page numbers aside) removed."""
    import unicodedata

    texts = [_CONTROL.sub("", unicodedata.normalize("NFKC", t)) for t in texts]
    texts = [_HYPHENATED.sub(lambda m: m.group(1) + m.group(2), t) for t in texts]
    if len(texts) < 3:
        return texts
    counts: dict[str, int] = {}
    for text in texts:
        lines = [line.strip() for line in text.split("\n") if line.strip()]
        if len(lines) < 6:  # too short to tell a running header from the text
            continue
        for line in set(lines[:2] + lines[-2:]):
            key = _DIGITS.sub("#", line)
            counts[key] = counts.get(key, 0) + 1
    repeated = {key for key, n in counts.items() if n >= max(3, len(texts) // 2)}
    if not repeated:
        return texts
    cleaned = []
    for text in texts:
        lines = text.split("\n")
        edges = [i for i, line in enumerate(lines) if line.strip()]
        edge = set(edges[:2] + edges[-2:])
        cleaned.append(
            "\n".join(
                line
                for i, line in enumerate(lines)
                if not (i in edge and _DIGITS.sub("#", line.strip()) in repeated)
            )
        )
    return cleaned


TABLE_SEPARATOR = " | "
_LEADER = re.compile(r"(?:[^\S\n]*\.){4,}[^\S\n]*")  # dot leaders between a row's label and numbers
_GAP = re.compile(r"[^\S\n]{3,}")  # layout mode places columns with runs of spaces
_CURRENCY_GAP = re.compile(r"([$€£¥])[^\S\n]+(?=[\d(])")
_NUMBER_GAP = re.compile(r"\([^\S\n]+(?=\d)|(?<=\d)[^\S\n]+(?=[)%])")
_PROSE_WORD = re.compile(r"[A-Za-z]{2,}")


def layout_rows(text: str) -> str:
    """pypdf's layout text (each printed line one line, columns placed with runs of spaces)
    with those runs and dot leaders turned into " | ", so that a table row keeps its label
    and its numbers on one line: "Additions to property and equipment | (28,107) | (23,886)"."""
    rows = []
    for line in text.split("\n"):
        line = _LEADER.sub(TABLE_SEPARATOR, line) if "...." in line else line
        line = _NUMBER_GAP.sub("", _CURRENCY_GAP.sub(r"\1", line))
        line = _GAP.sub(TABLE_SEPARATOR, line.strip())
        rows.append(line.replace("  ", " ").strip(" |"))
    return "\n".join(rows)


def side_by_side_prose(text: str) -> bool:
    """Does layout text hold columns of prose side by side (a two-column paper), whose lines
    it would interleave? Then a page is better read in content order."""
    wordy = [line for line in text.split("\n") if len(_PROSE_WORD.findall(line)) >= 4]
    split = [
        line
        for line in wordy
        if sum(len(_PROSE_WORD.findall(p)) >= 4 for p in _GAP.split(line.strip())) >= 2
    ]
    return len(split) >= 3 and len(split) >= 0.3 * len(wordy)


def pdf_page_text(pdf_page: Any) -> str:
    """A PDF page's text with each table row on one line (pypdf's layout mode, bench/RESULTS.md
    has the comparison); pages of side-by-side prose columns keep pypdf's default order."""
    try:
        layout = pdf_page.extract_text(extraction_mode="layout")
    except Exception:  # layout mode fails on a few pages that the default mode reads
        layout = ""
    if layout.strip() and not side_by_side_prose(layout):
        return layout_rows(layout)
    return pdf_page.extract_text() or ""


TEXT_SUFFIXES = (
    ".txt", ".text", ".rst", ".org", ".adoc", ".tex", ".log", ".csv", ".tsv",
    ".json", ".jsonl", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf",
    ".js", ".ts", ".tsx", ".jsx", ".java", ".c", ".h", ".cpp", ".hpp", ".cc",
    ".cs", ".go", ".rs", ".rb", ".php", ".swift", ".kt", ".scala", ".sh", ".bash",
    ".zsh", ".sql", ".r", ".lua", ".pl", ".css", ".xml",
)  # fmt: skip


@register(*TEXT_SUFFIXES)
def load_text(path: Path) -> list[Page]:
    text = read_text(path)
    return [Page(text=text, blocks=paragraph_blocks(text))]


@register(".py")
def load_python(path: Path) -> list[Page]:
    return [python_page(read_text(path), path.name)]


def python_page(text: str, name: str = "") -> Page:
    """One block per function, method and class (a class's own lines: its header, docstring
    and attributes), named by qualified name, decorators and the comment lines just above
    included; module-level code between them as blocks of its own. Text that does not parse
    as Python is read as plain text."""
    import ast

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):  # e.g. Python 2, a template, a fragment
        return Page(text=text, blocks=paragraph_blocks(text))
    lines = text.split("\n")
    owner: list[tuple[str, str]] = [("", "")] * (len(lines) + 1)  # per 1-based line: (kind, name)

    def claim(first: int, last: int, symbol: tuple[str, str]) -> None:
        for number in range(first, min(last, len(lines)) + 1):
            owner[number] = symbol

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            while first > 1 and lines[first - 2].lstrip().startswith("#"):
                first -= 1  # a comment right above a definition is about it
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            claim(first, node.end_lineno or node.lineno, (kind, prefix + node.name))
            if isinstance(node, ast.ClassDef):  # methods and nested classes are their own blocks
                visit(node.body, prefix + node.name + ".")

    visit(tree.body, "")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    blocks: list[Block] = []
    first = 1
    for number in range(2, len(lines) + 2):
        if number <= len(lines) and owner[number] == owner[first]:
            continue
        kind, symbol = owner[first]
        span = trimmed_span(text, starts[first - 1], min(starts[number - 1], len(text)))
        if span:
            headings = (name, f"{kind} {symbol}") if symbol else (name,)
            blocks.append(Block(*span, tuple(h for h in headings if h), symbol))
        first = number
    return Page(text=text, blocks=blocks, code=True)


@register(".md", ".markdown", ".mdown", ".mkd")
def load_markdown(path: Path) -> list[Page]:
    return [markdown_page(read_text(path))]


def markdown_page(text: str) -> Page:
    """Blocks are Markdown's own top-level blocks (paragraphs, lists, code, tables, quotes)."""
    from markdown_it import MarkdownIt

    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    headings: list[tuple[int, str]] = []
    blocks = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.level != 0 or token.map is None or token.nesting == -1:
            continue
        if token.type == "heading_open":
            level = int(token.tag[1:])
            title = tokens[index].content.strip() if index < len(tokens) else ""
            headings = [h for h in headings if h[0] < level] + [(level, title)]
            continue
        if token.type == "hr":
            continue
        first, last = token.map
        span = trimmed_span(text, line_starts[first], line_starts[min(last, len(line_starts) - 1)])
        if span:
            blocks.append(Block(*span, tuple(h[1] for h in headings)))
    return Page(text=text, blocks=blocks)


_HTML_DROP = {"script", "style", "noscript", "template", "head", "svg", "canvas", "iframe"}
_HTML_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_HTML_BLOCKS = {
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "div",
    "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "li",
    "main", "nav", "ol", "p", "section", "summary", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "ul",
}  # fmt: skip
_SPACES = re.compile(r"\s+")


@register(".html", ".htm", ".xhtml")
def load_html(path: Path) -> list[Page]:
    return [html_page(read_text(path))]


def html_page(markup: str) -> Page:
    """Visible text of an HTML document, one block per paragraph-level element."""
    from bs4 import BeautifulSoup, Comment, Doctype, NavigableString

    soup = BeautifulSoup(markup, "html.parser")
    parts: list[str] = []
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []
    inline: list[str] = []
    length = 0

    def emit(text: str) -> None:
        nonlocal length
        if not text.strip():
            return
        if parts:
            parts.append("\n\n")
            length += 2
        parts.append(text)
        blocks.append(Block(length, length + len(text), tuple(h[1] for h in headings)))
        length += len(text)

    def flush() -> None:
        text = _SPACES.sub(" ", "".join(inline)).strip()
        inline.clear()
        emit(text)

    def walk(node: object) -> None:
        nonlocal headings
        for child in getattr(node, "children", ()):
            if isinstance(child, (Comment, Doctype)):
                continue
            if isinstance(child, NavigableString):
                inline.append(str(child))
                continue
            name = child.name
            if name in _HTML_DROP:
                continue
            if name in _HTML_HEADINGS:
                flush()
                level = int(name[1])
                title = _SPACES.sub(" ", child.get_text(" ")).strip()
                headings = [h for h in headings if h[0] < level] + [(level, title)]
            elif name == "pre":
                flush()
                emit(child.get_text().strip("\n"))
            elif name == "br":
                inline.append("\n")
            elif name in _HTML_BLOCKS:
                flush()
                walk(child)
                flush()
            else:
                walk(child)

    walk(soup)
    flush()
    return Page(text="".join(parts), blocks=blocks)


@register(".pdf")
def load_pdf(path: Path) -> list[Page]:
    """One Page per PDF page, numbered from 1; empty-password encryption is opened."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:
                decrypted = reader.decrypt("")
            except DependencyError:
                raise LoadError(
                    "encrypted with AES; install the 'cryptography' package to read it"
                ) from None
            if not decrypted:
                raise LoadError("encrypted with a password")
        texts = [
            pdf_page_text(pdf_page).replace("\r\n", "\n").replace("\r", "\n")
            for pdf_page in reader.pages
        ]
        pages = [
            Page(text=text, number=number, blocks=paragraph_blocks(text))
            for number, text in enumerate(clean_pdf_pages(texts), start=1)
        ]
    except FileNotDecryptedError:
        raise LoadError("encrypted with a password") from None
    except PdfReadError as exc:
        raise LoadError(f"damaged PDF ({exc})") from exc
    if not any(page.blocks for page in pages):
        raise LoadError("no text layer (scanned?); needs OCR")
    return pages
