"""``ragchat watch``: ingest a folder once, then follow it as files are added, edited, renamed
and deleted.

Changes come from ``watchfiles`` (the Rust ``notify`` crate: inotify, FSEvents, ...), grouped
over a short debounce. A changed path is synced once it has been quiet for a moment, so a file
still being written waits for its last write; editors' and browsers' temporary files never
count. Each sync is an ordinary incremental ingest of just the changed paths (a path that is
gone loses its chunks), holding the store's write lock only while it runs: other terminals
search, ask and chat meanwhile, and a crash or a kill leaves only what the next run repairs.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragchat.errors import StoreBusy
from ragchat.ingest import SKIP_DIRS, IngestReport, Selection

if TYPE_CHECKING:
    from ragchat.app import App

# Names that are never documents: editors' swap, backup and probe files (vim writes "4913" to
# test a folder), office lock files, unfinished downloads and atomic-save temporaries.
TEMPORARY = re.compile(
    r"""^(?:
        \..*                                    # hidden, as ingest skips them (.#lock, .swp)
      | .*~ | \#.*\# | ~\$.* | 4913
      | .*\.(?:sw[a-p]|tmp|temp|part|partial|crdownload|download|opdownload|!ut|lock|bak)
    )$""",
    re.VERBOSE | re.IGNORECASE,
)
QUIET_SECONDS = 1.0  # a file untouched this long is taken to be completely written
DEBOUNCE_MS = 1_000  # the longest watchfiles groups changes before handing them over
STEP_MS = 100  # ... or as soon as there has been no change for this long
WAKE_MS = 250  # wake this often while changes wait (to be quiet, or for a busy store)
WHOLE_FOLDER = 200  # more changed paths than this: sync the whole folder at once (a walk)


def ignored(path: Path, root: Path) -> bool:
    """Is ``path`` (under ``root``) something no sync should look at?"""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return True
    if not parts:
        return False
    return any(p.startswith(".") or p in SKIP_DIRS for p in parts[:-1]) or bool(
        TEMPORARY.match(parts[-1])
    )


@dataclass
class Waiting:
    """Changed paths not synced yet, each with when it was last seen changing."""

    paths: dict[str, float] = field(default_factory=dict)

    def add(self, paths: Iterable[str], now: float) -> None:
        for path in paths:
            self.paths[path] = now

    def due(self, now: float, quiet: float = QUIET_SECONDS) -> list[str]:
        """Paths ready to sync: no event and no write for ``quiet`` seconds (a rename's two
        halves, or a save's delete and create, then go in one sync)."""
        ready = []
        for path, seen in self.paths.items():
            with contextlib.suppress(OSError):  # gone (deleted, renamed): only its event counts
                seen = max(seen, Path(path).stat().st_mtime)
            if now - seen >= quiet:
                ready.append(path)
        return ready

    def done(self, paths: Iterable[str]) -> None:
        for path in paths:
            self.paths.pop(path, None)


class Watcher:
    """Follows ``root`` into ``app``'s collection until Ctrl-C or ``stop`` is set.

    ``on_start`` hears the first ingest's report, ``on_sync`` every later sync that changed
    something, ``on_wait`` a one-line notice when the store is busy (another ingest)."""

    def __init__(
        self,
        app: App,
        root: Path,
        on_sync: Callable[[IngestReport], None] = lambda report: None,
        on_wait: Callable[[str], None] = lambda message: None,
        on_start: Callable[[IngestReport], None] = lambda report: None,
        quiet: float = QUIET_SECONDS,
        selection: Selection | None = None,
    ) -> None:
        self.app = app
        self.root = root.expanduser().resolve()
        self.selection = selection or Selection()
        self.on_sync = on_sync
        self.on_wait = on_wait
        self.on_start = on_start
        self.quiet = quiet
        self.waiting = Waiting()
        self.busy = False
        self.syncing = False  # a Ctrl-C now interrupts a sync (which the next run repairs)

    def run(
        self, stop: Any = None, initial: Callable[[], IngestReport] | None = None
    ) -> IngestReport:
        """Ingest the folder (``initial``, default ``App.ingest``), then follow it until
        ``stop`` (anything with ``is_set()``) is set; Ctrl-C raises KeyboardInterrupt. The
        first ingest runs once the watch has begun, so no change falls between the two; a
        store busy then is an error, as for ``ragchat ingest``. Returns the first report."""
        import watchfiles

        first: IngestReport | None = None
        for changes in watchfiles.watch(
            self.root,
            watch_filter=lambda change, path: self.wanted(Path(path)),
            debounce=DEBOUNCE_MS,
            step=STEP_MS,
            rust_timeout=WAKE_MS,
            yield_on_timeout=True,
            stop_event=stop,
        ):
            if first is None:
                self.syncing = True
                first = (
                    initial() if initial else self.app.ingest(self.root, selection=self.selection)
                )
                self.syncing = False
                self.on_start(first)
            now = time.time()
            self.waiting.add((path for _, path in changes), now)
            due = self.waiting.due(now, self.quiet)
            if due:
                self.sync(due)
        return first or IngestReport()

    def wanted(self, path: Path) -> bool:
        """Is ``path`` a change to sync: not ignored, and (for --include/--exclude) in a folder
        the selection enters, and a file it takes (a folder, or a path that is gone, counts
        when the selection enters it: what was ingested under it must go)."""
        if ignored(path, self.root):
            return False
        relative = path.relative_to(self.root).as_posix()
        parts = relative.split("/")
        if not all(self.selection.enters("/".join(parts[: i + 1])) for i in range(len(parts))):
            return False
        return path.is_dir() or not path.exists() or self.selection.takes(relative)

    def sync(self, paths: list[str]) -> IngestReport | None:
        """Ingest these changed paths; None (and they keep waiting) while the store is busy."""
        whole = len(paths) > WHOLE_FOLDER or (
            # a new folder is walked from the root, where the selection's globs are relative to
            self.selection != Selection() and any(Path(p).is_dir() for p in paths)
        )
        roots = [self.root] if whole else [Path(p) for p in paths]
        self.syncing = True
        try:
            report = self.app.ingest(roots, selection=self.selection)
        except StoreBusy as exc:
            if not self.busy:
                self.on_wait(f"{exc} Changes wait until it is free.")
            self.busy = True
            return None
        finally:
            self.syncing = False
        self.busy = False
        self.waiting.done(paths)
        if report.added or report.updated or report.removed or report.skipped:
            self.on_sync(report)
        return report


def interrupt_on_terminate() -> None:
    """A plain ``kill`` (SIGTERM, as service managers stop things) stops like Ctrl-C."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
