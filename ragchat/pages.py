"""Pages: what every loader returns, and the pieces the loaders of all formats share.

A ``Page`` keeps its number (PDFs), its label when a citation names it otherwise ("slide 3",
"sheet Revenue"), its text and its blocks, each with its character span in the page text and
the heading path above it. Here too: decoding text files, paragraphs, Markdown and HTML as
pages, and ``read_with``, which runs a loader and turns whatever a broken file makes it raise
into one ``LoadError``. Which loader reads which suffix is loaders.py's table; the loader
modules import this one, never loaders.py, so that loaders.py can import them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ragchat.errors import LoadError
from ragchat.text import page_name, trimmed_span


@dataclass(frozen=True)
class Block:
    """A paragraph-like piece of a page: ``page.text[start:end]``, under ``headings``."""

    start: int
    end: int
    headings: tuple[str, ...] = ()
    symbol: str = ""  # code: the qualified name of the function or class it is
    # table rows (one row a line): the header row, repeated atop every chunk of these rows
    header: str = ""


@dataclass
class Page:
    text: str
    number: int | None = None  # 1-based page number for paginated formats
    blocks: list[Block] = field(default_factory=list)
    code: bool = False  # source code: split at line ends, cited by line number
    label: str = ""  # how a citation names it when not "page N": "slide 3", "sheet Revenue"
    notes: list[str] = field(default_factory=list)  # what was off reading it ("OCR'd")
    offset: int = 0  # where ``text`` starts in the file's text (a window of a big file)
    # the document's title, on its first page, from loaders that know one (HTML's <title>,
    # a PDF's metadata); else it is read off the first heading or line (document_vectors.py)
    title: str = ""

    @property
    def name(self) -> str:
        """The page as a citation names it ("slide 3", "page 4"), or "" for a whole file."""
        return page_name(self.number, self.label)


Pages = Iterable[Page]  # a list, or for a big text file windows read as they are taken
Loader = Callable[[Path], Pages]


def read_with(loader: Loader, path: Path) -> Pages:
    """``loader(path)``; whatever a broken file makes it raise becomes a LoadError that says
    why (a broken file must never stop the ingest), also while the windows of a big file are
    read."""
    with _reasons(path):
        pages = loader(path)
    return pages if isinstance(pages, list) else _read_with_reasons(path, pages)


def _read_with_reasons(path: Path, pages: Iterable[Page]) -> Iterator[Page]:
    with _reasons(path):
        yield from pages


@contextmanager
def _reasons(path: Path) -> Iterator[None]:
    """Any failure to read ``path`` as the LoadError that says why."""
    try:
        yield
    except LoadError:
        raise
    except MemoryError:
        raise LoadError("too large to load in memory") from None
    except OSError as exc:
        raise LoadError(f"cannot read ({exc.strerror or exc})") from exc
    except Exception as exc:
        why = str(exc).replace(str(path), path.name)[:300]  # libraries like to name the path
        raise LoadError(
            f"unreadable {path.suffix.lstrip('.') or 'file'} ({type(exc).__name__}: {why})"
        ) from exc


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


CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def read_text(path: Path) -> str:
    """A text file's content: control characters become spaces (so character offsets still
    point into the file), line ends become \\n."""
    return normalized(decode_text(path.read_bytes()))


def normalized(text: str) -> str:
    """``text`` as ``read_text`` gives it: line ends as \\n, control characters as spaces."""
    return CONTROL_CHARACTERS.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))


def markdown_page(text: str, headings: list[tuple[int, str]] | None = None) -> Page:
    """Blocks are Markdown's own top-level blocks (paragraphs, lists, code, tables, quotes).
    ``headings`` ((level, title) above the text) is updated to those above its end."""
    from markdown_it import MarkdownIt

    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    if headings is None:
        headings = []
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
            headings[:] = [h for h in headings if h[0] < level] + [(level, title)]
            continue
        if token.type == "hr":
            continue
        first, last = token.map
        span = trimmed_span(text, line_starts[first], line_starts[min(last, len(line_starts) - 1)])
        if span:
            blocks.append(Block(*span, tuple(h[1] for h in headings)))
    return Page(text=text, blocks=blocks)


_HTML_DROP = {"script", "style", "noscript", "template", "head", "svg", "canvas", "iframe"}
# a site's navigation, banners and asides: the same on every page, not what a page says
_HTML_BOILERPLATE = {"nav", "footer", "aside"}
_HTML_CONTENT = {"article", "main", "section"}  # a <header> in one of these is the page's own
_HTML_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_HTML_BLOCKS = {
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "div",
    "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "li",
    "main", "nav", "ol", "p", "section", "summary", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "ul",
}  # fmt: skip
_SPACES = re.compile(r"\s+")


def html_page(markup: str) -> Page:
    """Visible text of an HTML document, one block per paragraph-level element, without the
    site's navigation, footers and asides; titled by its <title>, else its first <h1>."""
    from bs4 import BeautifulSoup, Comment, Doctype, NavigableString

    soup = BeautifulSoup(markup, "html.parser")
    title = next(
        (
            _SPACES.sub(" ", found.get_text(" ")).strip()
            for found in (soup.find("title"), soup.find("h1"))
            if found is not None and found.get_text().strip()
        ),
        "",
    )
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
            if name in _HTML_DROP or name in _HTML_BOILERPLATE:
                continue
            if name == "header" and not child.find_parent(_HTML_CONTENT):
                continue  # the site's banner, not an article's own header
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
    return Page(text="".join(parts), blocks=blocks, title=title)
