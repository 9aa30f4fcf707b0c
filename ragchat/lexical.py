"""The lexical indexes of a collection: BM25 over its chunks, and over its files' names.

Both are tantivy indexes beside the manifest: the chunks in ``<home>/lexical/<hash>/``, one row
per file's name in ``<home>/lexical/<hash>.names/``. Chunk words are lower-cased, folded to
ASCII and stemmed (Snowball English); queries drop common English stopwords. A name is split
at punctuation and between letters and digits (``ADOBE_2015_10K`` -> adobe 2015 10 k), and a
question the same way (``FY2015`` -> fy 2015), because that is how people write years, periods
and form names in file names; a name with no letter in any word (``4983.txt``) is not indexed.
The hybrid ranking uses the name scores as its document stage (retrieval.py).

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
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from ragchat.errors import StoreError
from ragchat.ids import document_id, parse_chunk_id
from ragchat.text import with_headings

if TYPE_CHECKING:
    from ragchat.manifest import Manifest
    from ragchat.store import VectorStore

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
_NAME_WORDS = re.compile(r"[^\W\d_]+|\d+")  # runs of letters, runs of digits
ANALYZER = "ragchat_en"
NAMES_ANALYZER = "ragchat_names"
NAMES_SUFFIX = ".names"
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


def name_words(text: str) -> list[str]:
    """Words of a file name or of a question as the name index sees them: split at
    punctuation and between letters and digits, lower case, without stopwords."""
    return [w for w in _NAME_WORDS.findall(text.lower()) if w not in STOPWORDS]


def name_text(path: str) -> str:
    """What the name index holds for the file at ``path``: its name's words (the extension
    left out), or "" when no word has a letter (ids and camera numbers say nothing)."""
    words = name_words(PurePath(path).stem)
    return " ".join(words) if any(not w.isdigit() for w in words) else ""


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


def _schema(words: str = "text", analyzer: str = ANALYZER, key: str = "chunk_id") -> Any:
    """A searched field of words, a key and the path (the chunk index; the name index)."""
    tantivy = _tantivy()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field(words, stored=True, tokenizer_name=analyzer, index_option="freq")
    builder.add_text_field(key, stored=True, tokenizer_name="raw")
    builder.add_text_field("path", stored=True, tokenizer_name="raw")
    return builder.build()


def _names_schema() -> Any:
    return _schema("name", NAMES_ANALYZER, "document")


def _analyzer(presplit: bool = False) -> Any:
    """Words lower-cased, folded to ASCII and stemmed; split at non-word characters, or (the
    names) at spaces only, because ``name_words`` split them already ("Invoices" still finds
    invoice-2023.pdf)."""
    tantivy = _tantivy()
    tokenizer = tantivy.Tokenizer.whitespace() if presplit else tantivy.Tokenizer.simple()
    return (
        tantivy.TextAnalyzerBuilder(tokenizer)
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def _names_analyzer() -> Any:
    return _analyzer(presplit=True)


class LexicalIndex:
    """BM25 search over one collection's chunks (their text with its heading path), and
    over its files' names (``name_scores``), kept in step by the same calls."""

    def __init__(self, manifest: Manifest, collection: str) -> None:
        self.manifest = manifest
        self.collection = collection
        self.folder = manifest.path.parent / "lexical" / folder_name(collection)
        self.names_folder = self.folder.with_name(self.folder.name + NAMES_SUFFIX)

    # opening

    def _handle(self) -> _Handle:
        return self._open(self.folder, self._create, ANALYZER, _analyzer)

    def _names(self) -> _Handle:
        return self._open(self.names_folder, self._create_names, NAMES_ANALYZER, _names_analyzer)

    def _open(
        self,
        folder: Path,
        create: Callable[[], None],
        analyzer_name: str,
        analyzer: Callable[[], Any],
    ) -> _Handle:
        handle = _OPEN.get(folder)
        if handle is None:
            if not (folder / "meta.json").exists():
                if self.manifest.read_only:
                    raise StoreError(
                        f"The lexical index of collection {self.collection!r} is missing from"
                        f" {folder}, and the store is read-only; search with --mode dense."
                    )
                create()
            tantivy = _tantivy()
            try:
                index = tantivy.Index.open(str(self._readable(folder)))
            except (ValueError, OSError) as exc:
                raise StoreError(
                    f"The lexical index of collection {self.collection!r} in {folder} cannot"
                    f" be read ({exc}); run 'ragchat ingest --rebuild PATH' to rebuild it."
                ) from exc
            built = analyzer()
            index.register_tokenizer(analyzer_name, built)
            handle = _OPEN[folder] = _Handle(index, index.schema, built)
        return handle

    def _readable(self, folder: Path) -> Path:
        """The folder to open: the index's own, or for a read-only store a private folder of
        links to its files (tantivy writes lock files beside an index even to read it)."""
        if not self.manifest.read_only or os.access(folder, os.W_OK):
            return folder
        view = Path(tempfile.mkdtemp(prefix="ragchat-lexical-"))
        atexit.register(shutil.rmtree, view, ignore_errors=True)
        for entry in folder.iterdir():
            if not entry.name.endswith(".lock"):
                (view / entry.name).symlink_to(entry)
        return view

    def _build(
        self,
        folder: Path,
        schema: Any,
        analyzer_name: str,
        analyzer: Any,
        fill: Callable[[Any], None],
    ) -> bool:
        """A new index at ``folder``, filled by ``fill(writer)``; built aside and moved into
        place, so a reader never sees half of it. False if another process made it first."""
        tantivy = _tantivy()
        folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        work = Path(tempfile.mkdtemp(prefix=".new-", dir=folder.parent))
        try:
            index = tantivy.Index(schema, path=str(work), reuse=False)
            index.register_tokenizer(analyzer_name, analyzer)
            writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
            fill(writer)
            writer.commit()
            writer.wait_merging_threads()
            del writer, index
            try:
                work.rename(folder)
            except OSError:  # another process made it first
                return False
            return True
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _create(self) -> None:
        """A new chunk index, holding the rows of the collection's old FTS5 table if it has one."""
        legacy = legacy_table(self.collection)
        migrated = self._legacy_rows(legacy)
        made = self._build(
            self.folder, _schema(), ANALYZER, _analyzer(), lambda w: _add_rows(w, migrated or [])
        )
        if made and migrated is not None:
            self.manifest.db.execute(f"DROP TABLE IF EXISTS {legacy}")
            self.manifest.flag_purge()  # the old table's pages are scrubbed by VACUUM

    def _create_names(self) -> None:
        """A new name index, of the files the manifest lists (a collection indexed before
        names were: its chunk index and manifest rows agree, so the names do too)."""
        try:
            paths = [
                row[0]
                for row in self.manifest.db.execute(
                    "SELECT path FROM files WHERE collection = ?", (self.collection,)
                )
            ]
        except sqlite3.Error:
            paths = []
        self._build(
            self.names_folder,
            _names_schema(),
            NAMES_ANALYZER,
            _names_analyzer(),
            lambda w: _add_names(w, paths),
        )

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
        """Open (or create, or migrate) the indexes now, in this thread: creating them may
        read the manifest, whose SQLite connection belongs to the thread that made it."""
        self._handle()
        self._names()

    def _searcher(self, handle: _Handle | None = None) -> Any:
        handle = handle or self._handle()
        handle.index.reload()  # see what other processes committed
        return handle.index.searcher()

    def _writer(self, handle: _Handle | None = None) -> Any:
        handle = handle or self._handle()
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

    def _open_handles(self) -> list[_Handle]:
        return [h for h in (_OPEN.get(self.folder), _OPEN.get(self.names_folder)) if h]

    # writing

    def add(self, path: str, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Index the chunks of ``path`` (and its name); durable after ``commit``. Its old
        chunks stay: a file that had some is ``replace``d, or ``remove``d first (ingest
        removes a batch's at once)."""
        self.add_rows([(chunk_id, path, text) for chunk_id, text in zip(ids, texts, strict=True)])
        names = self._writer(self._names())
        names.delete_documents_by_term("path", path)
        _add_names(names, [path])

    def remove(self, *paths: str) -> None:
        """Forget these files' chunks and names (after ``commit``)."""
        if not paths:
            return
        for handle in (self._handle(), self._names()):
            writer = self._writer(handle)
            for path in paths:
                writer.delete_documents_by_term("path", path)

    def replace(self, path: str, ids: Sequence[str], texts: Sequence[str]) -> None:
        """The chunks of ``path`` become exactly these (after ``commit``)."""
        self.remove(path)
        self.add(path, ids, texts)

    def commit(self) -> None:
        for handle in self._open_handles():
            if handle.writer is not None:
                handle.writer.commit()

    def close(self) -> None:
        """Release this process's writers (and their locks) and the open indexes."""
        for folder in (self.folder, self.names_folder):
            handle = _OPEN.pop(folder, None)
            if handle is not None and handle.writer is not None:
                # what was not committed is dropped with the writer. No rollback first: it
                # would abandon the merges the last commit started, which then kept writing
                # to the index's files after the ingest had returned (or were cut off when
                # the process exited)
                handle.writer.wait_merging_threads()

    def drop(self) -> None:
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        shutil.rmtree(self.names_folder, ignore_errors=True)
        with contextlib.suppress(sqlite3.Error):
            self.manifest.db.execute(f"DROP TABLE IF EXISTS {legacy_table(self.collection)}")

    def needs_compacting(self) -> bool:
        """Do deleted chunks (or names) still have their text in the indexes' files?"""
        return any(_has_deletes(folder) for folder in (self.folder, self.names_folder))

    def compact(self) -> None:
        """Rewrite the indexes from their live rows, so no deleted text stays in their files."""
        if _has_deletes(self.folder):
            rows = list(self.entries())
            writer = self._writer()
            writer.delete_all_documents()
            self.add_rows(rows)
            writer.commit()
            writer.garbage_collect_files()
        if _has_deletes(self.names_folder):
            handle = self._names()
            searcher = self._searcher(handle)
            found = searcher.search(_tantivy().Query.all_query(), max(searcher.num_docs, 1))
            paths = [searcher.doc(address)["path"][0] for _score, address in found.hits]
            writer = self._writer(handle)
            writer.delete_all_documents()
            _add_names(writer, paths)
            writer.commit()
            writer.garbage_collect_files()

    def fill_from(self, store: VectorStore, paths: Sequence[str], batch: int = 100) -> None:
        """Index these files' chunks as the vector store holds them (text, heading path and
        ids kept there): the index rebuilt without reading or embedding a file (after
        ``commit``)."""
        for start in range(0, len(paths), batch):
            part = paths[start : start + batch]
            chunks: dict[str, list[tuple[str, str]]] = {path: [] for path in part}
            for chunk_id, text, meta in store.records(self.collection, {"path": {"$in": part}}):
                if meta.get("path") in chunks:
                    chunks[meta["path"]].append(
                        (chunk_id, with_headings(meta.get("headings") or "", text))
                    )
            for path in part:
                pairs = sorted(chunks[path], key=lambda pair: parse_chunk_id(pair[0])[1])
                self.replace(path, [i for i, _ in pairs], [t for _, t in pairs])

    def add_rows(self, rows: Sequence[tuple[str, str, str]]) -> None:
        """Index (chunk id, path, text) rows."""
        _add_rows(self._writer(), rows)

    # reading

    def count(self) -> int:
        """Chunks indexed."""
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
        match = _match(handle, "text", terms, paths)
        searcher = self._searcher(handle)
        hits = []
        for score, address in searcher.search(match, k, count=False).hits:
            doc = searcher.doc(address)
            hits.append((doc["chunk_id"][0], doc["path"][0], float(score)))
        return hits

    def name_scores(
        self, query: str, documents: Collection[str], paths: Sequence[str] | None = None
    ) -> tuple[float, dict[str, float]]:
        """BM25 of ``query`` against file names: (the best score of any file, within
        ``paths`` if given; the scores of the files whose document ids are ``documents``)."""
        handle = self._names()
        terms = list(
            dict.fromkeys(t for w in name_words(query) for t in handle.analyzer.analyze(w))
        )
        if not terms or not documents:
            return 0.0, {}
        match = _match(handle, "name", terms, paths)
        searcher = self._searcher(handle)
        best = searcher.search(match, 1, count=False).hits
        if not best:
            return 0.0, {}
        tantivy = _tantivy()
        among = tantivy.Query.const_score_query(
            tantivy.Query.term_set_query(handle.schema, "document", list(documents)), 0.0
        )
        within = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, match), (tantivy.Occur.Must, among)]
        )
        scores = {}
        for score, address in searcher.search(within, len(documents), count=False).hits:
            scores[searcher.doc(address)["document"][0]] = float(score)
        return float(best[0][0]), scores


