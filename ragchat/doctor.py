"""``ragchat doctor``: is the store whole, are the models there, are the files private?

Each check is (name, status, detail) with status "ok", "warn" or "fail"; a failure's detail
names the fix. Nothing is loaded that is not needed: no model is read into memory.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from ragchat import disk
from ragchat.collection import Collection
from ragchat.config import home_read_only
from ragchat.errors import StoreError
from ragchat.text import plural

if TYPE_CHECKING:
    from ragchat.app import App


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str


def versions() -> str:
    found = []
    for package in ("ragchat", "chromadb", "llama-cpp-python", "sentence-transformers", "pypdf"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} missing")
    return ", ".join(found)


def _private(path: Path) -> Check:
    if not path.exists():
        return Check(f"permissions of {path.name}", "ok", "not created yet")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return Check(
            f"permissions of {path}",
            "warn",
            f"mode {mode:o} lets others read it; run: chmod go-rwx {path}",
        )
    return Check(f"permissions of {path.name}", "ok", f"mode {mode:o}")


def run(app: App) -> list[Check]:
    checks = [Check("versions", "ok", versions())]
    home: Path = app.home
    try:
        writable = app.writable
    except StoreError as exc:  # no store to check: say why, and still check the models
        return [*checks, Check("home", "fail", str(exc)), _llm_check(app)]
    if writable:
        checks.append(Check("home", "ok", f"{home}, writable"))
    else:
        checks.append(Check("home", "warn", home_read_only(home)))
    checks.append(_private(home))
    checks.append(_private(home / "config.toml"))
    try:
        integrity = app.manifest.db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as exc:
        return [
            *checks,
            Check(
                "manifest", "fail", f"{exc}; move {home / 'manifest.sqlite3'} away and re-ingest"
            ),
        ]
    if integrity != "ok":
        checks.append(
            Check("manifest", "fail", f"damaged ({integrity}); move it away and re-ingest")
        )
    collections = app.collections()
    try:
        unowned = _unowned_collections(app, {c.name for c in collections})
    except StoreError as exc:  # the store itself cannot be opened: nothing below can be checked
        return [*checks, Check("vector store", "fail", _store_failure(app, exc))]
    checks.extend(unowned)
    for name in sorted(app.manifest.rebuilding() - {c.name for c in collections}):
        checks.append(
            Check(
                f"collection {name!r}",
                "fail",
                "a --rebuild dropped it and stopped before it stored anything; run"
                f" 'ragchat ingest --rebuild PATH --collection {name}' again",
            )
        )
    if not collections and not unowned and not app.manifest.rebuilding():
        checks.append(Check("collections", "warn", "none yet: run 'ragchat ingest PATH'"))
    for collection in collections:
        checks.extend(_collection_checks(app, collection))
    checks.append(_device_check(app))
    checks.append(_llm_check(app))
    return checks


def _store_failure(app: App, exc: StoreError) -> str:
    """What is wrong with the store as a whole, and for a damaged local database the fix
    (the error itself sends the user here)."""
    database = app.store.path / "chroma.sqlite3"
    cause = exc.__cause__ or exc
    found = None if app.store.url else disk.failure(cause, app.home, database)
    if found is None or not str(found).startswith(f"{database} is damaged"):
        return str(exc)
    return (
        f"{database} is damaged ({cause}); move {app.store.path} away, then rebuild each"
        " collection from your files: 'ragchat ingest --rebuild PATH --collection NAME'"
    )


def _unowned_collections(app: App, recorded: set[str]) -> list[Check]:
    """Chroma collections with chunks the manifest has no record of: it was lost or replaced."""
    from ragchat.document_vectors import DOCS_SUFFIX
    from ragchat.server_manifest import FILES_SUFFIX

    checks = []
    for name in app.store.collection_names():
        if name in recorded or name.endswith((DOCS_SUFFIX, FILES_SUFFIX)):
            continue
        chunks = app.store.count(name)
        if chunks:
            checks.append(
                Check(
                    f"collection {name!r}",
                    "fail",
                    f"Chroma holds {chunks} chunks that no manifest row owns (the manifest was"
                    f" lost or replaced); run 'ragchat ingest PATH --collection {name}' on its"
                    " folders: it drops them and indexes the files again",
                )
            )
    return checks


def _collection_checks(app: App, collection: Collection) -> list[Check]:
    """One verdict per state: an interrupted ingest (which also leaves counts out of step) is
    a warning that the next ingest repairs; counts out of step without one are damage, a
    failure whose fix names the folders to ingest again."""
    name = collection.name
    record = collection.require()
    label = f"collection {name!r}"
    fix = f"run '{collection.rebuild_command()}' to rebuild it from your files"
    documents, chunks = collection.counts()
    damage = app.store.damage(name, thorough=True)
    if damage:  # before asking Chroma anything: it may crash loading a damaged index
        return [Check(label, "fail", f"the vector index is damaged: {damage}; {fix}")]
    try:
        stored = app.store.count(name)
        probe = app.store.query(name, [1.0] * record.dimension, 1)
    except Exception as exc:
        if isinstance(exc, StoreError) and (
            app.store.url or disk.failure(exc.__cause__ or exc, app.home)
        ):  # a server that is down, a full disk: named already, and not mended by a rebuild
            return [Check(label, "fail", str(exc))]
        return [
            Check(
                label,
                "fail",
                f"the vector store cannot read it ({type(exc).__name__}: {exc}); {fix}",
            )
        ]
    try:
        gap = collection.lexical_gap()
        indexed = collection.lexical.count() if collection.lexical.is_built() else 0
    except Exception as exc:  # a damaged index: tantivy's own message says what is wrong
        gap, indexed = f"the lexical index cannot be read ({exc})", -1
    vectors = (
        f"{plural(stored, 'chunk')} in Chroma but {chunks} in the manifest"
        if stored != chunks
        else ""
    )
    words = (
        f"{plural(indexed, 'chunk')} indexed for {chunks}" if not gap and indexed != chunks else ""
    )
    checks = []
    if app.manifest.pending(name):  # what it left out of step is what the next ingest repairs
        left = "; ".join(what for what in (vectors, words) if what)
        detail = "the last ingest was interrupted" + (f" ({left})" if left else "")
        checks.append(Check(label, "warn", f"{detail}; the next 'ragchat ingest' repairs it"))
        words = ""
    elif vectors:
        checks.append(Check(label, "fail", f"{vectors}; {fix}"))
    elif chunks and not probe:
        checks.append(
            Check(label, "fail", f"a search finds nothing in {plural(chunks, 'chunk')}; {fix}")
        )
    else:
        checks.append(
            Check(
                label,
                "ok",
                f"{plural(documents, 'document')}, {plural(chunks, 'chunk')}, embedder {record.embedder}",
            )
        )
    if name in app.manifest.rebuilding():
        checks.append(
            Check(
                f"{label} rebuild",
                "fail",
                f"a --rebuild has not finished (or was stopped): it holds {plural(documents, 'document')}"
                f" so far; {fix}",
            )
        )
    if gap or words:
        checks.append(Check(f"{label} lexical index", "fail", f"{gap or words}; {fix}"))
    checks.append(_embedder_check(record.embedder))
    return checks


def _embedder_check(model_id: str) -> Check:
    from ragchat.bundled import BUNDLED_EMBEDDING_ID, bundled_embedding_model
    from ragchat.remote_embedder import is_remote

    name = f"embedding model {model_id}"
    if is_remote(model_id):
        return Check(name, "ok", "served by an embeddings server (--embedding-base-url)")
    if model_id == BUNDLED_EMBEDDING_ID and bundled_embedding_model():
        return Check(name, "ok", "bundled")
    if Path(model_id).is_dir():
        return Check(name, "ok", "local folder")
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(model_id, local_files_only=True)
    except Exception:
        return Check(
            name,
            "warn",
            "not downloaded yet: the next command that needs it downloads it (needs a network)",
        )
    return Check(name, "ok", "in the hub cache")


def _device_check(app: App) -> Check:
    """Where the embedder runs: the device ``embedding_device`` resolves to here."""
    from ragchat.embedders import embedding_device
    from ragchat.llms import endpoint_url
    from ragchat.remote_embedder import is_remote

    if is_remote(app.embedding_model):
        return Check("embedding device", "ok", endpoint_url(app.settings.embedding_base_url))
    wanted = app.settings.embedding_device
    device = embedding_device(app.embedding_backend, wanted)
    detail = f"{device} ({app.embedding_backend}, embedding_device = {wanted})"
    if wanted not in ("auto", device):  # only ONNX: torch is given the device asked for
        fix = (
            "install onnxruntime-gpu in place of onnxruntime"
            if wanted == "cuda"
            else "ONNX Runtime has no MPS provider: rebuild with --embedding-backend torch"
            " (ragchat ingest --reindex PATH)"
        )
        return Check("embedding device", "warn", f"{detail}, not {wanted}: {fix}")
    return Check("embedding device", "ok", detail)


def _llm_check(app: App) -> Check:
    from ragchat.errors import RagchatError

    llm = app.llm
    name = f"LLM {llm.id}"
    if llm.destination:
        allowed = "allowed" if app.settings.allow_remote else "not allowed (needs --allow-remote)"
        return Check(
            name,
            "ok" if app.settings.allow_remote else "warn",
            f"hosted at {llm.destination}, {allowed}",
        )
    from ragchat.llms import LlamaCppLLM, is_gguf

    if not isinstance(llm, LlamaCppLLM):  # an OpenAI-compatible server on this machine
        return Check(name, "ok", "served on this machine")
    import os

    offline = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"  # doctor never downloads
    try:
        llm.check()
    except RagchatError as exc:
        return Check(name, "warn", str(exc))
    finally:
        if offline is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = offline
    path = llm.model_path
    if not is_gguf(path):
        return Check(name, "fail", f"{path} is not a GGUF file; give a .gguf with --model")
    return Check(name, "ok", str(path))
