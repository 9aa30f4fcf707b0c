"""Incremental ingest: find files, load, chunk, embed, store; only what changed.

A file whose size and mtime match the manifest is not even read; one whose content hash
matches is not re-embedded. Changed files are re-chunked and re-embedded, deleted files lose
their chunks. Vectors are written before the manifest row, so an interrupted ingest leaves
nothing the next run does not repair.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from ragchat import interrupts
from ragchat.chunking import Chunk, chunk_pages
from ragchat.collection import Collection
from ragchat.document_vectors import describe, mean_vector
from ragchat.embedders import Embedder
from ragchat.errors import LoadError
from ragchat.ids import chunk_id, document_id
from ragchat.isolation import SafeLoader
from ragchat.loaders import Page, load, loader_for, paragraph_blocks, unsupported_reason
from ragchat.manifest import FileRecord
from ragchat.store import chunk_metadata
from ragchat.text import is_under

# Folders that hold tooling, not documents.
SKIP_DIRS = {"node_modules", "__pycache__", "venv", "site-packages"}
EMBED_BATCH = 64  # chunks embedded and written together: a kill or Ctrl-C loses at most two batches


class Progress(Protocol):
    def start(self, total_files: int) -> None: ...
    def advance(self, files: int = 0, chunks: int = 0) -> None: ...


class _NoProgress:
    def start(self, total_files: int) -> None:
        pass

    def advance(self, files: int = 0, chunks: int = 0) -> None:
        pass


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    chunks_embedded: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        text = (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed,"
            f" {self.unchanged} unchanged, {len(self.skipped)} skipped"
        )
        if self.skipped:
            text += ": " + ", ".join(f"{Path(p).name} ({why})" for p, why in self.skipped)
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "skipped": [{"path": p, "reason": why} for p, why in self.skipped],
            "chunks_embedded": self.chunks_embedded,
            "seconds": round(self.seconds, 3),
        }


def discover(root: Path, max_bytes: int = 0) -> tuple[list[Path], list[tuple[str, str]]]:
    """Regular files under ``root`` that a loader can read, and the others with a reason.

    Symlinks are followed only within ``root``; FIFOs, devices and sockets are never opened;
    files over ``max_bytes`` (when set) are skipped."""
    skipped: list[tuple[str, str]] = []
    if root.is_file():
        files = [root]
    else:
        files = []
        for folder, dirs, names in os.walk(root):
            for name in dirs:
                if Path(folder, name).is_symlink() and not name.startswith("."):
                    skipped.append(
                        (str(Path(folder, name).absolute()), "symlinked folder, not followed")
                    )
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
            files.extend(Path(folder, n) for n in sorted(names) if not n.startswith("."))
    inside = root.resolve()
    found: list[Path] = []
    seen: set[Path] = set()
    for path in files:
        shown = str(path.absolute())
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop on Python 3.11
            skipped.append((shown, "broken symlink or symlink loop"))
            continue
        if path != root and path.is_symlink() and not resolved.is_relative_to(inside):
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
    return found, skipped


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Source(Protocol):
    """Something to ingest: a file, or a document from a dataset."""

    @property
    def key(self) -> str:
        """The path a chunk cites."""
        ...

    def fingerprint(self) -> tuple[int, int]:
        """(size, mtime_ns): cheap; equal to the manifest's means unchanged."""
        ...

    def digest(self) -> str:
        """SHA-256 of the content."""
        ...

    def load(self) -> list[Page]: ...


@dataclass
class FileSource:
    path: Path
    reader: Callable[[Path], list[Page]] = load

    @property
    def key(self) -> str:
        return str(self.path)

    def fingerprint(self) -> tuple[int, int]:
        stat = self.path.stat()
        return stat.st_size, stat.st_mtime_ns

    def digest(self) -> str:
        return file_hash(self.path)

    def load(self) -> list[Page]:
        return self.reader(self.path)


# Formats whose parsers can be made to loop or explode: read in a worker with limits.
ISOLATED_SUFFIXES = {".pdf"}


@dataclass
class TextSource:
    """A document given as text (e.g. one record of a dataset); the title is its heading."""

    key: str
    text: str
    title: str = ""

    def fingerprint(self) -> tuple[int, int]:
        return len(self.text.encode()), 0

    def digest(self) -> str:
        return hashlib.sha256(f"{self.title}\0{self.text}".encode()).hexdigest()

    def load(self) -> list[Page]:
        return [
            Page(
                text=self.text,
                blocks=paragraph_blocks(self.text, headings=(self.title,) if self.title else ()),
            )
        ]


