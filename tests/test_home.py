"""RAGCHAT_HOME that cannot be used, or only read (issues 18.7 and 19.12): one line naming the
folder and the problem, doctor diagnoses instead of dying, and a read-only store can still be
searched, asked and explored, without ragchat changing its mode or writing anything there.
The tests run as root: commands run without the capabilities that ignore permissions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import make_app, ragchat, unprivileged

FIX = "set RAGCHAT_HOME to a writable folder"


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` (itself included) with its mode and modification time."""
    return {
        str(p): (p.lstat().st_mode, p.lstat().st_mtime_ns) for p in [folder, *folder.rglob("*")]
    }


def make_read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)


@pytest.fixture
def read_only_home(ragchat_home: Path, docs: Path):
    app = make_app(ragchat_home)
    app.ingest(docs)
    app.manifest.close()  # as when the ingest's process ends
    ragchat_home.chmod(0o500)  # not 0700: ragchat must leave its mode alone
    make_read_only(ragchat_home)
    yield ragchat_home
    for path in [ragchat_home, *ragchat_home.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)


def odd_homes(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    regular = tmp_path / "a-file"
    regular.write_text("not a folder")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    homes = {
        "a regular file": (regular, f"RAGCHAT_HOME {regular} is a file, not a folder; {FIX}."),
        "under a regular file": (
            regular / "home",
            f"Cannot create RAGCHAT_HOME {regular / 'home'} (Not a directory); {FIX}.",
        ),
        "in a read-only folder": (
            locked / "home",
            f"Cannot create RAGCHAT_HOME {locked / 'home'} (Permission denied); {FIX}.",
        ),
    }
    if Path("/proc/self").is_dir():
        homes["in /proc"] = (
            Path("/proc/x"),
            f"Cannot create RAGCHAT_HOME /proc/x (No such file or directory); {FIX}.",
        )
    return homes


@pytest.mark.parametrize(
    "kind", ["a regular file", "under a regular file", "in a read-only folder", "in /proc"]
)
def test_an_unusable_home_is_one_line_and_doctor_diagnoses_it(tmp_path: Path, docs: Path, kind):
    prefix = unprivileged()
    homes = odd_homes(tmp_path)
    if kind not in homes:
        pytest.skip("no /proc here")
    home, message = homes[kind]
    env = {"RAGCHAT_HOME": str(home)}
    for command in (
        ["status"],
        ["search", "x"],
        ["ingest", str(docs)],
        ["config", "set", "top_k", "3"],
    ):
        result = ragchat(*command, env=env, prefix=prefix)
        assert result.returncode == 1, (command, result.stderr)
        assert result.stderr == f"Error: {message}\n", (command, result.stderr)
    result = ragchat("doctor", "--json", env=env, prefix=prefix)
    assert result.returncode == 1, result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["home"] == {"name": "home", "status": "fail", "detail": message}
    assert "LLM SmolLM2-135M-Instruct (bundled)" in checks  # the rest is still checked


def test_a_read_only_home_can_be_read_and_is_left_as_it_was(read_only_home: Path, docs: Path):
    prefix = unprivileged()
    env = {"RAGCHAT_HOME": str(read_only_home)}
    before = snapshot(read_only_home)

    status = ragchat("status", "--json", env=env, prefix=prefix)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["collections"][0]["documents"] == 3
    similar = ragchat("similar", str(docs / "a.md"), "--json", env=env, prefix=prefix)
    assert similar.returncode == 0, similar.stderr
    assert len(json.loads(similar.stdout)["results"]) == 2
    cluster = ragchat("cluster", "2", "--json", env=env, prefix=prefix)
    assert cluster.returncode == 0, cluster.stderr
    chunked = ragchat("chunks", str(docs / "a.md"), "--json", env=env, prefix=prefix)
    assert chunked.returncode == 0, chunked.stderr
    doctor = ragchat("doctor", "--json", env=env, prefix=prefix)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)}
    assert checks["home"]["status"] == "warn" and "is read-only" in checks["home"]["detail"]
    assert checks["collection 'default'"]["status"] == "ok", checks
    assert doctor.returncode == 0, doctor.stdout

    read_only = f"Error: RAGCHAT_HOME {read_only_home} is read-only: searching and asking work"
    for command in (
        ["ingest", str(docs)],
        ["forget", str(docs / "a.md")],
        ["drop", "default", "--yes"],
        ["config", "set", "top_k", "3"],
    ):
        result = ragchat(*command, env=env, prefix=prefix)
        assert result.returncode == 1 and result.stderr.startswith(read_only), result.stderr
        assert result.stderr.count("\n") == 1

    assert snapshot(read_only_home) == before  # not chmod'ed, nothing created or written
    assert oct(read_only_home.stat().st_mode & 0o777) == "0o500"


@pytest.mark.slow
def test_search_and_ask_on_a_read_only_home(tmp_path: Path, docs: Path):
    prefix = unprivileged()
    home = tmp_path / "home"
    env = {"RAGCHAT_HOME": str(home)}
    assert ragchat("ingest", str(docs), env=env).returncode == 0
    make_read_only(home)
    before = snapshot(home)
    for mode in ("hybrid", "lexical", "dense"):
        result = ragchat(
            "search", "yellow bananas", "--mode", mode, "--json", env=env, prefix=prefix
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["results"][0]["path"] == str(docs / "b.txt")
    asked = ragchat("ask", "What colour are bananas?", "--json", env=env, prefix=prefix)
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["sources"]
    assert snapshot(home) == before


def test_an_existing_home_keeps_its_mode(ragchat_home: Path, docs: Path):
    """The home is made private when ragchat creates it, and never chmod'ed after."""
    app = make_app(ragchat_home)
    app.ingest(docs)
    assert ragchat_home.stat().st_mode & 0o777 == 0o700
    ragchat_home.chmod(0o750)
    make_app(ragchat_home).ingest(docs)
    assert ragchat("status", env={"RAGCHAT_HOME": str(ragchat_home)}).returncode == 0
    assert ragchat_home.stat().st_mode & 0o777 == 0o750
    doctor = ragchat("doctor", "--json", env={"RAGCHAT_HOME": str(ragchat_home)})
    checks = {c["name"]: c for c in json.loads(doctor.stdout)}
    assert checks[f"permissions of {ragchat_home}"]["status"] == "warn"


def test_map_names_the_folder_it_cannot_write_to(ragchat_home: Path, docs: Path, tmp_path: Path):
    make_app(ragchat_home).ingest(docs)
    env = {"RAGCHAT_HOME": str(ragchat_home)}
    result = ragchat("map", "-o", "/nonexistent/dir/m.html", env=env)
    assert result.returncode == 2
    assert "the folder /nonexistent/dir does not exist" in result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    result = ragchat("map", "-o", str(locked / "m.html"), env=env, prefix=unprivileged())
    assert result.returncode == 2 and f"the folder {locked} is not writable" in result.stderr


def test_map_does_not_overwrite_without_force(ragchat_home: Path, docs: Path, tmp_path: Path):
    make_app(ragchat_home).ingest(docs)
    env = {"RAGCHAT_HOME": str(ragchat_home)}
    page = tmp_path / "m.html"
    page.write_text("my own page")
    refused = ragchat("map", "-o", str(page), env=env)
    assert refused.returncode == 2 and "exists; add --force to overwrite it" in refused.stderr
    assert page.read_text() == "my own page"
    forced = ragchat("map", "-o", str(page), "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert forced.stderr.startswith(f"Replaced {page} (3 documents")
    assert "<svg" in page.read_text()
    assert os.access(page, os.R_OK)
