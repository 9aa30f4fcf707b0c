"""Which files an ingest takes: the regular files under a folder that a loader can read, and
the others with a reason (hidden and tooling folders, --include/--exclude, unreadable
folders and files, names that are not UTF-8, files over the size cap, unsupported types)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import NamedTuple

from ragchat.loaders import loader_for, unsupported_reason
from ragchat.text import escaped, undecodable

# Folders that hold tooling, not documents.
SKIP_DIRS = {"node_modules", "__pycache__", "venv", "site-packages"}
HIDDEN = "hidden or tooling folder, not entered"  # reasons counted, not listed, in a summary
LEFT_OUT = "left out by --include/--exclude"
NOT_UTF8 = "its name is not valid UTF-8; rename it to ingest it (e.g. convmv -f latin1 -t utf8)"


class Discovered(NamedTuple):
    files: list[Path]  # to ingest
    skipped: list[tuple[str, str]]  # (path as shown, reason)
    unreadable: list[tuple[str, str]]  # (path, reason): cannot be read, so what it held is kept


@dataclass(frozen=True)
class Selection:
    """Which files under a folder to ingest (--include and --exclude): a file is taken when
    it matches an include glob (or none is given) and no exclude glob; a folder matching an
    exclude glob is not entered. Globs match the path relative to the folder, or the name."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def _matches(self, globs: Sequence[str], relative: str) -> bool:
        name = relative.rsplit("/", 1)[-1]
        return any(fnmatch(relative, g) or fnmatch(name, g) for g in globs)

    def takes(self, relative: str) -> bool:
        if self._matches(self.exclude, relative):
            return False
        return not self.include or self._matches(self.include, relative)

    def enters(self, relative: str) -> bool:
        return not self._matches(self.exclude, relative)


def discover(root: Path, max_bytes: int = 0, selection: Selection | None = None) -> Discovered:
    """Regular files under ``root`` that a loader can read, and the others with a reason.

    Symlinks are followed only within ``root``; FIFOs, devices and sockets are never opened;
    files over ``max_bytes`` (when set) are skipped; hidden folders (and tooling folders such
    as node_modules) are not entered, and named with the reason ``HIDDEN``; files that
    ``selection`` leaves out are named with the reason ``LEFT_OUT``. A folder or file that
    cannot be read (no permission) is ``unreadable``: not a deletion, so its documents stay in
    the collection. A name that is not valid UTF-8 cannot be stored (Chroma, SQLite and
    tantivy keep text): skipped, shown with the odd bytes escaped."""
    skipped: list[tuple[str, str]] = []
    unreadable: list[tuple[str, str]] = []
    selection = selection or Selection()

    def cannot_read(path: str | Path, exc: OSError, what: str) -> None:
        if isinstance(exc, FileNotFoundError):  # gone, not unreadable: what it held goes too
            return
        location = Path(path).absolute().resolve()  # resolving needs no access to it
        unreadable.append((str(location), f"{what} cannot be read ({exc.strerror or exc})"))

    if undecodable(str(root)):
        return Discovered([], [(escaped(str(root.absolute())), NOT_UTF8)], [])
    if root.is_file():
        files = [root]
    else:
        files = []
        walk = os.walk(root, onerror=lambda exc: cannot_read(exc.filename, exc, "folder"))
        for folder, dirs, names in walk:
            relative = Path(folder).relative_to(root).as_posix()
            prefix = "" if relative == "." else relative + "/"
            entered = []
            for name in sorted(dirs):
                path = Path(folder, name)
                where = str(path.absolute())
                if name.startswith(".") or name in SKIP_DIRS:
                    skipped.append((where, HIDDEN))
                    continue
                if undecodable(name):
                    skipped.append((escaped(where), NOT_UTF8))
                    continue
                try:
                    linked = path.is_symlink()
                except PermissionError as exc:  # in a folder that can be listed, not entered
                    cannot_read(path, exc, "folder")
                    continue
                if linked:
                    skipped.append((where, "symlinked folder, not followed"))
                if selection.enters(prefix + name):
                    entered.append(name)  # os.walk does not follow a symlink: only listed
            dirs[:] = entered
            for name in sorted(names):
                if name.startswith("."):
                    continue
                if undecodable(name):
                    skipped.append((escaped(str(Path(folder, name).absolute())), NOT_UTF8))
                elif selection.takes(prefix + name):
                    files.append(Path(folder, name))
                else:
                    skipped.append((str(Path(folder, name).absolute()), LEFT_OUT))
    inside = root.resolve()
    found: list[Path] = []
    seen: set[Path] = set()
    for path in files:
        shown = str(path.absolute())
        try:
            resolved = path.resolve(strict=True)
        except PermissionError as exc:  # in a folder that can be listed but not entered
            cannot_read(path, exc, "file")
            continue
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop on Python 3.11
            skipped.append((shown, "broken symlink or symlink loop"))
            continue
        if undecodable(str(resolved)):  # a symlink to a file whose name is not UTF-8
            skipped.append((shown, NOT_UTF8))
        elif path != root and path.is_symlink() and not resolved.is_relative_to(inside):
            skipped.append((shown, "symlink to outside the folder, not followed"))
        elif not resolved.is_file():
            skipped.append((shown, "not a regular file"))
        elif resolved in seen:
            continue
        elif max_bytes and (size := resolved.stat().st_size) > max_bytes:
            megabytes = size / 1e6
            skipped.append(
                (
                    str(resolved),
                    f"too large ({megabytes:.0f} MB; the limit is --max-file-mb {max_bytes // 1_000_000})",
                )
            )
        elif loader_for(resolved) is None:
            skipped.append((str(resolved), unsupported_reason(resolved)))
        else:
            seen.add(resolved)
            found.append(resolved)
    return Discovered(found, skipped, unreadable)
