"""Wiring: one ``App`` builds the components a command needs from the settings, lazily.

The library is the API: the CLI and the REPL only call ``App`` and render what it returns.
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

from ragchat.config import Settings, ensure_private_dir, model_cache
from ragchat.documents import DocumentIndex
from ragchat.embedders import Embedder, embedding_device, embedding_model_id, make_embedder
from ragchat.engine import Engine
from ragchat.errors import ExploreError
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
from ragchat.llms import DEFAULT_BASE_URL, LLM, OpenAILLM, build_llm
from ragchat.manifest import Manifest, write_lock
from ragchat.prompting import Prompts, load_template, prompts_dirs
from ragchat.remote_embedder import is_remote
from ragchat.retrieval import MODES, Retriever, build_retriever
from ragchat.store import Hit, VectorStore, check_collection_name

if TYPE_CHECKING:
    from ragchat.explore import Axis, Cluster, Placed, Related
    from ragchat.mapping import DocumentMap


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
        self.notify: Callable[[str], None] = (
            _to_stderr  # one-off notices (the CLI may silence them)
        )

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
    def embedding_backend(self) -> str:
        """A collection is queried (and grown) with the backend that built it."""
        record = self.manifest.collection(self.collection)
        if record is not None and record.embedder == embedding_model_id(self.embedding_model):
            return record.backend
        return self.settings.embedding_backend

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._make_embedder(self.embedding_model, self.embedding_backend)
        return self._embedder

    def _make_embedder(self, model: str, backend: str) -> Embedder:
        record = self.manifest.collection(self.collection)
        known = record.dimension if record and record.embedder == model else None
        return make_embedder(
            model, backend, model_cache() / "models", self.notify, self.settings, known
        )

    @property
    def llm(self) -> LLM:
        if self._llm is None:
            self._llm = build_llm(self.settings)
        return self._llm

    def ingestor(self, progress: Progress | None = None, reindex: bool = False) -> Ingestor:
        if reindex:  # rebuilt with the collection's model (unless one is named) on today's backend
            model = self.embedding_model
            self.drop_collection()
            if self._embedder is None:
                self._embedder = self._make_embedder(model, self.settings.embedding_backend)
        embedder = self.embedder
        return Ingestor(
            self.store,
            self.manifest,
            embedder,
            self.collection,
            self.settings.chunk_tokens,
            progress,
            self.settings.max_file_mb,
        )

    def ingest(
        self, root: Path | Sequence[Path], progress: Progress | None = None, reindex: bool = False
    ) -> IngestReport:
        with self.writing():
            report = self.ingestor(progress, reindex).run(root)
            if self.manifest.purge_needed():
                self.purge()
            return report

    def purge(self) -> None:
        """Scrub deleted text from the store's files (after removals, updates, a reindex)."""
        self.store.purge()
        for record in self.manifest.collections():
            index = LexicalIndex(self.manifest, record.name)
            index.compact()
            index.close()
        self.manifest.purge()
        self.manifest.purged()

    def writing(self) -> AbstractContextManager[None]:
        """Hold the store's write lock (another writer is refused with its PID)."""
        return write_lock(self.manifest.path.parent)

    def drop_collection(self) -> None:
        self.store.drop(self.collection)
        DocumentIndex(self.store, self.collection).drop()
        self.manifest.drop_collection(self.collection)

    def retriever(self, mode: str | None = None) -> Retriever:
        """The ranking for ``mode`` (default: the setting) over an existing collection."""
        require_collection(self.manifest, self.collection)
        check_embedder(self.manifest, self.collection, self.embedder.id)
        index = LexicalIndex(self.manifest, self.collection)
        return build_retriever(
            mode or self.settings.mode, self.embedder, self.store, index, self.collection
        )

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

    def reopen(self) -> App:
        """The same App on a fresh view of the store (another process wrote to it since),
        keeping the loaded models unless the collection now wants another embedder."""
        record = self.manifest.collection(self.collection)
        embedder = self._embedder
        if embedder is not None and record is not None and record.embedder != embedder.id:
            embedder = None
        self.manifest.close()
        return App(self.home, self.settings, self.explicit, embedder, self._llm)

    def ingested_under(self, path: Path) -> list[str]:
        """Ingested files at or under ``path`` (for @path in a question)."""
        target = str(path.resolve())
        return [p for p in self.manifest.files(self.collection) if is_under(p, target)]

    # exploring (ragchat/explore.py)

    def documents(self) -> DocumentIndex:
        """The collection's document vectors; any that ingest did not write (a collection
        built before they existed) are first made from the chunk vectors in the store."""
        require_collection(self.manifest, self.collection)
        index = DocumentIndex(self.store, self.collection)
        files = [
            path for path, record in self.manifest.files(self.collection).items() if record.chunks
        ]
        if index.count() != len(files):
            index.rebuild(files, chunk_prefix)
        return index

    def similar(self, path: Path, n: int = 10) -> list[Related]:
        """The ``n`` documents nearest to ``path`` by cosine similarity of document vectors."""
        from ragchat.explore import Related

        key = str(path.expanduser().resolve())
        record = (
            self.manifest.files(self.collection).get(key)
            if self.manifest.collection(self.collection)
            else None
        )
        if record is None:
            raise ExploreError(
                f"{path} is not in collection {self.collection!r}; ingest it first:"
                f" ragchat ingest {path} --collection {self.collection}"
            )
        if not record.chunks:
            raise ExploreError(f"{path} has no text to compare (it was ingested as empty).")
        index = self.documents()
        own = chunk_prefix(key)
        found = index.get([own])
        if own not in found:  # written by an older ragchat and not rebuilt: say how to mend it
            raise ExploreError(
                f"{path} has no document vector; run 'ragchat ingest --reindex PATH' to rebuild the collection."
            )
        nearest = [(i, score) for i, score in index.nearest(found[own].vector, n + 1) if i != own][
            :n
        ]
        documents = index.get([i for i, _ in nearest])
        return [
            Related(documents[i].path, documents[i].title, score)
            for i, score in nearest
            if i in documents
        ]

    def clusters(self, n: int | None = None, named: bool = False) -> list[Cluster]:
        """k-means clusters of the documents (``n`` of them, or a default for the size);
        ``named``: the LLM names each one."""
        from ragchat.explore import cluster, default_cluster_count, name_clusters

        documents = self.documents().all()
        if not documents:
            raise ExploreError(
                f"Collection {self.collection!r} has no documents with text; ingest some first."
            )
        clusters = cluster(documents, n if n is not None else default_cluster_count(len(documents)))
        if named:
            self.llm.check()
            name_clusters(clusters, self.llm, load_template("cluster", prompts_dirs(self.home)))
        return clusters

    def map(
        self,
        method: str = "pca",
        colour: str = "cluster",
        clusters: int | None = None,
        named: bool = False,
    ) -> DocumentMap:
        """Every document as a point in 2-D, grouped by k-means cluster or by folder."""
        from ragchat.explore import folder_groups, project
        from ragchat.mapping import DocumentMap, Point

        documents = self.documents().all()
        coordinates, axes = project(documents, method)
        if colour == "folder":
            names = folder_groups(documents)
            groups = sorted(set(names), key=lambda g: (g == "other folders", -names.count(g), g))
            group_of = {d.id: groups.index(name) for d, name in zip(documents, names, strict=True)}
            kind = f"{len(groups)} folders"
        elif colour == "cluster":
            found = self.clusters(clusters, named)
            groups = [c.label for c in found]
            group_of = {d.id: c.number - 1 for c in found for d in c.members}
            kind = f"{len(groups)} clusters"
        else:
            raise ExploreError(f"Unknown colouring {colour!r}; use cluster or folder.")
        points = [
            Point(x, y, d.title, d.path, group_of[d.id])
            for d, (x, y) in zip(documents, coordinates, strict=True)
        ]
        return DocumentMap(
            title=f"Collection {self.collection!r}: {len(documents)} documents",
            subtitle=f"Each point is a document (the mean of its chunks' embeddings, {embedding_model_id(self.embedding_model)}), placed by {method.upper()}; colour: {kind}.",
            axes=axes,
            groups=groups,
            points=points,
        )

    def spectrum(
        self, a: Sequence[str], b: Sequence[str], labels: tuple[str, str] = ("a", "b")
    ) -> Axis:
        from ragchat.explore import Axis

        if self.manifest.collection(self.collection):
            check_embedder(self.manifest, self.collection, self.embedder.id)
        return Axis.from_examples(self.embedder, a, b, *labels)

    def place_texts(self, axis: Axis, texts: Sequence[str]) -> list[Placed]:
        """The texts on the axis, lowest score first."""
        from ragchat.explore import Placed

        scores = axis.scores(self.embedder.embed_passages(list(texts)))
        return sorted(
            (Placed(t, s) for t, s in zip(texts, scores, strict=True)), key=lambda p: p.score
        )

    def place_chunks(self, axis: Axis, n: int) -> tuple[list[Placed], list[Placed], int]:
        """The ``n`` chunks of the collection lowest and highest on the axis, and how many
        were scored; read from the store a page at a time, nothing re-embedded."""
        import heapq
        from itertools import islice

        from ragchat.explore import Placed

        require_collection(self.manifest, self.collection)
        records = self.store.scan(self.collection, text=True)
        low: list[tuple[float, str, Placed]] = []  # heaps of (key, id, chunk), kept to n
        high: list[tuple[float, str, Placed]] = []
        scored = 0
        while page := list(islice(records, 1000)):
            for record, score in zip(page, axis.scores([r.vector for r in page]), strict=True):
                scored += 1
                meta = record.metadata
                path = str(meta.get("path", ""))
                location = (
                    f"{path}:{meta['line']}"
                    if meta.get("line") is not None
                    else f"{path}, page {meta['page']}"
                    if meta.get("page") is not None
                    else path
                )
                placed = Placed(record.text, score, path, location)
                for heap, key in ((low, -score), (high, score)):
                    if len(heap) < n:
                        heapq.heappush(heap, (key, record.id, placed))
                    elif key > heap[0][0]:
                        heapq.heapreplace(heap, (key, record.id, placed))
        return (
            sorted((p for _, _, p in low), key=lambda p: p.score),
            sorted((p for _, _, p in high), key=lambda p: -p.score),
            scored,
        )

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
            "embedding_device": embedding_device(
                self.embedding_backend, self.settings.embedding_device
            )
            if not is_remote(self.embedding_model)
            else "remote, at "
            + (
                self.settings.embedding_base_url
                or os.environ.get("OPENAI_BASE_URL")
                or DEFAULT_BASE_URL
            ),
            "llm": self.settings.model,
            "llm_endpoint": self.llm.base_url if isinstance(self.llm, OpenAILLM) else None,
            "collections": collections,
        }


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
