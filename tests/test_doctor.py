"""`ragchat doctor` on a healthy store and on damaged ones (real Chroma, fake embedder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import make_app, ragchat

from ragchat.cli import main
from ragchat.lexical import LexicalIndex


def doctor(monkeypatch, home: Path) -> tuple[int, dict[str, dict[str, str]]]:
    monkeypatch.setenv("RAGCHAT_HOME", str(home))
    monkeypatch.setenv("RAGCHAT_MODEL", "bundled")
    result = CliRunner().invoke(main, ["doctor", "--json"])
    return result.exit_code, {c["name"]: c for c in json.loads(result.output)}


def test_healthy_store(ragchat_home: Path, docs: Path, monkeypatch):
    make_app(ragchat_home).ingest(docs)
    code, checks = doctor(monkeypatch, ragchat_home)
    assert code == 0
    assert checks["collection 'default'"]["status"] == "ok"


def test_lexical_index_out_of_step_is_a_failure_with_the_fix(
    ragchat_home: Path,
    docs: Path,
    monkeypatch,
):
    app = make_app(ragchat_home)
    app.ingest(docs)
    index = LexicalIndex(app.manifest, "default")
    index.remove(next(index.entries())[1])  # one file's chunks
    index.commit()
    code, checks = doctor(monkeypatch, ragchat_home)
    assert code == 1
    check = checks["collection 'default' lexical index"]
    assert check["status"] == "fail" and "ragchat ingest --rebuild" in check["detail"]


def test_deleted_chroma_database_is_detected(ragchat_home: Path, docs: Path):
    make_app(ragchat_home).ingest(docs)
    (ragchat_home / "chroma" / "chroma.sqlite3").unlink()
    # in a new process: Chroma keeps a client per path for the life of a process
    result = ragchat("doctor", "--json", env={"RAGCHAT_HOME": str(ragchat_home)})
    assert result.returncode == 1, result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["collection 'default'"]["status"] == "fail"
    assert "ragchat ingest --rebuild" in checks["collection 'default'"]["detail"]


def test_private_permissions_are_checked(ragchat_home: Path, docs: Path, monkeypatch):
    make_app(ragchat_home).ingest(docs)
    ragchat_home.chmod(0o755)
    _, checks = doctor(monkeypatch, ragchat_home)
    assert checks[f"permissions of {ragchat_home}"]["status"] == "warn"
    assert "chmod go-rwx" in checks[f"permissions of {ragchat_home}"]["detail"]


def test_the_fix_names_the_folders_that_were_ingested(
    ragchat_home: Path, docs: Path, tmp_path: Path, monkeypatch
):
    notes = tmp_path / "my notes"
    (notes / "2024").mkdir(parents=True)
    (notes / "2024" / "tides.md").write_text("Spring tides are high.")
    app = make_app(ragchat_home)
    app.ingest(docs)
    app.ingest(notes)
    assert app.collection.folders() == sorted([str(docs), str(notes / "2024")])
    index = LexicalIndex(app.manifest, "default")
    index.remove(str(docs / "a.md"))
    index.commit()
    monkeypatch.chdir(tmp_path)
    _, checks = doctor(monkeypatch, ragchat_home)
    detail = checks["collection 'default' lexical index"]["detail"]
    assert "run 'ragchat ingest --rebuild docs 'my notes/2024' --collection default'" in detail
    assert "PATH" not in detail


def test_an_interrupted_ingest_has_one_verdict(ragchat_home: Path, docs: Path, monkeypatch):
    """Chunks written, manifest rows not: the counts are out of step because of the
    interruption, and the next ingest repairs both; doctor says so once, as a warning."""
    app = make_app(ragchat_home)
    app.ingest(docs)
    (docs / "new.md").write_text("Nectarines are smooth.\n\nNew text here.")

    def stop(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(app.manifest), "put_file", stop)
    with pytest.raises(KeyboardInterrupt):
        make_app(ragchat_home).ingest(docs)
    monkeypatch.undo()
    code, checks = doctor(monkeypatch, ragchat_home)
    check = checks["collection 'default'"]
    assert check["status"] == "warn", checks
    assert check["detail"].startswith("the last ingest was interrupted (")
    assert "in the manifest" in check["detail"] and "indexed for" in check["detail"]
    assert check["detail"].endswith("the next 'ragchat ingest' repairs it")
    assert "collection 'default' lexical index" not in checks  # not also a failure
    assert code == 0
    make_app(ragchat_home).ingest(docs)
    code, checks = doctor(monkeypatch, ragchat_home)
    assert code == 0 and checks["collection 'default'"]["status"] == "ok"


def test_a_missing_lexical_index_fails_and_search_warns(
    ragchat_home: Path, docs: Path, monkeypatch
):
    import shutil

    app = make_app(ragchat_home)
    app.ingest(docs)
    shutil.rmtree(app.collection.lexical.folder)
    code, checks = doctor(monkeypatch, ragchat_home)
    assert code == 1
    check = checks["collection 'default' lexical index"]
    assert check["status"] == "fail" and "is missing, for 3 chunks" in check["detail"]
    assert not app.collection.lexical.folder.exists()  # doctor did not make an empty one

    notes: list[str] = []
    fresh = make_app(ragchat_home)
    fresh.notify = notes.append
    hits = fresh.retriever("hybrid").retrieve("bananas", 3)
    assert hits  # by embeddings alone
    assert notes == [
        "Warning: the lexical (BM25) index of collection 'default' is missing, for 3 chunks:"
        f" only embeddings rank the results; ragchat ingest --rebuild {docs} --collection"
        " default rebuilds it."
    ]
    notes.clear()
    fresh.retriever("lexical")
    assert notes and "is empty, for 3 chunks: nothing rank" in notes[0]
    notes.clear()
    fresh.retriever("dense")
    assert notes == []
