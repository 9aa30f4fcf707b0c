"""kill -9 at random moments of a real ingest: the next ingest ends with exactly the store a
clean run builds (same chunk ids, no duplicates, no orphans, lexical index in step)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ragchat

pytestmark = pytest.mark.slow


def corpus(folder: Path, notes: int = 80) -> None:
    topics = ["harbours", "lighthouses", "tides", "ferries", "gulls", "nets", "boats", "storms"]
    for n in range(notes):
        topic = topics[n % len(topics)]
        paragraphs = [f"Note {n} about {topic}, paragraph {p}. " * 12 for p in range(6)]
        (folder / f"note-{n:02d}.md").write_text(
            f"# {topic.title()} {n}\n\n" + "\n\n".join(paragraphs)
        )


def snapshot(home: Path) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, int]]]:
    """(chunk ids in Chroma, lexical rows, manifest rows)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from ragchat.app import App
    from ragchat.config import Settings
    from ragchat.lexical import LexicalIndex

    app = App(home, Settings())
    ids = sorted(app.store._collection("default").get(include=[])["ids"])
    db = sqlite3.connect(home / "manifest.sqlite3")
    lexical = sorted(
        (chunk_id, text) for chunk_id, _, text in LexicalIndex(app.manifest, "default").entries()
    )
    files = sorted(db.execute("SELECT path, chunks FROM files").fetchall())
    return ids, lexical, files


def files_done(home: Path) -> int:
    if not (home / "manifest.sqlite3").exists():
        return 0
    try:
        with sqlite3.connect(home / "manifest.sqlite3", timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0


def test_killed_ingests_resume_to_the_clean_result(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    corpus(docs)
    env = {"RAGCHAT_EMBEDDING_MODEL": "bundled", "RAGCHAT_CHUNK_TOKENS": "64"}
    clean_home, crash_home = tmp_path / "clean", tmp_path / "crash"
    assert (
        ragchat("ingest", str(docs), env={**env, "RAGCHAT_HOME": str(clean_home)}).returncode == 0
    )
    clean = snapshot(clean_home)
    assert len(clean[0]) == len(set(clean[0])) > 100

    rng = random.Random(20261126)
    command = [sys.executable, "-m", "ragchat", "ingest", "-q", str(docs)]
    total = len(clean[2])
    partial_states = 0
    for _ in range(10):
        process = subprocess.Popen(
            command,
            env={**os.environ, **env, "RAGCHAT_HOME": str(crash_home)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        done = files_done(crash_home)
        # kill once the ingest has got a random way further (and a random moment after that,
        # which may fall between writing vectors and committing the manifest)
        target = done + rng.randint(1, max(1, (total - done) // 4))
        deadline = time.time() + 300
        while process.poll() is None and files_done(crash_home) < target and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait()
        partial_states += 0 < files_done(crash_home) < total
    assert partial_states >= 2, "the kills should land in the middle of ingests"
    final = ragchat("ingest", str(docs), env={**env, "RAGCHAT_HOME": str(crash_home)})
    assert final.returncode == 0, final.stderr
    assert snapshot(crash_home) == clean


def test_search_while_another_process_ingests(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    corpus(docs, notes=400)
    home = tmp_path / "home"
    env = {
        "RAGCHAT_EMBEDDING_MODEL": "bundled",
        "RAGCHAT_CHUNK_TOKENS": "64",
        "RAGCHAT_HOME": str(home),
    }
    first = tmp_path / "first"
    first.mkdir()
    (first / "seed.md").write_text("Lighthouses guide ships at night.")
    assert ragchat("ingest", str(first), env=env).returncode == 0
    writer = subprocess.Popen(
        [sys.executable, "-m", "ragchat", "ingest", "-q", str(docs)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while writer.poll() is None and files_done(home) < 3 and time.time() < deadline:
            time.sleep(0.05)  # until the writer has committed a few files and is writing more
        assert writer.poll() is None, "the ingest finished too early to test reading during it"
        reader = ragchat("search", "ships at night", env=env)
        assert reader.returncode == 0, reader.stderr
        assert "seed.md" in reader.stdout
        second_writer = ragchat("ingest", str(first), env=env)
        assert second_writer.returncode == 1 and "in use by PID" in second_writer.stderr
    finally:
        writer.wait(timeout=300)
    assert writer.returncode == 0, writer.stderr.read()
