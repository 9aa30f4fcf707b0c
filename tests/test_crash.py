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
from conftest import ragchat

pytestmark = pytest.mark.slow


def corpus(folder: Path) -> None:
    topics = ["harbours", "lighthouses", "tides", "ferries", "gulls", "nets", "boats", "storms"]
    for n in range(40):
        topic = topics[n % len(topics)]
        paragraphs = [f"Note {n} about {topic}, paragraph {p}. " * 12 for p in range(6)]
        (folder / f"note-{n:02d}.md").write_text(f"# {topic.title()} {n}\n\n" + "\n\n".join(paragraphs))


def snapshot(home: Path) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, int]]]:
    """(chunk ids in Chroma, lexical rows, manifest rows)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from ragchat.app import App
    from ragchat.config import Settings
    from ragchat.lexical import table_name

    app = App(home, Settings())
    ids = sorted(app.store._collection("default").get(include=[])["ids"])
    db = sqlite3.connect(home / "manifest.sqlite3")
    lexical = sorted(db.execute(f"SELECT chunk_id, text FROM {table_name('default')}").fetchall())
    files = sorted(db.execute("SELECT path, chunks FROM files").fetchall())
    return ids, lexical, files


def test_killed_ingests_resume_to_the_clean_result(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    corpus(docs)
    env = {"RAGCHAT_EMBEDDING_MODEL": "bundled", "RAGCHAT_CHUNK_TOKENS": "64"}
    clean_home, crash_home = tmp_path / "clean", tmp_path / "crash"
    started = time.perf_counter()
    assert ragchat("ingest", str(docs), env={**env, "RAGCHAT_HOME": str(clean_home)}).returncode == 0
    duration = time.perf_counter() - started
    clean = snapshot(clean_home)
    assert len(clean[0]) == len(set(clean[0])) > 100

    rng = random.Random(20261126)
    partial_states = 0
    command = [sys.executable, "-m", "ragchat", "ingest", "-q", str(docs)]
    for _ in range(10):
        process = subprocess.Popen(command, env={**os.environ, **env, "RAGCHAT_HOME": str(crash_home)},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.4, 0.98) * duration)  # mostly after the model loaded, while writing
        process.send_signal(signal.SIGKILL)
        process.wait()
        if (crash_home / "manifest.sqlite3").exists():
            done = sqlite3.connect(crash_home / "manifest.sqlite3").execute("SELECT COUNT(*) FROM files").fetchone()[0]
            partial_states += 0 < done < len(clean[2])
    assert partial_states >= 2, "the kills should land in the middle of ingests"
    final = ragchat("ingest", str(docs), env={**env, "RAGCHAT_HOME": str(crash_home)})
    assert final.returncode == 0, final.stderr
    assert snapshot(crash_home) == clean
