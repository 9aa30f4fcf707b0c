"""One collection, and everything that is kept for it, in one object.

A collection named NAME is kept in four places: its chunks (text, metadata and vectors) are
the Chroma collection NAME (store.py); one vector per document is the Chroma collection
NAME__docs (document_vectors.py); its BM25 indexes (of its chunks, of its file names) are
tantivy folders beside the manifest (lexical.py); its record, the list of its files and its
relevance calibration are rows of the manifest (manifest.py; on a Chroma server the file list
is also the collection NAME__files, server_manifest.py).
``Collection`` owns them together: it is created, checked, counted and dropped here.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragchat.document_vectors import DocumentIndex
from ragchat.errors import CollectionNotFound, EmbedderMismatch
from ragchat.ids import chunk_id, document_id
from ragchat.lexical import LexicalIndex
from ragchat.manifest import CollectionRecord, FileRecord, Manifest, collection_metadata
from ragchat.store import Hit, VectorStore, check_collection_name
from ragchat.text import close_matches, did_you_mean, display_path, is_under

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
        """The record, or CollectionNotFound naming the collections there are (the closest
        first, for a typo)."""
        record = self.record
        if record is None:
            raise CollectionNotFound(missing_collection(self.name, self.manifest))
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

    def ensure(self, embedder: Embedder, chunk_tokens: int | None = None) -> CollectionRecord:
        """The record, creating the collection first (in Chroma, then in the manifest) when it
        does not exist yet: it records what ``embedder``, today's chunker and the chunk size
        are."""
        from ragchat.chunking import CHUNKER_VERSION

        record = self.record
        if record is None:
            record = CollectionRecord(
                name=self.name,
                chunker=CHUNKER_VERSION,
                chunk_tokens=chunk_tokens,
                **embedder.describe(),
            )
            self.store.create(self.name, collection_metadata(record))
            self.manifest.add_collection(record)
        return record

    def chunk_size(self, wanted: int) -> tuple[int, str | None]:
        """The chunk size to ingest with, and why it is not ``wanted``: a collection keeps
        the size it was built with (its chunks stay alike) until it is rebuilt."""
        record = self.record
        if record is None or record.chunk_tokens in (None, wanted):
            return wanted, None
        return record.chunk_tokens, (
            f"Collection {self.name!r} was chunked at {record.chunk_tokens} tokens, not"
            f" {wanted}: it keeps {record.chunk_tokens}; 'ragchat ingest --reindex PATH"
            f" --chunk-tokens {wanted}' rebuilds it at {wanted}."
        )

    # what it holds

    def counts(self) -> tuple[int, int]:
        """(documents, chunks), from the manifest."""
        return self.manifest.counts(self.name)

    def state(self) -> str:
        """Changes whenever its files do: what is computed from the whole collection (the
        relevance floor's calibration) is recomputed when it changes."""
        return self.manifest.state(self.name)

    def files(self) -> dict[str, FileRecord]:
        """The manifest's record of every file, by path."""
        return self.manifest.files(self.name)

    def files_under(self, path: Path) -> list[str]:
        """Ingested files at or under ``path`` (for @path in a question)."""
        target = str(path.resolve())
        return [p for p in self.files() if is_under(p, target)]

    def files_outside(self, roots: Sequence[Path]) -> list[str]:
        """Ingested files under none of ``roots`` (what an ingest of them does not put back)."""
        targets = [str(root.resolve()) for root in roots]
        return [p for p in self.files() if not any(is_under(p, t) for t in targets)]

    def folders(self) -> list[str]:
        """The folders its files are under, none inside another: what to ingest again to
        rebuild it (files directly in a folder make that folder one)."""
        parents = sorted({os.path.dirname(p) for p in self.files()})
        kept: list[str] = []
        for folder in parents:  # sorted: a folder comes before those inside it
            if not any(is_under(folder, outer) for outer in kept):
                kept.append(folder)
        return kept

    def rebuild_command(self) -> str:
        """'ragchat ingest --rebuild FOLDERS --collection NAME', naming its real folders."""
        folders = [display_path(f) for f in self.folders()]
        if not folders or len(folders) > 4:
            paths = "PATH..."
        else:
            paths = " ".join(shlex.quote(f) for f in folders)
        command = f"ragchat ingest --rebuild {paths} --collection {self.name}"
        if len(folders) > 4:
            command += f" (the folders you ingested: {', '.join(folders[:3])}, …)"
        return command

    def lexical_gap(self) -> str | None:
        """Why BM25 cannot rank this collection's chunks (its index is missing or empty while
        the manifest holds chunks), or None when it can."""
        chunks = self.counts()[1]
        if not chunks:
            return None
        if not self.lexical.is_built():
            state = "is missing"
        elif self.lexical.count() == 0:
            state = "is empty"
        else:
            return None
        return f"the lexical (BM25) index of collection {self.name!r} {state}, for {chunks} chunks"

    def paths_like(self, path: str) -> list[str]:
        """Ingested files, and the folders they are in, named most like ``path`` (compared by
        their last part), as the user would type them: for "did you mean"."""
        files = list(self.files())
        folders = {os.path.dirname(p) for p in files}
        found = close_matches(path.rstrip(os.sep), [*files, *sorted(folders)], os.path.basename)
        return [display_path(p) for p in found]

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

    # removing files

    def remove(self, records: Mapping[str, FileRecord]) -> None:
        """Forget these files: their chunks, document vectors and lexical rows, then their
        manifest rows, and flag a purge so their text leaves the disk. The one way a file
        leaves a collection: ingest removes deleted files so, and ``ragchat forget`` too."""
        if not records:
            return
        ids = [chunk_id(path, i) for path, record in records.items() for i in range(record.chunks)]
        if ids and self.exists:
            self.store.delete(self.name, ids)
        self.documents.delete([document_id(path) for path in records])
        self.lexical.remove(*records)
        self.lexical.commit()
        with self.manifest.transaction():
            for path in records:
                self.manifest.delete_file(self.name, path)
            self.manifest.flag_purge()

    # dropping

    def drop(self) -> None:
        """Remove the collection and everything kept for it:

        - its chunks: the Chroma collection NAME, with its index folders (even damaged ones);
        - its document vectors: the Chroma collection NAME__docs;
        - its lexical indexes: the tantivy folders ``<home>/lexical/<hash>/`` (chunks) and
          ``<hash>.names/`` (file names), and the SQLite FTS5 table of a collection indexed
          before tantivy;
        - its manifest rows: its record, its files, its unfinished writes and its relevance
          calibration; on a Chroma server also the shared file list, the Chroma collection
          NAME__files;

        and flags a purge, so the next ingest scrubs the deleted text from the store's files.
        """
        self.store.drop(self.name)
        self.documents.drop()
        self.lexical.drop()
        self.manifest.drop_collection(self.name)


def missing_collection(name: str, manifest: Manifest) -> str:
    """Why there is no collection ``name``, and what to do: the one meant, or how to make it."""
    known = [c.name for c in manifest.collections()]
    make = f"ragchat ingest PATH --collection {name}"
    if not known:
        return f"No collection {name!r} yet; create it with '{make}'."
    meant = did_you_mean(close_matches(name, known))
    if meant:
        return f"No collection {name!r}{meant} (To create it: '{make}'.)"
    return f"No collection {name!r} (there are: {', '.join(known)}); create it with '{make}'."
