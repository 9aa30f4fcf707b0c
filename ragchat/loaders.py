"""Document loaders: a file becomes pages of text, each split into blocks (paragraphs).

One seam: a loader is a function ``path -> pages``, registered by file suffix. A page
keeps its number (PDFs) and its blocks keep their character span in the page text and the
heading path above them (Markdown, HTML). A file that cannot be read raises ``LoadError``
with the reason the ingest summary shows.

A text or Markdown file over ``WINDOW_CHARS`` is not read whole: its pages are windows of
about that size, cut at a blank line where there is one (in Markdown, never inside a code
fence), read one at a time as they are chunked, so memory stays bounded whatever the size of
the file. A window's ``offset`` places it in the file's text.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

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
    offset: int = 0  # where ``text`` starts in the file's text (a window of a big file)


Pages = Iterable[Page]  # a list, or for a big file windows read as they are taken
Loader = Callable[[Path], Pages]
LOADERS: dict[str, Loader] = {}


def register(*suffixes: str) -> Callable[[Loader], Loader]:
    def decorate(loader: Loader) -> Loader:
        for suffix in suffixes:
            LOADERS[suffix] = loader
        return loader

    return decorate


def loader_for(path: Path) -> Loader | None:
    return LOADERS.get(path.suffix.lower())


def load(path: Path) -> Pages:
    """Pages of ``path``; raises LoadError (with the reason) when it cannot be read, also
    while the windows of a big file are being read."""
    loader = loader_for(path)
    if loader is None:
        raise LoadError(unsupported_reason(path))
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


_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")


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
    return _normalized(decode_text(path.read_bytes()))


def _normalized(text: str) -> str:
    return _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))


WINDOW_CHARS = 1 << 20  # a text file over this is read, and chunked, a window at a time
_READ_BYTES = 1 << 20


def is_big(path: Path) -> bool:
    """Is the file read as windows rather than whole?"""
    return path.stat().st_size > WINDOW_CHARS


def stream_encoding(path: Path) -> str:
    """The encoding ``decode_text`` would choose for the whole file, found without holding
    it: UTF-16 by its BOM, else UTF-8 or Windows-1252 if every byte decodes, else what
    charset-normalizer detects in the first megabyte."""
    with path.open("rb") as handle:
        head = handle.read(_READ_BYTES)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if is_binary(head):
        raise LoadError("binary")
    for encoding in ("utf-8-sig", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as handle:
                for data in iter(lambda: handle.read(_READ_BYTES), b""):
                    decoder.decode(data)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            pass
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    if best is None:
        raise LoadError("undecodable text (not UTF-8 and no other encoding fits)")
    return str(best.encoding)


def text_windows(path: Path, cut: Callable[[str], int] | None = None) -> Iterator[tuple[int, str]]:
    """(offset, text) windows of a big file's text, normalised as ``read_text`` does, each
    about WINDOW_CHARS long and ending where ``cut`` says (default: after a blank line)."""
    cut = cut or _paragraph_cut
    decoder = codecs.getincrementaldecoder(stream_encoding(path))(errors="strict")
    buffer, held, offset = "", "", 0
    with path.open("rb") as handle:
        while True:
            data = handle.read(_READ_BYTES)
            text = held + decoder.decode(data, final=not data)
            held = ""
            if data and text.endswith("\r"):  # may be the first half of \r\n
                text, held = text[:-1], "\r"
            buffer += _normalized(text)
            while len(buffer) > WINDOW_CHARS or (not data and buffer):
                end = cut(buffer) if len(buffer) > WINDOW_CHARS else len(buffer)
                yield offset, buffer[:end]
                offset += end
                buffer = buffer[end:]
            if not data:
                return


def _paragraph_cut(buffer: str) -> int:
    """Where a window of ``buffer`` ends: after its last blank line, else line end, else
    sentence end, else space, in the second half of WINDOW_CHARS; else at WINDOW_CHARS."""
    for mark in ("\n\n", "\n", ". ", " "):
        at = buffer.rfind(mark, WINDOW_CHARS // 2, WINDOW_CHARS)
        if at >= 0:
            return at + len(mark)
    return WINDOW_CHARS


def _markdown_cut(buffer: str) -> int:
    """``_paragraph_cut`` for Markdown: after a blank line that is not inside a code fence."""
    fence = ""
    position, best = 0, 0
    for line in buffer[:WINDOW_CHARS].splitlines(keepends=True):
        stripped = line.strip()
        if fence:
            fence = "" if stripped.startswith(fence) else fence
        elif stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
        position += len(line)
        if not fence and not stripped and position >= WINDOW_CHARS // 2:
            best = position
    return best or _paragraph_cut(buffer)


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


TEXT_SUFFIXES = (
    ".txt", ".text", ".rst", ".org", ".adoc", ".tex", ".log", ".csv", ".tsv",
    ".json", ".jsonl", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf",
    ".js", ".ts", ".tsx", ".jsx", ".java", ".c", ".h", ".cpp", ".hpp", ".cc",
    ".cs", ".go", ".rs", ".rb", ".php", ".swift", ".kt", ".scala", ".sh", ".bash",
    ".zsh", ".sql", ".r", ".lua", ".pl", ".css", ".xml",
)  # fmt: skip


@register(*TEXT_SUFFIXES)
def load_text(path: Path) -> Pages:
    if is_big(path):
        return _text_pages(path)
    text = read_text(path)
    return [Page(text=text, blocks=paragraph_blocks(text))]


def _text_pages(path: Path) -> Iterator[Page]:
    for offset, text in text_windows(path):
        yield Page(text=text, blocks=paragraph_blocks(text), offset=offset)


PYTHON_PARSE_CHARS = 8 * WINDOW_CHARS  # a bigger .py file (generated code) is read as text


@register(".py")
def load_python(path: Path) -> Pages:
    if path.stat().st_size > PYTHON_PARSE_CHARS:
        return _text_pages(path)
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
def load_markdown(path: Path) -> Pages:
    if is_big(path):
        return _markdown_pages(path)
    return [markdown_page(read_text(path))]


def _markdown_pages(path: Path) -> Iterator[Page]:
    headings: list[tuple[int, str]] = []  # the heading path carries on into the next window
    for offset, text in text_windows(path, _markdown_cut):
        page = markdown_page(text, headings)
        page.offset = offset
        yield page


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
            (pdf_page.extract_text() or "").replace("\r\n", "\n").replace("\r", "\n")
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
