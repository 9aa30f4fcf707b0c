"""Which commands run under the crash guard: all but a few light ones, listed on purpose."""

from __future__ import annotations

from ragchat.cli import main
from ragchat.supervisor import LIGHT, supervised_command

# Commands that read settings or the manifest and load no native library. Adding one here
# (and to supervisor.LIGHT) is a decision: a native crash in it becomes a bare signal.
EXPECTED_LIGHT = {"config", "status"}


def test_every_command_is_supervised_or_light_on_purpose():
    commands = set(main.commands)
    assert LIGHT == EXPECTED_LIGHT
    assert commands >= LIGHT, f"light commands that do not exist: {LIGHT - commands}"
    for name in commands:
        expected = None if name in LIGHT else name
        assert supervised_command([name]) == expected, name
        assert supervised_command([name, "--json"]) == expected, name
    assert {"similar", "cluster", "map", "spectrum", "ask", "ingest"} <= {
        name for name in commands if supervised_command([name])
    }


def test_help_version_and_no_command_run_unguarded():
    assert supervised_command([]) is None
    assert supervised_command(["--version"]) is None
    assert supervised_command(["--help"]) is None
    assert supervised_command(["ingest", "--help"]) is None
    assert supervised_command(["map", "-h"]) is None
    assert supervised_command(["config", "show"]) is None
    assert supervised_command(["search", "-k", "3", "query"]) == "search"


def test_usage_lines_name_ragchat_also_in_the_supervised_child():
    """The child runs as ``python -m ragchat``; its usage lines must still say ``ragchat``."""
    from helpers import ragchat

    for command in ("search", "ingest", "ask", "doctor --nosuch", "eval", "config set"):
        result = ragchat(*command.split())
        assert result.returncode == 2, (command, result.stderr)
        assert "python -m" not in result.stderr, (command, result.stderr)
        assert f"Usage: ragchat {command.split()[0]}" in result.stderr, (command, result.stderr)
