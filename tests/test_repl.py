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
        assert "Searched:" in why and "in prompt" in why and "1 earlier turn " in why

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


LONG_ANSWER = (
    "The electrician quoted 1,800 euros for moving the sockets and adding a circuit for the"
    " induction hob. The plumber asked for a second visit before the kitchen is fitted, and"
    " the joiner wants the measurements by Friday [1]."
)


def test_a_long_answer_wraps_whole_at_80_columns_and_typing_is_not_echoed(
    docs: Path, tmp_path: Path
):
    """A FakeLLM-backed chat (tests/chat_in_a_terminal.py: the CLI's consoles and REPL) in an
    80-column pseudo-terminal, read through a terminal emulator: every word of the answer on
    the screen, lines broken between words; keys typed while it streams do not show in it."""
    import pyte

    script = Path(__file__).with_name("chat_in_a_terminal.py")
    child = pexpect.spawn(
        sys.executable,
        [str(script), str(tmp_path / "home"), str(docs), LONG_ANSWER],
        env={**os.environ, "TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1"},
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 80),
        use_poll=True,
    )
    screen = pyte.Screen(80, 40)
    stream = pyte.Stream(screen)
    try:
        child.expect_exact(PROMPT)
        stream.feed(child.before + child.after)
        child.sendline("What colour are apples?")
        time.sleep(0.6)  # mid-answer
        child.send("zzzz")
        child.expect_exact("context tokens")
        stream.feed(child.before + child.after)
        lines = [line.rstrip() for line in screen.display]
        start = next(i for i, line in enumerate(lines) if line.startswith("The electrician"))
        end = next(i for i, line in enumerate(lines) if line.startswith("Sources"))
        answer = [line for line in lines[start:end] if line]
        assert " ".join(answer).split() == LONG_ANSWER.split(), answer
        assert len(answer) >= 3 and "zzzz" not in "\n".join(lines)
        child.expect_exact(PROMPT)  # the typed keys wait for the next prompt
        child.sendline("")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
