"""The command line's own behaviour, in process (click's CliRunner): usage errors, --json
errors, help, version; no model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import make_app

from ragchat import __version__
from ragchat.cli import main


def invoke(*args: str, **options):
    return CliRunner().invoke(main, list(args), terminal_width=80, **options)


@pytest.mark.parametrize("command", [["ask", "-k", "0", "q"], ["search", "-k", "0", "q"]])
def test_k_zero_is_a_usage_error(command: list[str]):
    result = invoke(*command)
    assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output


def test_a_question_where_a_command_goes_points_to_ask():
    result = invoke('What is the "joining" fee?')
    assert result.exit_code == 2
    assert result.output == (
        "Error: 'What is the \"joining\" fee?' is not a command; to ask it:"
        ' ragchat ask "What is the \\"joining\\" fee?"\n'
    )
    assert "No such command 'frob'" in invoke("frob").output  # other typos: click's message


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(flag: str):
    result = invoke(flag)
    assert result.exit_code == 0 and result.output == f"ragchat, version {__version__}\n"


def test_every_command_has_a_whole_first_line_in_the_help_at_80_columns():
    output = invoke("--help").output
    commands = output[output.index("Commands:") :].splitlines()[1:]
    assert len(commands) >= 12
    for line in commands:
        assert len(line) <= 80 and not line.endswith("..."), line


JSON_COMMANDS = [
    ["ingest", "--json", "."],
    ["ask", "--json", "q"],
    ["search", "--json", "q"],
    ["eval", "--json", "gold.jsonl"],
    ["doctor", "--json"],
    ["config", "show", "--json"],
    ["status", "--json"],
    ["similar", "--json", "a.md"],
    ["cluster", "--json"],
    ["chunks", "--json", "gold.jsonl"],
    ["spectrum", "--json", "--a", "gold.jsonl", "--b", "gold.jsonl", "text"],
]


@pytest.mark.parametrize("command", JSON_COMMANDS, ids=lambda c: c[0])
def test_json_errors_are_json_on_stdout(
    command: list[str], ragchat_home: Path, tmp_path: Path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    ragchat_home.mkdir(parents=True)
    (ragchat_home / "config.toml").write_text("top_k = [")  # every command fails to start
    (tmp_path / "gold.jsonl").write_text("{}\n")
    result = CliRunner().invoke(main, command, catch_exceptions=False)
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert "config.toml is not valid TOML" in error
    assert f"Error: {error}" in result.stderr


def test_status_names_the_llm_as_the_embedder_is(ragchat_home: Path, tmp_path: Path):
    gguf = tmp_path / "models" / "tiny.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")
    assert make_app(ragchat_home, model="bundled").status()["llm"] == (
        "SmolLM2-135M-Instruct (bundled)"
    )
    relative = make_app(ragchat_home, model=str(gguf.relative_to(tmp_path)))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        assert relative.status()["llm"] == str(gguf)


def test_the_offline_hint_names_the_installed_bundled_model():
    from ragchat.bundled import bundled_llm
    from ragchat.errors import ModelNotAvailable
    from ragchat.llms import resolve_gguf

    if bundled_llm() is None:
        pytest.skip("ragchat[bundled] is not installed here")
    with pytest.raises(ModelNotAvailable) as error:
        resolve_gguf("nobody/nothing-GGUF:nothing.gguf")  # offline (conftest): not downloaded
    assert "--model bundled" in str(error.value) and "pip install" not in str(error.value)


# the real CLI with odd standard streams (issue 19, item 13)


def run_closed(args: list[str], close: int | None = None, **options):
    """``python -m ragchat ARGS`` with file descriptor ``close`` closed, as `>&-` does."""
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "ragchat", *args],
        preexec_fn=(lambda: os.close(close)) if close is not None else None,
        stdout=None if close == 1 else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        **options,
    )


def test_a_byte_that_is_not_utf8_in_a_query_is_one_line(ragchat_home: Path):
    import os
    import subprocess
    import sys

    for command, what in (("search", b"query"), ("ask", b"question")):
        result = subprocess.run(
            [os.fsencode(sys.executable), b"-m", b"ragchat", command.encode(), b"tides \xff"],
            capture_output=True,
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr == (
            b"Error: The "
            + what
            + b" has bytes that are not UTF-8 text (tides \\xff); type it again.\n"
        )


def test_a_closed_stdin_is_one_line(ragchat_home: Path):
    result = run_closed(["ask", "-"], close=0)
    assert result.returncode == 2
    assert result.stderr == (
        "Error: Cannot read the question from stdin (stdin is closed); pass it as an argument.\n"
    )


@pytest.mark.parametrize("command", [["status"], ["config", "show"], ["status", "--json"]])
def test_a_closed_stdout_is_an_error_not_silence(command: list[str], ragchat_home: Path):
    result = run_closed(command, close=1)
    assert result.returncode == 1
    assert result.stderr.endswith(
        "Error: cannot write the output: stdout is not writable (Bad file descriptor).\n"
    )


def test_a_broken_pipe_ends_quietly(ragchat_home: Path):
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "ragchat", "config", "show"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # the reader is gone before anything is written
    assert process.wait(timeout=60) == 141
    assert process.stderr.read() == b""
