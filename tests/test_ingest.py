"""Incremental ingest against a real Chroma store, with the fast fake embedder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fakes import FakeEmbedder
from helpers import chroma_paths, make_app, write

from ragchat.errors import EmbedderMismatch
from ragchat.ids import chunk_id


def test_first_ingest_adds_and_names_skipped(ragchat_home: Path, docs: Path):
    app = make_app(ragchat_home)
    report = app.ingest(docs)
    assert len(report.added) == 3
    assert report.summary().startswith(
        "3 added, 0 updated, 0 removed, 0 unchanged, 1 skipped: blob.bin (binary)"
    )
    counts = chroma_paths(app)
    assert set(counts) == {str(docs / "a.md"), str(docs / "b.txt"), str(docs / "sub" / "c.html")}
    assert sum(counts.values()) == app.store.count("default") == app.manifest.counts("default")[1]


def test_rerun_embeds_nothing_then_only_the_changed_file(ragchat_home: Path, docs: Path):
    embedder = FakeEmbedder()
    app = make_app(ragchat_home, embedder)
    app.ingest(docs)
    embedder.embedded.clear()

    again = app.ingest(docs)
    assert (again.added, again.updated, again.removed, again.unchanged) == ([], [], [], 3)
    assert embedder.embedded == []

    # touched but identical: still nothing embedded
    os.utime(docs / "b.txt", ns=(1, 1))
    assert app.ingest(docs).unchanged == 3 and embedder.embedded == []

    write(
        docs, "b.txt", "Bananas are yellow.\n\nBananas grow in bunches.\n\nPlantains are cousins."
    )
    report = app.ingest(docs)
    assert report.updated == [str(docs / "b.txt")] and report.unchanged == 2
    assert embedder.embedded and all("anana" in t or "lantain" in t for t in embedder.embedded)
    assert sum(chroma_paths(app).values()) == app.store.count("default")


def test_shrinking_and_deleting_files_removes_their_chunks(ragchat_home: Path, docs: Path):
    app = make_app(ragchat_home, chunk_tokens=8)
    app.ingest(docs)
    before = chroma_paths(app)[str(docs / "a.md")]
    assert before >= 2
    write(docs, "a.md", "# Alpha\n\nShort now.\n")
    app.ingest(docs)
    assert chroma_paths(app)[str(docs / "a.md")] == 1
    assert app.store._collection("default").get(ids=[chunk_id(str(docs / "a.md"), 1)])["ids"] == []

    (docs / "b.txt").unlink()
    report = app.ingest(docs)
    assert report.removed == [str(docs / "b.txt")]
    assert str(docs / "b.txt") not in chroma_paths(app)
    assert app.manifest.counts("default") == (2, app.store.count("default"))


def test_ingesting_one_folder_does_not_remove_another(
    ragchat_home: Path, docs: Path, tmp_path: Path
):
    other = tmp_path / "other"
    write(other, "d.md", "Dates are sweet.")
    app = make_app(ragchat_home)
    app.ingest(docs)
    app.ingest(other)
    assert app.ingest(docs).removed == []
    assert str(other / "d.md") in chroma_paths(app)


def test_another_embedder_is_refused_with_the_fix(ragchat_home: Path, docs: Path):
    make_app(ragchat_home).ingest(docs)
    other = make_app(ragchat_home, FakeEmbedder("fake/other-model"))
    with pytest.raises(EmbedderMismatch) as caught:
        other.ingest(docs)
    message = str(caught.value)
    assert "built with embedding model 'fake/bag-of-words'" in message
    assert "--reindex" in message and "--embedding-model fake/bag-of-words" in message
    with pytest.raises(EmbedderMismatch):
        other.engine()


def test_reindex_rebuilds_with_the_new_embedder(ragchat_home: Path, docs: Path):
    make_app(ragchat_home).ingest(docs)
    other = make_app(ragchat_home, FakeEmbedder("fake/other-model", dimension=32))
    report = other.ingest(docs, reindex=True)
    assert len(report.added) == 3
    assert other.manifest.collection("default").embedder == "fake/other-model"
    assert other.manifest.collection("default").dimension == 32


def test_unreadable_update_keeps_the_previous_version(ragchat_home: Path, docs: Path):
    app = make_app(ragchat_home)
    app.ingest(docs)
    (docs / "b.txt").write_bytes(b"\x00\x00 now binary")
    report = app.ingest(docs)
    assert report.skipped[-1] == (str(docs / "b.txt"), "binary; kept the previous version")
    assert str(docs / "b.txt") in chroma_paths(app)


def test_store_files_are_private(ragchat_home: Path, docs: Path):
    make_app(ragchat_home).ingest(docs)
    assert (ragchat_home.stat().st_mode & 0o777) == 0o700
    for path in ragchat_home.rglob("*"):
        assert path.stat().st_mode & 0o077 == 0, path


def test_a_second_writer_is_told_who_holds_the_store(ragchat_home: Path, docs: Path):
    from ragchat.errors import StoreError

    first, second = make_app(ragchat_home), make_app(ragchat_home)
    with first.writing(), pytest.raises(StoreError, match=rf"in use by PID {os.getpid()}"):
        second.ingest(docs)
    assert len(second.ingest(docs).added) == 3  # free again once the first is done


def test_chunks_of_an_interrupted_ingest_are_removed_next_time(
    ragchat_home: Path, docs: Path, monkeypatch
):
    """Killed after the vectors were written but before the manifest row: the file is later
    deleted, and its orphaned chunks must not stay in the store."""
    from ragchat.manifest import Manifest

    app = make_app(ragchat_home, chunk_tokens=8)
    app.ingest(docs)
    write(docs, "new.md", "\n\n".join(f"Paragraph {i} is here." for i in range(6)))

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Manifest, "clear_pending", crash)
    with pytest.raises(KeyboardInterrupt):
        make_app(ragchat_home, chunk_tokens=8).ingest(docs)
    monkeypatch.undo()
    assert str(docs / "new.md") in chroma_paths(
        app
    )  # vectors written, manifest row too? not cleared
    (docs / "new.md").unlink()
    fresh = make_app(ragchat_home, chunk_tokens=8)
    fresh.ingest(docs)
    assert str(docs / "new.md") not in chroma_paths(fresh)
    assert (
        fresh.store.count("default")
        == fresh.manifest.counts("default")[1]
        == sum(chroma_paths(fresh).values())
    )
    assert fresh.manifest.pending("default") == []


def test_symlinks_fifos_and_big_files_are_skipped_with_reasons(
    ragchat_home: Path, docs: Path, tmp_path: Path
):
    outside = tmp_path / "outside.md"
    outside.write_text("secret from elsewhere")
    (docs / "link-out.md").symlink_to(outside)
    (docs / "link-in.md").symlink_to(docs / "a.md")  # same file twice: ingested once
    (docs / "loop.md").symlink_to(docs / "loop.md")
    (docs / "linked-dir").symlink_to(tmp_path)
    os.mkfifo(docs / "pipe.md")
    (docs / "big.txt").write_text("x" * 2_000_001)
    app = make_app(ragchat_home, max_file_mb=2)
    report = app.ingest(docs)
    reasons = {Path(p).name: why for p, why in report.skipped}
    assert reasons["link-out.md"] == "symlink to outside the folder, not followed"
    assert reasons["loop.md"] == "broken symlink or symlink loop"
    assert reasons["linked-dir"] == "symlinked folder, not followed"
    assert reasons["pipe.md"] == "not a regular file"
    assert reasons["big.txt"].startswith("too large (2 MB")
    assert len(report.added) == 3
    assert str(outside) not in chroma_paths(app)


def test_a_reader_that_hangs_or_crashes_is_cut_off(tmp_path: Path):
    from ragchat.errors import LoadError
    from ragchat.isolation import SafeLoader
    from ragchat.loaders import load

    slow = SafeLoader(timeout=2)
    with pytest.raises(LoadError, match="took longer than 2s"):
        slow.load_with(_sleep_forever, tmp_path)
    hungry = SafeLoader(memory_mb=300)
    with pytest.raises(LoadError, match="memory"):
        hungry.load_with(_eat_memory, tmp_path)
    # and the worker comes back for the next file
    (tmp_path / "ok.md").write_text("fine")
    assert hungry.load_with(load, tmp_path / "ok.md")[0].text == "fine"
    slow.close()
    hungry.close()


def _sleep_forever(path):
    import time

    while True:
        time.sleep(1)


def _eat_memory(path):
    blocks = []
    while True:
        blocks.append(bytearray(50 * 1024 * 1024))


def test_a_collection_keeps_its_chunk_size_and_says_so(ragchat_home: Path, docs: Path):
    """--chunk-tokens on an existing collection used to change nothing and say nothing."""
    from fakes import FakeEmbedder

    from ragchat.app import App
    from ragchat.config import Settings

    def app(chunk_tokens: int) -> tuple[App, list[str]]:
        notes: list[str] = []
        made = App(
            ragchat_home,
            Settings(chunk_tokens=chunk_tokens),
            explicit=frozenset({"embedding_model", "chunk_tokens"}),
            embedder=FakeEmbedder(),
        )
        made.notify = notes.append
        return made, notes

    write(docs, "long.md", " ".join(f"Sentence {i} is short." for i in range(60)) + "\n")
    first, notes = app(20)
    first.ingest(docs)
    assert notes == [] and first.collection.record.chunk_tokens == 20
    chunks = first.collection.files()[str(docs / "long.md")].chunks

    write(docs, "long2.md", " ".join(f"Sentence {i} is brief." for i in range(60)) + "\n")
    second, notes = app(60)
    second.ingest(docs)
    assert notes == [
        "Collection 'default' was chunked at 20 tokens, not 60: it keeps 20; 'ragchat ingest"
        " --reindex PATH --chunk-tokens 60' rebuilds it at 60."
    ]
    assert second.collection.files()[str(docs / "long2.md")].chunks == chunks  # still at 20
    rebuilt, notes = app(60)
    rebuilt.ingest(docs, reindex=True)
    assert notes == [] and rebuilt.collection.record.chunk_tokens == 60
    assert rebuilt.collection.files()[str(docs / "long.md")].chunks < chunks
    assert rebuilt.status()["collections"][0]["chunk_tokens"] == 60


def test_hidden_folders_are_counted_and_globs_choose_files(ragchat_home: Path, docs: Path):
    from ragchat.discovery import Selection

    write(docs, ".git/notes.md", "Not a document.")
    write(docs, ".obsidian/workspace.md", "Editor state.")
    write(docs, "node_modules/pkg/readme.md", "A package.")
    write(docs, "sub/deeper/d.md", "Dates are sweet.")
    app = make_app(ragchat_home)
    report = app.ingest(docs)
    assert sorted(Path(p).name for p in report.added) == ["a.md", "b.txt", "c.html", "d.md"]
    assert report.summary().endswith(
        "1 skipped: blob.bin (binary); 3 hidden folders skipped (.git, .obsidian, node_modules)"
    )

    only = app.ingest(docs, selection=Selection(include=("*.md",), exclude=("deeper",)))
    assert sorted(Path(p).name for p in only.removed) == ["b.txt", "c.html", "d.md"]
    assert list(app.collection.files()) == [str(docs / "a.md")]
    assert "3 files left out by --include/--exclude" in only.summary()  # blob.bin, b.txt, c.html
    assert "blob.bin (binary)" not in only.summary()
    relative = app.ingest(docs, selection=Selection(include=("sub/*",)))
    assert sorted(Path(p).name for p in app.collection.files()) == ["c.html", "d.md"]
    assert [Path(p).name for p in relative.removed] == ["a.md"]


def test_a_path_gone_from_disk_is_a_deletion_not_an_unreadable_folder(
    ragchat_home: Path, tmp_path: Path
):
    """ragchat watch syncs the paths that changed; a deleted file or folder is one of them.
    os.walk reports a missing root as an error: that is not 'cannot be read, kept'."""
    import shutil

    docs = tmp_path / "docs"
    write(docs / "sub", "deep.md", "Deep water.")
    write(docs, "top.md", "Shallow water.")
    app = make_app(ragchat_home)
    app.ingest(docs)
    shutil.rmtree(docs / "sub")
    (docs / "top.md").unlink()
    for gone in (docs / "sub", docs / "top.md"):
        report = app.ingest(gone)
        assert report.removed and not report.skipped, report
    assert not list(app.collection.files())
