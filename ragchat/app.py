"""Wiring: one ``App`` builds the components a command needs from the settings, lazily.

It holds no domain logic of its own: ingesting is ingest.py, ranking retrieval.py, answering
engine.py, exploring explore.py, measuring evaluation.py; ``App`` hands each the store, the
collection and the models the settings name.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragchat import disk
from ragchat.collection import Collection
from ragchat.config import (
    Settings,
    ensure_private_dir,
    home_read_only,
    model_cache,
    prepare_home,
)
from ragchat.embedders import Embedder, embedding_model_id, make_embedder
from ragchat.engine import Engine
from ragchat.errors import NotIngested, StoreError
from ragchat.ingest import Ingestor, IngestReport, Progress, Selection
from ragchat.llms import LLM, OpenAILLM, build_llm, endpoint_url, llm_id
from ragchat.manifest import FileRecord, Manifest, write_lock
from ragchat.prompting import Prompts
from ragchat.remote_embedder import OpenAIEmbedder, is_remote
from ragchat.retrieval import Retriever, build_retriever, components
from ragchat.store import VectorStore, check_collection_name
from ragchat.text import did_you_mean

if TYPE_CHECKING:
    from ragchat.relevance import Floor


class App:
    def __init__(
        self,
        home: Path,
        settings: Settings,
        explicit: frozenset[str] = frozenset(),
        embedder: Embedder | None = None,
        llm: LLM | None = None,
    ) -> None:
        self.home = home
        self.settings = settings
        self.explicit = explicit
        check_collection_name(settings.collection)  # a bad name is refused before anything opens
        self._embedder = embedder
        self._llm = llm
        self.notify: Callable[[str], None] = (
            _to_stderr  # one-off notices (the CLI may silence them)
        )

    @cached_property
    def writable(self) -> bool:
        """Can the store be written? (A read-only home can still be searched and asked.)"""
        os.umask(0o077)  # everything ragchat writes to its store is the user's alone
        return prepare_home(self.home)

    @cached_property
    def manifest(self) -> Manifest:
        read_only = not self.writable
        if self.settings.chroma_url:
            from ragchat.server_manifest import ServerManifest

            digest = hashlib.sha1(self.settings.chroma_url.rstrip("/").encode()).hexdigest()[:12]
            folder = self.home / "servers" / digest
            if not read_only:
                ensure_private_dir(folder)
            return ServerManifest(folder / "manifest.sqlite3", self.store, read_only)
        return Manifest(self.home / "manifest.sqlite3", read_only)

    @cached_property
    def store(self) -> VectorStore:
        if self.settings.chroma_url:
            return VectorStore(
                self.home / "chroma", self.settings.chroma_url, self.settings.chroma_timeout
            )
        if self.writable:
            ensure_private_dir(self.home / "chroma")
        return VectorStore(self.home / "chroma", read_only=not self.writable)

    @cached_property
    def collection(self) -> Collection:
        """The collection the settings name."""
        return Collection(self.settings.collection, self.store, self.manifest)

    def collections(self) -> list[Collection]:
        """Every collection the manifest knows, by name."""
        return [Collection(r.name, self.store, self.manifest) for r in self.manifest.collections()]

    @property
    def embedding_model(self) -> str:
        """The embedder to use: the one asked for, else the one the collection was built with."""
        record = self.collection.record
        if record is not None and "embedding_model" not in self.explicit:
            return record.embedder
        return self.settings.embedding_model

    @property
    def embedding_backend(self) -> str:
        """A collection is queried (and grown) with the backend that built it."""
        record = self.collection.record
        if record is not None and record.embedder == self.embedder_id:
            return record.backend
        return self.settings.embedding_backend

    @property
    def embedder_id(self) -> str:
        """The id of the embedder in use, known without loading it."""
        return embedding_model_id(self.embedding_model)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._make_embedder(self.embedding_model, self.embedding_backend)
        return self._embedder

    def _make_embedder(self, model: str, backend: str) -> Embedder:
        if is_remote(model):  # an embeddings server, held to the collection's dimension
            record = self.collection.record
            dimension = record.dimension if record and record.embedder == model else None
            return OpenAIEmbedder.from_settings(model, self.settings, dimension, self.notify)
        cache = model_cache() / "models"
        return make_embedder(model, backend, cache, self.notify, self.settings.embedding_device)

    @property
    def llm(self) -> LLM:
        if self._llm is None:
            self._llm = build_llm(self.settings)
        return self._llm

    def ingestor(
        self,
        progress: Progress | None = None,
        reindex: bool = False,
        selection: Selection | None = None,
    ) -> Ingestor:
        if reindex:  # rebuilt with the collection's model (unless one is named) on today's backend
            model = self.embedding_model
            self.drop_collection()
            self.manifest.mark_rebuilding(self.collection.name)  # cleared once it is whole
            if self._embedder is None:
                self._embedder = self._make_embedder(model, self.settings.embedding_backend)
        embedder = self.embedder
        chunk_tokens, differs = self.collection.chunk_size(self.settings.chunk_tokens)
        if differs and "chunk_tokens" in self.explicit:
            self.notify(differs)
        return Ingestor(
            self.collection,
            embedder,
            chunk_tokens,
            progress,
            self.settings.max_file_mb,
            selection,
        )

    def ingest(
        self,
        root: Path | Sequence[Path],
        progress: Progress | None = None,
        reindex: bool = False,
        selection: Selection | None = None,
    ) -> IngestReport:
        with self.writing():
            ingestor = self.ingestor(progress, reindex, selection)
            with disk.guarded(self.home, ingestor.bytes_needed):
                report = ingestor.run(root)
                if reindex:
                    self.manifest.rebuilt(self.collection.name)
                if self.manifest.purge_needed():
                    self.purge()
            return report

    def purge(self) -> None:
        """Scrub deleted text from the store's files (after removals, updates, a reindex)."""
        self.store.purge()
        for collection in self.collections():
            collection.lexical.compact()
            collection.lexical.close()
        self.manifest.purge()
        self.manifest.purged()

    def forget(self, paths: Sequence[Path]) -> dict[str, FileRecord]:
        """Remove the ingested files at or under ``paths`` (as stored: also when they are gone
        from disk) from the collection, and their text from the store's files. Nothing is
        removed when any path holds no ingested file (NotIngested names it)."""
        collection = self.collection
        collection.require()
        with self.writing():
            files = collection.files()
            chosen: dict[str, FileRecord] = {}
            for path in paths:
                found = collection.files_under(path)
                if not found:
                    raise NotIngested(
                        f"Collection {collection.name!r} holds no file at or under {path}"
                        f"{did_you_mean(collection.paths_like(str(path.absolute())))}"
                    )
                chosen.update((p, files[p]) for p in found)
            try:
                collection.remove(chosen)
            finally:
                collection.lexical.close()
            if self.manifest.purge_needed():
                self.purge()
        return chosen

    def drop(self) -> None:
        """Drop the collection (see ``Collection.drop``) and scrub its text from disk."""
        self.collection.require()
        with self.writing():
            self.collection.drop()
            self.purge()

    def writing(self) -> AbstractContextManager[None]:
        """Hold the store's write lock (another writer is refused with its PID); a read-only
        home is refused, in one line, before anything is written."""
        if not self.writable:
            raise StoreError(home_read_only(self.home))
        return write_lock(self.manifest.path.parent)

    def drop_collection(self) -> None:
        """Drop the collection and all that is kept for it (see ``Collection.drop``)."""
        self.collection.drop()

    def retriever(self, mode: str | None = None) -> Retriever:
        """The ranking for ``mode`` (default: the setting) over an existing collection."""
        self.collection.require()
        if self.collection.name in self.manifest.rebuilding():
            self.notify(
                f"Collection {self.collection.name!r} is being rebuilt (or its --rebuild was"
                " stopped): results may be incomplete."
            )
        self.collection.check_embedder(self.embedder.id)
        mode = mode or self.settings.mode
        if mode != "dense" and not self.manifest.read_only:
            gap = self.collection.lexical_gap()
            if gap:  # else the ranking is silently by embeddings alone
                self.notify(
                    f"Warning: {gap}: {'nothing' if mode == 'lexical' else 'only embeddings'}"
                    f" rank the results; {self.collection.rebuild_command()} rebuilds it."
                )
        return build_retriever(mode, self.embedder, self.collection)

    def floor(self, retriever: Retriever | None = None) -> Floor:
        """The relevance floor of the collection (over ``retriever``'s rankings, if given)."""
        from ragchat.relevance import Floor

        dense, lexical = components(retriever or self.retriever(), self.embedder)
        return Floor(self.collection, dense, lexical)

    def engine(self) -> Engine:
        retriever = self.retriever()
        self.llm.check()
        return Engine(
            retriever=retriever,
            llm=self.llm,
            prompts=Prompts.load(self.home),
            embedder_id=self.embedder.id,
            collection=self.collection.name,
            top_k=self.settings.top_k,
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.temperature,
            floor=self.floor(retriever),
        )

    def switch(self, **changes: Any) -> App:
        """The same App with other settings, keeping the loaded LLM (unless another model is
        named), and the loaded embedder when the new settings use the same one (no model is
        loaded twice)."""
        explicit = self.explicit - {"embedding_model"} if "collection" in changes else self.explicit
        llm = None if "model" in changes else self._llm
        app = App(self.home, self.settings.replace(**changes), explicit, llm=llm)
        embedder = self._embedder
        if embedder is not None:
            unchanged = not {"collection", "embedding_model", "embedding_backend"} & set(changes)
            if unchanged or (app.embedder_id, app.embedding_backend) == (
                embedder.id,
                embedder.backend,
            ):
                app._embedder = embedder
        return app

    def reopen(self) -> App:
        """The same App on a fresh view of the store (another process wrote to it since),
        keeping the loaded models unless the collection now wants another embedder."""
        record = self.collection.record
        embedder = self._embedder
        if embedder is not None and record is not None and record.embedder != embedder.id:
            embedder = None
        self.manifest.close()
        return App(self.home, self.settings, self.explicit, embedder, self._llm)

    def status(self) -> dict[str, Any]:
        """Where things live and what is in them; loads no model."""
        collections = []
        for collection in self.collections():
            record = collection.require()
            documents, chunks = collection.counts()
            collections.append(
                {
                    "name": record.name,
                    "documents": documents,
                    "chunks": chunks,
                    "embedder": record.embedder,
                    "dimension": record.dimension,
                    "chunker": record.chunker,
                    "chunk_tokens": record.chunk_tokens,
                }
            )
        return {
            "home": str(self.home),
            "store": self.store.location,
            "manifest": str(self.home / "manifest.sqlite3"),
            "config_file": str(self.home / "config.toml"),
            "collection": self.collection.name,
            "embedding_model": self.embedder_id,
            # the setting, not a probe: status loads no native library (doctor says which)
            "embedding_device": (
                f"remote, at {endpoint_url(self.settings.embedding_base_url)}"
                if is_remote(self.embedding_model)
                else self.settings.embedding_device
            ),
            "llm": llm_id(self.settings.model),
            "llm_endpoint": self.llm.base_url if isinstance(self.llm, OpenAILLM) else None,
            "collections": collections,
        }


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
