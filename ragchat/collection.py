"""One collection, and everything that is kept for it, in one object.

A collection named NAME is kept in four places: its chunks (text, metadata and vectors) are
the Chroma collection NAME (store.py); one vector per document is the Chroma collection
NAME__docs (document_vectors.py); its BM25 index is a tantivy folder beside the manifest
(lexical.py); its record and the list of its files are rows of the manifest (manifest.py; on a
Chroma server the file list is also the collection NAME__files, server_manifest.py).
``Collection`` owns them together: it is created, checked, counted and dropped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragchat.document_vectors import DocumentIndex
from ragchat.errors import CollectionNotFound, EmbedderMismatch
from ragchat.lexical import LexicalIndex
from ragchat.manifest import CollectionRecord, FileRecord, Manifest, collection_metadata
from ragchat.store import Hit, VectorStore, check_collection_name
from ragchat.text import is_under

if TYPE_CHECKING:
    from ragchat.embedders import Embedder


class Collection:
    """The collection ``name`` in this store and manifest (which need not hold it yet)."""

    def __init__(self, name: str, store: VectorStore, manifest: Manifest) -> None:
        self.name = check_collection_name(name)
        self.store = store
        self.manifest = manifest

    def __repr__(self) -> str:
        return f"Collection({self.name!r})"

    # the record: what the collection was built with

    @property
    def record(self) -> CollectionRecord | None:
        """The manifest's record of the collection; None before its first ingest."""
        return self.manifest.collection(self.name)

    @property
    def exists(self) -> bool:
        return self.record is not None

    def require(self) -> CollectionRecord:
        """The record, or CollectionNotFound naming the collections there are."""
        record = self.record
        if record is None:
            known = [c.name for c in self.manifest.collections()]
            hint = f" (known: {', '.join(known)})" if known else ""
            raise CollectionNotFound(
                f"Collection {self.name!r} is empty{hint}; run 'ragchat ingest PATH"
                f" --collection {self.name}' first."
            )
        return record

    def check_embedder(self, embedding_model: str) -> None:
        """Refuse, before loading anything, to mix two embedders in one collection."""
        from ragchat.embedders import embedding_model_id

        record = self.record
        wanted = embedding_model_id(embedding_model)
        if record is not None and record.embedder != wanted:
            raise EmbedderMismatch(
                f"Collection {self.name!r} was built with embedding model {record.embedder!r}"
                f" ({record.dimension}-d), not {wanted!r}; use --embedding-model {record.embedder}"
                f" to query it, or 'ragchat ingest --reindex PATH' to rebuild it with {wanted}."
            )

    def ensure(self, embedder: Embedder) -> CollectionRecord:
        """The record, creating the collection first (in Chroma, then in the manifest) when it
        does not exist yet: it records what ``embedder`` and today's chunker are."""
        from ragchat.chunking import CHUNKER_VERSION

        record = self.record
        if record is None:
            record = CollectionRecord(
                name=self.name, chunker=CHUNKER_VERSION, **embedder.describe()
            )
            self.store.create(self.name, collection_metadata(record))
            self.manifest.add_collection(record)
        return record

    # what it holds

    def counts(self) -> tuple[int, int]:
        """(documents, chunks), from the manifest."""
        return self.manifest.counts(self.name)

    def files(self) -> dict[str, FileRecord]:
        """The manifest's record of every file, by path."""
        return self.manifest.files(self.name)

    def files_under(self, path: Path) -> list[str]:
        """Ingested files at or under ``path`` (for @path in a question)."""
        target = str(path.resolve())
        return [p for p in self.files() if is_under(p, target)]

    @cached_property
    def lexical(self) -> LexicalIndex:
        """The BM25 index of its chunks."""
        return LexicalIndex(self.manifest, self.name)

    @cached_property
    def documents(self) -> DocumentIndex:
        """One vector per document (``NAME__docs``)."""
        return DocumentIndex(self.store, self.name)

    def nearest(
        self, vector: Sequence[float], k: int, paths: Sequence[str] | None = None
    ) -> list[Hit]:
        """The ``k`` chunks nearest to ``vector`` (only from ``paths`` if given), without text."""
        where: dict[str, Any] | None = {"path": {"$in": list(paths)}} if paths else None
        return self.store.query(self.name, vector, k, where)

    def hydrate(self, hits: Sequence[Hit]) -> list[Hit]:
        """The hits with their text and metadata (see ``VectorStore.hydrate``)."""
        return self.store.hydrate(self.name, hits)

    def chunks(self, ids: Sequence[str]) -> list[Hit]:
        """The chunks with these ids, text and metadata, in the order asked; ids of no chunk
        (any more) are left out."""
        return self.hydrate([Hit(id=i, score=0.0) for i in ids])

    # dropping

    def drop(self) -> None:
        """Remove the collection and everything kept for it:

        - its chunks: the Chroma collection NAME, with its index folders (even damaged ones);
        - its document vectors: the Chroma collection NAME__docs;
        - its lexical index: the tantivy folder ``<home>/lexical/<hash>/``, and the SQLite FTS5
          table of a collection indexed before tantivy;
        - its manifest rows: its record, its files and its unfinished writes; on a Chroma
          server also the shared file list, the Chroma collection NAME__files;

        and flags a purge, so the next ingest scrubs the deleted text from the store's files.
        """
        self.store.drop(self.name)
        self.documents.drop()
        self.lexical.drop()
        self.manifest.drop_collection(self.name)
