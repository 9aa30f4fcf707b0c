"""Ranking: a question becomes the best chunks of a collection.

One seam, ``Retriever.retrieve(query, k)``; dense retrieval today, hybrid ranking plugs in
beside it without touching the answer loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ragchat.embedders import Embedder
from ragchat.store import Hit, VectorStore


class Retriever(ABC):
    @abstractmethod
    def retrieve(self, query: str, k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first."""


class DenseRetriever(Retriever):
    """Nearest chunks by cosine similarity of the query's embedding."""

    def __init__(self, embedder: Embedder, store: VectorStore, collection: str) -> None:
        self.embedder = embedder
        self.store = store
        self.collection = collection

    def retrieve(self, query: str, k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        vector = self.embedder.embed_query(query)
        return self.store.query(self.collection, vector, k, where)
