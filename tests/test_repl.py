"""The real REPL in a pseudo-terminal, with the bundled models."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")
pytestmark = pytest.mark.slow

PROMPT = "›"  # prompt-toolkit moves the cursor instead of printing the space after it


def spawn(home: Path, tmp_path: Path):
    env = {
        **os.environ,
        "RAGCHAT_HOME": str(home),
        "RAGCHAT_MODEL": "bundled",
        "RAGCHAT_N_CTX": "2048",
        "RAGCHAT_MAX_TOKENS": "64",
        "RAGCHAT_TEMPERATURE": "0",
        "TERM": "xterm-256color",
        "COLUMNS": "120",
        "LINES": "40",
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }  # pexpect does not answer cursor position requests
    child = pexpect.spawn(
        sys.executable,
        ["-m", "ragchat", "chat"],
        env=env,
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=180,
        dimensions=(40, 120),
        use_poll=True,
    )  # select() fails once the test process holds fds > 1024
    child.expect_exact(PROMPT)
    return child


def ask(child, text: str, until: str = "context tokens") -> str:
    """Send a line, wait for the text that ends its output, then for the next prompt."""
    child.sendline(text)
    child.expect_exact(until)
    output = child.before + child.after
    child.expect_exact(PROMPT)
    return output


def test_a_conversation_in_a_terminal(ingested, tmp_path: Path):
    home, _ = ingested
    child = spawn(home, tmp_path)
    try:
        first = ask(child, "What is the joining fee for members?")
        assert "Sources" in first and "handbook.md" in first and "context tokens" in first

        follow = ask(child, "And when is the annual general meeting held?")
        assert "Sources" in follow

        why = ask(child, "/why", until="tokens available for it")
        assert "Searched:" in why and "in prompt" in why and "earlier turns" in why

        child.sendline("Tell me everything about the inverter that was bought.")
        time.sleep(0.5)  # past the prompt: now Ctrl-C is a signal to the answer in progress
        child.sendcontrol("c")
        child.expect_exact("[answer stopped]")
        child.expect_exact(PROMPT)

        ask(
            child, "/clear", until="forgotten"
        )  # a fresh question: no follow-up rewriting by the tiny model
        after = ask(child, "Where are the solar panels?")
        assert "Sources" in after and "faq.html" in after

        assert "Retrieving 2 excerpts" in ask(child, "/k 2", until="per question")
        saved = tmp_path / "talk.md"
        assert "Saved 3 answers" in ask(child, f"/save {saved}", until="talk.md.")
        text = saved.read_text()
        assert (
            text.startswith("# ragchat conversation")
            and "## What is the joining fee for members?" in text
        )

        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_ctrl_d_leaves_and_ctrl_c_clears_the_line(ingested, tmp_path: Path):
    home, _ = ingested
    child = spawn(home, tmp_path)
    try:
        child.send("half a question")
        time.sleep(0.5)
        child.sendcontrol("c")  # clears the line: the next Ctrl-D sees an empty one
        time.sleep(0.5)
        child.sendcontrol("d")
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
