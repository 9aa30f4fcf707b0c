"""Incremental ingest: find files, load, chunk, embed, store; only what changed.

A file whose size and mtime match the manifest is not even read; one whose content hash
matches is not re-embedded. Changed files are re-chunked and re-embedded, deleted files lose
their chunks. Vectors are written before the manifest row, so an interrupted ingest leaves
nothing the next run does not repair. Work goes in batches of EMBED_BATCH chunks: a big file
a part at a time (its manifest row after its last part), so memory stays bounded.

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
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol

from ragchat import interrupts
from ragchat.chunking import Chunk, iter_chunks
from ragchat.collection import Collection
from ragchat.config import cores
from ragchat.discovery import HIDDEN, LEFT_OUT, Selection, discover
from ragchat.document_vectors import Centroid, describe
from ragchat.embedders import Embedder
from ragchat.errors import LoadError
from ragchat.ids import chunk_id, document_id, parse_chunk_id
from ragchat.isolation import SafeLoader
from ragchat.loaders import ISOLATED_SUFFIXES, file_notes, load, load_whole
from ragchat.manifest import FileRecord
from ragchat.pages import Page, Pages, paragraph_blocks
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


def _unreadable(exc: Exception, previous: FileRecord | None) -> str:
    if isinstance(exc, FileNotFoundError):
        reason = "vanished during the ingest"
    elif isinstance(exc, OSError):
        reason = f"cannot read ({exc.strerror or exc})"
    else:
        reason = str(exc)
    return reason + ("; kept the previous version" if previous else "")


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

    def load(self) -> Pages: ...


@dataclass
class FileSource:
    path: Path
    reader: Callable[[Path], Pages] = load

    @property
    def key(self) -> str:
        return str(self.path)

    def fingerprint(self) -> tuple[int, int]:
        stat = self.path.stat()
        return stat.st_size, stat.st_mtime_ns

    def digest(self) -> str:
        return file_hash(self.path)

    def load(self) -> Pages:
        return self.reader(self.path)


def reader_for(path: Path, safe: SafeLoader) -> Callable[[Path], Pages]:
    """How to read ``path``: in the worker when its format's parsers can loop or explode."""
    if path.suffix.lower() in ISOLATED_SUFFIXES:
        return functools.partial(safe.load_with, load_whole)
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
        embed: Callable[[list[_Part]], list[list[float]]],
        write: Callable[[list[_Part], list[list[float]]], None],
        report: IngestReport,
    ) -> None:
        self.embed, self.write, self.report = embed, write, report
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="ingest")
        self.waiting: tuple[list[_Part], Future[list[list[float]]]] | None = None

    def _embed(self, batch: list[_Part]) -> list[list[float]]:
        started = time.perf_counter()
        try:
            return self.embed(batch)
        finally:
            self.report.timed("embed", time.perf_counter() - started)

    def push(self, batch: list[_Part]) -> None:
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

    def _write(self, batch: list[_Part], vectors: list[list[float]]) -> None:
        started = time.perf_counter()
        self.write(batch, vectors)
        self.report.timed("write", time.perf_counter() - started)

    def _take(self) -> tuple[list[_Part], list[list[float]]] | None:
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
    pages: Pages = ()
    reason: str = ""  # why it was skipped
    seconds: float = 0.0


def read_source(source: Source, previous: FileRecord | None) -> _Read:
    """Read ``source`` unless the manifest's ``previous`` record shows it unchanged. Touches
    nothing shared (no manifest, no report), so sources can be read side by side. A big
    text file's pages are windows, read later as they are chunked (and checked then)."""
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
                return _Read("skipped", reason=_unreadable(exc, previous))
            # Written to while being read? Then the digest and the text may disagree:
            # read it again, once.
            now = source.fingerprint()
            if now == (size, mtime_ns):
                break
            size, mtime_ns = now
        else:  # still changing: a record that matches no file, so the next ingest redoes it
            size, mtime_ns, digest = -1, -1, ""
    except OSError as exc:
        return _Read("skipped", reason=_unreadable(exc, previous))
    return _Read("read", size, mtime_ns, digest, pages, seconds=time.perf_counter() - started)


