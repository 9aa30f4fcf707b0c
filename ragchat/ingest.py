"""Incremental ingest: find files, load, chunk, embed, store; only what changed.

A file whose size and mtime match the manifest is not even read; one whose content hash
matches is not re-embedded. Changed files are re-chunked and re-embedded, deleted files lose
their chunks. Vectors are written before the manifest row, so an interrupted ingest leaves
nothing the next run does not repair.

Files are read ahead of the rest in a pool of worker processes (isolation.py, one per core by
default), but what was read is chunked, embedded and written strictly in file order: chunk ids,
the store and the manifest never depend on which worker finished first.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol

from ragchat.chunking import Chunk, chunk_pages
from ragchat.collection import Collection
from ragchat.config import cores
from ragchat.discovery import HIDDEN, LEFT_OUT, Selection, discover
from ragchat.document_vectors import describe, mean_vector
from ragchat.embedders import Embedder
from ragchat.errors import LoadError
from ragchat.ids import chunk_id, document_id, parse_chunk_id
from ragchat.isolation import SafeLoader
from ragchat.loaders import ISOLATED_SUFFIXES, file_notes, load
from ragchat.manifest import FileRecord
from ragchat.pages import Page, paragraph_blocks
from ragchat.store import chunk_metadata
from ragchat.text import escaped, is_under, plural

EMBED_BATCH = 64  # chunks embedded and written together: a kill or Ctrl-C loses at most two batches
# bytes on disk per byte of text ingested, measured (~17-19 for 1 MB of text as 800 chunks,
# 384-d and 1024-d vectors): Chroma keeps the text, a trigram index of it, the vectors and
# its log; the lexical index keeps the text again
STORE_GROWTH = 20
READ_AHEAD = 4  # files read ahead per worker, so a slow file does not leave the others idle


class Progress(Protocol):
    def start(self, total_files: int) -> None: ...
    def note(self, text: str) -> None: ...  # what the ingest waits for; "" when done
    def advance(self, files: int = 0, chunks: int = 0) -> None: ...
    def step(self, text: str) -> None:
        """What the file being read is doing, e.g. "scan.pdf: OCR page 3 of 40"."""


class _NoProgress:
    def start(self, total_files: int) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def advance(self, files: int = 0, chunks: int = 0) -> None:
        pass

    def step(self, text: str) -> None:
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
    unowned: int = 0  # chunks found that no manifest row owned, dropped before indexing
    relexed: int = 0  # chunks put back in a lost or incomplete lexical index from the store
    # (path, note): what was off in a file that was read, e.g. "OCR'd (pages 1-2)"
    notes: list[tuple[str, str]] = field(default_factory=list)
    # where the time went, in seconds: "read" (loading files, summed over the workers that
    # read side by side), "chunk", "embed" (in the background), "write"; and how long the
    # ingest waited for the workers ("read_wait") and for the embedder ("embed_wait")
    timings: dict[str, float] = field(default_factory=dict)
    pages: int = 0  # pages of the paginated files read (PDF pages, slides, sheets, ...)

    def timed(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds

    def summary(self) -> str:
        files = [(p, why) for p, why in self.skipped if why not in (HIDDEN, LEFT_OUT)]
        text = (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed,"
            f" {self.unchanged} unchanged, {len(files)} skipped"
        )
        if files:
            text += ": " + ", ".join(f"{escaped(Path(p).name)} ({why})" for p, why in files)
        hidden = [escaped(Path(p).name) for p, why in self.skipped if why == HIDDEN]
        if hidden:
            shown = ", ".join(hidden[:3]) + (", …" if len(hidden) > 3 else "")
            text += f"; {plural(len(hidden), 'hidden folder')} skipped ({shown})"
        left_out = sum(1 for _, why in self.skipped if why == LEFT_OUT)
        if left_out:
            text += f"; {plural(left_out, 'file')} left out by --include/--exclude"
        if self.unowned:
            text += (
                f"; {self.unowned} stored chunks no manifest row owned (a lost manifest?) were"
                " dropped and their files indexed again"
            )
        if self.relexed:
            text += (
                f"; the lexical index was incomplete: {self.relexed} chunks put back from the"
                " vector store, nothing embedded again"
            )
        return text

    def note_lines(self) -> list[str]:
        """One line per file with notes: "report.pdf: OCR'd (pages 1-2); no text (page 3)"."""
        by_file: dict[str, list[str]] = {}
        for path, note in self.notes:
            by_file.setdefault(path, []).append(note)
        return [
            f"{escaped(Path(path).name)}: {'; '.join(notes)}" for path, notes in by_file.items()
        ]

    def to_dict(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "skipped": [{"path": p, "reason": why} for p, why in self.skipped],
            "notes": [{"path": p, "note": note} for p, note in self.notes],
            "chunks_embedded": self.chunks_embedded,
            "pages": self.pages,
            "seconds": round(self.seconds, 3),
            "timings": {stage: round(t, 3) for stage, t in self.timings.items()},
        }


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


def reader_for(path: Path, safe: SafeLoader) -> Callable[[Path], list[Page]]:
    """How to read ``path``: in the worker when its format's parsers can loop or explode."""
    if path.suffix.lower() in ISOLATED_SUFFIXES:
        return functools.partial(safe.load_with, load)
    return load


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
        report: IngestReport,
    ) -> None:
        self.embed, self.write, self.report = embed, write, report
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="ingest")
        self.waiting: tuple[list[_Pending], Future[list[list[float]]]] | None = None

    def _embed(self, batch: list[_Pending]) -> list[list[float]]:
        started = time.perf_counter()
        try:
            return self.embed(batch)
        finally:
            self.report.timed("embed", time.perf_counter() - started)

    def push(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        previous = self._take()
        self.waiting = (batch, self.executor.submit(self._embed, batch))
        if previous:
            self._write(*previous)

    def finish(self) -> None:
        previous = self._take()
        if previous:
            self._write(*previous)

    def _write(self, batch: list[_Pending], vectors: list[list[float]]) -> None:
        started = time.perf_counter()
        self.write(batch, vectors)
        self.report.timed("write", time.perf_counter() - started)

    def _take(self) -> tuple[list[_Pending], list[list[float]]] | None:
        if self.waiting is None:
            return None
        batch, future = self.waiting
        self.waiting = None
        started = time.perf_counter()
        vectors = future.result()
        self.report.timed("embed_wait", time.perf_counter() - started)
        return batch, vectors

    def close(self) -> None:
        """After an error or Ctrl-C: the batch being embedded is finished, not written."""
        self.executor.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Read:
    """What reading a source found (in a worker thread; the main thread acts on it)."""

    outcome: Literal["unchanged", "touched", "skipped", "read"]
    size: int = 0
    mtime_ns: int = 0
    digest: str = ""
    pages: list[Page] = field(default_factory=list)
    reason: str = ""  # why it was skipped
    seconds: float = 0.0


def read_source(source: Source, previous: FileRecord | None) -> _Read:
    """Read ``source`` unless the manifest's ``previous`` record shows it unchanged. Touches
    nothing shared (no manifest, no report), so sources can be read side by side."""
    started = time.perf_counter()
    try:
        size, mtime_ns = source.fingerprint()
        if previous and (previous.size, previous.mtime_ns) == (size, mtime_ns) and mtime_ns:
            return _Read("unchanged")
        for _attempt in range(2):
            digest = source.digest()
            if previous and previous.sha256 == digest:  # touched, not changed
                return _Read("touched", size, mtime_ns)
            try:
                pages = source.load()
            except LoadError as exc:
                reason = str(exc) + ("; kept the previous version" if previous else "")
                return _Read("skipped", reason=reason)
            # Written to while being read? Then the digest and the text may disagree:
            # read it again, once.
            now = source.fingerprint()
            if now == (size, mtime_ns):
                break
            size, mtime_ns = now
        else:  # still changing: a record that matches no file, so the next ingest redoes it
            size, mtime_ns, digest = -1, -1, ""
    except FileNotFoundError:
        kept = "; kept the previous version" if previous else ""
        return _Read("skipped", reason="vanished during the ingest" + kept)
    except OSError as exc:
        kept = "; kept the previous version" if previous else ""
        return _Read("skipped", reason=f"cannot read ({exc.strerror or exc}){kept}")
    return _Read("read", size, mtime_ns, digest, pages, seconds=time.perf_counter() - started)


@dataclass
class _Pending:
    path: str
    record: FileRecord
    chunks: list[Chunk]
    previous: FileRecord | None
    title: str = ""  # the loader's title for the document, if it knows one


class Ingestor:
    """Brings a collection in step with a folder (``run``) or with given sources (``sync``)."""

    def __init__(
        self,
        collection: Collection,
        embedder: Embedder,
        chunk_tokens: int,
        progress: Progress | None = None,
        max_file_mb: int = 0,
        selection: Selection | None = None,
        workers: int = 0,
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
        self.workers = workers or cores()  # processes reading files (and threads reading ahead)
        self.selection = selection
        self._model_loaded = False
        # (sources, manifest rows, position) of the sync under way, for ``bytes_needed``
        self._left: tuple[Sequence[Source], dict[str, FileRecord], int] = ([], {}, 0)
        self.relexed = 0  # chunks the sync under way put back in the lexical index

    def run(self, roots: Path | Sequence[Path]) -> IngestReport:
        """Bring the collection in step with the files under ``roots`` (folders or files; one
        that no longer exists loses what the collection held under it)."""
        roots = [roots] if isinstance(roots, Path) else list(roots)
        found: dict[Path, None] = {}
        skipped: list[tuple[str, str]] = []
        unreadable: list[tuple[str, str]] = []
        for root in roots:
            files, skips, cannot = discover(
                root.absolute(), self.max_file_mb * 1_000_000, self.selection
            )
            found.update(dict.fromkeys(files))
            skipped += skips
            unreadable += cannot
        scopes = [str(root.absolute().resolve()) for root in roots]

        def in_scope(key: str) -> bool:  # what cannot be read now is not gone: it is kept
            return any(is_under(key, scope) for scope in scopes) and not any(
                is_under(key, u) for u, _ in unreadable
            )

        safe = SafeLoader(on_step=self.progress.step, workers=self.workers)
        finished = False
        try:
            report = self.sync(
                [FileSource(p, reader_for(p, safe)) for p in found],
                in_scope,
            )
            finished = True
        finally:  # after an error or Ctrl-C the files being read ahead are not waited for
            safe.close(wait=finished)
        known = list(self.manifest.files(self.name)) if unreadable else []
        for path, why in unreadable:
            kept = sum(is_under(key, path) for key in known)
            if kept:
                why += f"; {plural(kept, 'document')} ingested from it kept"
            skipped.append((path, why))
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
        self.relexed = 0
        report.unowned = self._drop_unowned(known)
        report.relexed = self.relexed
        self.progress.start(len(sources))

        present = {s.key for s in sources}
        gone = [k for k in known if in_scope(k) and k not in present]
        self.collection.remove({key: known[key] for key in gone})
        report.removed.extend(gone)

        batch: list[_Pending] = []
        pipeline = _Pipeline(
            self._embed, lambda done, vectors: self._write(done, vectors, report), report
        )
        self._left = (sources, known, 0)
        reads = self._read_ahead(sources, known, report)
        try:
            for position, (source, read) in enumerate(reads):
                self._left = (sources, known, position)
                pending = self._prepare(source, known.get(source.key), read, report)
                if pending is None:
                    self.progress.advance(files=1)
                    continue
                batch.append(pending)
                if sum(len(p.chunks) for p in batch) >= EMBED_BATCH:
                    pipeline.push(batch)
                    batch = []
            pipeline.push(batch)
            pipeline.finish()
        finally:
            reads.close()
            pipeline.close()
        report.seconds = time.perf_counter() - started
        return report

    def bytes_needed(self) -> int:
        """About how many bytes the store needs to finish this ingest: what the sources not
        yet written would take (``STORE_GROWTH`` times their size), and room for the copy a
        VACUUM of the vector store makes."""
        sources, known, position = self._left
        left = 0
        for source in sources[position:]:
            with contextlib.suppress(OSError):
                size, mtime_ns = source.fingerprint()
                previous = known.get(source.key)
                if not previous or (previous.size, previous.mtime_ns) != (size, mtime_ns):
                    left += size
        database = self.store.path / "chroma.sqlite3"
        copy = database.stat().st_size if not self.store.url and database.exists() else 0
        return left * STORE_GROWTH + copy

    def _read_ahead(
        self, sources: Sequence[Source], known: dict[str, FileRecord], report: IngestReport
    ) -> Generator[tuple[Source, _Read]]:
        """Each source with what reading it found, in the order given, read up to
        ``READ_AHEAD`` files a worker ahead by ``workers`` threads (each keeps one worker
        process of the SafeLoader busy; text formats are read in the thread itself)."""
        executor = ThreadPoolExecutor(self.workers, thread_name_prefix="read")
        ahead: deque[tuple[Source, Future[_Read]]] = deque()
        upcoming = iter(sources)

        def submit() -> None:
            source = next(upcoming, None)
            if source is not None:
                ahead.append((source, executor.submit(read_source, source, known.get(source.key))))

        try:
            for _ in range(READ_AHEAD * self.workers):
                submit()
            while ahead:
                source, future = ahead.popleft()
                submit()
                started = time.perf_counter()
                read = future.result()
                report.timed("read_wait", time.perf_counter() - started)
                report.timed("read", read.seconds)
                yield source, read
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    def _prepare(
        self, source: Source, previous: FileRecord | None, read: _Read, report: IngestReport
    ) -> _Pending | None:
        """Chunks of a source that needs (re-)embedding; None when unchanged or unreadable."""
        key = source.key
        if read.outcome == "unchanged":
            report.unchanged += 1
            return None
        if read.outcome == "touched":
            assert previous is not None
            if (previous.size, previous.mtime_ns) != (read.size, read.mtime_ns):
                self.manifest.put_file(
                    self.name, replace(previous, size=read.size, mtime_ns=read.mtime_ns)
                )
            report.unchanged += 1
            return None
        if read.outcome == "skipped":
            report.skipped.append((key, read.reason))
            return None
        started = time.perf_counter()
        pages = read.pages
        if not self._model_loaded:  # the first file to chunk loads the model (seconds)
            self.progress.note("Loading the embedding model…")
        chunks = chunk_pages(
            pages, self.embedder.count_tokens, self.chunk_tokens, self.embedder.max_tokens
        )
        if not self._model_loaded:
            self.progress.note("")
            self._model_loaded = True
        notes = file_notes(pages) or ([] if chunks else ["no text found"])
        report.notes.extend((key, note) for note in notes)
        paginated = any(p.number is not None for p in pages)
        if paginated:
            report.pages += len(pages)
        record = FileRecord(
            key,
            read.size,
            read.mtime_ns,
            read.digest,
            len(chunks),
            len(pages) if paginated else None,
        )
        report.timed("chunk", time.perf_counter() - started)
        return _Pending(key, record, chunks, previous, pages[0].title if pages else "")

    def _embed(self, batch: list[_Pending]) -> list[list[float]]:
        texts = [c.embed_text for p in batch for c in p.chunks]
        return self.embedder.embed_passages(texts) if texts else []

    def _write(
        self, batch: list[_Pending], vectors: list[list[float]], report: IngestReport
    ) -> None:
        """Write an embedded batch: vectors and lexical rows first, then the manifest rows."""
        self.collection.ensure(self.embedder, self.chunk_tokens)
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
                        path,
                        c.page,
                        c.heading_path,
                        c.start,
                        c.end,
                        c.line,
                        c.end_line,
                        c.symbol,
                        c.label,
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
                meta = describe(pending.path, first.headings, first.text, pending.title)
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

    def _drop_unowned(self, known: dict[str, FileRecord]) -> int:
        """Drop the chunks no manifest row owns (the manifest was lost, or replaced by an
        older copy) before indexing again: else every chunk is indexed twice in the lexical
        index (and a file that has fewer chunks now keeps its old last ones). Two counts
        tell whether there are any. Not adopted: Chroma keeps no size, time or hash of a
        file, so nothing says its chunks are today's; the files are embedded again."""
        chunks = sum(record.chunks for record in known.values())
        stored = self.store.count(self.name) if self.store.exists(self.name) else 0
        if stored == chunks and self.lexical.count() == chunks:
            return 0
        owned = {document_id(path) for path in known}
        ids = self.store.ids(self.name) if stored else []
        stray = [i for i in ids if parse_chunk_id(i)[0] not in owned]
        self.store.delete(self.name, stray)
        self.documents.delete(sorted({parse_chunk_id(i)[0] for i in stray}))
        indexed = [path for _, path, _ in self.lexical.entries() if path not in known]
        self.lexical.remove(*set(indexed))
        self.lexical.commit()
        if stray or indexed:
            self.manifest.flag_purge()  # their text leaves the disk too
        if self.lexical.count() != chunks:  # lost or cut short: rebuilt from the stored chunks
            self.lexical.fill_from(self.store, sorted(known))
            self.lexical.commit()
            self.relexed = chunks
        return max(len(stray), len(indexed))
