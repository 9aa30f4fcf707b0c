"""Neutral helpers for strings: safe to print, shortened, trimmed, located, parsed as a URL,
matched against the names a user may have meant.

Nothing here knows about documents, stores or models, so any module may use it (the loaders,
chunking, rendering, exploring) without pulling in the others.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

_ESCAPES = re.compile(
    r"""
      \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC (titles, OSC 8 links, OSC 52 clipboard)
    | \x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?        # DCS, SOS, PM, APC strings
    | \x1b\[[0-?]*[ -/]*[@-~]                       # CSI (colours, cursor moves, erase)
    | \x1b[ -/]*[0-~]                               # other escapes
    | \x9b[0-?]*[ -/]*[@-~]                         # 8-bit CSI
    | [\x90\x98\x9d\x9e\x9f][^\x07\x9c]*(?:\x07|\x9c)?  # 8-bit string controls
    """,
    re.VERBOSE,
)
# Invisible characters that reorder or hide text on screen: bidi embeddings, overrides and
# isolates (U+202E shows "txt.exe" as "exe.txt"), marks, and zero-width characters.
_INVISIBLE = "\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
_CONTROLS = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{_INVISIBLE}]")  # keeps tab and newline
# what ``escaped`` spells out: every control (newline and tab too), the invisible characters,
# and the lone surrogates that stand for bytes of a file name that are not UTF-8
_UNPRINTABLE = re.compile(rf"[\x00-\x1f\x7f-\x9f{_INVISIBLE}\udc80-\udcff]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_SPACE = re.compile(r"\s+")


def sanitize(text: str) -> str:
    """``text`` without terminal control sequences and without the invisible characters that
    reorder or hide text (bidi controls, zero-width characters): safe to print raw."""
    text = text.replace("\r\n", "\n")
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


_UNDECODABLE = re.compile("[\udc80-\udcff]")  # os.fsdecode's stand-ins for bytes that are not UTF-8


def undecodable(name: str) -> bool:
    """Does this name (from the file system) hold bytes that are not UTF-8?"""
    return _UNDECODABLE.search(name) is not None


def with_headings(heading_path: str, text: str) -> str:
    """A chunk as the embedder and the lexical index see it: its heading path (``A > B``) as
    its first line gives a paragraph its context."""
    return f"{heading_path}\n{text}" if heading_path else text


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for a byte that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escaped(text: str) -> str:
    """``text`` on one line with every control, invisible or undecodable character spelled
    out as ``ls -b`` does (a newline as ``\\n``, U+202E as ``\\u202e``, a byte that is not
    UTF-8 as ``\\xff``): for names, which are shown as they are, never silently changed."""
    return _UNPRINTABLE.sub(_escape, text)


def display_path(path: str) -> str:
    """A path relative to the working directory when it is under it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith("..") else relative


def shown_path(path: str) -> str:
    """A path as ragchat prints it: relative to the working directory when under it, and
    ``escaped`` (a newline in a file name cannot start a forged line of output)."""
    return escaped(display_path(path))


def is_under(path: str, folder: str) -> bool:
    """Is ``path`` the folder itself or anything below it? (Paths as strings, no I/O.)"""
    folder = folder.rstrip(os.sep)
    return path == folder or path.startswith(folder + os.sep)


def shorten(text: str, limit: int) -> str:
    """``text`` on one line (runs of white space become one space), cut to at most ``limit``
    characters with "…" when it is longer."""
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_WORD = re.compile(r"\w+")
STEM = 5  # letters two words must share to count as the same word (tide, tides, tidal)


def snippet(text: str, query: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters around the words of ``query`` it contains
    (the window with most of them), with "…" where it was cut; the start when none occur."""
    text = _SPACE.sub(" ", text).strip()
    stems = {w.lower()[:STEM] for w in _WORD.findall(query) if len(w) > 2}
    if len(text) <= limit or not stems:
        return shorten(text, limit)
    hits = [m.start() for m in _WORD.finditer(text) if m.group().lower()[:STEM] in stems]
    if not hits or hits[0] < limit * 3 // 4:  # the start already shows them
        return shorten(text, limit)
    width = limit * 3 // 4  # matches in the first three quarters; context after them
    best = max(hits, key=lambda start: sum(start <= h < start + width for h in hits))
    start = min(max(0, best - limit // 8), len(text) - (limit - 1))  # the end: shown whole
    start = text.find(" ", start) + 1 or start  # from a word's start
    piece = text[start:]
    return "…" + (piece if len(piece) <= limit - 1 else piece[: limit - 2].rstrip() + "…")


def plural(count: int, word: str, many: str = "") -> str:
    """ "1 chunk", "2 chunks" ("0 chunks"); ``many`` for a plural that is not WORD + s."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def trimmed_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span of ``text[start:end]`` without its leading and trailing white space; None
    when that piece is blank."""
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return None
    start += len(piece) - len(piece.lstrip())
    return start, start + len(stripped)


def page_name(page: int | None = None, label: str = "") -> str:
    """How a citation names a page: its label when the format has one ("slide 3", "sheet
    Revenue", "message 2"), else ``page N``; "" for a file that is one whole."""
    return label or (f"page {page}" if page is not None else "")


def location_suffix(line: int | None = None, page: int | None = None, label: str = "") -> str:
    """What follows a path to say where in the file: ``:LINE`` for code, ``, page N`` (or the
    page's label, ``, slide 3``) in a file of pages, nothing otherwise."""
    name = page_name(page, label)
    return (f":{line}" if line is not None else "") + (f", {name}" if name else "")


def location(path: str, line: int | None = None, page: int | None = None, label: str = "") -> str:
    """Where a chunk is, as shown and cited: ``path:line``, ``path, page N``, ``path, slide 3``
    or ``path``."""
    return path + location_suffix(line, page, label)


class HttpUrl(NamedTuple):
    scheme: str  # http or https
    host: str
    port: int | None  # as the URL gives it

    @property
    def https(self) -> bool:
        return self.scheme == "https"

    @property
    def port_or_default(self) -> int:
        return self.port or (443 if self.https else 80)


def parse_http_url(url: str) -> HttpUrl:
    """The parts of an http(s) URL with a host; ValueError saying what is wrong otherwise
    ("has an invalid port 99999", ...), for a one-line error that names it."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise ValueError("is not an http(s) URL")
    if not parsed.hostname:
        raise ValueError("has no host")
    try:
        port = parsed.port
    except ValueError:  # a port that is not a number, or out of range
        port_text = parsed.netloc.rpartition(":")[2]
        raise ValueError(f"has an invalid port {port_text!r} (ports are 1 to 65535)") from None
    if port == 0:
        raise ValueError("has an invalid port '0' (ports are 1 to 65535)")
    return HttpUrl(parsed.scheme, parsed.hostname, port)


def http_url(url: str) -> HttpUrl | None:
    """The parts of an http(s) URL with a host; None for anything else."""
    try:
        return parse_http_url(url)
    except ValueError:
        return None


def close_matches(
    word: str, candidates: Iterable[str], key: Callable[[str], str] | None = None, n: int = 3
) -> list[str]:
    """The candidates most like ``word`` (difflib), best first; ``key`` says what of each
    candidate to compare (e.g. a path's file name)."""
    import difflib

    by_key: dict[str, list[str]] = {}
    for candidate in candidates:
        by_key.setdefault(key(candidate) if key else candidate, []).append(candidate)
    found = difflib.get_close_matches(key(word) if key else word, list(by_key), n=n, cutoff=0.6)
    return [c for k in found for c in by_key[k]][:n]


def did_you_mean(matches: Sequence[str]) -> str:
    """ "; did you mean 'x'?" (or "'x' or 'y'") for close matches, "" for none."""
    if not matches:
        return ""
    return f"; did you mean {either([repr(m) for m in matches])}?"


def either(values: Sequence[str]) -> str:
    """'a, b or c'."""
    return " or ".join([", ".join(values[:-1]), values[-1]] if len(values) > 1 else values)
