"""Zip archives (Office, OpenDocument and EPUB files are zips), checked before any parser
opens them.

A zip bomb is refused from its central directory alone, before a byte is inflated: too many
entries, too much text once unpacked, an entry that inflates far beyond what real documents
do, or entries that overlap (one compressed stream counted many times, the trick of
non-recursive zip bombs). Python's zipfile never inflates an entry past its declared size, so
the declared sizes are upper bounds the parsers cannot exceed.

The limits, from Apache POI's ~450 test files and real documents: the most entries seen is
160 (a deck of slides and images), the largest unpacked document ~2.5 MB, the highest ratio of
a real part ~45:1 (POI's XML-bomb samples reach ~440:1). The limits leave a wide margin above
real documents and refuse what only a bomb does.
"""

from __future__ import annotations

import contextlib
import itertools
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragchat.errors import LoadError

MAX_ENTRIES = 10_000
MAX_UNPACKED = 1 << 30  # 1 GiB of unpacked parts in all
MAX_RATIO = 200  # unpacked:packed, for an entry that unpacks past RATIO_FLOOR
RATIO_FLOOR = 10 << 20  # 10 MiB: a small part may compress as well as it likes
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def check_zip(path: Path) -> None:
    """Raise LoadError (with the reason) unless ``path`` is a zip that is safe to unpack."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if head == OLE_MAGIC:  # an OOXML file encrypted with a password is an OLE2 container
        raise LoadError("encrypted with a password (or an old binary Office format)")
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise LoadError(f"damaged or not a zip archive ({exc})") from None
    size = path.stat().st_size
    if len(entries) > MAX_ENTRIES:
        raise LoadError(
            f"refused: {len(entries):,} zip entries (a zip bomb?; limit {MAX_ENTRIES:,})"
        )
    unpacked = sum(entry.file_size for entry in entries)
    if unpacked > MAX_UNPACKED:
        raise LoadError(
            f"refused: unpacks to {unpacked / 2**20:,.0f} MiB (a zip bomb?; limit {MAX_UNPACKED >> 20:,} MiB)"
        )
    for entry in entries:
        if entry.flag_bits & 0x1:
            raise LoadError(f"encrypted zip entry {entry.filename!r}")
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > RATIO_FLOOR and ratio > MAX_RATIO:
            raise LoadError(
                f"refused: {entry.filename!r} inflates {ratio:,.0f}:1 (a zip bomb?; limit {MAX_RATIO}:1)"
            )
    if sum(entry.compress_size for entry in entries) > size:
        raise LoadError("refused: zip entries overlap (a zip bomb?)")
    ordered = sorted(entries, key=lambda entry: entry.header_offset)
    for entry, following in itertools.pairwise(ordered):
        if entry.header_offset + entry.compress_size > following.header_offset:
            raise LoadError("refused: zip entries overlap (a zip bomb?)")


@contextlib.contextmanager
def xml_errors(name: str) -> Iterator[None]:
    """defusedxml's refusals and ElementTree's parse errors, as LoadErrors naming the part."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException

    try:
        yield
    except DefusedXmlException as exc:
        raise LoadError(
            f"refused: {name} declares entities or a DTD ({type(exc).__name__})"
        ) from None
    except ParseError as exc:
        raise LoadError(f"damaged XML in {name} ({exc})") from None


def parse_xml(data: bytes, name: str = "XML") -> Any:
    """An XML part parsed by ElementTree through defusedxml: a DTD declaring entities, or
    anything external, is refused, never resolved."""
    from defusedxml.ElementTree import fromstring

    with xml_errors(name):
        return fromstring(data)