@dataclass
class _Document:
    """A file being (re-)ingested: its chunks arrive part by part as it is read."""

    source: Source
    previous: FileRecord | None
    fingerprint: tuple[int, int]  # (size, mtime_ns) when its content was hashed
    digest: str
    pages: Pages
    count: int = 0  # chunks taken so far; all of them once ``done``
    page_count: int = 0
    paginated: bool = False
    done: bool = False
    last: _Part | None = None
    first_chunk: Chunk | None = None
    centroid: Centroid = field(default_factory=Centroid)
    noted: list[Page] = field(default_factory=list)  # the pages with notes ("OCR'd")
    title: str = ""  # the loader's title for the document (on its first page), if it knows one

    @property
    def path(self) -> str:
        return self.source.key

    @property
    def previous_chunks(self) -> int:
        return self.previous.chunks if self.previous else 0

    def chunks(self, ingestor: Ingestor) -> Iterator[Chunk]:
        def counted(pages: Pages) -> Iterator[Page]:
            for page in pages:
                self.page_count += 1
                if self.page_count == 1:
                    self.title = page.title
                self.paginated = self.paginated or page.number is not None
                if page.notes:
                    self.noted.append(page)
                yield page

        embedder = ingestor.embedder
        for chunk in iter_chunks(
            counted(self.pages), embedder.count_tokens, ingestor.chunk_tokens, embedder.max_tokens
        ):
            self.first_chunk = self.first_chunk or chunk
            self.count += 1
            yield chunk

    def finish(self) -> None:
        """Every chunk is taken: the record is final. A file written to while it was read
        gets a record that matches no file, so the next ingest reads it again."""
        self.done = True
        if self.source.fingerprint() != self.fingerprint:
            self.fingerprint, self.digest = (-1, -1), ""

    @property
    def record(self) -> FileRecord:
        size, mtime_ns = self.fingerprint
        pages = self.page_count if self.paginated else None
        return FileRecord(self.path, size, mtime_ns, self.digest, self.count, pages)


