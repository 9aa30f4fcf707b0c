"""The vector store: Chroma, with telemetry off, one Chroma collection per ragchat collection.

Only this module imports chromadb; the rest of ragchat sees ``VectorStore`` and ``Hit`` (and
server_manifest.py uses its client for the ``NAME__files`` collections).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ragchat import disk
from ragchat.errors import ConfigError, RagchatError, StoreError
from ragchat.text import location, parse_http_url

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
WRITE_BATCH = 2000  # well under Chroma's max batch size (~5,461)


def collection_name_problem(name: str) -> str | None:
    """What Chroma would refuse in a collection name, or None when it may be used."""
    if not _NAME.match(name) or ".." in name:
        return (
            "must be 3-512 letters, digits, '.', '_' or '-', starting and ending with a letter"
            " or digit (e.g. notes)"
        )
    return None


def check_collection_name(name: str) -> str:
    wrong = collection_name_problem(name)
    if wrong:
        raise ConfigError(f"Invalid collection name {name!r}: it {wrong}.")
    return name


@dataclass(kw_only=True)
class Hit:
    """One retrieved chunk, built by name. A ranking finds ``candidate``s (id and score, no
    text); ``with_metadata`` adds the chunk's text and stored metadata to one."""

    id: str
    text: str = ""
    path: str = ""
    page: int | None = None
    headings: str = ""
    start: int = 0  # character span in the page text
    end: int = 0
    score: float
    scores: dict[str, float] = field(default_factory=dict)  # by component: dense, lexical, fused
    line: int | None = None  # code chunks: first and last line of the symbol's lines
    end_line: int | None = None
    symbol: str = ""  # code chunks: the qualified name, e.g. HttpClient.fetch
    page_label: str = ""  # the page as cited when not "page N": "slide 3", "sheet Revenue"

    @classmethod
    def candidate(cls, chunk_id: str, component: str, score: float, path: str = "") -> Hit:
        """A chunk as the ``component`` ranking (dense, lexical) found it, with its score."""
        return cls(id=chunk_id, path=path, score=score, scores={component: score})

    def with_metadata(self, text: str, meta: dict[str, Any]) -> Hit:
        """This hit with its chunk's text and the metadata ``chunk_metadata`` stored."""
        return Hit(
            id=self.id,
            text=text,
            path=str(meta.get("path", "")),
            page=meta.get("page"),
            headings=str(meta.get("headings", "")),
            start=int(meta.get("start", 0)),
            end=int(meta.get("end", 0)),
            score=self.score,
            scores=dict(self.scores),
            line=meta.get("line"),
            end_line=meta.get("end_line"),
            symbol=str(meta.get("symbol", "")),
            page_label=str(meta.get("page_label", "")),
        )

    @property
    def location(self) -> str:
        """``path:line`` for code, ``path, page N`` (or ``path, slide 3``) in a file of pages,
        else the path."""
        return location(self.path, self.line, self.page, self.page_label)

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
            **(
                {"line": self.line, "end_line": self.end_line, "symbol": self.symbol}
                if self.line is not None
                else {}
            ),
            **({"page_label": self.page_label} if self.page_label else {}),
        }


def chunk_metadata(
    path: str,
    page: int | None,
    headings: str,
    start: int,
    end: int,
    line: int | None = None,
    end_line: int | None = None,
    symbol: str = "",
    page_label: str = "",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"path": path, "headings": headings, "start": start, "end": end}
    if page is not None:
        meta["page"] = page  # Chroma metadata values cannot be None
    if page_label:
        meta["page_label"] = page_label
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


PURGE_PROBE_ID = "ragchat-purge-probe"  # never a chunk id (those are hex-hex)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CHROMA_DEFAULT_HNSW = {"batch_size": 100, "sync_threshold": 1000}


def _normal_thresholds(hnsw: dict[str, Any]) -> dict[str, int]:
    """The collection's own thresholds, unless a killed purge left ours (1) behind."""
    if hnsw.get("sync_threshold", 1) <= 1:
        return dict(_CHROMA_DEFAULT_HNSW)
    sync = int(hnsw["sync_threshold"])
    return {"batch_size": min(int(hnsw.get("batch_size", 100)), sync), "sync_threshold": sync}


