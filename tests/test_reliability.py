"""Issue 6 leftovers: deleted text leaves the disk, damaged stores are found and rebuilt,
native crashes become messages, files that change mid-ingest are caught."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import make_app, write

MARKER = "qzxkplmwv"  # one token, its own stem: findable as a term of the lexical index too


def files_holding(home: Path, marker: str) -> list[str]:
    """Every file under ``home`` (databases, -wal/-journal files, index segments) whose
    bytes contain ``marker`` in any letter case."""
    needle = marker.lower().encode()
    return [
        str(p.relative_to(home))
        for p in home.rglob("*")
        if p.is_file() and needle in p.read_bytes().lower()
    ]


def test_removed_and_changed_documents_leave_no_text_on_disk(
    ragchat_home: Path,
    docs: Path,
    monkeypatch,
):
    write(docs, "secret.md", f"# Plans\n\nThe {MARKER} project starts in May.\n")
    write(docs, "changing.md", f"Draft: {MARKER}2 budget is high.\n\nMore text here.\n")
    app = make_app(ragchat_home)
    app.ingest(docs)
    assert files_holding(ragchat_home, MARKER), "the marker should be stored before the removal"

    (docs / "secret.md").unlink()
    write(docs, "changing.md", "Final: the budget is modest.\n")
    report = app.ingest(docs)
    assert report.removed == [str(docs / "secret.md")] and report.updated == [
        str(docs / "changing.md")
    ]
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


def test_reindex_and_interrupted_removals_are_purged(ragchat_home: Path, docs: Path, monkeypatch):
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


@pytest.mark.slow
def test_truncated_index_files_are_found_and_rebuild_recovers(
    ragchat_home: Path, tmp_path: Path, bundled_embedder
):
    import json
    import shutil
    import struct

    from helpers import ragchat

    notes = tmp_path / "many"
    for n in range(60):
        write(
            notes,
            f"note-{n:02d}.md",
            "\n\n".join(f"Gull {n} nests on rock {p} by the pier." for p in range(20)),
        )
    app = make_app(ragchat_home, bundled_embedder, chunk_tokens=8)
    app.ingest(notes)
    app.store._restart()  # let go of Chroma, as a finished process would
    (folder,) = app.store.segment_folders("default")
    # Chroma saves the index to disk every hnsw:sync_threshold (1,000) writes: it has
    saved = struct.unpack_from("<iQQQ", (folder / "header.bin").read_bytes())[3]
    assert saved >= 1000 and app.store.damage("default", thorough=True) is None

    damaged = tmp_path / "damaged"
    for name in ("data_level0.bin", "link_lists.bin", "length.bin", "header.bin"):
        shutil.rmtree(damaged, ignore_errors=True)
        shutil.copytree(ragchat_home, damaged)
        target = damaged / "chroma" / folder.name / name
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
        result = ragchat("doctor", "--json", env={"RAGCHAT_HOME": str(damaged)})
        assert result.returncode == 1, (name, result.stderr)
        check = {c["name"]: c for c in json.loads(result.stdout)}["collection 'default'"]
        assert check["status"] == "fail" and name in check["detail"], check
        assert "ragchat ingest --rebuild" in check["detail"], check
        assert "--collection default" in check["detail"], check

    # header.bin cut short makes Chroma crash on the next write: ragchat refuses first
    env = {"RAGCHAT_HOME": str(damaged), "RAGCHAT_CHUNK_TOKENS": "8"}
    refused = ragchat("search", "gull nests", env=env)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert "damaged" in refused.stderr and "ragchat ingest --rebuild" in refused.stderr
    # a plain ingest notices it too, instead of calling every file unchanged (issue 19.10)
    plain = ragchat("ingest", str(notes), env=env)
    assert plain.returncode == 1 and "damaged" in plain.stderr, plain.stderr
    assert "unchanged" not in plain.stderr and "--rebuild" in plain.stderr

    rebuilt = ragchat("ingest", "--rebuild", str(notes), env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "60 added" in rebuilt.stderr
    found = ragchat("search", "--json", "gull 7 nests on rock 3", env=env)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["results"][0]["path"].startswith(str(notes))
    assert ragchat("doctor", env=env).returncode == 0
    assert [p.name for p in (damaged / "chroma").iterdir() if p.is_dir()] != [folder.name]


@pytest.mark.parametrize("changes", [1, 5])
def test_a_file_written_while_being_read_ends_with_its_final_text(
    ragchat_home: Path,
    docs: Path,
    monkeypatch,
    changes,
):
    import ragchat.ingest

    real_load = ragchat.ingest.load
    target = docs / "b.txt"
    edits = iter(range(changes))

    def load_then_edit(path: Path):
        pages = real_load(path)
        if path == target and (n := next(edits, None)) is not None:
            # another program saves the file while ragchat still holds the old text
            target.write_text(f"Bananas are version {n + 1}.\n\nKiwis are brown.")
            os.utime(
                target,
                ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 1_000_000 * (n + 1)),
            )
        return pages

    monkeypatch.setattr(ragchat.ingest, "load", load_then_edit)
    app = make_app(ragchat_home)
    app.ingest(docs)
    monkeypatch.undo()
    final = target.read_text()
    if changes > 1:  # still changing when given up on: the next ingest must read it again
        report = make_app(ragchat_home).ingest(docs)
        assert report.updated == [str(target)]
    assert make_app(ragchat_home).ingest(docs).unchanged == 3
    stored = [text for _, text, meta in app.store.records("default") if meta["path"] == str(target)]
    assert "\n\n".join(stored) == final.strip() or " ".join(stored).split() == final.split()
    assert (
        app.store.count("default")
        == app.manifest.counts("default")[1]
        == len(app.store.records("default"))
    )


def test_a_file_that_vanishes_mid_ingest_is_skipped_with_the_reason(
    ragchat_home: Path,
    docs: Path,
    monkeypatch,
):
    import ragchat.ingest

    real_load = ragchat.ingest.load

    def load_and_delete_the_next(path: Path):
        if path.name == "a.md":
            (docs / "b.txt").unlink()
        return real_load(path)

    monkeypatch.setattr(ragchat.ingest, "load", load_and_delete_the_next)
    report = make_app(ragchat_home, workers=1).ingest(docs)  # one reader: a.md, then b.txt
    assert (str(docs / "b.txt"), "vanished during the ingest") in report.skipped
    assert len(report.added) == 2


def _tiny_store(tmp_path: Path) -> dict[str, str]:
    from helpers import ragchat

    ferry = tmp_path / "ferry"
    write(ferry, "ferry.md", "# Ferry\n\nThe ferry leaves the harbour at noon.\n")
    env = {"RAGCHAT_HOME": str(tmp_path / "home")}
    assert ragchat("ingest", str(ferry), env=env).returncode == 0
    return env


@pytest.mark.slow
def test_a_segfault_in_llama_cpp_is_one_line_naming_a_private_crash_log(tmp_path: Path):
    from helpers import ragchat

    env = _tiny_store(tmp_path)
    # no test hook in the product: the real llama.cpp binding is made to crash at load time
    hooks = tmp_path / "hooks"
    write(
        hooks,
        "sitecustomize.py",
        "import ctypes\nimport llama_cpp\n\n"
        "def crash(self, *args, **kwargs):\n    ctypes.string_at(0)\n\n"
        "llama_cpp.Llama.__init__ = crash\n",
    )
    env["PYTHONPATH"] = os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")])
    result = ragchat("ask", "When does the ferry leave?", env=env)
    assert result.returncode == 128 + 11, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "Error: ragchat crashed inside a native library (SIGSEGV)"
    )
    assert "nothing already ingested is lost" in lines[0] and "Traceback" not in result.stderr
    log = Path(lines[0].split("details in ")[1].split(";")[0])
    assert log.stat().st_mode & 0o777 == 0o600
    assert "Segmentation fault" in log.read_text() and "llms.py" in log.read_text()
    # and without the crash, nothing is left behind
    del env["PYTHONPATH"]
    assert ragchat("search", "ferry", env=env).returncode == 0
    assert list(log.parent.iterdir()) == [log]


@pytest.mark.slow
def test_ctrl_c_stops_an_ingest_soon_and_the_next_run_finishes_the_rest(tmp_path: Path):
    import json
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from helpers import ragchat

    notes = tmp_path / "notes"
    for n in range(80):
        write(
            notes,
            f"note-{n:02d}.md",
            "\n\n".join(f"Note {n} about tides, paragraph {p}. " * 12 for p in range(6)),
        )
    home = tmp_path / "home"
    env = {
        **os.environ,
        "RAGCHAT_HOME": str(home),
        "RAGCHAT_EMBEDDING_MODEL": "bundled",
        "RAGCHAT_CHUNK_TOKENS": "64",
    }

    def done() -> int:
        try:
            with sqlite3.connect(home / "manifest.sqlite3", timeout=5) as db:
                return db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        except sqlite3.Error:
            return 0

    process = subprocess.Popen(
        [sys.executable, "-m", "ragchat", "ingest", str(notes)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while done() < 10 and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the ingest finished before it could be interrupted"
    process.send_signal(signal.SIGINT)  # as `kill -INT` does; the terminal's Ctrl-C reaches both
    sent = time.time()
    _, stderr = process.communicate(timeout=60)
    assert time.time() - sent < 10
    assert process.returncode == 130, stderr
    assert "run the same command again to finish" in stderr and "Traceback" not in stderr
    finished = done()
    assert 10 <= finished < 80

    rest = ragchat(
        "ingest",
        "--json",
        str(notes),
        env={"RAGCHAT_HOME": str(home), "RAGCHAT_CHUNK_TOKENS": "64"},
    )
    assert rest.returncode == 0, rest.stderr
    report = json.loads(rest.stdout)
    assert report["unchanged"] == finished and len(report["added"]) == 80 - finished


MEMORY_LIMITED_LOAD = """
import resource
import llama_cpp  # loaded before the limit, as in the CLI
from ragchat.errors import LLMError
from ragchat.llms import LlamaCppLLM

