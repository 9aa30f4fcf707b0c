"""Neutral helpers for strings: safe to print, shortened, trimmed, located, parsed as a URL.

Nothing here knows about documents, stores or models, so any module may use it (the loaders,
chunking, rendering, exploring) without pulling in the others.
"""

from __future__ import annotations

import os
import re
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
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # keeps tab and newline
_SPACE = re.compile(r"\s+")


def sanitize(text: str) -> str:
    """``text`` without terminal control sequences: safe to print raw."""
    text = text.replace("\r\n", "\n")
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def display_path(path: str) -> str:
    """A path relative to the working directory when it is under it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith("..") else relative


def is_under(path: str, folder: str) -> bool:
    """Is ``path`` the folder itself or anything below it? (Paths as strings, no I/O.)"""
    folder = folder.rstrip(os.sep)
    return path == folder or path.startswith(folder + os.sep)


def shorten(text: str, limit: int) -> str:
    """``text`` on one line (runs of white space become one space), cut to at most ``limit``
    characters with "…" when it is longer."""
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


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


def http_url(url: str) -> HttpUrl | None:
    """The parts of an http(s) URL with a host; None for anything else."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return None
    try:
        port = parsed.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    return HttpUrl(parsed.scheme, parsed.hostname, port)
