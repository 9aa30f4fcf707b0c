"""The tantivy lexical index: BM25 order, path filters, migration from the old FTS5 tables,
compaction of deleted text, a busy writer, a damaged index, and interrupted updates."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import make_app, write

from ragchat import lexical as lexical_module
from ragchat.errors import StoreError
from ragchat.lexical import LexicalIndex, legacy_table
from ragchat.manifest import Manifest


def index_at(home: Path, collection: str = "notes") -> LexicalIndex:
    home.mkdir(parents=True, exist_ok=True)
    return LexicalIndex(Manifest(home / "manifest.sqlite3"), collection)


def test_bm25_order_stemming_and_path_filter(tmp_path: Path):
    index = index_at(tmp_path)
    index.add("/a.md", ["a-0", "a-1"], ["Zeppelins are airships.", "Nothing here about it."])
    index.add("/b.md", ["b-0"], ["An airship, another airship and a third airship over the bay."])
    index.commit()
    hits = index.search("the airships", 10)
    assert [h[0] for h in hits] == ["b-0", "a-0"]  # more occurrences first; stemmed; 'the' dropped
    assert all(score > 0 for _, _, score in hits)
    assert [h[0] for h in index.search("airship", 10, paths=["/a.md"])] == ["a-0"]
    assert [h[:2] for h in index.search("zeppelin", 10)] == [("a-0", "/a.md")]
    assert index.search("?!", 10) == [] and index.count() == 3


def test_an_old_fts5_table_is_migrated_then_dropped(tmp_path: Path):
    manifest = Manifest(tmp_path / "manifest.sqlite3")
    table = legacy_table("notes")  # what ragchat before tantivy wrote
    manifest.db.execute(
        f"CREATE VIRTUAL TABLE {table} USING fts5(text, chunk_id UNINDEXED, path UNINDEXED)"
    )
    manifest.db.execute(
        f"INSERT INTO {table} VALUES ('Harbour cranes lift containers', 'x-0', '/x.md')"
    )
    index = LexicalIndex(manifest, "notes")
    assert [h[:2] for h in index.search("crane", 5)] == [("x-0", "/x.md")]
    assert (
        manifest.db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        is None
    )
    assert manifest.purge_needed()  # VACUUM scrubs the dropped table's pages


def test_compaction_leaves_no_deleted_text_or_terms(tmp_path: Path):
    index = index_at(tmp_path)
    index.add("/secret.md", ["s-0"], ["The qzxkplmwv project starts in May."])
    index.add("/keep.md", ["k-0"], ["Bananas are yellow."])
    index.commit()
    index.remove("/secret.md")
    index.commit()
    assert index.needs_compacting()
    index.compact()
    assert not index.needs_compacting()
    searcher = index._searcher()
    assert searcher.doc_freq("text", "qzxkplmwv") == 0  # the term is gone, not just hidden
    assert not [
        p for p in index.folder.rglob("*") if p.is_file() and b"qzxkplmwv" in p.read_bytes()
    ]
    assert [h[0] for h in index.search("bananas", 5)] == ["k-0"]


def test_a_writer_in_another_process_is_waited_for_then_named(tmp_path: Path, monkeypatch):
    index = index_at(tmp_path)
    index.add("/a.md", ["a-0"], ["text"])
    index.commit()
    index.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time, tantivy; i = tantivy.Index.open(sys.argv[1]);"
            " w = i.writer(15_000_000, 1); print('holding', flush=True); time.sleep(30)"
        ), str(index.folder)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        monkeypatch.setattr(lexical_module, "WRITER_WAIT", 0.3)
        with pytest.raises(StoreError, match="locked by another ragchat process"):
            index.remove("/a.md")
        assert [h[0] for h in index.search("text", 5)] == ["a-0"]  # reading is never blocked
    finally:
        holder.kill()
        holder.wait()


def test_a_damaged_index_is_one_error_and_rebuild_recovers(ragchat_home: Path, docs: Path):
    app = make_app(ragchat_home)
    app.ingest(docs)
    folder = LexicalIndex(app.manifest, "default").folder
    LexicalIndex(app.manifest, "default").close()
    (folder / "meta.json").write_text("{not json")
    fresh = make_app(ragchat_home)
    with pytest.raises(StoreError, match="ragchat ingest --rebuild"):
        fresh.retriever("lexical").retrieve("bananas", 3)
    LexicalIndex(fresh.manifest, "default").close()
    rebuilt = make_app(ragchat_home)
    rebuilt.ingest(docs, reindex=True)
    assert [h.path for h in rebuilt.retriever("lexical").retrieve("bananas yellow", 1)] == [
        str(docs / "b.txt")
    ]


def test_an_update_interrupted_after_its_chunks_is_redone_even_if_reverted(
    ragchat_home: Path,
    docs: Path,
    monkeypatch,
):
    write(docs, "plan.md", "The budget is modest.\n")
    make_app(ragchat_home).ingest(docs)
    original = (docs / "plan.md").read_text()
    write(docs, "plan.md", "The budget is enormous and grows.\n")

    def crash(self, collection, record):
        raise KeyboardInterrupt

    app = make_app(ragchat_home)
    monkeypatch.setattr(Manifest, "put_file", crash)  # after the new chunks, before the row
    with pytest.raises(KeyboardInterrupt):
        app.ingest(docs)
    monkeypatch.undo()
    write(docs, "plan.md", original)  # back to the content the manifest row describes
    report = make_app(ragchat_home).ingest(docs)
    assert report.updated == [str(docs / "plan.md")]
    lexical = make_app(ragchat_home).retriever("lexical")
    assert lexical.retrieve("enormous", 3) == []
    assert [h.path for h in lexical.retrieve("modest budget", 1)] == [str(docs / "plan.md")]
    assert sqlite3.connect(ragchat_home / "manifest.sqlite3").execute(
        "SELECT COUNT(*) FROM pending"
    ).fetchone() == (0,)


def test_an_ingest_lets_go_of_the_writer_when_it_ends(ragchat_home: Path, docs: Path):
    app = make_app(ragchat_home)  # a long-lived process (a chat) that has ingested
    app.ingest(docs)
    folder = LexicalIndex(app.manifest, "default").folder
    taken = subprocess.run(
        [sys.executable, "-c", "import sys, tantivy; tantivy.Index.open(sys.argv[1]).writer(15_000_000, 1)", str(folder)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert taken.returncode == 0, taken.stderr  # another process can write (ingest) now


def test_close_waits_for_the_merges_and_drops_what_was_not_committed(tmp_path: Path):
    """Merges the last commit started must be over when close returns: they used to go on
    writing the index's files after an ingest had returned (a copy of the store met their
    vanishing temporary files), and would be cut off if the process exited."""
    index = index_at(tmp_path)
    for n in range(64):  # a commit a file, 64 segments: the last commit starts a merge
        index.add(f"/n{n}.md", [f"n{n}-{i}" for i in range(20)], [f"gull {n} rock {i}" for i in range(20)])  # fmt: skip
        index.commit()
    index.add("/late.md", ["late-0"], ["never committed"])
    index.close()

    def files() -> list[str]:  # names only: a merge's temporary files vanish as we look
        return sorted(p.name for p in index.folder.iterdir())

    closed = files()
    for _ in range(50):
        time.sleep(0.02)
        assert files() == closed
    reopened = index_at(tmp_path)
    assert reopened.count() == 64 * 20 and reopened.search("committed", 5) == []
