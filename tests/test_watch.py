"""``ragchat watch``: a real watcher (watchfiles) on a temp folder, in a thread with the fake
embedder, and the real command in a subprocess while other processes search."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fakes import FakeEmbedder
from helpers import ragchat

from ragchat.app import App
from ragchat.config import Settings
from ragchat.ingest import IngestReport, Selection
from ragchat.manifest import write_lock
from ragchat.render import sync_line
from ragchat.watch import Waiting, Watcher, ignored

DEADLINE = 20.0  # seconds a change may take to show (generous: two cores, shared)


@pytest.mark.parametrize(
    "name",
    [
        ".notes.md.swp",
        ".notes.md.swx",
        "notes.md~",
        "#notes.md#",
        ".#notes.md",
        "4913",
        "~$report.docx",
        "report.pdf.part",
        "report.pdf.crdownload",
        "draft.md.tmp",
        ".hidden.md",
    ],
)
def test_temporary_files_are_ignored(name: str, tmp_path: Path):
    assert ignored(tmp_path / name, tmp_path)
    assert ignored(tmp_path / ".git" / "notes.md", tmp_path)
    assert ignored(tmp_path / "node_modules" / "x" / "a.md", tmp_path)


@pytest.mark.parametrize("name", ["notes.md", "report.pdf", "sub/deep.txt", "4913.md", "tmp.md"])
def test_documents_are_not_ignored(name: str, tmp_path: Path):
    assert not ignored(tmp_path / name, tmp_path)


def test_a_path_is_due_once_quiet(tmp_path: Path):
    waiting = Waiting()
    growing = tmp_path / "growing.md"
    growing.write_text("a")
    now = time.time()
    waiting.add([str(growing), str(tmp_path / "gone.md")], now)
    assert waiting.due(now + 0.5, quiet=1.0) == []
    assert sorted(waiting.due(now + 1.1, quiet=1.0)) == sorted(
        [str(growing), str(tmp_path / "gone.md")]
    )
    os.utime(growing, (now + 5, now + 5))  # written again later: it waits for that write
    assert waiting.due(now + 1.1, quiet=1.0) == [str(tmp_path / "gone.md")]


def test_sync_line_names_few_paths_and_counts_many(tmp_path: Path):
    report = IngestReport(
        added=[str(tmp_path / "a.md")], removed=[str(tmp_path / "sub" / "b.md")], seconds=0.25
    )
    report.chunks_embedded = 3
    line = sync_line(report, tmp_path)
    assert line.endswith("synced in 0.2s (3 chunks embedded): added a.md; removed sub/b.md")
    many = IngestReport(updated=[str(tmp_path / f"{i}.md") for i in range(7)])
    assert sync_line(many, tmp_path).endswith("updated 7")


class Follow:
    """A Watcher running in a thread over ``folder`` with the fake embedder."""

    def __init__(
        self, home: Path, folder: Path, quiet: float, selection: Selection | None = None
    ) -> None:
        self.app = App(
            home, Settings(), explicit=frozenset({"embedding_model"}), embedder=FakeEmbedder()
        )
        self.syncs: list[IngestReport] = []
        self.waits: list[str] = []
        self.started = threading.Event()
        self.stop = threading.Event()
        self.watcher = Watcher(
            self.app,
            folder,
            on_sync=self.syncs.append,
            on_wait=self.waits.append,
            on_start=lambda report: self.started.set(),
            quiet=quiet,
            selection=selection,
        )
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.watcher.run(stop=self.stop)
        except BaseException as exc:
            self.error = exc

    def paths(self) -> set[str]:
        """What the collection holds, read by a connection of this thread (the watcher's
        belongs to its own; and a second Chroma engine in one process would clash with it,
        so text is read from the lexical index)."""
        return set(self._read(lambda manifest, index: manifest.files("default")))

    def files(self) -> set[str]:
        return {Path(p).name for p in self.paths()}

    def search(self, query: str) -> list[tuple[str, str]]:
        """(path, text) of the best BM25 matches."""

        def read(manifest, index):
            texts = {chunk: text for chunk, _, text in index.entries()}
            return [(path, texts[chunk]) for chunk, path, _ in index.search(query, 3)]

        return self._read(read)

    def _read(self, how):
        from ragchat.lexical import LexicalIndex
        from ragchat.manifest import Manifest

        manifest = Manifest(self.app.home / "manifest.sqlite3")
        try:
            return how(manifest, LexicalIndex(manifest, "default"))
        finally:
            manifest.close()


@contextmanager
def following(
    home: Path, folder: Path, quiet: float = 0.4, selection: Selection | None = None
) -> Iterator[Follow]:
    """A watcher quicker to sync than the default (the tests' writes are small)."""
    follow = Follow(home, folder, quiet, selection)
    thread = threading.Thread(target=follow.run, daemon=True)
    thread.start()
    assert follow.started.wait(30), follow.error
    try:
        yield follow
    finally:
        follow.stop.set()
        thread.join(10)
    assert follow.error is None, follow.error


def eventually(check: Callable[[], bool], seconds: float = DEADLINE) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "not within the deadline"
        time.sleep(0.1)
    return time.monotonic() - started


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "kept.md").write_text("# Kept\n\nLighthouses guide ships.\n")
    return docs