class _Pipeline:
    """Embeds one batch in the background while the main thread writes the batch before it
    and reads and chunks the next, so the cores that embed seldom wait for the rest.

    At most one batch is being embedded and one written; batches are written in order."""

    def __init__(
        self,
        embed: Callable[[list[_Pending]], list[list[float]]],
        write: Callable[[list[_Pending], list[list[float]]], None],
    ) -> None:
        self.embed, self.write = embed, write
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="ingest")
        self.waiting: tuple[list[_Pending], Future[list[list[float]]]] | None = None

    def push(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        previous = self._take()
        self.waiting = (batch, self.executor.submit(self.embed, batch))
        if previous:
            self.write(*previous)

    def finish(self) -> None:
        previous = self._take()
        if previous:
            self.write(*previous)

    def _take(self) -> tuple[list[_Pending], list[list[float]]] | None:
        if self.waiting is None:
            return None
        batch, future = self.waiting
        self.waiting = None
        return batch, future.result()

    def close(self) -> None:
        """After an error or Ctrl-C: the batch being embedded is finished, not written."""
        self.executor.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Pending:
    path: str
    record: FileRecord
    chunks: list[Chunk]
    previous: FileRecord | None


class Ingestor:
    """Brings a collection in step with a folder (``run``) or with given sources (``sync``)."""

    def __init__(
        self,
        collection: Collection,
        embedder: Embedder,
        chunk_tokens: int,
        progress: Progress | None = None,
        max_file_mb: int = 0,
    ) -> None:
        self.collection = collection
        self.store = collection.store
        self.manifest = collection.manifest
        self.name = collection.name
        self.lexical = collection.lexical
        self.documents = collection.documents
        self.embedder = embedder
        self.chunk_tokens = chunk_tokens
        self.progress = progress or _NoProgress()
        self.max_file_mb = max_file_mb

    def run(self, root: Path) -> IngestReport:
        """Bring the collection in step with the files under ``root`` (a folder or a file)."""
        root = root.absolute()
        files, skipped = discover(root, self.max_file_mb * 1_000_000)
        scope = str(root.resolve())
        safe = SafeLoader()
        try:
            report = self.sync(
                [
                    FileSource(p, safe.load if p.suffix.lower() in ISOLATED_SUFFIXES else load)
                    for p in files
                ],
                lambda key: is_under(key, scope),
            )
        finally:
            safe.close()
        report.skipped[:0] = skipped
        return report

    def sync(self, sources: Sequence[Source], in_scope: Callable[[str], bool]) -> IngestReport:
        """Ingest ``sources``; remove what the collection holds in scope but they no longer have."""
        try:
            return self._sync(sources, in_scope)
        finally:  # let go of the lexical index's writer (its lock) and let its merges finish
            self.lexical.close()

    def _sync(self, sources: Sequence[Source], in_scope: Callable[[str], bool]) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        self.collection.check_embedder(self.embedder.id)
        self._repair()
        known = self.manifest.files(self.name)
        self.progress.start(len(sources))

        present = {s.key for s in sources}
        gone = [k for k in known if in_scope(k) and k not in present]
        self._remove({key: known[key] for key in gone})
        report.removed.extend(gone)

        batch: list[_Pending] = []
        pipeline = _Pipeline(self._embed, lambda done, vectors: self._write(done, vectors, report))
        try:
            for source in sources:
                interrupts.check()
                pending = self._prepare(source, known.get(source.key), report)
                if pending is None:
                    self.progress.advance(files=1)
                    continue
                batch.append(pending)
                if sum(len(p.chunks) for p in batch) >= EMBED_BATCH:
                    interrupts.check()
                    pipeline.push(batch)
                    batch = []
            pipeline.push(batch)
            pipeline.finish()
        finally:
            pipeline.close()
        report.seconds = time.perf_counter() - started
        return report

    def _prepare(
        self, source: Source, previous: FileRecord | None, report: IngestReport
    ) -> _Pending | None:
        """Chunks of a source that needs (re-)embedding; None when unchanged or unreadable."""
        key = source.key
        try:
            size, mtime_ns = source.fingerprint()
            if previous and (previous.size, previous.mtime_ns) == (size, mtime_ns) and mtime_ns:
                report.unchanged += 1
                return None
            for _attempt in range(2):
                digest = source.digest()
                if previous and previous.sha256 == digest:  # touched, not changed
                    if (previous.size, previous.mtime_ns) != (size, mtime_ns):
                        self.manifest.put_file(
                            self.name, replace(previous, size=size, mtime_ns=mtime_ns)
                        )
                    report.unchanged += 1
                    return None
                try:
                    pages = source.load()
                except LoadError as exc:
                    reason = str(exc) + ("; kept the previous version" if previous else "")
                    report.skipped.append((key, reason))
                    return None
                # Written to while being read? Then the digest and the text may disagree:
                # read it again, once.
                now = source.fingerprint()
                if now == (size, mtime_ns):
                    break
                size, mtime_ns = now
            else:  # still changing: a record that matches no file, so the next ingest redoes it
                size, mtime_ns, digest = -1, -1, ""
        except FileNotFoundError:
            report.skipped.append(
                (
                    key,
                    "vanished during the ingest"
                    + ("; kept the previous version" if previous else ""),
                )
            )
            return None
        except OSError as exc:
            report.skipped.append((key, f"cannot read ({exc.strerror or exc})"))
            return None
        chunks = chunk_pages(
            pages, self.embedder.count_tokens, self.chunk_tokens, self.embedder.max_tokens
        )
        paginated = any(p.number is not None for p in pages)
        record = FileRecord(
            key, size, mtime_ns, digest, len(chunks), len(pages) if paginated else None
        )
        return _Pending(key, record, chunks, previous)

    def _embed(self, batch: list[_Pending]) -> list[list[float]]:
        texts = [c.embed_text for p in batch for c in p.chunks]
        return self.embedder.embed_passages(texts) if texts else []

    def _write(
        self, batch: list[_Pending], vectors: list[list[float]], report: IngestReport
    ) -> None:
        """Write an embedded batch: vectors and lexical rows first, then the manifest rows."""
        self.collection.ensure(self.embedder)
        self.manifest.mark_pending(
            self.name,
            [(p.path, max(len(p.chunks), p.previous.chunks if p.previous else 0)) for p in batch],
        )
        chunks = [(p.path, i, c) for p in batch for i, c in enumerate(p.chunks)]
        if chunks:
            self.store.upsert(
                self.name,
                [chunk_id(path, i) for path, i, _ in chunks],
                vectors,
                [c.text for _, _, c in chunks],
                [
                    chunk_metadata(
                        path, c.page, c.heading_path, c.start, c.end, c.line, c.end_line, c.symbol
                    )
                    for path, _, c in chunks
                ],
            )
        stale = [
            chunk_id(p.path, i)
            for p in batch
            if p.previous
            for i in range(len(p.chunks), p.previous.chunks)
        ]
        if stale:
            self.store.delete(self.name, stale)
        self._write_documents(batch, vectors)
        # a file without a manifest row has no lexical rows (``_repair`` saw to that)
        self.lexical.remove(*[p.path for p in batch if p.previous])
        for pending in batch:
            ids = [chunk_id(pending.path, i) for i in range(len(pending.chunks))]
            self.lexical.add(pending.path, ids, [c.embed_text for c in pending.chunks])
        self.lexical.commit()
        with self.manifest.transaction():
            for pending in batch:
                self.manifest.put_file(self.name, pending.record)
            self.manifest.clear_pending(self.name, [p.path for p in batch])
            if any(p.previous for p in batch):  # their old text was overwritten
                self.manifest.flag_purge()
        for pending in batch:
            (report.updated if pending.previous else report.added).append(pending.path)
            report.chunks_embedded += len(pending.chunks)
            self.progress.advance(files=1, chunks=len(pending.chunks))

    def _write_documents(self, batch: list[_Pending], vectors: Sequence[Sequence[float]]) -> None:
        """One vector per document, from its chunks' vectors (see ragchat/document_vectors.py);
        written, like the chunks, before the manifest row."""
        entries, empty = [], []
        position = 0
        for pending in batch:
            count = len(pending.chunks)
            if count:
                first = pending.chunks[0]
                meta = describe(pending.path, first.headings, first.text)
                entries.append(
                    (
                        document_id(pending.path),
                        mean_vector(vectors[position : position + count]),
                        meta,
                    )
                )
            else:
                empty.append(document_id(pending.path))
            position += count
        self.documents.put(entries)
        self.documents.delete(empty)

    def _repair(self) -> None:
        """Undo what an interrupted ingest wrote for files it did not finish: the chunks and
        lexical rows of files no manifest row owns; and files that have a row (from an older
        version) are marked to be redone, since their chunks may be the unfinished version's."""
        pending = self.manifest.pending(self.name)
        if not pending:
            return
        owned = self.manifest.files(self.name)
        orphans = [
            chunk_id(path, i)
            for path, written in pending
            for i in range(owned[path].chunks if path in owned else 0, written)
        ]
        if orphans and self.collection.exists:
            self.store.delete(self.name, orphans)
        unowned = [path for path, _ in pending if path not in owned]
        self.documents.delete([document_id(path) for path in unowned])
        self.lexical.remove(*unowned)
        self.lexical.commit()
        with self.manifest.transaction():
            for path, _ in pending:
                if path in owned:  # no size, time or hash matches: the next sync redoes it
                    self.manifest.put_file(
                        self.name, replace(owned[path], size=-1, mtime_ns=-1, sha256="")
                    )
            self.manifest.clear_pending(self.name, [path for path, _ in pending])
            self.manifest.flag_purge()

    def _remove(self, records: dict[str, FileRecord]) -> None:
        """Forget deleted files: their chunks, document vectors, lexical rows, then rows."""
        if not records:
            return
        ids = [chunk_id(path, i) for path, record in records.items() for i in range(record.chunks)]
        if ids and self.collection.exists:
            self.store.delete(self.name, ids)
        self.documents.delete([document_id(path) for path in records])
        self.lexical.remove(*records)
        self.lexical.commit()
        with self.manifest.transaction():
            for path in records:
                self.manifest.delete_file(self.name, path)
            self.manifest.flag_purge()
