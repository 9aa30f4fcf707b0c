"""The real REPL in a pseudo-terminal, with the bundled models."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")
pytestmark = pytest.mark.slow

PROMPT = "› "


def spawn(home: Path, tmp_path: Path):
    env = {**os.environ, "RAGCHAT_HOME": str(home), "RAGCHAT_MODEL": "bundled", "RAGCHAT_N_CTX": "2048",
           "RAGCHAT_MAX_TOKENS": "64", "RAGCHAT_TEMPERATURE": "0", "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    child = pexpect.spawn(sys.executable, ["-m", "ragchat", "chat"], env=env, cwd=str(tmp_path),
                          encoding="utf-8", timeout=180, dimensions=(40, 120))
    child.expect_exact(PROMPT)
    return child


def ask(child, text: str) -> str:
    child.sendline(text)
    child.expect_exact(PROMPT)
    return child.before


def test_a_conversation_in_a_terminal(ingested, tmp_path: Path):
    home, _ = ingested
    child = spawn(home, tmp_path)
    try:
        first = ask(child, "What is the joining fee for members?")
        assert "Sources" in first and "handbook.md" in first and "context tokens" in first

        follow = ask(child, "And when is the annual general meeting held?")
        assert "Sources" in follow

        why = ask(child, "/why")
        assert "Searched:" in why and "in prompt" in why and "earlier turns" in why

        child.sendline("Tell me everything about the inverter that was bought.")
        child.sendcontrol("c")
        child.expect_exact("[answer stopped]")
        child.expect_exact(PROMPT)

        after = ask(child, "Where are the solar panels?")
        assert "Sources" in after and "faq.html" in after

        assert "No such command" not in ask(child, "/k 2")
        saved = tmp_path / "talk.md"
        assert "Saved" in ask(child, f"/save {saved}")
        text = saved.read_text()
        assert text.startswith("# ragchat conversation") and "## What is the joining fee for members?" in text

        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_ctrl_d_leaves_and_ctrl_c_clears_the_line(ingested, tmp_path: Path):
    home, _ = ingested
    child = spawn(home, tmp_path)
    try:
        child.send("half a question")
        child.sendcontrol("c")
        child.expect_exact(PROMPT)
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
