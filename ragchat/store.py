"""The vector store: Chroma, with telemetry off, one Chroma collection per ragchat collection.

Only this module talks to chromadb; the rest of ragchat sees ``VectorStore`` and ``Hit``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ragchat.errors import ConfigError, StoreError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
WRITE_BATCH = 2000  # well under Chroma's max batch size (~5,461)


def check_collection_name(name: str) -> str:
    if not _NAME.match(name) or ".." in name:
        raise ConfigError(
            f"Invalid collection name {name!r}: use 3-512 letters, digits, '.', '_' or '-',"
            " starting and ending with a letter or digit (e.g. --collection notes)."
        )
    return name


@dataclass
class Hit:
    """One retrieved chunk."""

    id: str
    text: str
    path: str
    page: int | None
    headings: str
    start: int
    end: int
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    line: int | None = None  # code chunks: first and last line of the symbol's lines
    end_line: int | None = None
    symbol: str = ""  # code chunks: the qualified name, e.g. HttpClient.fetch

    @property
    def location(self) -> str:
        """``path:line`` for code, else the path."""
        return f"{self.path}:{self.line}" if self.line is not None else self.path

    def to_dict(self, n: int) -> dict[str, Any]:
        """The JSON form shared by ``ask --json`` and ``search --json``; n is its rank."""
        return {
            "n": n,
            "path": self.path,
            "page": self.page,
            "headings": self.headings,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 6),
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
            "text": self.text,
            **({"line": self.line, "end_line": self.end_line, "symbol": self.symbol} if self.line is not None else {}),
        }


def chunk_metadata(
    path: str, page: int | None, headings: str, start: int, end: int,
    line: int | None = None, end_line: int | None = None, symbol: str = "",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"path": path, "headings": headings, "start": start, "end": end}
    if page is not None:
        meta["page"] = page  # Chroma metadata values cannot be None
    if line is not None:
        meta.update(line=line, end_line=end_line if end_line is not None else line, symbol=symbol)
    return meta


@dataclass
class Record:
    """A stored vector with its metadata (and text, when asked for)."""

    id: str
    vector: Sequence[float]
    metadata: dict[str, Any]
    text: str = ""


class VectorStore:
    """Chroma: a PersistentClient under ``path``, or a Chroma server at ``url``."""

    def __init__(self, path: Path, url: str = "") -> None:
        self.path = path
        self.url = url.rstrip("/")

    @property
    def location(self) -> str:
        return self.url or str(self.path)

    @cached_property
    def client(self) -> Any:
        os.environ["ANONYMIZED_TELEMETRY"] = "False"
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if self.url:
            from urllib.parse import urlparse

            parsed = urlparse(self.url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ConfigError(f"--chroma-url {self.url!r} is not an http(s) URL, e.g. http://127.0.0.1:8000.")
            try:
                return chromadb.HttpClient(
                    host=parsed.hostname,
                    port=parsed.port or (443 if parsed.scheme == "https" else 80),
                    ssl=parsed.scheme == "https",
                    settings=settings,
                )
            except Exception as exc:
                raise StoreError(f"Cannot reach the Chroma server at {self.url} ({type(exc).__name__}); is 'chroma run' running there?") from exc
        try:
            return chromadb.PersistentClient(path=str(self.path), settings=settings)
        except Exception as exc:
            raise StoreError(
                f"Cannot open the Chroma store at {self.path} ({exc});"
                " move it away and run 'ragchat ingest --reindex PATH' to rebuild it from your files."
            ) from exc

    def _collection(self, name: str, metadata: dict[str, Any] | None = None) -> Any:
        if metadata is not None:
            return self.client.get_or_create_collection(
                name, metadata={"hnsw:space": "cosine", **metadata}, embedding_function=None
            )
        try:
            return self.client.get_collection(name, embedding_function=None)
        except Exception as exc:  # chromadb raises NotFoundError (1.x) or ValueError (0.x)
            raise StoreError(
                f"Collection {name!r} is missing from the Chroma store at {self.location};"
                " re-ingest it with 'ragchat ingest --reindex PATH'."
            ) from exc

    def create(self, name: str, metadata: dict[str, Any]) -> None:
        self._collection(name, metadata)

    def metadata(self, name: str) -> dict[str, Any]:
        return dict(self._collection(name).metadata or {})

    def exists(self, name: str) -> bool:
        try:
            self.client.get_collection(name)
        except Exception:
            return False
        return True

    def records(self, name: str, where: dict[str, Any] | None = None) -> list[tuple[str, str, dict[str, Any]]]:
        """(id, document, metadata) of every chunk (matching ``where``), in pages of 1,000."""
        collection = self._collection(name)
        found: list[tuple[str, str, dict[str, Any]]] = []
        offset = 0
        while True:
            page = collection.get(where=where, include=["documents", "metadatas"], limit=1000, offset=offset)
            found.extend(zip(page["ids"], [d or "" for d in page["documents"]], page["metadatas"], strict=True))
            if len(page["ids"]) < 1000:
                return found
            offset += 1000

    def scan(
        self, name: str, ids: Sequence[str] | None = None, where: dict[str, Any] | None = None, text: bool = False
    ) -> Iterator[Record]:
        """Every record (with these ids, or matching ``where``) with its vector, read 1,000 at
        a time so a large collection is never all in memory at once."""
        collection = self._collection(name)
        include = ["embeddings", "metadatas", *(["documents"] if text else [])]
        offset = 0
        while True:
            page = collection.get(ids=list(ids) if ids is not None else None, where=where, include=include, limit=1000, offset=offset)
            documents = page.get("documents") or [""] * len(page["ids"])
            for record_id, vector, meta, document in zip(page["ids"], page["embeddings"], page["metadatas"], documents, strict=True):
                yield Record(record_id, vector, dict(meta or {}), document or "")
            if len(page["ids"]) < 1000:
                return
            offset += 1000

    def ids(self, name: str) -> list[str]:
        collection = self._collection(name)
        found: list[str] = []
        while True:
            page = collection.get(include=[], limit=10_000, offset=len(found))
            found.extend(page["ids"])
            if len(page["ids"]) < 10_000:
                return found

    def upsert(
        self,
        name: str,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        documents: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        collection = self._collection(name)
        for i in range(0, len(ids), WRITE_BATCH):
            j = i + WRITE_BATCH
            collection.upsert(
                ids=list(ids[i:j]),
                embeddings=[list(v) for v in vectors[i:j]],
                documents=list(documents[i:j]),
                metadatas=list(metadatas[i:j]),
            )

    def delete(self, name: str, ids: Sequence[str]) -> None:
        collection = self._collection(name)
        for i in range(0, len(ids), WRITE_BATCH):
            collection.delete(ids=list(ids[i : i + WRITE_BATCH]))

    def count(self, name: str) -> int:
        return int(self._collection(name).count())

    def drop(self, name: str) -> None:
        with contextlib.suppress(Exception):  # already absent
            self.client.delete_collection(name)

    @cached_property
    def reader(self) -> DirectReader | None:
        """The fast read path, for a local store in a process that has not loaded chromadb."""
        if self.url or "client" in self.__dict__:
            return None
        try:
            return DirectReader(self.path)
        except Exception:  # another chromadb version, or a store it cannot open: the client can say why
            return None

    def _read(self, method: str, name: str, *args: Any) -> Any:
        """``method`` through the fast reader when it works, else through the client."""
        if self.reader is not None:
            try:
                return getattr(self.reader, method)(name, *args)
            except Exception:
                self.reader = None  # fall back for good, and let the client report any error
        collection = self._collection(name)
        if method == "query":
            vector, k, where = args
            result = collection.query(query_embeddings=[list(vector)], n_results=k, where=where, include=["distances"])
            return result["ids"][0], result["distances"][0]
        result = collection.get(ids=list(args[0]), include=["documents", "metadatas"])
        return result["ids"], result["documents"], result["metadatas"]

    def query(
        self, name: str, vector: Sequence[float], k: int, where: dict[str, Any] | None = None
    ) -> list[Hit]:
        """The ``k`` nearest chunks as ids and cosine similarities only: no text, no path
        (reading those for hundreds of candidates costs 10x the search; see ``hydrate``)."""
        ids, distances = self._read("query", name, vector, k, where)
        return [
            Hit(chunk_id, "", "", None, "", 0, 0, score, {"dense": score})
            for chunk_id, distance in zip(ids, distances, strict=True)
            for score in [1.0 - float(distance)]
        ]

    def hydrate(self, name: str, hits: Sequence[Hit]) -> list[Hit]:
        """The same hits with their text and metadata, read from the store; hits whose
        chunk is gone are left out."""
        if not hits:
            return []
        ids, documents, metadatas = self._read("get", name, [h.id for h in hits])
        found = dict(zip(ids, zip(documents, metadatas, strict=True), strict=True))
        full = []
        for hit in hits:
            if hit.id not in found:
                continue
            text, meta = found[hit.id]
            full.append(
                Hit(
                    id=hit.id,
                    text=text or "",
                    path=str(meta.get("path", "")),
                    page=meta.get("page"),
                    headings=str(meta.get("headings", "")),
                    start=int(meta.get("start", 0)),
                    end=int(meta.get("end", 0)),
                    score=hit.score,
                    scores=dict(hit.scores),
                    line=meta.get("line"),
                    end_line=meta.get("end_line"),
                    symbol=str(meta.get("symbol", "")),
                )
            )
        return full


class DirectReader:
    """Chroma's own engine (its Rust bindings), opened without importing the chromadb
    package, whose import alone costs ~0.8 s: this is what keeps a cold ``ragchat search``
    under a second. It only reads (queries and gets), validates rather than applies schema
    migrations, and mirrors what chromadb's own ``RustBindingsAPI`` passes; any failure
    (e.g. another chromadb version) makes ``VectorStore`` fall back to the full client.
    Tests check it returns exactly what the client returns.
    """

    TENANT, DATABASE = "default_tenant", "default_database"

    def __init__(self, path: Path) -> None:
        import resource

        import chromadb_rust_bindings as rust

        if not (path / "chroma.sqlite3").exists():
            raise FileNotFoundError(path / "chroma.sqlite3")
        config = rust.SqliteDBConfig(
            hash_type=rust.MigrationHash.MD5,
            migration_mode=rust.MigrationMode.Validate,
            url=str(path / "chroma.sqlite3"),
        )
        self.bindings = rust.Bindings(
            allow_reset=False,
            sqlite_db_config=config,
            persist_path=str(path),
            hnsw_cache_size=resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 5,  # as chromadb does
        )
        self.ids: dict[str, str] = {}

    def _id(self, name: str) -> str:
        if name not in self.ids:
            self.ids[name] = str(self.bindings.get_collection(name, self.TENANT, self.DATABASE).id)
        return self.ids[name]

    def query(self, name: str, vector: Sequence[float], k: int, where: dict[str, Any] | None) -> tuple[list[str], list[float]]:
        where_json = json.dumps(where) if where else None
        result = self.bindings.query(self._id(name), None, [list(vector)], k, where_json, None, ["distances"], self.TENANT, self.DATABASE)
        return list(result.ids[0]), list(result.distances[0])

    def get(self, name: str, ids: Sequence[str]) -> tuple[list[str], list[str | None], list[dict[str, Any]]]:
        result = self.bindings.get(self._id(name), list(ids), None, None, 0, None, ["documents", "metadatas"], self.TENANT, self.DATABASE)
        return list(result.ids), list(result.documents), [dict(m or {}) for m in result.metadatas]
