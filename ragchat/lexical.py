"""The lexical index: BM25 over chunk text, one tantivy index per collection.

It lives beside the manifest, in ``<home>/lexical/<name>/``. Words are lower-cased, folded to
ASCII and stemmed (Snowball English); queries drop common English stopwords.

Why tantivy rather than SQLite FTS5 (which ragchat used first): FTS5 computes ``bm25()`` for
every row that contains any query word, so one common word costs tens of milliseconds at 100k
chunks; tantivy keeps per-block score bounds (block-max WAND) and returns the best 300 of 100k
chunks in about a millisecond. See bench/RESULTS.md.

Writes are buffered and made durable by ``commit``. Ingest commits a batch's chunks before it
writes the batch's manifest rows (as it does with vectors), and repairs what an interrupted
run left (``Ingestor._repair``). The chunk text is stored too, so ``compact`` can rewrite the
index without the text of deleted chunks.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragchat.errors import StoreError

if TYPE_CHECKING:
    from ragchat.manifest import Manifest

# Words that match nearly every chunk: dropped from queries (not from the index).
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
)
_WORDS = re.compile(r"\w+", re.UNICODE)
ANALYZER = "ragchat_en"
WRITER_HEAP = 32_000_000  # bytes buffered before tantivy writes a segment by itself
WRITER_WAIT = 10.0  # seconds to wait for another process's writer (as SQLite waits for a lock)


def folder_name(collection: str) -> str:
    return hashlib.sha1(collection.encode()).hexdigest()[:16]


def legacy_table(collection: str) -> str:
    """The SQLite FTS5 table of a collection indexed before tantivy (migrated on first use)."""
    return "fts_" + folder_name(collection)


def query_words(query: str) -> list[str]:
    """The query's words, lower case, without stopwords (all of them if only stopwords)."""
    words = list(dict.fromkeys(_WORDS.findall(query.lower())))
    return [w for w in words if w not in STOPWORDS] or words


@dataclass
class _Handle:
    """An open index, shared by every LexicalIndex on the same folder in this process
    (tantivy allows one writer per index)."""

    index: Any
    schema: Any
    analyzer: Any
    writer: Any = None


_OPEN: dict[Path, _Handle] = {}


def _tantivy() -> Any:
    import tantivy

    return tantivy


def _schema() -> Any:
    tantivy = _tantivy()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("text", stored=True, tokenizer_name=ANALYZER, index_option="freq")
    builder.add_text_field("chunk_id", stored=True, tokenizer_name="raw")
    builder.add_text_field("path", stored=True, tokenizer_name="raw")
    return builder.build()


def _analyzer() -> Any:
    tantivy = _tantivy()
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


