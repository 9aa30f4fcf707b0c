"""Ctrl-C at any moment (issues 18.2, 19.6): real signals to real commands end them with
"Interrupted." and exit code 130, promptly, whatever they were doing (starting Python,
importing, loading llama.cpp, embedding in the ONNX threads, reading a prompt, writing)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import ragchat

pexpect = pytest.importorskip("pexpect")

ENV = {
    "RAGCHAT_EMBEDDING_MODEL": "bundled",
    "RAGCHAT_MODEL": "bundled",
    "RAGCHAT_N_CTX": "2048",
    "RAGCHAT_MAX_TOKENS": "96",
}


def start(*args: str, home: Path, env: dict | None = None) -> subprocess.Popen:
    """A real command in a process group of its own, as a terminal's foreground job is."""
    return subprocess.Popen(
        [sys.executable, "-m", "ragchat", *args],
        env={**os.environ, **ENV, "RAGCHAT_HOME": str(home), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def ctrl_c(process: subprocess.Popen, whole_group: bool = True) -> tuple[int, str, float]:
    """SIGINT as a terminal's Ctrl-C sends it (to the whole group) or as ``kill -INT`` does
    (to the command only); (exit code, stderr, seconds it took to end)."""
    if whole_group:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        pytest.fail(f"still running 30 s after SIGINT: {stderr[-2000:]}")
    return process.returncode, stderr, time.monotonic() - sent


def test_a_ctrl_c_swallowed_by_a_ctypes_callback_is_not_lost():
    """Python raises KeyboardInterrupt inside the callback, ctypes reports it as ignored and
    native code carries on: the flag makes ``check`` raise it at the next safe point."""
    script = textwrap.dedent(
        """
        import ctypes, os, signal, sys
        from ragchat import interrupts

        interrupts.install()
        callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(
            lambda a, b: os.kill(os.getpid(), signal.SIGINT) or 0
        )
        items = (ctypes.c_int * 2)(2, 1)
        ctypes.CDLL(None).qsort(items, 2, ctypes.sizeof(ctypes.c_int), callback)
        print("native code carried on", flush=True)
        try:
            interrupts.check()
        except KeyboardInterrupt:
            print("raised at the next check", flush=True)
            interrupts.exit_interrupted()
        print("lost", flush=True)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.splitlines() == ["native code carried on", "raised at the next check"]
    assert result.returncode == 130
    assert result.stderr == "Interrupted.\n"  # not "Exception ignored on calling ctypes ..."


@pytest.mark.slow
def test_ctrl_c_at_random_moments_of_ask_always_ends_it(ingested, tmp_path: Path):
    """From the first millisecond (Python starting) through imports, the llama.cpp load and
    the model reading its prompt: each of 20 tries ends with "Interrupted.", 130, at once."""
    home, _ = ingested
    began = time.monotonic()  # how long a whole answer takes here: the moments fall inside it
    whole = start("ask", "What is the joining fee for members?", home=home)
    whole.communicate(timeout=120)
    assert whole.returncode == 0
    span = max(10, int((time.monotonic() - began) * 9))  # tenths of a second, 90% of it
    moments = random.Random(int(os.environ.get("RAGCHAT_TEST_SEED", time.time()))).sample(
        [n / 10 for n in range(1, span)], 20
    )
    failures = []
    for n, moment in enumerate(sorted(moments)):
        process = start("ask", "What is the joining fee for members?", home=home)
        time.sleep(moment)
        if process.poll() is not None:
            failures.append((moment, "finished before the signal", process.returncode))
            continue
        code, stderr, took = ctrl_c(process, whole_group=n % 4 != 3)
        if code != 130 or "Interrupted." not in stderr or took > 2.5:
            failures.append((moment, code, round(took, 2), stderr[-600:]))
        assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert not failures, failures


@pytest.mark.slow
def test_ctrl_c_stops_an_ingest_of_a_big_file_and_the_next_run_goes_on(tmp_path: Path):
    """While a 20 MB text file is read, chunked and embedded (in the ONNX thread pool) and
    its parts written: the signal ends the command within a couple of seconds; the files
    finished before are kept (not redone), and nothing of the big file is left half-written."""
    import sqlite3

    from helpers import chroma_paths

    from ragchat.app import App
    from ragchat.config import Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(6):
        (docs / f"a-note-{n}.md").write_text(f"# Note {n}\n\nGulls nest on harbour wall {n}.\n")
    sentence = "The harbour wall was repaired after the storm of {n}, said the keeper. "
    with (docs / "z-big.txt").open("w") as handle:
        for n in range(20_000):
            handle.write(sentence.format(n=n) * 14 + ("\n\n" if n % 3 else "\n"))
    home = tmp_path / "home"
    env = {"RAGCHAT_CHUNK_TOKENS": "128"}

    def finished() -> int:
        try:
            with sqlite3.connect(home / "manifest.sqlite3", timeout=5) as db:
                return db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        except sqlite3.Error:
            return 0

    chance = random.Random(int(os.environ.get("RAGCHAT_TEST_SEED", time.time())))
    for run in range(5):
        process = start("ingest", str(docs), home=home, env=env)
        if run == 0:
            time.sleep(0.3)  # Python starting, modules importing
        else:  # the small files done: into the big one, at a random moment
            deadline = time.monotonic() + 300
            while finished() < 6 and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(chance.uniform(0, 4))
        assert process.poll() is None, "the ingest finished before it could be interrupted"
        code, stderr, took = ctrl_c(process, whole_group=run != 3)
        assert code == 130, stderr
        assert took < 2.5, (run, took, stderr)
        assert "Interrupted" in stderr and "Traceback" not in stderr, stderr
    rest = ragchat(
        "ingest",
        "--json",
        str(docs),
        env={"RAGCHAT_HOME": str(home), **env, "RAGCHAT_MAX_FILE_MB": "5"},
    )
    assert rest.returncode == 0, rest.stderr
    report = json.loads(rest.stdout)
    assert report["unchanged"] == 6 and report["added"] == []  # kept, not redone
    app = App(home, Settings(embedding_model="bundled"))
    assert set(chroma_paths(app)) == {str(docs / f"a-note-{n}.md") for n in range(6)}
    assert app.manifest.pending(app.collection.name) == []


def spawn(home: Path, *args: str):
    return pexpect.spawn(
        sys.executable,
        ["-m", "ragchat", *args],
        env={
            **os.environ,
            **ENV,
            "RAGCHAT_HOME": str(home),
            "TERM": "xterm-256color",
            "PROMPT_TOOLKIT_NO_CPR": "1",
        },
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 120),
        use_poll=True,
    )


@pytest.mark.slow
def test_ctrl_c_during_chat_start_up_ends_it(ingested):
    """Before the prompt appears (settings, imports, the models loading): the chat does not
    open. The moments are spread over the start-up time measured first."""
    home, _ = ingested
    child = spawn(home, "chat")
    began = time.monotonic()
    child.expect_exact("›")
    start_up = time.monotonic() - began
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    tried = []
    for fraction in (0.05, 0.25, 0.45, 0.65, 0.85):
        moment = fraction * start_up
        child = spawn(home, "chat")
        try:
            if child.expect_exact(["›", pexpect.TIMEOUT], timeout=moment) == 0:
                continue  # the chat opened sooner this time: Ctrl-C there clears the line
            child.sendintr()  # the terminal's Ctrl-C
            sent = time.monotonic()
            child.expect(pexpect.EOF, timeout=30)
            took = time.monotonic() - sent
            child.close()
            assert "›" not in child.before, f"the chat opened after Ctrl-C at {moment:.1f} s"
            assert "Interrupted." in child.before and "Traceback" not in child.before
            assert child.exitstatus == 130 and took < 2.5, (child.exitstatus, took, child.before)
            tried.append(moment)
        finally:
            child.close(force=True)
    assert len(tried) >= 3, (start_up, tried)


def test_ctrl_c_at_the_hidden_api_key_prompt_ends_it(ragchat_home: Path):
    child = spawn(ragchat_home, "config", "set", "api_key")
    try:
        child.expect("api_key")  # the hidden prompt
        child.sendintr()
        child.expect(pexpect.EOF, timeout=30)
        child.close()
        assert "Interrupted." in child.before
        assert "unexpected" not in child.before and "report" not in child.before
        assert child.exitstatus == 130
    finally:
        child.close(force=True)
