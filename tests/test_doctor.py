"""`ragchat doctor` on a healthy store and on damaged ones (real Chroma, fake embedder)."""

from __future__ import annotations

import json
from pathlib import Path

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
