"""ragchat forget and ragchat drop (issue 18.6): documents leave search, and their text
leaves the disk (the store's files are scanned for a marker, as in test_reliability.py)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from helpers import ROOT, make_app, ragchat, write

from ragchat.errors import NotIngested

MARKER = "qzxkplmwv"  # one token, its own stem: findable as a term of the lexical index too


def files_holding(home: Path, marker: str) -> list[str]:
    needle = marker.lower().encode()
    return [
        str(p.relative_to(home))
        for p in home.rglob("*")
        if p.is_file() and needle in p.read_bytes().lower()
    ]


def lexical_paths(app, query: str) -> set[str]:
    return {h.path for h in app.retriever("lexical").retrieve(query, 10)}


def test_forget_a_folder_gone_from_disk(ragchat_home: Path, docs: Path):
    write(docs, "old/secret.md", f"# Plans\n\nThe {MARKER} project starts in May.\n")
    write(docs, "old/deeper/more.md", f"More about {MARKER} and apples.\n")
    app = make_app(ragchat_home)
    app.ingest(docs)
    assert lexical_paths(app, MARKER) == {
        str(docs / "old/secret.md"),
        str(docs / "old/deeper/more.md"),
    }
    shutil.rmtree(docs / "old")  # gone from disk: ingest of it is refused, forget is the way

    removed = make_app(ragchat_home).forget([docs / "old"])
    assert sorted(removed) == [str(docs / "old/deeper/more.md"), str(docs / "old/secret.md")]
    fresh = make_app(ragchat_home)
    assert lexical_paths(fresh, MARKER) == set()
    assert str(docs / "old/secret.md") not in {
        h.path for h in fresh.retriever("dense").retrieve(f"{MARKER} project", 10)
    }
    assert files_holding(ragchat_home, MARKER) == []
    # the rest stays, searchable; nothing is left for a purge to do
    assert lexical_paths(fresh, "bananas") == {str(docs / "b.txt")}
    assert fresh.store.count("default") == fresh.manifest.counts("default")[1]
    assert not fresh.manifest.purge_needed()
    assert make_app(ragchat_home).ingest(docs).removed == []


def test_forget_one_file_by_a_relative_path(ragchat_home: Path, docs: Path, monkeypatch):
    make_app(ragchat_home).ingest(docs)
    monkeypatch.chdir(docs)
    removed = make_app(ragchat_home).forget([Path("b.txt")])
    assert list(removed) == [str(docs / "b.txt")]
    assert str(docs / "b.txt") not in make_app(ragchat_home).collection.files()
    assert (docs / "b.txt").exists()  # the file itself is not touched


def test_forget_an_unknown_path_removes_nothing_and_names_close_ones(
    ragchat_home: Path, docs: Path, monkeypatch
):
    make_app(ragchat_home).ingest(docs)
    monkeypatch.chdir(docs.parent)
    app = make_app(ragchat_home)
    with pytest.raises(
        NotIngested, match=r"holds no file at or under .*b\.tx; did you mean 'docs/b\.txt'\?"
    ):
        app.forget([docs / "a.md", docs / "b.tx"])
    assert len(app.collection.files()) == 3  # a.md was not removed either


def test_forget_and_drop_from_the_command_line(ragchat_home: Path, docs: Path):
    write(docs, "secret.md", f"The {MARKER} code word.\n")
    make_app(ragchat_home).ingest(docs)
    make_app(ragchat_home, collection="notes").ingest(docs)
    env = {"RAGCHAT_HOME": str(ragchat_home)}

    forgot = ragchat("forget", str(docs / "secret.md"), "--json", env=env)
    assert forgot.returncode == 0, forgot.stderr
    assert json.loads(forgot.stdout)["removed"] == [str(docs / "secret.md")]
    unknown = ragchat("forget", str(docs / "a.mdd"), env=env)
    assert unknown.returncode == 1 and "did you mean" in unknown.stderr and "a.md" in unknown.stderr

    # drop asks; without a terminal, it needs --yes
    refused = ragchat("drop", "notes", env=env, input="y\n")
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    assert files_holding(ragchat_home, MARKER)  # still in 'notes'
    dropped = ragchat("drop", "notes", "--yes", env=env)
    assert dropped.returncode == 0, dropped.stderr
    assert "Dropped collection 'notes' (4 documents" in dropped.stderr
    assert files_holding(ragchat_home, MARKER) == []
    app = make_app(ragchat_home)
    assert [c.name for c in app.collections()] == ["default"]
    assert lexical_paths(app, "bananas") == {str(docs / "b.txt")}
    typo = ragchat("drop", "defualt", "--yes", env=env)
    assert typo.returncode == 1 and "did you mean 'default'?" in typo.stderr


def test_drop_asks_at_a_terminal(ragchat_home: Path, docs: Path):
    pexpect = pytest.importorskip("pexpect")
    make_app(ragchat_home, collection="notes").ingest(docs)
    env = {**os.environ, "RAGCHAT_HOME": str(ragchat_home), "PYTHONPATH": str(ROOT)}
    for answer, dropped in (("n", False), ("y", True)):
        child = pexpect.spawn(
            sys.executable,
            ["-m", "ragchat", "drop", "notes"],
            env=env,
            encoding="utf-8",
            timeout=60,
        )
        child.expect(r"Drop collection 'notes' \(3 documents, \d+ chunks\)\? \[y/N\]: ")
        child.sendline(answer)
        child.expect("Dropped" if dropped else "Nothing dropped")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == (0 if dropped else 1)
        assert make_app(ragchat_home, collection="notes").collection.exists is not dropped


def test_purge_zeroes_the_index_capacity_hnswlib_never_initialised(tmp_path: Path):
    """hnswlib saves data_level0.bin at its capacity; the unused part is uninitialised memory
    and was seen holding the text of a document just deleted (1 purge in 6 of the test above)."""
    from ragchat.store import _HEADER, scrub_unused_capacity

    folder = tmp_path / "segment"
    folder.mkdir()
    # 2 elements of 8 bytes, room for 6
    fields = [1, 0, 6, 2, 8, 0, 0, 0, 0, 0, 0, 0, 0.0, 0]
    (folder / "header.bin").write_bytes(_HEADER.pack(*fields))
    live = b"vector01vector02"
    (folder / "data_level0.bin").write_bytes(live + f"The {MARKER} plan.".encode().ljust(32, b"!"))
    scrub_unused_capacity(folder)
    data = (folder / "data_level0.bin").read_bytes()
    assert data == live + bytes(32)
    scrub_unused_capacity(tmp_path / "nothing-saved-yet")  # no files: nothing to do, no error