def _not_found(exc: Exception) -> bool:
    """Is this chromadb saying the collection does not exist? (Nothing else may mean that.)"""
    from chromadb.errors import NotFoundError

    return isinstance(exc, NotFoundError)


def _stopped(client: Any) -> bool:
    """Has a purge stopped the engine behind this client? (Stopping drops its bindings.)"""
    server = getattr(client, "_server", None)
    return type(server).__name__ == "RustBindingsAPI" and not hasattr(server, "bindings")


HNSW_FILES = ("header.bin", "data_level0.bin", "length.bin", "link_lists.bin")
# header.bin of Chroma's hnswlib: a format version, then hnswlib's own fields (offset_level0,
# max_elements, element_count, size_per_element, label_offset, offset_data, max_level,
# entry_point, max_m, max_m0, m, mult, ef_construction)
_HEADER = struct.Struct("<iQQQQQQiiQQQdQ")


def scrub_unused_capacity(folder: Path) -> None:
    """Zero the part of ``data_level0.bin`` past the index's elements. hnswlib saves its whole
    capacity, and the unused part is memory it never initialised: it can hold whatever the
    process freed before, such as the text of documents just deleted (seen in about one
    purge in six). No element is ever read from there."""
    try:
        header = (folder / "header.bin").read_bytes()
        count, per_element = _HEADER.unpack(header)[3:5]
        with (folder / "data_level0.bin").open("r+b") as data:
            size = data.seek(0, os.SEEK_END)
            used = count * per_element
            data.seek(used)
            while data.tell() < size:
                data.write(bytes(min(1 << 20, size - data.tell())))
    except (OSError, struct.error):
        return  # no index saved yet, or a damaged one (doctor and rebuild deal with it)


def index_damage(folder: Path, thorough: bool = False) -> str | None:
    """Why the HNSW files in a segment folder cannot be whole, or None when they can.

    Judged from their sizes against the header (and, when ``thorough``, by walking the link
    lists) without loading them: loading a truncated index can crash inside Chroma."""
    present = [name for name in HNSW_FILES if (folder / name).exists()]
    if not present:
        return None  # nothing saved yet: Chroma rebuilds the index from its log
    if len(present) < len(HNSW_FILES):
        missing = sorted(set(HNSW_FILES) - set(present))
        return f"{', '.join(missing)} missing from {folder}"
    header = (folder / "header.bin").read_bytes()
    if len(header) != _HEADER.size:
        return f"{folder / 'header.bin'} has {len(header)} bytes, not {_HEADER.size}"
    count, per_element = _HEADER.unpack(header)[3:5]
    # a fresh index is sized for its capacity, a saved one for its elements: at least these
    least = {
        "data_level0.bin": count * per_element,
        "length.bin": count * 4,
        "link_lists.bin": count * 4,
    }
    for name, size in least.items():
        actual = (folder / name).stat().st_size
        if actual < size:
            return f"{folder / name} is truncated ({actual} of at least {size} bytes)"
    if thorough:  # each element's link list: a 4-byte length, then that many bytes
        links = (folder / "link_lists.bin").read_bytes()
        position = 0
        for _ in range(count):
            if position + 4 > len(links):
                return f"{folder / 'link_lists.bin'} is truncated"
            position += 4 + int.from_bytes(links[position : position + 4], "little")
        if position > len(links):
            return f"{folder / 'link_lists.bin'} is truncated"
    return None


def _private_copy(path: Path) -> Path:
    """A copy of the store at ``path``, readable by this user only, removed at exit: in
    memory (/dev/shm) where there is one."""
    import atexit
    import tempfile

    memory = Path("/dev/shm")
    parent = memory if memory.is_dir() and os.access(memory, os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix="ragchat-read-only-", dir=parent))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    copy = folder / path.name
    try:
        shutil.copytree(path, copy, ignore=shutil.ignore_patterns("*.lock"))
        for where, _, names in os.walk(copy):  # the copy is writable: Chroma writes to it
            os.chmod(where, 0o700)
            for name in names:
                os.chmod(os.path.join(where, name), 0o600)
    except OSError as exc:
        raise StoreError(
            f"Cannot read the Chroma store at {path} ({exc.strerror or exc}); check its"
            " permissions."
        ) from exc
    return copy


