"""Issue 19: nothing lost, nothing hung, nothing forged. Real permissions (root's file
capabilities dropped with setpriv), real file systems (tmpfs), real Chroma servers and sockets,
real signals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import chroma_paths, ingest_in_child, make_app, ragchat, unprivileged, write

from ragchat.ingest import NOT_UTF8


def test_an_unreadable_folder_or_file_keeps_its_documents_and_is_named(
    ragchat_home: Path, docs: Path
):
    for name in ("b1", "b2", "b3"):
        write(docs, f"locked/{name}.md", f"Locked note {name}.")
    write(docs, "shut/inner.md", "A note in a folder that can be listed but not entered.")
    write(docs, "shut/deeper/low.md", "Below it.")
    app = make_app(ragchat_home)
    assert len(app.ingest(docs).added) == 8
    before = chroma_paths(app)
    write(docs, "a.md", "# Alpha\n\nApples are green now.\n")  # changed, so it must be read
    prefix = unprivileged()  # before the chmods: it may skip the test
    (docs / "locked").chmod(0o000)
    (docs / "shut").chmod(0o600)  # can be listed, not entered
    (docs / "a.md").chmod(0o000)
    try:
        report = ingest_in_child(ragchat_home, docs, prefix)
    finally:
        for path, mode in (
            (docs / "locked", 0o700),
            (docs / "shut", 0o700),
            (docs / "a.md", 0o600),
        ):
            path.chmod(mode)
    assert report["removed"] == [] and report["added"] == [] and report["updated"] == []
    reasons = {item["path"]: item["reason"] for item in report["skipped"]}
    assert reasons[str(docs / "locked")] == (
        "folder cannot be read (Permission denied); 3 documents ingested from it kept"
    )
    assert reasons[str(docs / "shut" / "inner.md")] == (
        "file cannot be read (Permission denied); 1 document ingested from it kept"
    )
    assert reasons[str(docs / "shut" / "deeper")].startswith("folder cannot be read")
    assert (
        reasons[str(docs / "a.md")] == "cannot read (Permission denied); kept the previous version"
    )
    assert "locked (folder cannot be read (Permission denied)" in report["summary"]
    fresh = make_app(ragchat_home)
    assert chroma_paths(fresh) == before and fresh.collection.counts()[0] == 8
    # readable again: nothing to redo but the file that changed
    again = make_app(ragchat_home).ingest(docs)
    assert again.updated == [str(docs / "a.md")] and again.unchanged == 7 and again.removed == []


def test_a_file_name_that_is_not_utf8_is_skipped_with_its_name_escaped(
    ragchat_home: Path, docs: Path
):
    odd = os.fsdecode(b"caf\xe9 menu.md")
    write(docs, odd, "Espresso costs two crowns.")
    write(docs, os.fsdecode(b"\xff-folder") + "/inside.md", "Hidden by its folder's name.")
    (docs / "pointer.md").symlink_to(docs / odd)
    report = make_app(ragchat_home).ingest(docs)
    assert len(report.added) == 3  # the rest is ingested
    reasons = dict(report.skipped)
    assert reasons[f"{docs}/caf\\xe9 menu.md"] == NOT_UTF8
    assert reasons[f"{docs}/\\xff-folder"] == NOT_UTF8
    assert reasons[str(docs / "pointer.md")] == NOT_UTF8
    json.dumps(report.to_dict(), ensure_ascii=False).encode()  # printable, as --json prints it
    assert "caf\\xe9 menu.md (its name is not valid UTF-8" in report.summary()


@pytest.mark.slow
def test_the_cli_ingests_past_a_name_that_is_not_utf8(ragchat_home: Path, docs: Path):
    write(docs, os.fsdecode(b"r\xe9sum\xe9.txt"), "Worked at the harbour office.")
    result = ragchat("ingest", str(docs))
    assert result.returncode == 0, result.stderr
    assert "3 added" in result.stderr and "r\\xe9sum\\xe9.txt (its name is not valid UTF-8" in (
        result.stderr
    )
    as_json = ragchat("ingest", "--json", str(docs))
    assert as_json.returncode == 0, as_json.stderr
    skipped = {item["path"]: item["reason"] for item in json.loads(as_json.stdout)["skipped"]}
    assert skipped[f"{docs}/r\\xe9sum\\xe9.txt"] == NOT_UTF8
