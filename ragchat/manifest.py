"""The manifest: which files each collection holds, in SQLite beside the vector store.

It is what makes re-ingest incremental (size, mtime and content hash per file) and records
the embedder each collection was built with, so a mismatch is caught before any model loads.
Vectors are written first and the manifest row last, so a crash leaves at worst chunks that
the next ingest of that file overwrites (chunk ids are deterministic).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragchat import disk
from ragchat.errors import StoreBusy, StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY,
    embedder TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    query_prefix TEXT NOT NULL,
    passage_prefix TEXT NOT NULL,
    chunker TEXT NOT NULL,
    created REAL NOT NULL,
    backend TEXT NOT NULL DEFAULT 'torch',
    chunk_tokens INTEGER
);
CREATE TABLE IF NOT EXISTS files (
    collection TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    pages INTEGER,
    ingested REAL NOT NULL,
    PRIMARY KEY (collection, path)
);
CREATE TABLE IF NOT EXISTS flags (
    name TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS calibrations (
    collection TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    collection TEXT NOT NULL,
    path TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    PRIMARY KEY (collection, path)
);
"""


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    sha256: str
    chunks: int
    pages: int | None = None


COLLECTION_COLUMNS = (
    "name, embedder, dimension, query_prefix, passage_prefix, chunker, backend, chunk_tokens"
)


@dataclass(frozen=True)
class CollectionRecord:
    name: str
    embedder: str
    dimension: int
    query_prefix: str
    passage_prefix: str
    chunker: str
    backend: str = "torch"  # collections from before the ONNX backend were built with torch
    chunk_tokens: int | None = None  # the target chunk size; None: not recorded (built before)


METADATA_PREFIX = "ragchat:"


def collection_metadata(record: CollectionRecord) -> dict[str, Any]:
    """The record as the metadata of its Chroma collection (read back by ``record_from_metadata``),
    so a Chroma server tells every machine what a collection was built with."""
    return {
        METADATA_PREFIX + k: v
        for k, v in record.__dict__.items()
        if k != "name" and v is not None  # Chroma metadata values cannot be None
    }


def record_from_metadata(name: str, meta: dict[str, Any]) -> CollectionRecord | None:
    """The record kept by ``collection_metadata``; None for a collection ragchat did not make."""

    def value(key: str, default: Any = None) -> Any:
        return meta.get(METADATA_PREFIX + key, default)

    if value("embedder") is None:
        return None
    return CollectionRecord(
        name=name,
        embedder=str(value("embedder")),
        dimension=int(value("dimension")),
        query_prefix=str(value("query_prefix", "")),
        passage_prefix=str(value("passage_prefix", "")),
        chunker=str(value("chunker", "")),
        backend=str(value("backend", "torch")),
        chunk_tokens=int(value("chunk_tokens")) if value("chunk_tokens") is not None else None,
    )


