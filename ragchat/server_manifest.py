"""The manifest of a store shared through a Chroma server (``--chroma-url``).

Several machines may ingest into and query one server, so what must agree lives on the
server: the chunks (with their text) in the collection itself, the manifest of files as a
companion collection ``NAME__files`` (one record per file: path, size, mtime, SHA-256, chunk
count), and the document vectors in ``NAME__docs`` (see document_vectors.py). The lexical
index cannot live in Chroma (it has no BM25), so each machine keeps it as a local cache (a
tantivy index beside a local copy of the manifest, under ``<home>/servers/``), derived from
the server: before a collection is used, files whose record changed on the server have their
chunks re-read into the cache, and files gone from the server leave it. Every machine
therefore ranks with the same chunks and the same file list, whoever ingested them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragchat.document_vectors import DOCS_SUFFIX
from ragchat.ids import document_id
from ragchat.lexical import LexicalIndex
from ragchat.manifest import CollectionRecord, FileRecord, Manifest, record_from_metadata
from ragchat.store import VectorStore

FILES_SUFFIX = "__files"
FETCH_PATHS = 100  # files whose chunks are read from the server in one request


def _file_metadata(record: FileRecord) -> dict[str, Any]:
    meta = {k: v for k, v in record.__dict__.items() if v is not None}
    meta["mtime_ns"] = str(record.mtime_ns)  # beyond the integer range Chroma keeps
    return meta


def _file_record(meta: dict[str, Any]) -> FileRecord:
    return FileRecord(
        path=str(meta["path"]),
        size=int(meta["size"]),
        mtime_ns=int(meta["mtime_ns"]),
        sha256=str(meta["sha256"]),
        chunks=int(meta["chunks"]),
        pages=int(meta["pages"]) if meta.get("pages") is not None else None,
    )


class ServerManifest(Manifest):
    """The manifest on a Chroma server, with a local SQLite copy (beside which the lexical
    index is kept); ``sync`` brings the copy and the index in step with the server."""

    def __init__(self, path: Path, store: VectorStore, read_only: bool = False) -> None:
        super().__init__(path, read_only)
        self.store = store
        self.synced: set[str] = set()

    def _files(self, name: str) -> Any:
        with self.store.asking():
            return self.store.client.get_or_create_collection(
                name + FILES_SUFFIX, embedding_function=None
            )

    def collection(self, name: str) -> CollectionRecord | None:
        self.sync(name)
        return super().collection(name)

    def collections(self) -> list[CollectionRecord]:
        for name in self.store.collection_names():
            if not name.endswith((FILES_SUFFIX, DOCS_SUFFIX)):
                self.sync(name)
        return super().collections()

    def files(self, collection: str) -> dict[str, FileRecord]:
        self.sync(collection)
        return super().files(collection)

    def put_file(self, collection: str, record: FileRecord) -> None:
        super().put_file(collection, record)
        files = self._files(collection)
        with self.store.asking():
            files.upsert(
                ids=[document_id(record.path)],
                embeddings=[[1.0]],
                metadatas=[_file_metadata(record)],
            )

    def delete_file(self, collection: str, path: str) -> None:
        super().delete_file(collection, path)
        files = self._files(collection)
        with self.store.asking():
            files.delete(ids=[document_id(path)])

    def drop_collection(self, name: str) -> None:
        super().drop_collection(name)
        self.store.drop(name + FILES_SUFFIX)
        self.synced.discard(name)

    def sync(self, name: str) -> None:
        """Make the local copy (file list and lexical index) match the server, once per run.

        Only the server saying the collection does not exist makes the copy go; a server that
        cannot be reached is a StoreError, and the copy is left as it is (tried again next
        time). A read-only home keeps its copy as it is (it cannot be written)."""
        if name not in self.synced and not self.read_only:
            self._sync(name)
            self.synced.add(name)

    def _sync(self, name: str) -> None:
        if not self.store.exists(name):  # dropped on the server: forget the local copy too
            LexicalIndex(self, name).drop()
            Manifest.drop_collection(self, name)
            return
        record = record_from_metadata(name, self.store.metadata(name))
        if record is None:
            return  # not a ragchat collection
        if Manifest.collection(self, name) != record:  # a row rewritten only when it changed
            Manifest.add_collection(self, record)
        files = self._files(name)
        with self.store.asking():
            page = files.get(include=["metadatas"])
        remote = {r.path: r for r in (_file_record(m) for m in page["metadatas"])}
        local = Manifest.files(self, name)
        changed = [path for path, record in remote.items() if local.get(path) != record]
        lexical = LexicalIndex(self, name)
        gone = set(local) - set(remote)
        try:
            lexical.remove(*gone)
            lexical.fill_from(self.store, changed, FETCH_PATHS)
            lexical.commit()  # before the rows: a sync stopped in between is redone next time
        finally:  # a long-lived reader must not keep the writer's lock
            lexical.close()
        with self.transaction():
            for path in gone:
                Manifest.delete_file(self, name, path)
            for path in changed:
                Manifest.put_file(self, name, remote[path])