@pytest.mark.slow
def test_adds_edits_renames_and_deletes_are_followed(ragchat_home: Path, folder: Path):
    with following(ragchat_home, folder) as follow:
        assert follow.files() == {"kept.md"}
        (folder / "new.md").write_text("Otters hold hands while they sleep.")
        eventually(lambda: "new.md" in follow.files())
        (folder / "new.md").write_text("Otters hold hands while they sleep, and float.")
        eventually(lambda: any(r.updated for r in follow.syncs))
        (folder / "new.md").rename(folder / "renamed.md")
        eventually(lambda: follow.files() == {"kept.md", "renamed.md"})
        (folder / "sub").mkdir()
        (folder / "sub" / "deep.md").write_text("Deep water.")
        eventually(lambda: "deep.md" in follow.files())
        (folder / "sub").rename(folder / "moved")  # a folder moved: its files follow
        eventually(lambda: str(folder / "moved" / "deep.md") in follow.paths())
        (folder / "renamed.md").unlink()
        eventually(lambda: follow.files() == {"kept.md", "deep.md"})
        assert [path for path, _ in follow.search("deep water")] == [
            str(folder / "moved" / "deep.md")
        ]


def test_the_selection_decides_what_a_watch_syncs(tmp_path: Path):
    watcher = Watcher(None, tmp_path, selection=Selection(("*.md",), ("drafts",)))  # type: ignore[arg-type]
    (tmp_path / "drafts").mkdir()
    (tmp_path / "sub").mkdir()
    for name in ("a.md", "b.txt", "drafts/c.md", "sub/d.md", "sub/e.txt"):
        (tmp_path / name).write_text("x")
    wanted = {
        n
        for n in ("a.md", "b.txt", "drafts/c.md", "sub/d.md", "sub/e.txt", "sub", "gone.txt")
        if watcher.wanted(tmp_path / n)
    }
    # a folder, or a path that is gone, counts: what was ingested under it must go
    assert wanted == {"a.md", "sub/d.md", "sub", "gone.txt"}


@pytest.mark.slow
def test_a_watch_with_include_and_exclude_follows_only_what_they_choose(
    ragchat_home: Path, folder: Path
):
    (folder / "skip.txt").write_text("Not chosen.")
    selection = Selection(("*.md",), ("drafts",))
    with following(ragchat_home, folder, selection=selection) as follow:
        assert follow.files() == {"kept.md"}
        (folder / "drafts").mkdir()
        (folder / "drafts" / "draft.md").write_text("An unfinished note.")
        (folder / "other.txt").write_text("Text that is not chosen.")
        (folder / "sub").mkdir()
        (folder / "sub" / "deep.md").write_text("Deep water.")
        eventually(lambda: "deep.md" in follow.files())
        time.sleep(1.0)  # beyond the quiet period: the others would have been synced by now
        assert follow.files() == {"kept.md", "deep.md"}


@pytest.mark.slow
def test_temporary_files_never_reach_the_collection(ragchat_home: Path, folder: Path):
    with following(ragchat_home, folder) as follow:
        for name in (".kept.md.swp", "4913", "kept.md~", "big.pdf.part", "x.crdownload"):
            (folder / name).write_text("not a document")
        (folder / "real.md").write_text("A real note.")
        eventually(lambda: "real.md" in follow.files())
        time.sleep(1.0)  # beyond the quiet period: a temp file would have been synced by now
        assert follow.files() == {"kept.md", "real.md"}
        assert not [r for r in follow.syncs if r.skipped]


@pytest.mark.slow
def test_a_file_being_written_is_synced_once_it_is_quiet(ragchat_home: Path, folder: Path):
    with following(ragchat_home, folder, quiet=1.0) as follow:
        growing = folder / "growing.txt"
        with growing.open("w") as handle:
            for i in range(12):  # 2.4 s of writes, each within the quiet period of the last
                handle.write(f"Line {i} of a long download.\n\n")
                handle.flush()
                time.sleep(0.2)
        assert "growing.txt" not in follow.files()  # nothing synced while it was growing
        eventually(lambda: "growing.txt" in follow.files())
        syncs = [r for r in follow.syncs if r.added or r.updated]
        assert len(syncs) == 1  # one sync, of the finished file
        assert "Line 11 of" in follow.search("line 11 download")[0][1]  # the whole file


