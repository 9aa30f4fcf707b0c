"""Ranking: a question becomes the best chunks of a collection.

One seam, ``Retriever.retrieve(query, k)``. ``dense`` ranks by embedding similarity,
``lexical`` by BM25, ``hybrid`` (the default) fuses both candidate lists, each retrieved
deeper than ``k``, by a convex combination of their scaled scores. The fusion and its
parameters were chosen by measurement (bench/RESULTS.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import cached_property

from ragchat.collection import Collection
from ragchat.config import MODES
from ragchat.embedders import Embedder
from ragchat.errors import ConfigError
from ragchat.store import Hit

HYBRID_DEPTH = 300  # candidates taken from each ranking before fusion
RRF_K = 60


class Retriever(ABC):
    """Ranks chunks. ``candidates`` gives ids, paths and scores only; ``retrieve`` reads the
    text of just the ``k`` that are kept."""

    collection: Collection

    @abstractmethod
    def candidates(self, query: str, k: int, paths: Sequence[str] | None = None) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first, without text; only from ``paths``
        if given."""

    def retrieve(self, query: str, k: int, paths: Sequence[str] | None = None) -> list[Hit]:
        """The ``k`` best chunks with their text and metadata."""
        return self.collection.hydrate(self.candidates(query, k, paths))

    def open(self) -> None:
        """Open what a query reads, in the calling thread (the hybrid ranking then runs its
        lexical half in a thread of its own). Most rankings have nothing to open."""
        return None


class DenseRetriever(Retriever):
    """Nearest chunks by cosine similarity of the query's embedding."""

    def __init__(self, embedder: Embedder, collection: Collection) -> None:
        self.embedder = embedder
        self.collection = collection

    def candidates(self, query: str, k: int, paths: Sequence[str] | None = None) -> list[Hit]:
        return self.collection.nearest(self.embedder.embed_query(query), k, paths)


class LexicalRetriever(Retriever):
    """BM25 over the chunks' text and heading paths (Snowball-stemmed, see lexical.py)."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self.index = collection.lexical

    def candidates(self, query: str, k: int, paths: Sequence[str] | None = None) -> list[Hit]:
        return [
            Hit.candidate(chunk_id, "lexical", score, path)
            for chunk_id, path, score in self.index.search(query, k, paths)
        ]

    def open(self) -> None:
        self.index.open()


Fusion = Callable[[list[Hit], list[Hit]], dict[str, float]]


def reciprocal_rank_fusion(
    dense: list[Hit], lexical: list[Hit], k: int = RRF_K
) -> dict[str, float]:
    """Cormack et al. 2009: each list adds 1 / (k + rank)."""
    fused: dict[str, float] = {}
    for ranking in (dense, lexical):
        for rank, hit in enumerate(ranking, start=1):
            fused[hit.id] = fused.get(hit.id, 0.0) + 1.0 / (k + rank)
    return fused


def convex_fusion(
    dense: list[Hit], lexical: list[Hit], weight: float = 0.5, floor_rank: int = HYBRID_DEPTH
) -> dict[str, float]:
    """weight * dense + (1 - weight) * lexical, each score scaled to [0, 1] between the list's
    best and its ``floor_rank``-th (clipped below), so the result does not depend on how deep
    the lists were fetched. A chunk missing from one list gets 0 from it."""
    fused: dict[str, float] = {}
    for ranking, share in ((dense, weight), (lexical, 1.0 - weight)):
        if not ranking:
            continue
        high = ranking[0].score
        low = ranking[min(floor_rank, len(ranking)) - 1].score
        for hit in ranking:
            scaled = (hit.score - low) / (high - low) if high > low else 1.0
            fused[hit.id] = fused.get(hit.id, 0.0) + share * max(scaled, 0.0)
    return fused


def default_fusion(dense: list[Hit], lexical: list[Hit]) -> dict[str, float]:
    """The hybrid ranking users get: an even convex combination (bench/RESULTS.md has the
    comparison with reciprocal rank fusion that chose it)."""
    return convex_fusion(dense, lexical, 0.5)


def fuse(dense: list[Hit], lexical: list[Hit], fusion: Fusion) -> list[Hit]:
    """One ranking from two; each hit keeps its component scores and gains ``fused``."""
    merged: dict[str, Hit] = {}
    for hit in [*dense, *lexical]:
        if hit.id in merged:
            merged[hit.id].scores.update(hit.scores)
        else:
            merged[hit.id] = replace(hit, scores=dict(hit.scores))
    for chunk_id, score in fusion(dense, lexical).items():
        merged[chunk_id].score = score
        merged[chunk_id].scores["fused"] = score
    return sorted(merged.values(), key=lambda h: h.score, reverse=True)


class HybridRetriever(Retriever):
    def __init__(
        self,
        dense: Retriever,
        lexical: Retriever,
        fusion: Fusion | None = None,
        depth: int = HYBRID_DEPTH,
    ) -> None:
        self.dense = dense
        self.lexical = lexical
        self.collection = dense.collection
        self.fusion = fusion or default_fusion
        self.depth = depth

    @cached_property
    def _beside(self) -> ThreadPoolExecutor:
        self.lexical.open()
        return ThreadPoolExecutor(1, thread_name_prefix="lexical")

    def candidates(self, query: str, k: int, paths: Sequence[str] | None = None) -> list[Hit]:
        """Both halves at once: ONNX Runtime, Chroma and tantivy release the GIL, so the
        lexical half runs beside the query embedding and the dense search (~4 ms of ~13 saved
        at 100k chunks, bench/RESULTS.md)."""
        depth = max(self.depth, k)
        lexical = self._beside.submit(self.lexical.candidates, query, depth, paths)
        dense = self.dense.candidates(query, depth, paths)
        return fuse(dense, lexical.result(), self.fusion)[:k]


def build_retriever(mode: str, embedder: Embedder, collection: Collection) -> Retriever:
    if mode not in MODES:
        raise ConfigError(f"Unknown retrieval mode {mode!r}; use one of: {', '.join(MODES)}.")
    dense = DenseRetriever(embedder, collection)
    lexical = LexicalRetriever(collection)
    if mode == "dense":
        return dense
    if mode == "lexical":
        return lexical
    return HybridRetriever(dense, lexical)