pages = int(open("/proc/self/statm").read().split()[0])
limit = pages * resource.getpagesize() + 40_000_000  # less room than the 94 MB model needs
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    LlamaCppLLM("bundled", n_ctx=512, threads=1).llama
except LLMError as exc:
    print(exc)
"""


@pytest.mark.slow
def test_unusable_model_files_are_one_line_errors(tmp_path: Path):
    import subprocess
    import sys

    from helpers import ragchat

    from ragchat.bundled import bundled_llm

    env = _tiny_store(tmp_path)
    gguf = bundled_llm()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(gguf.read_bytes()[:3_000_000])
    not_gguf = tmp_path / "weights.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 a zip, not a model" * 100)
    cases = {
        str(tmp_path / "missing.gguf"): "does not exist",
        str(truncated): "may be truncated or too large for memory",
        str(not_gguf): "is not a GGUF model file",
    }
    for model, expected in cases.items():
        result = ragchat("ask", "When does the ferry leave?", "--model", model, env=env)
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), result.stderr
        assert expected in result.stderr and "--model" in result.stderr
    too_big = subprocess.run(
        [sys.executable, "-c", MEMORY_LIMITED_LOAD], capture_output=True, text=True, timeout=120
    )
    assert too_big.returncode == 0, too_big.stderr
    assert "too large for memory" in too_big.stdout


def test_chroma_telemetry_is_off(ragchat_home: Path, docs: Path, monkeypatch):
    monkeypatch.delenv("ANONYMIZED_TELEMETRY", raising=False)
    app = make_app(ragchat_home)
    app.ingest(docs)
    assert os.environ["ANONYMIZED_TELEMETRY"] == "False"
    assert app.store.client.get_settings().anonymized_telemetry is False
