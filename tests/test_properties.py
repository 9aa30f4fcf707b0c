"""Property: whatever sequence of edits, ingests and crashes, the store ends as a clean build.

Random add / modify / delete / ingest / crash-mid-ingest / resume sequences run against a real
Chroma store with the fake embedder; a simple model (path -> text) says what the store must
hold. After every completed ingest: the same chunk ids as a clean build of the model, no
duplicates, no orphans, the lexical index, the manifest and the document vectors in step.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from fakes import FakeEmbedder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ragchat.ingest as ingest_module
from ragchat.app import App
from ragchat.config import Settings
from ragchat.lexical import LexicalIndex
from ragchat.store import VectorStore

NAMES = [f"doc{i}.md" for i in range(5)]
WORDS = ["tide", "gull", "ferry", "harbour", "storm", "net", "lamp", "quay"]

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("write"),
            st.sampled_from(NAMES),
            st.lists(st.sampled_from(WORDS), min_size=1, max_size=40),
        ),
        st.tuples(st.just("delete"), st.sampled_from(NAMES), st.just([])),
        st.tuples(st.just("ingest"), st.just(""), st.just([])),
        st.tuples(st.just("crash"), st.integers(0, 3), st.just([])),
    ),
    min_size=1,
    max_size=12,
)


class Crash(Exception):
    pass


def state(app: App) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, int]], list[str]]:
    ids = (
        sorted(app.store._collection("default").get(include=[])["ids"])
        if app.manifest.collection("default")
        else []
    )
    documents = sorted(app.store.ids("default__docs")) if app.store.exists("default__docs") else []
    db = sqlite3.connect(app.manifest.path)
    index = LexicalIndex(app.manifest, "default")
    lexical = (
        sorted((chunk_id, path) for chunk_id, path, _ in index.entries())
        if index.folder.exists()
        else []
    )
    files = sorted(db.execute("SELECT path, chunks FROM files"))
    return ids, lexical, files, documents


def app_at(home: Path) -> App:
    return App(
        home,
        Settings(chunk_tokens=12),
        explicit=frozenset({"embedding_model"}),
        embedder=FakeEmbedder(),
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=operations)
def test_any_history_ends_as_a_clean_build(steps, monkeypatch: pytest.MonkeyPatch):
    work = Path(tempfile.mkdtemp(prefix="ragchat-prop-"))
    batch = ingest_module.EMBED_BATCH
    ingest_module.EMBED_BATCH = 3  # several batches per ingest, so crashes land between them
    try:
        docs = work / "docs"
        docs.mkdir()
        home = work / "home"
        for kind, target, words in steps:
            if kind == "write":
                sentences = [" ".join(words[i : i + 5]) + "." for i in range(0, len(words), 5)]
                (docs / target).write_text("\n\n".join(sentences))
            elif kind == "delete":
                (docs / target).unlink(missing_ok=True)
            elif kind == "ingest":
                app_at(home).ingest(docs)
            else:  # crash in the middle of an ingest: after the vectors of some batch were written
                calls = {"n": 0}
                original = VectorStore.upsert

                def upsert(self, *args, _original=original, _calls=calls, _at=target, **kwargs):
                    _original(self, *args, **kwargs)
                    _calls["n"] += 1
                    if _calls["n"] > _at:
                        raise Crash

                monkeypatch.setattr(VectorStore, "upsert", upsert)
                try:
                    app_at(home).ingest(docs)
                except Crash:
                    pass
                finally:
                    monkeypatch.undo()
        resumed = app_at(home)
        resumed.ingest(docs)
        clean = app_at(work / "clean")
        clean.ingest(docs)
        assert state(resumed) == state(clean)
        ids = state(resumed)[0]
        assert len(ids) == len(set(ids))
    finally:
        ingest_module.EMBED_BATCH = batch
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient.clear_system_cache()  # close this example's stores (their files stay open otherwise)
        shutil.rmtree(work, ignore_errors=True)
