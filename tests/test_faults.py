"""Issue 19: nothing lost, nothing hung, nothing forged. Real permissions (root's file
capabilities dropped with setpriv), real file systems (tmpfs), real Chroma servers and sockets,
real signals."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import (
    chroma_paths,
    chroma_run,
    free_port,
    ingest_in_child,
    make_app,
    ragchat,
    remount,
    tmpfs,
    unprivileged,
    write,
)

from ragchat.errors import StoreError
from ragchat.ingest import NOT_UTF8
from ragchat.store import VectorStore


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


@contextmanager
def silent_server() -> Iterator[str]:
    """A server on 127.0.0.1 that accepts connections and never answers; its URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):  # closed at the end
            while True:
                held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        for connection in held:
            connection.close()


def test_a_chroma_server_that_never_answers_is_named_within_the_time_limit(tmp_path: Path):
    with silent_server() as url:
        env = {"RAGCHAT_CHROMA_URL": url, "RAGCHAT_CHROMA_TIMEOUT": "2"}
        started = time.monotonic()
        result = ragchat("search", "anything", env=env, timeout=60)
        took = time.monotonic() - started
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(
            f"Error: The Chroma server at {url} did not answer within 2 s (ReadTimeout)"
        )
        assert took < 30
        store = VectorStore(tmp_path, url, timeout=1)  # and the library, in this process
        with pytest.raises(StoreError, match="did not answer within 1 s"):
            store.collection_names()


def manifest_rows(home: Path) -> list[tuple]:
    """The file rows (with their ingest times) of every manifest under ``home``."""
    rows = []
    for path in sorted(home.rglob("manifest.sqlite3")):
        with contextlib.closing(sqlite3.connect(path)) as db:
            rows += db.execute("SELECT * FROM files ORDER BY collection, path").fetchall()
    return rows


@pytest.mark.slow
def test_a_stopped_chroma_server_is_an_error_in_bounded_time_and_loses_nothing(
    tmp_path: Path, bundled_embedder
):
    docs, home = tmp_path / "docs", tmp_path / "home"
    write(docs, "zeppelin.md", "The zeppelin hangar is in Friedrichshafen.")
    with chroma_run(tmp_path / "data", free_port()) as (url, server):
        settings = {"chroma_url": url, "collection": "stalled"}
        assert len(make_app(home, bundled_embedder, **settings).ingest(docs).added) == 1
        env = {
            "RAGCHAT_HOME": str(home),
            "RAGCHAT_CHROMA_URL": url,
            "RAGCHAT_COLLECTION": "stalled",
        }
        lexical = ["search", "--mode", "lexical", "--json", "zeppelin"]
        assert ragchat(*lexical, env=env).returncode == 0
        manifest = manifest_rows(home)
        os.kill(server.pid, signal.SIGSTOP)
        started = time.monotonic()
        result = ragchat(*lexical, env={**env, "RAGCHAT_CHROMA_TIMEOUT": "3"}, timeout=120)
        assert time.monotonic() - started < 60
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert f"The Chroma server at {url} did not answer within 3 s" in result.stderr
        os.kill(server.pid, signal.SIGCONT)
        again = ragchat(*lexical, env=env)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["results"][0]["path"] == str(docs / "zeppelin.md")
        assert manifest_rows(home) == manifest and len(manifest) == 1


@pytest.mark.slow
def test_a_chroma_server_killed_mid_ingest_is_named_and_the_rerun_finishes(tmp_path: Path):
    docs, home, data, port = tmp_path / "docs", tmp_path / "home", tmp_path / "data", free_port()
    for n in range(200):
        write(
            docs, f"note-{n:03d}.md", "\n\n".join(f"Gull {n} nests on rock {p}." for p in range(4))
        )
    settings = {"chroma_url": f"http://127.0.0.1:{port}", "collection": "killed"}

    class KillAfter100:
        def start(self, total_files: int) -> None:
            self.done = 0

        def note(self, text: str) -> None:
            pass

        def step(self, text: str) -> None:
            pass

        def advance(self, files: int = 0, chunks: int = 0) -> None:
            self.done += files
            if self.done >= 100 and server.poll() is None:
                server.kill()
                server.wait()

    with chroma_run(data, port) as (url, server), pytest.raises(StoreError) as failed:
        make_app(home, **settings).ingest(docs, KillAfter100())
    message = str(failed.value)
    assert (
        message.startswith(f"Lost the Chroma server at {url} (")
        and "run the same command again" in message
    )
    with chroma_run(data, port):
        app = make_app(home, **settings)
        report = app.ingest(docs)
        assert len(report.added) + report.unchanged == 200 and report.added
        assert app.store.count("killed") == app.collection.counts()[1] == 200  # one chunk a note