@dataclass
class _Part:
    """Consecutive chunks of one document, embedded and written together with other parts."""

    document: _Document
    first: int  # the index of its first chunk in the document
    chunks: list[Chunk] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.document.path

    @property
    def final(self) -> bool:
        """The document's last part: its manifest row is written with it."""
        return self.document.done and self.document.last is self


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

        batch: list[_Part] = []
        size = 0  # chunks in ``batch``
        pipeline = _Pipeline(
            self._embed, lambda done, vectors: self._write(done, vectors, report), report
        )
        self._left = (sources, known, 0)
        reads = self._read_ahead(sources, known, report)
        try:
            for position, (source, read) in enumerate(reads):
                interrupts.check()
                self._left = (sources, known, position)
                document = self._prepare(source, known.get(source.key), read, report)
                if document is None:
                    self.progress.advance(files=1)
                    continue
                self._load_model()
                part: _Part | None = None  # the document's part in ``batch``
                chunking, pushing = time.perf_counter(), 0.0
                try:
                    for chunk in document.chunks(self):
                        if size >= EMBED_BATCH:  # sent once more comes: a last chunk, its row
                            interrupts.check()
                            pushed = time.perf_counter()
                            pipeline.push(batch)
                            pushing += time.perf_counter() - pushed
                            batch, size, part = [], 0, None
                        if part is None:
                            part = document.last = _Part(document, document.count - 1)
                            batch.append(part)
                        part.chunks.append(chunk)
                        size += 1
                except (LoadError, OSError) as exc:  # while reading a big file's windows
                    if part is not None:
                        batch.remove(part)
                        size -= len(part.chunks)
                    report.skipped.append((document.path, _unreadable(exc, None)))
                    self.progress.advance(files=1)
                    continue
                if part is None:  # no text: an empty part carries its manifest row
                    document.last = _Part(document, 0)
                    batch.append(document.last)
                document.finish()
                report.timed("chunk", time.perf_counter() - chunking - pushing)
                if document.paginated:
                    report.pages += document.page_count
                notes = file_notes(document.noted) or ([] if document.count else ["no text found"])
                report.notes.extend((document.path, note) for note in notes)
            pipeline.push(batch)
            pipeline.finish()
        finally:
            reads.close()
            pipeline.close()
        self._repair()  # the parts written of a file that failed half-way through
        report.seconds = time.perf_counter() - started
        return report

    def _load_model(self) -> None:
        """The first file to chunk loads the model (seconds): say so meanwhile."""
        if not self._model_loaded:
            self.progress.note("Loading the embedding model…")
            self.embedder.count_tokens([""])
            self.progress.note("")
            self._model_loaded = True

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
    ) -> _Document | None:
        """A source that needs (re-)embedding, ready to be chunked; None when unchanged or
        unreadable."""
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
            report.skipped.append((source.key, read.reason))
            return None
        return _Document(source, previous, (read.size, read.mtime_ns), read.digest, read.pages)

    def _embed(self, batch: list[_Part]) -> list[list[float]]:
        texts = [c.embed_text for p in batch for c in p.chunks]
        return self.embedder.embed_passages(texts) if texts else []

    def _write(self, batch: list[_Part], vectors: list[list[float]], report: IngestReport) -> None:
        """Write an embedded batch: vectors and lexical rows first, then the manifest rows of
        the documents whose last part it holds."""
        self.collection.ensure(self.embedder, self.chunk_tokens)
        self.manifest.mark_pending(
            self.name,
            [(p.path, max(p.first + len(p.chunks), p.document.previous_chunks)) for p in batch],
        )
        chunks = [(p.path, p.first + i, c) for p in batch for i, c in enumerate(p.chunks)]
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
        final = [p for p in batch if p.final]
        stale = [
            chunk_id(p.path, i)
            for p in final
            for i in range(p.document.count, p.document.previous_chunks)
        ]
        if stale:
            self.store.delete(self.name, stale)
        self._write_documents(batch, vectors)
        # a file without a manifest row has no lexical rows (``_repair`` saw to that)
        self.lexical.remove(*[p.path for p in batch if p.first == 0 and p.document.previous])
        for part in batch:
            ids = [chunk_id(part.path, part.first + i) for i in range(len(part.chunks))]
            self.lexical.add(part.path, ids, [c.embed_text for c in part.chunks])
        self.lexical.commit()
        with self.manifest.transaction():
            for part in final:
                self.manifest.put_file(self.name, part.document.record)
            self.manifest.clear_pending(self.name, [p.path for p in final])
            if any(p.document.previous for p in final):  # their old text was overwritten
                self.manifest.flag_purge()
        for part in batch:
            report.chunks_embedded += len(part.chunks)
            self.progress.advance(chunks=len(part.chunks))
        for part in final:
            (report.updated if part.document.previous else report.added).append(part.path)
            self.progress.advance(files=1)

    def _write_documents(self, batch: list[_Part], vectors: Sequence[Sequence[float]]) -> None:
        """One vector per document, from its chunks' vectors (see ragchat/document_vectors.py),
        gathered part by part and written, like the chunks, before the manifest row."""
        entries, empty = [], []
        position = 0
        for part in batch:
            document, count = part.document, len(part.chunks)
            document.centroid.add(vectors[position : position + count])
            position += count
            if not part.final:
                continue
            if document.first_chunk is None:
                empty.append(document_id(part.path))
                continue
            first = document.first_chunk
            meta = describe(part.path, first.headings, first.text, document.title)
            entries.append((document_id(part.path), document.centroid.vector(), meta))
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