def _match(handle: _Handle, field: str, terms: Sequence[str], paths: Sequence[str] | None) -> Any:
    """Any of ``terms`` in ``field``, only in rows of ``paths`` if given."""
    tantivy = _tantivy()
    Query, Occur = tantivy.Query, tantivy.Occur
    match = Query.boolean_query(
        [(Occur.Should, Query.term_query(handle.schema, field, t)) for t in terms]
    )
    if paths:
        within = Query.const_score_query(
            Query.term_set_query(handle.schema, "path", list(paths)), 0.0
        )
        match = Query.boolean_query([(Occur.Must, match), (Occur.Must, within)])
    return match


def _has_deletes(folder: Path) -> bool:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return any(
        (segment.get("deletes") or {}).get("num_deleted_docs", 0)
        for segment in meta.get("segments", [])
    )


def _add_names(writer: Any, paths: Iterable[str]) -> None:
    Document = _tantivy().Document
    for path in paths:
        text = name_text(path)
        if text:
            writer.add_document(Document(name=text, document=document_id(path), path=path))


def _add_rows(writer: Any, rows: Sequence[tuple[str, str, str]]) -> None:
    Document = _tantivy().Document
    for chunk_id, path, text in rows:
        writer.add_document(Document(text=text, chunk_id=chunk_id, path=path))