class LexicalIndex:
    """BM25 search over one collection's chunks (their text with its heading path)."""

    def __init__(self, manifest: Manifest, collection: str) -> None:
        self.manifest = manifest
        self.collection = collection
        self.folder = manifest.path.parent / "lexical" / folder_name(collection)

    # opening

    def _handle(self) -> _Handle:
        handle = _OPEN.get(self.folder)
        if handle is None:
            if not self.is_built():
                if self.manifest.read_only:
                    raise StoreError(
                        f"The lexical index of collection {self.collection!r} is missing from"
                        f" {self.folder}, and the store is read-only; search with --mode dense."
                    )
                self._create()
            tantivy = _tantivy()
            try:
                index = tantivy.Index.open(str(self._readable()))
            except (ValueError, OSError) as exc:
                raise StoreError(
                    f"The lexical index of collection {self.collection!r} in {self.folder} cannot"
                    f" be read ({exc}); run 'ragchat ingest --rebuild PATH' to rebuild it."
                ) from exc
            analyzer = _analyzer()
            index.register_tokenizer(ANALYZER, analyzer)
            handle = _OPEN[self.folder] = _Handle(index, index.schema, analyzer)
        return handle

    def _readable(self) -> Path:
        """The folder to open: the index's own, or for a read-only store a private folder of
        links to its files (tantivy writes lock files beside an index even to read it)."""
        if not self.manifest.read_only or os.access(self.folder, os.W_OK):
            return self.folder
        view = Path(tempfile.mkdtemp(prefix="ragchat-lexical-"))
        atexit.register(shutil.rmtree, view, ignore_errors=True)
        for entry in self.folder.iterdir():
            if not entry.name.endswith(".lock"):
                (view / entry.name).symlink_to(entry)
        return view

    def _create(self) -> None:
        """A new index, holding the rows of the collection's old FTS5 table if it has one.
        Built aside and moved into place, so a reader never sees half of it."""
        tantivy = _tantivy()
        self.folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        work = Path(tempfile.mkdtemp(prefix=".new-", dir=self.folder.parent))
        try:
            index = tantivy.Index(_schema(), path=str(work), reuse=False)
            index.register_tokenizer(ANALYZER, _analyzer())
            writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
            legacy = legacy_table(self.collection)
            migrated = self._legacy_rows(legacy)
            _add_rows(writer, migrated or [])
            writer.commit()
            writer.wait_merging_threads()
            del writer, index
            try:
                work.rename(self.folder)
            except OSError:  # another process made it first
                return
            if migrated is not None:
                self.manifest.db.execute(f"DROP TABLE IF EXISTS {legacy}")
                self.manifest.flag_purge()  # the old table's pages are scrubbed by VACUUM
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _legacy_rows(self, table: str) -> list[tuple[str, str, str]] | None:
        """(chunk id, path, text) rows of the old FTS5 table; None if there is none."""
        try:
            found = self.manifest.db.execute(
                "SELECT 1 FROM sqlite_master WHERE name = ?", (table,)
            ).fetchone()
            if not found:
                return None
            return self.manifest.db.execute(f"SELECT chunk_id, path, text FROM {table}").fetchall()
        except sqlite3.Error:
            return None

    def is_built(self) -> bool:
        """Has the index been made (it is made on first use, by ingest or a search)?"""
        return (self.folder / "meta.json").exists()

    def open(self) -> None:
        """Open (or create, or migrate) the index now, in this thread: creating it may read
        the manifest, whose SQLite connection belongs to the thread that made it."""
        self._handle()

    def _searcher(self) -> Any:
        handle = self._handle()
        handle.index.reload()  # see what other processes committed
        return handle.index.searcher()

    def _writer(self) -> Any:
        handle = self._handle()
        deadline = time.monotonic() + WRITER_WAIT
        while handle.writer is None:
            try:
                handle.writer = handle.index.writer(heap_size=WRITER_HEAP, num_threads=1)
            except ValueError as exc:  # another process is writing (a sync of a shared store)
                if "LockBusy" not in str(exc) or time.monotonic() > deadline:
                    raise StoreError(
                        f"The lexical index of collection {self.collection!r} is locked by another"
                        f" ragchat process ({exc}); try again when it has finished."
                    ) from exc
                time.sleep(0.1)
        return handle.writer

    # writing

    def add(self, path: str, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Index the chunks of ``path``; durable after ``commit``. Its old chunks stay: a file
        that had some is ``replace``d, or ``remove``d first (ingest removes a batch's at once)."""
        self.add_rows([(chunk_id, path, text) for chunk_id, text in zip(ids, texts, strict=True)])

    def remove(self, *paths: str) -> None:
        """Forget these files' chunks (after ``commit``)."""
        if not paths:
            return
        writer = self._writer()
        for path in paths:
            writer.delete_documents_by_term("path", path)

    def replace(self, path: str, ids: Sequence[str], texts: Sequence[str]) -> None:
        """The chunks of ``path`` become exactly these (after ``commit``)."""
        self.remove(path)
        self.add(path, ids, texts)

    def commit(self) -> None:
        handle = _OPEN.get(self.folder)
        if handle is not None and handle.writer is not None:
            handle.writer.commit()

    def close(self) -> None:
        """Release this process's writer (and its lock) and the open index."""
        handle = _OPEN.pop(self.folder, None)
        if handle is not None and handle.writer is not None:
            handle.writer.rollback()  # nothing uncommitted survives a close
            handle.writer.wait_merging_threads()

    def drop(self) -> None:
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(sqlite3.Error):
            self.manifest.db.execute(f"DROP TABLE IF EXISTS {legacy_table(self.collection)}")

    def needs_compacting(self) -> bool:
        """Do deleted chunks still have their text (and terms) in the index's files?"""
        try:
            meta = json.loads((self.folder / "meta.json").read_text())
        except (OSError, ValueError):
            return False
        return any(
            (segment.get("deletes") or {}).get("num_deleted_docs", 0)
            for segment in meta.get("segments", [])
        )

    def compact(self) -> None:
        """Rewrite the index from its live chunks, so no deleted text stays in its files."""
        if not self.needs_compacting():
            return
        rows = list(self.entries())
        writer = self._writer()
        writer.delete_all_documents()
        self.add_rows(rows)
        writer.commit()
        writer.garbage_collect_files()

    def add_rows(self, rows: Sequence[tuple[str, str, str]]) -> None:
        """Index (chunk id, path, text) rows."""
        _add_rows(self._writer(), rows)

    # reading

    def count(self) -> int:
        return int(self._searcher().num_docs)

    def entries(self) -> Iterator[tuple[str, str, str]]:
        """(chunk id, path, text) of every chunk."""
        searcher = self._searcher()
        query = _tantivy().Query.all_query()
        for _score, address in searcher.search(query, max(searcher.num_docs, 1), count=False).hits:
            doc = searcher.doc(address)
            yield doc["chunk_id"][0], doc["path"][0], doc["text"][0]

    def search(
        self, query: str, k: int, paths: Sequence[str] | None = None
    ) -> list[tuple[str, str, float]]:
        """(chunk id, path, BM25 score: higher is better) of the ``k`` best matches."""
        handle = self._handle()
        terms = list(
            dict.fromkeys(t for w in query_words(query) for t in handle.analyzer.analyze(w))
        )
        if not terms or k <= 0:
            return []
        tantivy = _tantivy()
        Query, Occur = tantivy.Query, tantivy.Occur
        match = Query.boolean_query(
            [(Occur.Should, Query.term_query(handle.schema, "text", t)) for t in terms]
        )
        if paths:
            within = Query.const_score_query(
                Query.term_set_query(handle.schema, "path", list(paths)), 0.0
            )
            match = Query.boolean_query([(Occur.Must, match), (Occur.Must, within)])
        searcher = self._searcher()
        hits = []
        for score, address in searcher.search(match, k, count=False).hits:
            doc = searcher.doc(address)
            hits.append((doc["chunk_id"][0], doc["path"][0], float(score)))
        return hits


def _add_rows(writer: Any, rows: Sequence[tuple[str, str, str]]) -> None:
    Document = _tantivy().Document
    for chunk_id, path, text in rows:
        writer.add_document(Document(text=text, chunk_id=chunk_id, path=path))
