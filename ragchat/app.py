"""Wiring: one ``App`` builds the components a command needs from the settings, lazily.

The library is the API: the CLI and the REPL only call ``App`` and render what it returns.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from contextlib import AbstractContextManager
from functools import cached_property
from pathlib import Path
from typing import Any

from ragchat.config import Settings, ensure_private_dir
from ragchat.embedders import Embedder, SentenceTransformerEmbedder, embedding_model_id
from ragchat.engine import Engine
from ragchat.evaluation import Rank, all_modes
from ragchat.ingest import (
    Ingestor,
    IngestReport,
    Progress,
    check_embedder,
    chunk_prefix,
    is_under,
    require_collection,
)
from ragchat.lexical import LexicalIndex
from ragchat.llms import LLM, OpenAILLM, build_llm
from ragchat.manifest import Manifest, write_lock
from ragchat.prompting import Prompts
from ragchat.retrieval import MODES, Retriever, build_retriever
from ragchat.store import Hit, VectorStore, check_collection_name


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
        self.collection = check_collection_name(settings.collection)
        self._embedder = embedder
        self._llm = llm

    @cached_property
    def manifest(self) -> Manifest:
        os.umask(0o077)  # everything ragchat writes to its store is the user's alone
        ensure_private_dir(self.home)
        if self.settings.chroma_url:
            from ragchat.shared import ServerManifest

            digest = hashlib.sha1(self.settings.chroma_url.rstrip("/").encode()).hexdigest()[:12]
            folder = ensure_private_dir(self.home / "servers" / digest)
            return ServerManifest(folder / "manifest.sqlite3", self.store)
        return Manifest(self.home / "manifest.sqlite3")

    @cached_property
    def store(self) -> VectorStore:
        if self.settings.chroma_url:
            return VectorStore(self.home / "chroma", self.settings.chroma_url)
        return VectorStore(ensure_private_dir(self.home / "chroma"))

    @property
    def embedding_model(self) -> str:
        """The embedder to use: the one asked for, else the one the collection was built with."""
        record = self.manifest.collection(self.collection)
        if record is not None and "embedding_model" not in self.explicit:
            return record.embedder
        return self.settings.embedding_model

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = SentenceTransformerEmbedder(self.embedding_model)
        return self._embedder

    @property
    def llm(self) -> LLM:
        if self._llm is None:
            self._llm = build_llm(self.settings)
        return self._llm

    def ingestor(self, progress: Progress | None = None, reindex: bool = False) -> Ingestor:
        embedder = self.embedder  # chosen before a reindex forgets the collection's own
        if reindex:
            self.drop_collection()
        return Ingestor(
            self.store,
            self.manifest,
            embedder,
            self.collection,
            self.settings.chunk_tokens,
            progress,
            self.settings.max_file_mb,
        )

    def ingest(self, root: Path, progress: Progress | None = None, reindex: bool = False) -> IngestReport:
        with self.writing():
            report = self.ingestor(progress, reindex).run(root)
            if self.manifest.purge_needed():
                self.purge()
            return report

    def purge(self) -> None:
        """Scrub deleted text from the store's files (after removals, updates, a reindex)."""
        self.store.purge()
        self.manifest.purge()
        self.manifest.purged()

    def writing(self) -> AbstractContextManager[None]:
        """Hold the store's write lock (another writer is refused with its PID)."""
        return write_lock(self.manifest.path.parent)

    def drop_collection(self) -> None:
        self.store.drop(self.collection)
        self.manifest.drop_collection(self.collection)

    def retriever(self, mode: str | None = None) -> Retriever:
        """The ranking for ``mode`` (default: the setting) over an existing collection."""
        require_collection(self.manifest, self.collection)
        check_embedder(self.manifest, self.collection, self.embedder.id)
        index = LexicalIndex(self.manifest.db, self.collection)
        return build_retriever(mode or self.settings.mode, self.embedder, self.store, index, self.collection)

    def evaluation_ranker(self, modes: Sequence[str] = (), hydrate: int = 0) -> Rank:
        """query -> hits per mode, each component retrieved once (for ragchat eval); the
        first ``hydrate`` hits of each mode come with their text and spans."""
        dense = self.retriever("dense")
        lexical = self.retriever("lexical")
        paths = {chunk_prefix(p): p for p in self.manifest.files(self.collection)}

        def dense_with_paths(query: str, k: int) -> list[Hit]:
            hits = dense.candidates(query, k)
            for hit in hits:
                hit.path = paths.get(hit.id.rsplit("-", 1)[0], "")
            return hits

        rank = all_modes(dense_with_paths, lexical.candidates, modes=modes or MODES)
        if not hydrate:
            return rank

        def hydrated(query: str) -> dict[str, list[Hit]]:
            return {
                mode: self.store.hydrate(self.collection, hits[:hydrate]) + hits[hydrate:]
                for mode, hits in rank(query).items()
            }

        return hydrated

    def engine(self) -> Engine:
        retriever = self.retriever()
        self.llm.check()
        return Engine(
            retriever=retriever,
            llm=self.llm,
            prompts=Prompts.load(self.home),
            embedder_id=self.embedder.id,
            collection=self.collection,
            top_k=self.settings.top_k,
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.temperature,
        )

    def switch(self, **changes: Any) -> App:
        """The same App with other settings, keeping the loaded LLM."""
        explicit = self.explicit - {"embedding_model"} if "collection" in changes else self.explicit
        return App(self.home, self.settings.replace(**changes), explicit, llm=self._llm)

    def ingested_under(self, path: Path) -> list[str]:
        """Ingested files at or under ``path`` (for @path in a question)."""
        target = str(path.resolve())
        return [p for p in self.manifest.files(self.collection) if is_under(p, target)]

    def status(self) -> dict[str, Any]:
        """Where things live and what is in them; loads no model."""
        collections = []
        for record in self.manifest.collections():
            documents, chunks = self.manifest.counts(record.name)
            collections.append(
                {
                    "name": record.name,
                    "documents": documents,
                    "chunks": chunks,
                    "embedder": record.embedder,
                    "dimension": record.dimension,
                    "chunker": record.chunker,
                }
            )
        return {
            "home": str(self.home),
            "store": self.store.location,
            "manifest": str(self.home / "manifest.sqlite3"),
            "config_file": str(self.home / "config.toml"),
            "collection": self.collection,
            "embedding_model": embedding_model_id(self.embedding_model),
            "llm": self.settings.model,
            "llm_endpoint": self.llm.base_url if isinstance(self.llm, OpenAILLM) else None,
            "collections": collections,
        }