def many_notes(folder: Path, count: int, paragraphs: int = 12) -> Path:
    """``count`` notes of ``paragraphs`` paragraphs of made-up words (~5 KB each)."""
    import random

    rng = random.Random(count)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(7)) for _ in range(3000)]
    for n in range(count):
        body = "\n\n".join(" ".join(rng.choices(words, k=60)) for _ in range(paragraphs))
        write(folder, f"note-{n:03d}.md", body)
    return folder


def test_a_full_disk_is_named_and_the_next_ingest_repairs(tmp_path: Path):
    notes = many_notes(tmp_path / "notes", 200)
    with tmpfs(tmp_path / "disk", "3m") as mounted:
        home = mounted / "home"
        with pytest.raises(StoreError) as failed:
            make_app(home).ingest(notes)
        message = str(failed.value)
        assert re.match(r"No space left on tmpfs \(mounted at .*/disk\): \d+\.\d MB free", message)
        assert re.search(
            r"the store needs about \d+ MB more\. Free some space and run the", message
        )
        assert "nothing already stored is lost" in message

        remount(mounted, "60m")  # space was freed: the same command again finishes the work
        app = make_app(home)
        report = app.ingest(notes)
        assert len(report.added) + report.unchanged == 200 and report.skipped == []
        assert app.store.count("default") == app.collection.counts()[1] == 200 * 12
        hits = app.retriever("lexical").retrieve(Path(notes / "note-007.md").read_text()[:80], 1)
        assert hits[0].path == str(notes / "note-007.md")


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        sqlite3.OperationalError("database or disk is full"),
        ValueError("Failed to write segment: IoError(No space left on device (os error 28))"),
        RuntimeError("Error in compaction: Failed to apply logs to the metadata segment"),
    ],
    ids=["oserror", "sqlite3", "tantivy", "chroma-says-nothing"],
)
def test_every_library_s_way_of_saying_disk_full_is_recognised(tmp_path: Path, error):
    from ragchat import disk

    with tmpfs(tmp_path / "disk", "1m") as mounted:
        full = mounted / "home"
        full.mkdir()
        with contextlib.suppress(OSError):  # fill it
            (mounted / "filler").write_bytes(b"\0" * 2_000_000)
        found = disk.failure(error, full)
        assert found is not None and str(found).startswith("No space left on tmpfs")
        remount(mounted, "20m")
        explicit = isinstance(error, OSError | sqlite3.Error) or "os error 28" in str(error)
        # with room left, only an error that says so is a full disk
        assert (disk.failure(error, full) is not None) == explicit


@pytest.mark.slow
def test_rebuild_on_a_shared_store_names_other_paths_and_asks(tmp_path: Path, bundled_embedder):
    mine, theirs, home = tmp_path / "mine", tmp_path / "theirs", tmp_path / "home"
    write(mine, "zeppelin.md", "The zeppelin hangar is in Friedrichshafen.")
    for n in range(3):
        write(theirs, f"gull-{n}.md", f"Gull {n} nests on the rock by the pier.")
    with chroma_run(tmp_path / "data", free_port()) as (url, _):
        settings = {"chroma_url": url, "collection": "shared"}
        app = make_app(tmp_path / "other-machine", bundled_embedder, **settings)
        app.ingest(theirs)
        app.ingest(mine)
        env = {"RAGCHAT_HOME": str(home), "RAGCHAT_CHROMA_URL": url, "RAGCHAT_COLLECTION": "shared"}

        refused = ragchat("ingest", "--rebuild", str(mine), env=env)  # stdin is not a terminal
        assert refused.returncode == 2, refused.stderr
        assert (
            f"--rebuild drops collection 'shared' on the Chroma server at {url} for every"
            f" machine, with 3 documents from other paths ({theirs / 'gull-0.md'}, "
        ) in refused.stderr and "Add --yes to drop them too" in refused.stderr
        assert make_app(home, bundled_embedder, **settings).collection.counts() == (4, 4)

        both = ragchat("ingest", "--rebuild", str(mine), str(theirs), env=env)  # nothing lost
        assert both.returncode == 0 and "3 added" in both.stderr, both.stderr
        dropped = ragchat("ingest", "--rebuild", "--yes", str(mine), env=env)
        assert dropped.returncode == 0, dropped.stderr
        assert make_app(home, bundled_embedder, **settings).collection.counts() == (1, 1)