@pytest.mark.slow
def test_a_busy_store_delays_a_sync_without_losing_it(ragchat_home: Path, folder: Path):
    with following(ragchat_home, folder) as follow:
        with write_lock(ragchat_home):  # another ingest holds the store
            (folder / "late.md").write_text("Written while the store was busy.")
            eventually(lambda: bool(follow.waits))
            assert "in use by PID" in follow.waits[0]
            assert "late.md" not in follow.files()
        eventually(lambda: "late.md" in follow.files())
        assert len(follow.waits) == 1  # said once, not once per retry


@pytest.mark.slow
def test_the_lock_is_free_between_syncs(ragchat_home: Path, folder: Path):
    with following(ragchat_home, folder), write_lock(ragchat_home):  # raises if the watcher held it
        pass


# the real command, in a subprocess, while other processes search


def search_paths(home: Path, query: str) -> list[str]:
    result = ragchat("search", "--json", "-k", "3", query, env={"RAGCHAT_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    return [Path(r["path"]).name for r in json.loads(result.stdout)["results"]]


@pytest.mark.slow
def test_ragchat_watch_follows_a_folder_while_search_answers(tmp_path: Path, folder: Path):
    home = tmp_path / "home"
    env = {
        **os.environ,
        "RAGCHAT_HOME": str(home),
        "RAGCHAT_EMBEDDING_MODEL": "bundled",
    }
    watcher = subprocess.Popen(
        [sys.executable, "-m", "ragchat", "watch", str(folder)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(watcher.stderr), daemon=True)
    reader.start()
    try:
        eventually(lambda: any("watching for changes" in line for line in lines), 120)
        assert search_paths(home, "lighthouses ships") == ["kept.md"]

        started = time.monotonic()
        (folder / "otters.md").write_text("# Otters\n\nSea otters hold hands while they sleep.")
        eventually(lambda: "otters.md" in search_paths(home, "sea otters sleep"))
        added_after = time.monotonic() - started
        assert search_paths(home, "lighthouses ships")[0] == "kept.md"  # still answering

        started = time.monotonic()
        (folder / "otters.md").unlink()
        eventually(lambda: "otters.md" not in search_paths(home, "sea otters sleep"))
        removed_after = time.monotonic() - started
        print(f"searchable after {added_after:.1f}s, gone after {removed_after:.1f}s")
        # the write lock is free between syncs: another ingest runs meanwhile
        other = tmp_path / "other"
        other.mkdir()
        (other / "elsewhere.md").write_text("Elsewhere entirely.")
        assert ragchat("ingest", str(other), env={"RAGCHAT_HOME": str(home)}).returncode == 0
    finally:
        watcher.send_signal(signal.SIGINT)  # as Ctrl-C: the supervisor passes it on
        code = watcher.wait(timeout=60)
        reader.join(10)
    assert code == 130
    assert lines[-1].startswith("Stopped watching ") and "Traceback" not in "".join(lines)
    assert any("synced in" in line and "added otters.md" in line for line in lines)
    assert any("removed otters.md" in line for line in lines)
    again = ragchat("ingest", str(folder), env={"RAGCHAT_HOME": str(home)})
    assert "0 added, 0 updated, 0 removed, 1 unchanged" in again.stderr  # nothing left undone


@pytest.mark.slow
def test_a_killed_watcher_loses_nothing(tmp_path: Path, folder: Path):
    home = tmp_path / "home"
    env = {**os.environ, "RAGCHAT_HOME": str(home), "RAGCHAT_EMBEDDING_MODEL": "bundled"}
    command = [sys.executable, "-m", "ragchat", "watch", "-q", str(folder)]
    first = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    eventually(lambda: bool(indexed(home)), 120)
    for i in range(30):
        (folder / f"note-{i}.md").write_text(f"Note {i} about harbour number {i}.")
    time.sleep(1.3)  # the sync begins
    first.kill()
    first.wait(timeout=30)
    (folder / "while-down.md").write_text("Written while nobody watched.")
    second = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        eventually(lambda: "while-down.md" in search_paths(home, "nobody watched"), 120)
        eventually(lambda: len(indexed(home)) == 32, 60)
    finally:
        # a plain kill (SIGTERM) of the supervisor reaches the watcher, which stops as for Ctrl-C
        second.send_signal(signal.SIGTERM)
        code = second.wait(timeout=60)
    assert second.stderr
    said = second.stderr.read()
    assert code == 130 and "Stopped watching" in said and "Traceback" not in said
    check = ragchat("doctor", "--json", env={"RAGCHAT_HOME": str(home)})
    assert not [c for c in json.loads(check.stdout) if c["status"] == "fail"], check.stdout


def indexed(home: Path) -> set[str]:
    """Files the manifest holds as done (a read of its own, while the watcher writes)."""
    import sqlite3
    from contextlib import closing

    try:
        with closing(sqlite3.connect(home / "manifest.sqlite3")) as db:
            return {row[0] for row in db.execute("SELECT path FROM files WHERE sha256 != ''")}
    except sqlite3.OperationalError:  # not created yet
        return set()
