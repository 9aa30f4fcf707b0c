"""Issue 6 leftovers: deleted text leaves the disk, damaged stores are found and rebuilt,
native crashes become messages, files that change mid-ingest are caught."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_ingest import docs, make_app, write  # noqa: F401 - the docs fixture

MARKER = "qzxkplmwv"  # one token, its own Porter stem: also findable in the FTS index


def files_holding(home: Path, marker: str) -> list[str]:
    """Every file under ``home`` (databases, -wal/-journal files, index segments) whose
    bytes contain ``marker`` in any letter case."""
    needle = marker.lower().encode()
    return [str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and needle in p.read_bytes().lower()]


def test_removed_and_changed_documents_leave_no_text_on_disk(ragchat_home: Path, docs: Path, monkeypatch):  # noqa: F811
    write(docs, "secret.md", f"# Plans\n\nThe {MARKER} project starts in May.\n")
    write(docs, "changing.md", f"Draft: {MARKER}2 budget is high.\n\nMore text here.\n")
    app = make_app(ragchat_home)
    app.ingest(docs)
    assert files_holding(ragchat_home, MARKER), "the marker should be stored before the removal"

    (docs / "secret.md").unlink()
    write(docs, "changing.md", "Final: the budget is modest.\n")
    report = app.ingest(docs)
    assert report.removed == [str(docs / "secret.md")] and report.updated == [str(docs / "changing.md")]
    assert files_holding(ragchat_home, MARKER) == []

    # the rest is still there and searchable, in this process and a fresh one
    for fresh in (app, make_app(ragchat_home)):
        hits = fresh.retriever("hybrid").retrieve("bananas yellow", 3)
        assert hits and hits[0].path == str(docs / "b.txt")
        assert fresh.store.count("default") == fresh.manifest.counts("default")[1] == 4

    # an unchanged re-ingest does no purge at all
    def no_purge(self):
        raise AssertionError("purged although nothing was removed")

    monkeypatch.setattr(type(app), "purge", no_purge)
    assert make_app(ragchat_home).ingest(docs).unchanged == 4


def test_reindex_and_interrupted_removals_are_purged(ragchat_home: Path, docs: Path, monkeypatch):  # noqa: F811
    write(docs, "secret.md", f"The {MARKER} code word.\n")
    make_app(ragchat_home).ingest(docs)
    (docs / "secret.md").unlink()
    make_app(ragchat_home).ingest(docs, reindex=True)
    assert files_holding(ragchat_home, MARKER) == []

    # an ingest stopped after removing a file but before purging: the next one purges
    write(docs, "secret.md", f"The {MARKER} code word again.\n")
    make_app(ragchat_home).ingest(docs)
    (docs / "secret.md").unlink()
    app = make_app(ragchat_home)

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(app), "purge", interrupted)
    with pytest.raises(KeyboardInterrupt):
        app.ingest(docs)
    monkeypatch.undo()
    assert files_holding(ragchat_home, MARKER)
    assert make_app(ragchat_home).ingest(docs).removed == []
    assert files_holding(ragchat_home, MARKER) == []