def test_doctor_does_not_advise_a_rebuild_for_a_full_disk(
    ragchat_home: Path, docs: Path, monkeypatch
):
    from ragchat import doctor

    app = make_app(ragchat_home)
    app.ingest(docs)

    def full(name: str) -> int:
        error = OSError(errno.ENOSPC, "No space left on device")
        raise app.store.failure(error) from error  # as the store raises it

    monkeypatch.setattr(app.store, "count", full)
    (check,) = [c for c in doctor.run(app) if c.name == "collection 'default'"]
    assert check.status == "fail" and check.detail.startswith("No space left on ")
    assert "--rebuild" not in check.detail


def test_a_lost_manifest_is_a_doctor_failure_and_the_next_ingest_indexes_once(
    ragchat_home: Path, docs: Path
):
    from ragchat import doctor

    app = make_app(ragchat_home)
    app.ingest(docs)
    chunks = app.collection.counts()[1]
    app.manifest.close()
    for name in ("manifest.sqlite3", "manifest.sqlite3-wal", "manifest.sqlite3-shm"):
        (ragchat_home / name).unlink(missing_ok=True)

    lost = make_app(ragchat_home)
    (check,) = [c for c in doctor.run(lost) if c.name == "collection 'default'"]
    assert check.status == "fail"
    assert check.detail.startswith(f"Chroma holds {chunks} chunks that no manifest row owns")
    assert "ragchat ingest PATH --collection default" in check.detail

    report = lost.ingest(docs)
    assert report.unowned == chunks and "no manifest row owned" in report.summary()
    assert lost.store.count("default") == lost.collection.counts()[1] == chunks
    assert lost.collection.lexical.count() == chunks  # not twice
    hits = lost.retriever("lexical").retrieve("bananas yellow", 10)
    assert len({h.id for h in hits}) == len(hits)
    assert [c.status for c in doctor.run(make_app(ragchat_home)) if "default" in c.name] == ["ok"]
    assert make_app(ragchat_home).ingest(docs).unowned == 0


