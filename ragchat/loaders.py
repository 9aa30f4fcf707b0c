"""Document loaders: which loader reads which file, and the loaders of the plain formats.

One seam: a loader is a function ``path -> list[Page]`` (pages.py), registered here by file
suffix: text, Markdown, HTML, Python and PDF in this module, every other family of formats in
its own module (office, opendocument, mail, ebooks, notebooks, ocr), each importing its
library inside the loader. A file that cannot be read raises ``LoadError`` with the reason the
ingest summary shows; what was off in a file that could be read (pages without text, pages
OCR'd, a sheet capped) goes in its pages' ``notes``.

A text or Markdown file over ``WINDOW_CHARS`` is not read whole: its pages are windows of
about that size, cut at a blank line where there is one (in Markdown, never inside a code
fence), read one at a time as they are chunked, so memory stays bounded whatever the size of
the file. A window's ``offset`` places it in the file's text.
"""

from __future__ import annotations

import codecs
import functools
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ragchat import ebooks, mail, notebooks, ocr, office, opendocument
from ragchat.errors import LoadError
from ragchat.pages import (
    CONTROL_CHARACTERS,
    Block,
    Loader,
    Page,
    Pages,
    html_page,
    is_binary,
    markdown_page,
    normalized,
    paragraph_blocks,
    read_text,
    read_with,
)
from ragchat.text import trimmed_span

LOADERS: dict[str, Loader] = {}
# Formats whose parsers can be made to loop or explode: read in a worker with limits.
ISOLATED_SUFFIXES: set[str] = set()


def register(*suffixes: str, isolated: bool = False) -> Callable[[Loader], Loader]:
    def decorate(loader: Loader) -> Loader:
        for suffix in suffixes:
            LOADERS[suffix] = loader
            if isolated:
                ISOLATED_SUFFIXES.add(suffix)
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
    return read_with(loader, path)


def load_whole(path: Path) -> list[Page]:
    """``load``'s pages as one list: what a worker process can send back."""
    return list(load(path))


def unsupported_reason(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            head = handle.read(8192)
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    if is_binary(head):
        return "binary"
    return f"unsupported type ({path.suffix or 'no extension'})"


def file_notes(pages: Iterable[Page]) -> list[str]:
    """The pages' notes, each once, with the pages it concerns: "OCR'd (pages 1-3, 7)"."""
    where: dict[str, list[Page]] = {}
    for page in pages:
        for note in page.notes:
            where.setdefault(note, []).append(page)
    return [
        f"{note} ({names})" if (names := _page_names(found)) else note
        for note, found in where.items()
    ]


def _page_names(pages: list[Page]) -> str:
    """ "pages 1-3, 7" for numbered pages, else their labels ("slide 2, slide 5")."""
    if all(p.number is not None and not p.label for p in pages):
        numbers = sorted({p.number for p in pages if p.number is not None})
        runs: list[list[int]] = []
        for number in numbers:
            if runs and number == runs[-1][-1] + 1:
                runs[-1].append(number)
            else:
                runs.append([number])
        spans = [f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs]
        return ("pages " if len(numbers) > 1 else "page ") + ", ".join(spans)
    names = list(dict.fromkeys(p.name for p in pages if p.name))
    return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")


_HYPHENATED = re.compile(r"(\w)-\n(\w)")
_DIGITS = re.compile(r"\d+")


def clean_pdf_pages(texts: list[str]) -> list[str]:
    """Text extracted from PDF pages, cleaned: ligatures and compatibility characters unified
    (NFKC), control characters dropped, words hyphenated across line ends joined, and header or
    footer lines that repeat on most pages (page numbers aside) removed."""
    import unicodedata

    texts = [CONTROL_CHARACTERS.sub("", unicodedata.normalize("NFKC", t)) for t in texts]
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
    ".txt", ".text", ".rst", ".org", ".adoc", ".tex", ".log",
    ".json", ".jsonl", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf",
    ".js", ".ts", ".tsx", ".jsx", ".java", ".c", ".h", ".cpp", ".hpp", ".cc",
    ".cs", ".go", ".rs", ".rb", ".php", ".swift", ".kt", ".scala", ".sh", ".bash",
    ".zsh", ".sql", ".r", ".lua", ".pl", ".css", ".xml",
)  # fmt: skip


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
            buffer += normalized(text)
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


@register(".html", ".htm", ".xhtml")
def load_html(path: Path) -> list[Page]:
    return [html_page(read_text(path))]


_GENERATED_TITLE = re.compile(
    r"^(?:microsoft (?:word|powerpoint|excel) - |untitled|document\d*$|slide \d+$)"
    r"|\.(?:docx?|pptx?|xlsx?|odt|rtf|pdf|tex|dvi|indd|qxd|txt|html?)$",
    re.IGNORECASE,
)


def pdf_title(reader: object) -> str:
    """The title in a PDF's metadata when it is a real one: not empty, not what a program
    wrote by itself ("Microsoft Word - report.doc", "untitled", a file name)."""
    try:
        title = str(getattr(getattr(reader, "metadata", None), "title", None) or "")
    except Exception:  # damaged metadata: no title, the document is still read
        return ""
    title = " ".join(CONTROL_CHARACTERS.sub("", title).split())
    if len(title) < 3 or _GENERATED_TITLE.search(title) or not re.search(r"[^\W\d_]", title):
        return ""
    return title


@register(".pdf", isolated=True)
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
        notes = ocr.read_blank_pages(reader.pages, texts)  # pages without text, OCR'd
        pages = [
            Page(text=text, number=number, blocks=paragraph_blocks(text), notes=notes[number - 1])
            for number, text in enumerate(clean_pdf_pages(texts), start=1)
        ]
        if pages:  # a PDF's first line is a date or a letterhead as often as its title
            pages[0].title = pdf_title(reader) or path.name
    except FileNotDecryptedError:
        raise LoadError("encrypted with a password") from None
    except PdfReadError as exc:
        raise LoadError(f"damaged PDF ({exc})") from exc
    ocr.require_text(pages)  # no text at all: a LoadError, unless OCR ran and found none
    return pages


# The other formats, from their own modules. All of them are read in the worker: their parsers
# (zip, XML, OLE2, images) are the kind a hostile file can make loop or explode.
register(".docx", ".docm", isolated=True)(office.load_docx)
register(".pptx", ".pptm", isolated=True)(office.load_pptx)
register(".xlsx", ".xlsm", isolated=True)(office.load_xlsx)
register(".csv", ".tsv", isolated=True)(office.load_csv)
register(".rtf", isolated=True)(office.load_rtf)
register(".odt", ".ott", isolated=True)(opendocument.load_odt)
register(".odp", ".otp", isolated=True)(opendocument.load_odp)
register(".ods", ".ots", isolated=True)(opendocument.load_ods)
# a message reads its attachments as files of their own, with the loader of their suffix
register(".eml", isolated=True)(functools.partial(mail.load_eml, loader_for=loader_for))
register(".mbox", isolated=True)(functools.partial(mail.load_mbox, loader_for=loader_for))
register(".msg", isolated=True)(functools.partial(mail.load_msg, loader_for=loader_for))
register(".epub", isolated=True)(ebooks.load_epub)
register(".ipynb", isolated=True)(notebooks.load_notebook)
register(*ocr.IMAGE_SUFFIXES, isolated=True)(ocr.load_image)
