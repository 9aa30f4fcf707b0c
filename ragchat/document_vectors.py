"""Document vectors: one per file, kept by ingest in a companion collection ``NAME__docs``.

A document's vector is the normalised mean of its chunks' (unit) vectors: the centre of the
topics it covers. Every chunk counts once, whatever its length, so a long document is not
pulled towards its longest paragraphs, and its own chunks already cover it in proportion to its
length. Ingest writes a document's vector together with its chunks (and removes it with them),
so "documents like this one" is a single nearest-neighbour query at any collection size, and
clustering or mapping reads one vector per document, never the chunks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragchat.ids import document_id, parse_chunk_id
from ragchat.store import VectorStore
from ragchat.text import shorten

DOCS_SUFFIX = "__docs"
LEAD_CHARS = 200  # the opening of a document kept beside its vector (cluster names, hovers)
TITLE_CHARS = 120
_DOCSTRING = re.compile(r"[rRuU]?(?:\"\"\"|\'\'\')(.*?)(?:\"\"\"|\'\'\'|$)", re.DOTALL)


def docs_collection(collection: str) -> str:
    return collection + DOCS_SUFFIX


def mean_vector(vectors: Sequence[Sequence[float]]) -> list[float]:
    """The normalised mean of the normalised ``vectors`` (cosine centroid)."""
    centroid = Centroid()
    centroid.add(vectors)
    return centroid.vector()


class Centroid:
    """``mean_vector`` of vectors that arrive a batch at a time (the parts of a big file)."""

    def __init__(self) -> None:
        self.total: Any = None  # the sum of the normalised vectors so far
        self.count = 0

    def add(self, vectors: Sequence[Sequence[float]]) -> None:
        import numpy as np

        if not len(vectors):
            return
        matrix = np.asarray(vectors, dtype=np.float64)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        total = (matrix / np.where(norms == 0, 1, norms)).sum(axis=0)
        self.total = total if self.total is None else self.total + total
        self.count += len(matrix)

    def vector(self) -> list[float]:
        import numpy as np

        centre = self.total / self.count
        length = float(np.linalg.norm(centre))
        return [float(x) for x in (centre / length if length else centre)]


def describe(
    path: str, headings: Sequence[str], first_text: str, title: str = ""
) -> dict[str, Any]:
    """Title (the loader's, else the first heading, else the first line, else the file name)
    and lead of a document."""
    first_line = next((line for line in first_text.splitlines() if line.strip()), "")
    title = (
        title.strip()
        or next((h for h in headings if h.strip()), "")
        or first_line.lstrip("#").strip()
        or Path(path).name
    )
    docstring = _DOCSTRING.match(first_text)
    if docstring:  # a module's docstring says what it is about better than its imports do
        first_text = docstring.group(1)
    return {
        "path": path,
        "title": shorten(title, TITLE_CHARS),
        "lead": shorten(first_text, LEAD_CHARS),
    }


@dataclass
class Document:
    id: str
    path: str
    title: str
    lead: str
    vector: Sequence[float]

    @classmethod
    def from_record(cls, record_id: str, vector: Sequence[float], meta: dict[str, Any]) -> Document:
        path = str(meta.get("path", ""))
        return cls(
            record_id,
            path,
            str(meta.get("title") or Path(path).name),
            str(meta.get("lead", "")),
            vector,
        )


class DocumentIndex:
    """The ``NAME__docs`` collection: id = the file's document id, vector, title and lead."""

    def __init__(self, store: VectorStore, collection: str) -> None:
        self.store = store
        self.collection = collection
        self.name = docs_collection(collection)

    def put(self, entries: Sequence[tuple[str, Sequence[float], dict[str, Any]]]) -> None:
        """(id, vector, metadata) per document."""
        if not entries:
            return
        self.store.create(self.name, {"ragchat:documents_of": self.collection})
        self.store.upsert(
            self.name,
            [e[0] for e in entries],
            [e[1] for e in entries],
            [""] * len(entries),
            [e[2] for e in entries],
        )

    def delete(self, ids: Sequence[str]) -> None:
        if ids and self.store.exists(self.name):
            self.store.delete(self.name, ids)

    def drop(self) -> None:
        self.store.drop(self.name)

    def ids(self) -> list[str]:
        return self.store.ids(self.name) if self.store.exists(self.name) else []

    def count(self) -> int:
        return self.store.count(self.name) if self.store.exists(self.name) else 0

    def all(self) -> list[Document]:
        if not self.store.exists(self.name):
            return []
        documents = [
            Document.from_record(r.id, r.vector, r.metadata) for r in self.store.scan(self.name)
        ]
        return sorted(documents, key=lambda d: d.path)

    def get(self, ids: Sequence[str]) -> dict[str, Document]:
        return {
            r.id: Document.from_record(r.id, r.vector, r.metadata)
            for r in self.store.scan(self.name, ids=ids)
        }

    def nearest(self, vector: Sequence[float], k: int) -> list[tuple[str, float]]:
        """(id, cosine similarity) of the ``k`` nearest documents."""
        k = min(k, self.count())
        return [(hit.id, hit.score) for hit in self.store.query(self.name, vector, k)] if k else []

    def rebuild(self, paths: Iterable[str]) -> int:
        """Bring the index in step with ``paths`` (the manifest's files), computing missing
        vectors from the chunk vectors already in the store; returns how many were built.
        Collections ingested before document vectors existed are caught up this way."""
        wanted = {document_id(p): p for p in paths}
        present = set(self.ids())
        stale = [i for i in present if i not in wanted]
        self.delete(stale)
        missing = [p for i, p in wanted.items() if i not in present]
        built = 0
        for start in range(0, len(missing), 100):
            batch = missing[start : start + 100]
            chunks: dict[str, list[tuple[int, Sequence[float], dict[str, Any], str]]] = {
                p: [] for p in batch
            }
            for record in self.store.scan(
                self.collection, where={"path": {"$in": batch}}, text=True
            ):
                index = parse_chunk_id(record.id)[1]
                chunks[str(record.metadata["path"])].append(
                    (index, record.vector, record.metadata, record.text)
                )
            entries = []
            for path, found in chunks.items():
                if not found:
                    continue
                found.sort(key=lambda c: c[0])
                first = found[0]
                headings = str(first[2].get("headings", "")).split(" > ")
                entries.append(
                    (
                        document_id(path),
                        mean_vector([c[1] for c in found]),
                        describe(path, headings, first[3]),
                    )
                )
            self.put(entries)
            built += len(entries)
        return built
