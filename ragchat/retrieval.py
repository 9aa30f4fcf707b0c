"""Ranking: a question becomes the best chunks of a collection.

One seam, ``Retriever.retrieve(query, k)``. ``dense`` ranks by embedding similarity,
``lexical`` by BM25, ``hybrid`` (the default) fuses both candidate lists, each retrieved
deeper than ``k``, by a convex combination of their scaled scores, then adds a document
stage: every candidate gains a share of how well its file's *name* matches the question
(BM25 over name words, lexical.py), which is what tells "the 2015 10-K" from ten look-alike
filings. Every ranking returns one result per page of a paginated file (a page ranks as its
best chunk), so five results are five pages. The fusion, the document stage and their
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
from ragchat.ids import parse_chunk_id
from ragchat.store import Hit

HYBRID_DEPTH = 300  # candidates taken from each ranking before fusion
RRF_K = 60
NAME_WEIGHT = 0.3  # the document stage: the best-named file's chunks gain this much
POOL = 4  # candidates read per result wanted, so that merged pages still leave k results


class Retriever(ABC):
    """Ranks chunks. ``candidates`` gives ids, paths and scores only; ``retrieve`` reads the
    text of just the ``k`` that are kept."""

    collection: Collection

    @abstractmethod
    def candidates(self, query: str, k: int, paths: Sequence[str] | None = None) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first, without text; only from ``paths``
        if given."""

    def retrieve(self, query: str, k: int, paths: Sequence[str] | None = None) -> list[Hit]:
        """The ``k`` best results with their text and metadata, one per page."""
        return self.retrieve_ranked(lambda depth: self.candidates(query, depth, paths), k)

    def retrieve_many(
        self, queries: Sequence[str], k: int, paths: Sequence[str] | None = None
    ) -> list[Hit]:
        """The ``k`` best results for several phrasings of one question (a follow-up and its
        rewrite): their rankings fused by reciprocal rank, one result per page."""
        if len(queries) == 1:
            return self.retrieve(queries[0], k, paths)

        def ranking(depth: int) -> list[Hit]:
            return fuse_rankings([self.candidates(q, depth, paths) for q in queries])[:depth]

        return self.retrieve_ranked(ranking, k)

    def retrieve_ranked(self, ranking: Callable[[int], list[Hit]], k: int) -> list[Hit]:
        """The first ``k`` results, one per page, of ``ranking(depth)`` (candidates, best
        first); asked deeper in the rare case that merging pages leaves fewer than ``k``."""
        depth = k * POOL
        while True:
            ranked = ranking(depth)
            hits = one_per_page(self.collection, ranked, k)
            if len(hits) >= k or len(ranked) < depth:
                return hits
            depth *= POOL

    def open(self) -> None:
        """Open what a query reads, in the calling thread (the hybrid ranking then runs its
        lexical half in a thread of its own). Most rankings have nothing to open."""
        return None


class DenseRetriever(Retriever):
    """Nearest chunks by cosine similarity of the query's embedding."""

    def __init__(self, embedder: Embedder, collection: Collection) -> None:
        self.embedder = embedder
        self.collection = collection
        self._last: tuple[str, list[float]] | None = None

    def vector(self, query: str) -> list[float]:
        """The query's embedding; the last one is kept, so the relevance floor's look at the
        same question (relevance.py) does not embed it again."""
        if self._last is None or self._last[0] != query:
            self._last = (query, list(self.embedder.embed_query(query)))
        return self._last[1]

    def candidates(self, query: str, k: int, paths: Sequence[str] | None = None) -> list[Hit]:
        return self.collection.nearest(self.vector(query), k, paths)


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


def fuse_rankings(rankings: Sequence[list[Hit]], k: int = RRF_K) -> list[Hit]:
    """One ranking from the rankings of several queries, by reciprocal rank (their scores
    need not be comparable); each hit keeps the scores of its best-placed appearance."""
    fused: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            fused[hit.id] = fused.get(hit.id, 0.0) + 1.0 / (k + rank)
            first.setdefault(hit.id, hit)
    merged = []
    for chunk_id, score in fused.items():
        hit = replace(first[chunk_id], scores={**first[chunk_id].scores, "queries": score})
        hit.score = score
        merged.append(hit)
    return sorted(merged, key=lambda h: h.score, reverse=True)


def name_stage(
    hits: list[Hit],
    collection: Collection,
    query: str,
    paths: Sequence[str] | None = None,
    weight: float = NAME_WEIGHT,
) -> list[Hit]:
    """The document stage: each hit gains ``weight`` x its file name's BM25 for ``query``
    over the best-named file's (recorded as its ``name`` score), and the hits are re-ranked.
    Only file names count: titles and headings are already in every chunk's text, and
    counting them again made SciFact worse (bench/RESULTS.md)."""
    if not hits or weight <= 0:
        return hits
    documents = {parse_chunk_id(hit.id)[0] for hit in hits}
    best, scores = collection.lexical.name_scores(query, documents, paths)
    if best <= 0:
        return hits
    for hit in hits:
        score = scores.get(parse_chunk_id(hit.id)[0], 0.0)
        if score > 0:
            boost = weight * score / best
            hit.scores["name"] = boost
            hit.score += boost
    return sorted(hits, key=lambda h: h.score, reverse=True)


def one_per_page(collection: Collection, ranked: Sequence[Hit], k: int) -> list[Hit]:
    """The first ``k`` of ``ranked`` with their text and metadata, one per (file, page): a
    page's later chunks are left out, so the page ranks as its best chunk. Chunks of code
    and of files without pages each stay a result. Text is read only for what is kept or
    looked at."""
    kept: list[Hit] = []
    seen: set[tuple[str, int] | str] = set()
    start = 0
    while len(kept) < k and start < len(ranked):
        step = 2 * (k - len(kept))
        for hit in collection.hydrate(ranked[start : start + step]):
            key = (hit.path, hit.page) if hit.page is not None and hit.line is None else hit.id
            if key not in seen and len(kept) < k:
                seen.add(key)
                kept.append(hit)
        start += step
    return kept


class HybridRetriever(Retriever):
    """Dense and lexical candidates fused, then the document stage over file names."""

    def __init__(
        self,
        dense: DenseRetriever,
        lexical: LexicalRetriever,
        fusion: Fusion | None = None,
        depth: int = HYBRID_DEPTH,
        name_weight: float = NAME_WEIGHT,
    ) -> None:
        self.dense = dense
        self.lexical = lexical
        self.collection = dense.collection
        self.fusion = fusion or default_fusion
        self.depth = depth
        self.name_weight = name_weight

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
        hits = fuse(dense, lexical.result(), self.fusion)
        return name_stage(hits, self.collection, query, paths, self.name_weight)[:k]


def components(retriever: Retriever, embedder: Embedder) -> tuple[DenseRetriever, LexicalRetriever]:
    """The dense and lexical rankings ``retriever`` is made of (new ones for what it is not),
    for the relevance floor, which looks at both whatever the mode."""
    if isinstance(retriever, HybridRetriever):
        return retriever.dense, retriever.lexical
    collection = retriever.collection
    dense = (
        retriever if isinstance(retriever, DenseRetriever) else DenseRetriever(embedder, collection)
    )
    lexical = retriever if isinstance(retriever, LexicalRetriever) else LexicalRetriever(collection)
    return dense, lexical


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