class VectorStore:
    """Chroma: a PersistentClient under ``path``, or a Chroma server at ``url``."""

    def __init__(
        self, path: Path, url: str = "", timeout: float = 30.0, read_only: bool = False
    ) -> None:
        """``read_only``: the store cannot be written (a read-only home), so Chroma, which
        writes to its database even to read it, is given a private copy of it to read."""
        self.origin = path
        self.path = _private_copy(path) if read_only and not url and path.is_dir() else path
        self.url = url.rstrip("/")
        self.timeout = timeout  # seconds a Chroma server has to answer (chromadb waits forever)
        self.answered = False  # has the server answered this process yet?
        self._sound: set[str] = set()  # collections whose index files were checked

    def segment_folders(self, name: str) -> list[Path]:
        """The folders of the collection's vector index (none for a server, or when absent)."""
        database = self.path / "chroma.sqlite3"
        if self.url or not database.exists():
            return []
        try:
            with contextlib.closing(
                sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
            ) as db:
                rows = db.execute(
                    "SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id"
                    " WHERE c.name = ? AND s.scope = 'VECTOR'",
                    (name,),
                ).fetchall()
        except sqlite3.Error:
            return []  # Chroma itself reports an unreadable database, with its own words
        return [self.path / row[0] for row in rows if _UUID.match(row[0])]

    def damage(self, name: str, thorough: bool = False) -> str | None:
        """Why the collection's index files cannot be whole, or None (see ``index_damage``)."""
        for folder in self.segment_folders(name):
            found = index_damage(folder, thorough)
            if found:
                return found
        return None

    @property
    def location(self) -> str:
        return self.url or str(self.origin)

    @property
    def client(self) -> Any:
        # Reopened when a purge in this process has restarted Chroma under this path (see
        # ``purge``): an old client would talk to the stopped engine.
        client = self.__dict__.get("_client")
        if client is None or _stopped(client):
            client = self.__dict__["_client"] = self._open()
        return client

    def _open(self) -> Any:
        os.environ["ANONYMIZED_TELEMETRY"] = "False"
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if self.url:
            try:
                url = parse_http_url(self.url)
            except ValueError as exc:
                raise ConfigError(
                    f"--chroma-url {self.url!r} {exc}, e.g. http://127.0.0.1:8000."
                ) from None
            _limit_http_waits(self.timeout)
            with self.asking():  # the client asks the server for its version at once
                client = chromadb.HttpClient(
                    host=url.host, port=url.port_or_default, ssl=url.https, settings=settings
                )
            self.answered = True
            return client
        try:
            return chromadb.PersistentClient(path=str(self.path), settings=settings)
        except Exception as exc:
            _stop_engine(str(self.path))  # else the next open would get the half-made one
            raise self.failure(exc, "Cannot open the Chroma store at") from exc

    def _check_index(self, name: str) -> None:
        """Refuse a damaged index once per process, before Chroma loads (and crashes on) it."""
        if name not in self._sound:
            damage = self.damage(name)
            if damage:
                raise StoreError(
                    f"The vector index of collection {name!r} is damaged ({damage}); run"
                    f" 'ragchat ingest --rebuild PATH --collection {name}' to rebuild it from your files."
                )
            self._sound.add(name)

    @contextlib.contextmanager
    def asking(self) -> Iterator[None]:
        """Run calls to Chroma: what fails in them is one StoreError that names the fix (see
        ``failure``); errors of ragchat's own pass as they are."""
        try:
            yield
        except RagchatError:
            raise
        except Exception as exc:
            error = self.failure(exc)
            if not self.url:  # an engine that failed a write can hang on the next: start afresh
                self._restart()
            raise error from exc

    def failure(self, exc: Exception, what: str = "The Chroma store failed at") -> StoreError:
        """What a failed call to Chroma (other than "no such collection") tells the user: for
        a local store, a full, read-only or damaged disk is named as such (disk.py)."""
        if self.url:
            return self._server_failure(exc)
        return disk.failure(exc, self.path, self.path / "chroma.sqlite3") or StoreError(
            f"{what} {self.path} ({type(exc).__name__}: {exc}); run 'ragchat doctor' to see"
            " what is wrong."
        )

    def _server_failure(self, exc: Exception) -> StoreError:
        import httpx

        # chromadb turns some transport errors into ValueErrors: the chain keeps the cause
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, httpx.TransportError):
            cause = cause.__cause__ or cause.__context__
        exc = cause if isinstance(cause, httpx.TransportError) else exc
        kind = type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return StoreError(
                f"The Chroma server at {self.url} did not answer within {self.timeout:g} s"
                f" ({kind}); is it stopped or overloaded? (RAGCHAT_CHROMA_TIMEOUT sets how"
                " long to wait)"
            )
        if not isinstance(exc, httpx.TransportError):  # it answered, with an error
            return StoreError(
                f"The Chroma server at {self.url} failed ({kind}: {exc}); see its log."
            )
        if self.answered:
            return StoreError(
                f"Lost the Chroma server at {self.url} ({kind}); nothing already stored is"
                " lost: run the same command again once it is back."
            )
        return StoreError(
            f"Cannot reach the Chroma server at {self.url} ({kind}); is 'chroma run' running there?"
        )

    def _collection(self, name: str, metadata: dict[str, Any] | None = None) -> Any:
        if metadata is not None:
            with self.asking():
                return self.client.get_or_create_collection(
                    name, metadata={"hnsw:space": "cosine", **metadata}, embedding_function=None
                )
        self._check_index(name)
        try:
            return self.client.get_collection(name, embedding_function=None)
        except RagchatError:
            raise
        except Exception as exc:
            if not _not_found(exc):  # a server that does not answer has not lost anything
                raise self.failure(exc) from exc
            raise StoreError(
                f"Collection {name!r} is missing from the Chroma store at {self.location};"
                " re-ingest it with 'ragchat ingest --rebuild PATH'."
            ) from exc

    def create(self, name: str, metadata: dict[str, Any]) -> None:
        self._collection(name, metadata)

    def metadata(self, name: str) -> dict[str, Any]:
        return dict(self._collection(name).metadata or {})

    def exists(self, name: str) -> bool:
        """Is there a collection ``name``? Only Chroma's "not found" says no: a store that
        cannot be asked (a server that is down) is a StoreError, never an empty store."""
        try:
            self.client.get_collection(name, embedding_function=None)
        except RagchatError:
            raise
        except Exception as exc:
            if _not_found(exc):
                return False
            raise self.failure(exc) from exc
        return True

    def collection_names(self) -> list[str]:
        """Every collection in the store, ragchat's companions (NAME__docs, ...) included."""
        with self.asking():
            return [getattr(c, "name", c) for c in self.client.list_collections()]

    def records(
        self, name: str, where: dict[str, Any] | None = None
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """(id, document, metadata) of every chunk (matching ``where``)."""
        return [
            (r.id, r.text, r.metadata)
            for r in self.scan(name, where=where, text=True, vectors=False)
        ]

    def scan(
        self,
        name: str,
        ids: Sequence[str] | None = None,
        where: dict[str, Any] | None = None,
        text: bool = False,
        vectors: bool = True,
    ) -> Iterator[Record]:
        """Every record (with these ids, or matching ``where``), with its vector unless
        ``vectors`` is false, read 1,000 at a time so a large collection is never all in
        memory at once."""
        collection = self._collection(name)
        include = [
            "metadatas",
            *(["embeddings"] if vectors else []),
            *(["documents"] if text else []),
        ]
        offset = 0
        while True:
            with self.asking():
                page = collection.get(
                    ids=list(ids) if ids is not None else None,
                    where=where,
                    include=include,
                    limit=1000,
                    offset=offset,
                )
            documents = page.get("documents") or [""] * len(page["ids"])
            embeddings = page["embeddings"] if vectors else [[]] * len(page["ids"])
            for record_id, vector, meta, document in zip(
                page["ids"], embeddings, page["metadatas"], documents, strict=True
            ):
                yield Record(record_id, vector, dict(meta or {}), document or "")
            if len(page["ids"]) < 1000:
                return
            offset += 1000

    def ids(self, name: str) -> list[str]:
        collection = self._collection(name)
        found: list[str] = []
        while True:
            with self.asking():
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
        with self.asking():
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
        with self.asking():
            for i in range(0, len(ids), WRITE_BATCH):
                collection.delete(ids=list(ids[i : i + WRITE_BATCH]))

    def count(self, name: str) -> int:
        collection = self._collection(name)
        with self.asking():
            return int(collection.count())

    def drop(self, name: str) -> None:
        """Forget the collection, even one whose index files are damaged (Chroma deletes it
        without loading them, and leaves the folders behind: removed here)."""
        folders = self.segment_folders(name)
        try:
            self.client.delete_collection(name)
        except RagchatError:
            raise
        except Exception as exc:
            if not _not_found(exc):  # absent already is fine; unreachable is not
                raise self.failure(exc) from exc
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        self._sound.discard(name)

    def purge(self) -> None:
        """Make deleted chunks' text leave the disk, not only the index.

        Chroma keeps every write in its log (``embeddings_queue`` in chroma.sqlite3) until
        the HNSW index of the collection is saved past it, which by default happens every
        1,000 writes; it then prunes the log itself (``automatically_purge``). Deleted rows
        also stay in SQLite's free pages until a VACUUM. So: lower each collection's
        ``sync_threshold`` to 1, restart Chroma so it reloads the setting, write one no-op
        delete (the index is saved and the log pruned), restore the setting, then VACUUM, as
        ``chroma vacuum`` does. A Chroma server's files are its own: nothing to do there.
        """
        if self.url or not (self.path / "chroma.sqlite3").exists():
            return
        saved = {}
        try:
            for collection in self.client.list_collections():
                hnsw = (collection.configuration or {}).get("hnsw") or {}
                saved[collection.name] = _normal_thresholds(hnsw)
                collection.modify(configuration={"hnsw": {"batch_size": 1, "sync_threshold": 1}})
            self._restart()
            for name in saved:
                self.client.get_collection(name).delete(ids=[PURGE_PROBE_ID])
        finally:
            for name, hnsw in saved.items():
                with contextlib.suppress(Exception):  # gone meanwhile; else retried next purge
                    self.client.get_collection(name).modify(configuration={"hnsw": hnsw})
            self._restart()  # later writes in this process use the restored thresholds
        with (
            self.asking(),
            contextlib.closing(sqlite3.connect(self.path / "chroma.sqlite3", timeout=30)) as db,
        ):
            db.execute("VACUUM")
            segments = {row[0] for row in db.execute("SELECT id FROM segments")}
        for folder in self.path.iterdir():
            if not (folder.is_dir() and _UUID.match(folder.name)):
                continue
            if folder.name in segments:
                scrub_unused_capacity(folder)
            else:  # index files of dropped collections (Chroma 1.5 leaves them behind)
                shutil.rmtree(folder, ignore_errors=True)

    def _restart(self) -> None:
        """Stop the Chroma engine of this path in this process; the next call reopens it."""
        client = self.__dict__.pop("_client", None)
        if client is not None:
            _stop_engine(client._identifier)

    @cached_property
    def reader(self) -> DirectReader | None:
        """The fast read path, for a local store in a process that has not loaded chromadb."""
        if self.url or "_client" in self.__dict__:
            return None
        try:
            return DirectReader(self.path)
        except (
            Exception
        ):  # another chromadb version, or a store it cannot open: the client can say why
            return None

    def _read(self, method: str, name: str, *args: Any) -> Any:
        """``method`` ('query' or 'get') through the fast reader when it works, else
        through the client."""
        if self.reader is not None:
            self._check_index(name)
            try:
                return getattr(self.reader, method)(name, *args)
            except Exception:
                self.reader = None  # fall back for good, and let the client report any error
        return getattr(ClientReader(self), method)(name, *args)

    def query(
        self, name: str, vector: Sequence[float], k: int, where: dict[str, Any] | None = None
    ) -> list[Hit]:
        """The ``k`` nearest chunks as ids and cosine similarities only: no text, no path
        (reading those for hundreds of candidates costs 10x the search; see ``hydrate``)."""
        ids, distances = self._read("query", name, vector, k, where)
        return [
            Hit.candidate(chunk_id, "dense", 1.0 - float(distance))
            for chunk_id, distance in zip(ids, distances, strict=True)
        ]

    def hydrate(self, name: str, hits: Sequence[Hit]) -> list[Hit]:
        """The same hits with their text and metadata, read from the store; hits whose
        chunk is gone are left out."""
        if not hits:
            return []
        ids, documents, metadatas = self._read("get", name, [h.id for h in hits])
        found = dict(zip(ids, zip(documents, metadatas, strict=True), strict=True))
        return [
            hit.with_metadata(found[hit.id][0] or "", dict(found[hit.id][1] or {}))
            for hit in hits
            if hit.id in found
        ]


def _stop_engine(identifier: str) -> None:
    """Stop and forget the Chroma engine chromadb keeps for ``identifier`` (a store's path)."""
    from chromadb.api.shared_system_client import SharedSystemClient

    system = SharedSystemClient._identifier_to_system.pop(identifier, None)
    if system is not None:
        with contextlib.suppress(Exception):  # one that failed to start may fail to stop
            system.stop()


def _limit_http_waits(timeout: float) -> None:
    """Give chromadb's HTTP clients made from now on a time limit. Its own waits forever for
    a server that accepts a connection and never answers (stalled, or stopped with SIGSTOP):
    it makes its httpx session with ``timeout=None`` and no setting changes that, so its
    constructor is wrapped to set ours."""
    import httpx
    from chromadb.api.fastapi import FastAPI

    original = FastAPI.__dict__.get("_untimed_init") or FastAPI.__init__
    limit = httpx.Timeout(timeout, connect=min(timeout, 10.0))

    def timed_init(self: Any, system: Any) -> None:
        original(self, system)
        self._session.timeout = limit

    setattr(FastAPI, "_untimed_init", original)  # noqa: B010 (not chromadb's attribute)
    setattr(FastAPI, "__init__", timed_init)  # noqa: B010


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

    def query(
        self, name: str, vector: Sequence[float], k: int, where: dict[str, Any] | None
    ) -> tuple[list[str], list[float]]:
        where_json = json.dumps(where) if where else None
        result = self.bindings.query(
            self._id(name),
            None,
            [list(vector)],
            k,
            where_json,
            None,
            ["distances"],
            self.TENANT,
            self.DATABASE,
        )
        return list(result.ids[0]), list(result.distances[0])

    def get(
        self, name: str, ids: Sequence[str]
    ) -> tuple[list[str], list[str | None], list[dict[str, Any]]]:
        result = self.bindings.get(
            self._id(name),
            list(ids),
            None,
            None,
            0,
            None,
            ["documents", "metadatas"],
            self.TENANT,
            self.DATABASE,
        )
        return list(result.ids), list(result.documents), [dict(m or {}) for m in result.metadatas]


class ClientReader:
    """The same two reads as ``DirectReader``, through the chromadb client (the reference)."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store

    def query(
        self, name: str, vector: Sequence[float], k: int, where: dict[str, Any] | None
    ) -> tuple[list[str], list[float]]:
        collection = self.store._collection(name)
        with self.store.asking():
            result = collection.query(
                query_embeddings=[list(vector)], n_results=k, where=where, include=["distances"]
            )
        return result["ids"][0], result["distances"][0]

    def get(
        self, name: str, ids: Sequence[str]
    ) -> tuple[list[str], list[str | None], list[dict[str, Any]]]:
        collection = self.store._collection(name)
        with self.store.asking():
            result = collection.get(ids=list(ids), include=["documents", "metadatas"])
        return result["ids"], result["documents"], result["metadatas"]