def test_an_eval_collection_whose_process_is_gone_is_dropped_by_the_next_eval(
    ragchat_home: Path, docs: Path
):
    import subprocess

    from ragchat.evaluation import drop_abandoned

    gone = subprocess.Popen(["true"])
    gone.wait()
    for name in (f"eval-tmp-{gone.pid}", f"eval-tmp-{os.getpid()}", "notes"):
        make_app(ragchat_home, collection=name).ingest(docs)
    app = make_app(ragchat_home)
    assert drop_abandoned(app) == [f"eval-tmp-{gone.pid}"]
    assert sorted(c.name for c in app.collections()) == [f"eval-tmp-{os.getpid()}", "notes"]
    assert f"eval-tmp-{gone.pid}" not in app.store.collection_names()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_an_eval_stopped_by_a_signal_drops_its_collection(tmp_path: Path, signum: int):
    import subprocess
    import sys

    corpus = tmp_path / "beir"
    corpus.mkdir()
    (corpus / "corpus.jsonl").write_text(
        "".join(
            json.dumps(
                {"_id": f"d{n}", "title": f"Note {n}", "text": f"Gull {n} nests on rock {n}. " * 40}
            )
            + "\n"
            for n in range(600)
        )
    )
    (corpus / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "gull 7"}) + "\n")
    (corpus / "qrels").mkdir()
    (corpus / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td7\t1\n")
    home = tmp_path / "home"
    env = {**os.environ, "RAGCHAT_HOME": str(home), "RAGCHAT_EMBEDDING_MODEL": "bundled"}
    process = subprocess.Popen(
        [sys.executable, "-m", "ragchat", "eval", str(corpus), "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:  # until the first batch
        with contextlib.suppress(sqlite3.Error):
            if manifest_rows(home):
                break
        time.sleep(0.2)
    assert process.poll() is None, process.stderr.read() if process.stderr else ""
    process.send_signal(signum)
    assert process.wait(timeout=120) == 128 + signum
    app = make_app(home)
    assert app.collections() == [] and app.store.collection_names() == []


def test_a_plain_ingest_rebuilds_a_lost_lexical_index_from_the_store(
    ragchat_home: Path, docs: Path
):
    import shutil

    app = make_app(ragchat_home)
    app.ingest(docs)
    before = [(h.id, h.text) for h in app.retriever("lexical").retrieve("bananas yellow", 5)]
    chunks = app.collection.counts()[1]
    app.collection.lexical.close()
    shutil.rmtree(ragchat_home / "lexical")

    again = make_app(ragchat_home)
    report = again.ingest(docs)
    assert report.relexed == chunks and report.chunks_embedded == 0
    assert report.unchanged == len(again.collection.files())
    assert "nothing embedded again" in report.summary()
    assert again.collection.lexical.count() == chunks
    found = make_app(ragchat_home).retriever("lexical").retrieve("bananas yellow", 5)
    assert [(h.id, h.text) for h in found] == before
    assert make_app(ragchat_home).ingest(docs).relexed == 0


def test_a_stopped_rebuild_is_a_doctor_failure_and_searches_say_so(
    ragchat_home: Path, docs: Path, monkeypatch
):
    from ragchat import doctor
    from ragchat.ingest import Ingestor

    app = make_app(ragchat_home)
    app.ingest(docs)
    documents = app.collection.counts()[0]
    real_write = Ingestor._write
    writes = []

    def stopped_after_one_batch(self, batch, vectors, report):
        if writes:
            raise KeyboardInterrupt
        writes.append(len(batch))
        real_write(self, batch, vectors, report)

    monkeypatch.setattr(Ingestor, "_write", stopped_after_one_batch)
    monkeypatch.setattr("ragchat.ingest.EMBED_BATCH", 1)  # a batch a file
    with pytest.raises(KeyboardInterrupt):
        make_app(ragchat_home).ingest(docs, reindex=True)
    monkeypatch.undo()

    partial = make_app(ragchat_home)
    assert 0 < partial.collection.counts()[0] < documents
    (check,) = [c for c in doctor.run(partial) if c.name == "collection 'default' rebuild"]
    assert check.status == "fail" and "a --rebuild has not finished" in check.detail
    notices: list[str] = []
    partial.notify = notices.append
    partial.retriever("lexical").retrieve("bananas", 3)
    assert notices == [
        "Collection 'default' is being rebuilt (or its --rebuild was stopped): results may be"
        " incomplete."
    ]

    make_app(ragchat_home).ingest(docs, reindex=True)  # finished: whole, and said to be
    whole = make_app(ragchat_home)
    assert whole.collection.counts()[0] == documents
    assert all(c.status == "ok" for c in doctor.run(whole) if "default" in c.name)
    whole.notify = notices.append
    whole.retriever("lexical").retrieve("bananas", 3)
    assert len(notices) == 1


def test_a_truncated_chroma_database_is_noticed_by_a_plain_ingest_and_doctor_says_the_fix(
    ragchat_home: Path, docs: Path
):
    from ragchat import doctor

    make_app(ragchat_home).ingest(docs)
    database = ragchat_home / "chroma" / "chroma.sqlite3"
    data = database.read_bytes()
    database.write_bytes(data[: len(data) // 2])

    with pytest.raises(StoreError) as refused:  # it used to say "3 unchanged"
        make_app(ragchat_home).ingest(docs)
    assert str(refused.value).startswith(f"{database} is damaged (")
    assert str(refused.value).endswith("run 'ragchat doctor'.")
    (check,) = [c for c in doctor.run(make_app(ragchat_home)) if c.name == "vector store"]
    assert check.status == "fail" and check.detail.startswith(f"{database} is damaged (")
    assert f"move {ragchat_home / 'chroma'} away, then rebuild" in check.detail

    (ragchat_home / "chroma").rename(ragchat_home / "chroma.damaged")  # the fix, followed
    report = make_app(ragchat_home).ingest(docs, reindex=True)
    assert len(report.added) == 3  # every document (blob.bin is skipped: binary)
    assert all(c.status != "fail" for c in doctor.run(make_app(ragchat_home)))
