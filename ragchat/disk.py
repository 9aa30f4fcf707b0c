"""A failing disk, recognised in any library's error and named for what it is: full,
read-only, not ours to write, or a damaged database file.

sqlite3 says "database or disk is full", tantivy passes the OS's words on in a ValueError ("No
space left on device (os error 28)"), Python raises OSError(ENOSPC), and Chroma's Rust core
often only says "Error in compaction"; ``failure`` reads the error and every error chained to
it, and when none of them says why, looks at the disk itself (a write that failed on a disk
with next to no room left failed for want of room). It returns the StoreError to raise, whose
message names the fix, or None when the error is not about the disk. ``guarded`` applies it to
a whole operation (an ingest), with an estimate of the room the operation still needs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path

from ragchat.errors import RagchatError, StoreError

MB = 1_000_000
FULL_MARGIN = 4 * MB  # a write that fails with less room than this left failed for room
_FULL = (
    "no space left on device",
    "database or disk is full",
    "disk quota exceeded",
    "os error 28)",
    "os error 122)",
)
_READ_ONLY = ("read-only file system", "readonly database", "os error 30)")
_DENIED = ("permission denied", "os error 13)")
_DAMAGED = ("database disk image is malformed", "file is not a database")
_needs: ContextVar[Callable[[], int] | None] = ContextVar("needs", default=None)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _says(exc: BaseException, words: tuple[str, ...], codes: tuple[int, ...]) -> bool:
    return any(
        (isinstance(e, OSError) and e.errno in codes) or any(w in str(e).lower() for w in words)
        for e in _chain(exc)
    )


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def mount_of(path: Path) -> tuple[str, str]:
    """(device, mount point) of the file system holding ``path``, e.g. ('/dev/sda2', '/')."""
    point = os.path.realpath(_existing(path))
    while not os.path.ismount(point):
        point = os.path.dirname(point)
    device = point
    with contextlib.suppress(OSError), open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 1 and fields[1].replace("\\040", " ") == point:
                device = fields[0]  # the last mount on a point is the one in use
    return device, point


def free_bytes(path: Path) -> int:
    try:
        return shutil.disk_usage(_existing(path)).free
    except OSError:
        return 0


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(_existing(path)).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def full_message(where: Path, needs: int | None = None) -> str:
    device, point = mount_of(where)
    shown = device if device == point else f"{device} (mounted at {point})"
    more = f"; the store needs about {max(1, round(needs / MB))} MB more" if needs else ""
    return (
        f"No space left on {shown}: {free_bytes(where) / MB:.1f} MB free for {where}{more}."
        " Free some space and run the same command again: nothing already stored is lost,"
        " and the next ingest repairs what this one left half-written."
    )


def full(exc: BaseException, where: Path) -> StoreError | None:
    """The StoreError for a full disk under ``where``, when ``exc`` says so (only that)."""
    if _says(exc, _FULL, (errno.ENOSPC, errno.EDQUOT)):
        return StoreError(full_message(where, _estimate()))
    return None


def failure(exc: BaseException, where: Path, database: Path | None = None) -> StoreError | None:
    """The StoreError that says what is wrong with the disk under ``where`` (the folder that
    was being written; ``database`` the SQLite file, if one was), or None when ``exc`` is not
    about the disk."""
    detail = str(exc).strip() or type(exc).__name__
    if found := full(exc, where):
        return found
    if _says(exc, _READ_ONLY, (errno.EROFS,)) or (
        _says(exc, _DENIED, (errno.EACCES, errno.EPERM)) and _read_only(where)
    ):
        return StoreError(
            f"Cannot write {where}: its file system ({mount_of(where)[1]}) is read-only"
            f" ({detail}); remount it read-write, or set RAGCHAT_HOME to a folder you can write."
        )
    if _says(exc, _DENIED, (errno.EACCES, errno.EPERM)):
        return StoreError(
            f"Cannot write {where}: permission denied ({detail}); check who owns it"
            f" (ls -ld {where}), or set RAGCHAT_HOME to a folder you can write."
        )
    if database is not None and _says(exc, _DAMAGED, ()):
        return StoreError(f"{database} is damaged ({detail}); run 'ragchat doctor'.")
    needs = _estimate() or 0
    if free_bytes(where) < max(FULL_MARGIN, needs):  # it did not say why: the disk does
        return StoreError(full_message(where, needs))
    return None


def _estimate() -> int | None:
    needs = _needs.get()
    if needs is None:
        return None
    try:
        return needs()
    except Exception:  # an estimate must never hide the error it explains
        return None


@contextlib.contextmanager
def guarded(where: Path, needs: Callable[[], int] | None = None) -> Iterator[None]:
    """Run a write to the store under ``where``: a failure of the disk (full, read-only, not
    writable), whichever library meets it, is one StoreError saying so; ``needs`` estimates
    the bytes the operation still has to write, for the message."""
    token = _needs.set(needs)
    try:
        yield
    except RagchatError:
        raise
    except (OSError, sqlite3.Error, ValueError, RuntimeError) as exc:
        found = failure(exc, where)
        if found is None:
            raise
        raise found from exc
    except Exception as exc:  # chromadb's own errors (InternalError, ...)
        if (
            type(exc).__module__.split(".")[0] != "chromadb"
            or (found := failure(exc, where)) is None
        ):
            raise
        raise found from exc
    finally:
        _needs.reset(token)