class Manifest:
    def __init__(self, path: Path, read_only: bool = False) -> None:
        """The manifest in ``path``; ``read_only`` for a store that cannot be written (a
        read-only home), opened as immutable (no lock, no -shm file), empty when absent."""
        self.path = path
        self.read_only = read_only
        try:
            if read_only:
                self.db = _read_only(path)
                return
            self.db = sqlite3.connect(path, timeout=10, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            # deleted rows are overwritten, not left readable in free space
            self.db.execute("PRAGMA secure_delete=ON")
            self.db.executescript(SCHEMA)
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(collections)")}
            if "backend" not in columns:  # a manifest from before the ONNX backend
                self.db.execute(
                    "ALTER TABLE collections ADD COLUMN backend TEXT NOT NULL DEFAULT 'torch'"
                )
            if "chunk_tokens" not in columns:  # from before the chunk size was recorded
                self.db.execute("ALTER TABLE collections ADD COLUMN chunk_tokens INTEGER")
        except sqlite3.Error as exc:
            full = disk.full(exc, path.parent)  # nothing to move away: room to make
            if full is not None:
                raise full from exc
            if not path.parent.is_dir() or not path.exists():
                raise StoreError(
                    f"Cannot create the manifest {path} ({exc}); set RAGCHAT_HOME to a"
                    " writable folder."
                ) from exc
            raise StoreError(
                f"Cannot open the manifest {path} ({exc}); check its permissions,"
                " or move it away and re-ingest."
            ) from exc

    def close(self) -> None:
        self.db.close()

    def version(self) -> int:
        """A number that changes when another connection commits (another process ingested):
        a long-lived reader then reopens the store, whose vector index it caches."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # collections

    def collection(self, name: str) -> CollectionRecord | None:
        row = self.db.execute(
            f"SELECT {COLLECTION_COLUMNS} FROM collections WHERE name = ?",
            (name,),
        ).fetchone()
        return CollectionRecord(*row) if row else None

    def collections(self) -> list[CollectionRecord]:
        rows = self.db.execute(f"SELECT {COLLECTION_COLUMNS} FROM collections ORDER BY name")
        return [CollectionRecord(*row) for row in rows]

    def add_collection(self, record: CollectionRecord) -> None:
        self.db.execute(
            f"INSERT OR REPLACE INTO collections ({COLLECTION_COLUMNS}, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*_values(record), time.time()),
        )

    def drop_collection(self, name: str) -> None:
        """Forget the collection's rows (its record, files, unfinished writes, rebuild) and flag a
        purge; the rest of what dropping a collection removes is in ``Collection.drop``."""
        with self.transaction() as db:
            db.execute("DELETE FROM pending WHERE collection = ?", (name,))
            db.execute("DELETE FROM calibrations WHERE collection = ?", (name,))
            db.execute("DELETE FROM files WHERE collection = ?", (name,))
            db.execute("DELETE FROM collections WHERE name = ?", (name,))
            self.rebuilt(name)  # a collection dropped is not one being rebuilt
            self.flag_purge()

    # text was deleted: the next ingest scrubs it from disk (see ``purge``); a flag in the
    # database, so an ingest stopped before its purge still leaves the work to the next one

    def flag_purge(self) -> None:
        self.db.execute("INSERT OR IGNORE INTO flags VALUES ('purge')")

    def purge_needed(self) -> bool:
        return self.db.execute("SELECT 1 FROM flags WHERE name = 'purge'").fetchone() is not None

    def purged(self) -> None:
        self.db.execute("DELETE FROM flags WHERE name = 'purge'")

    def mark_rebuilding(self, collection: str) -> None:
        """A --rebuild dropped the collection and is filling it again: until ``rebuilt``,
        it is partial (searches say so, doctor fails it)."""
        self.db.execute("INSERT OR IGNORE INTO flags VALUES (?)", (f"rebuilding:{collection}",))

    def rebuilding(self) -> set[str]:
        """The collections a --rebuild has not finished filling."""
        rows = self.db.execute("SELECT name FROM flags WHERE name LIKE 'rebuilding:%'")
        return {row[0].removeprefix("rebuilding:") for row in rows}

    def rebuilt(self, collection: str) -> None:
        self.db.execute("DELETE FROM flags WHERE name = ?", (f"rebuilding:{collection}",))

    def purge(self) -> None:
        """Leave no deleted text in this database's files: free pages and the -wal file keep
        old pages (the lexical indexes compact themselves, see ``LexicalIndex.compact``)."""
        self.db.execute("VACUUM")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # files

    def files(self, collection: str) -> dict[str, FileRecord]:
        rows = self.db.execute(
            "SELECT path, size, mtime_ns, sha256, chunks, pages FROM files WHERE collection = ?",
            (collection,),
        )
        return {row[0]: FileRecord(*row) for row in rows}

    def put_file(self, collection: str, record: FileRecord) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (collection, *_values(record), time.time()),
        )

    def delete_file(self, collection: str, path: str) -> None:
        self.db.execute("DELETE FROM files WHERE collection = ? AND path = ?", (collection, path))

    # chunk ids being written: recorded before the vectors, cleared with the manifest row,
    # so chunks left by a killed ingest can be found and removed

    def mark_pending(self, collection: str, entries: list[tuple[str, int]]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO pending VALUES (?, ?, ?)",
                [(collection, path, chunks) for path, chunks in entries],
            )

    def clear_pending(self, collection: str, paths: list[str]) -> None:
        self.db.executemany(
            "DELETE FROM pending WHERE collection = ? AND path = ?",
            [(collection, p) for p in paths],
        )

    def pending(self, collection: str) -> list[tuple[str, int]]:
        rows = self.db.execute(
            "SELECT path, chunks FROM pending WHERE collection = ?", (collection,)
        )
        return [(path, int(chunks)) for path, chunks in rows]

    def state(self, collection: str) -> str:
        """A string that changes whenever the collection's files do (added, changed, removed)."""
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(chunks), 0), COALESCE(MAX(ingested), 0)"
            " FROM files WHERE collection = ?",
            (collection,),
        ).fetchone()
        return f"{row[0]}:{row[1]}:{row[2]!r}"

    # what is computed once from a collection's state (the relevance floor's probes)

    def calibration(self, collection: str, state: str) -> str | None:
        row = self.db.execute(
            "SELECT data FROM calibrations WHERE collection = ? AND state = ?", (collection, state)
        ).fetchone()
        return str(row[0]) if row else None

    def put_calibration(self, collection: str, state: str, data: str) -> None:
        """Keep it, if the manifest can be written (it is a cache: a store on a read-only
        disk or busy with another writer computes it again next time)."""
        with suppress(sqlite3.Error):
            self.db.execute(
                "INSERT OR REPLACE INTO calibrations VALUES (?, ?, ?)", (collection, state, data)
            )

    def counts(self, collection: str) -> tuple[int, int]:
        """(documents, chunks) of a collection."""
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM files WHERE collection = ?",
            (collection,),
        ).fetchone()
        return int(row[0]), int(row[1])


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that reads ``path`` without writing anything beside it; an empty
    manifest (in memory) when there is none yet."""
    if not path.exists():
        db = sqlite3.connect(":memory:", isolation_level=None)
        db.executescript(SCHEMA)
        return db
    from urllib.parse import quote

    # immutable: no -shm file to make; but a write-ahead log left by a writer still running
    # (or killed) holds rows of its own, read as read-only WAL (SQLite uses its -shm as is)
    log = path.with_name(path.name + "-wal")
    mode = "mode=ro" if log.exists() and log.stat().st_size else "immutable=1"
    return sqlite3.connect(f"file:{quote(str(path))}?{mode}", uri=True, isolation_level=None)


def _values(record: CollectionRecord | FileRecord) -> tuple[Any, ...]:
    return tuple(record.__dict__.values())


@contextmanager
def write_lock(folder: Path) -> Iterator[None]:
    """Only one process writes a store at a time; the next is told who holds it, at once."""
    import fcntl
    import os

    path = folder / "write.lock"
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise StoreBusy(
            f"The store at {folder} is in use by PID {holder} (another ingest);"
            " wait for it to finish, or stop that process."
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.seek(0)
        handle.truncate()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
