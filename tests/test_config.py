from __future__ import annotations

import re
from pathlib import Path

import pytest

from ragchat.config import load_settings, load_settings_explained
from ragchat.errors import ConfigError


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path, monkeypatch):
    (tmp_path / "config.toml").write_text(
        'top_k = 7\nmodel = "file.gguf"\nembedding_model = "bundled"\n'
    )
    monkeypatch.setenv("RAGCHAT_MODEL", "env.gguf")
    settings, explicit = load_settings_explained(tmp_path, model=None, top_k=3)
    assert settings.top_k == 3
    assert settings.model == "env.gguf"
    assert settings.embedding_model == "bundled"
    assert settings.n_ctx == 4096
    assert {"top_k", "model", "embedding_model"} <= explicit and "n_ctx" not in explicit


def test_unknown_key_in_config_names_the_known_ones(tmp_path: Path):
    (tmp_path / "config.toml").write_text("topk = 7\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'topk'.*top_k"):
        load_settings(tmp_path)


def test_bad_env_value_is_a_clear_error(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("RAGCHAT_TOP_K", "many")
    with pytest.raises(ConfigError, match="RAGCHAT_TOP_K: top_k must be an integer"):
        load_settings(tmp_path)


def test_answer_reserve_must_fit_the_context(tmp_path: Path):
    with pytest.raises(ConfigError, match="max_tokens"):
        load_settings(tmp_path, n_ctx=512, max_tokens=512)


def test_broken_toml_names_the_file(tmp_path: Path):
    (tmp_path / "config.toml").write_text("top_k = \n")
    with pytest.raises(ConfigError, match=r"config\.toml is not valid TOML"):
        load_settings(tmp_path)


def test_config_set_writes_a_private_file_and_show_masks_the_key(tmp_path: Path, monkeypatch):
    from click.testing import CliRunner

    from ragchat.cli import main

    monkeypatch.setenv("RAGCHAT_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    assert runner.invoke(main, ["config", "set", "api_key", "sk-secret-777"]).exit_code == 0
    assert runner.invoke(main, ["config", "set", "top_k", "9"]).exit_code == 0
    path = tmp_path / "home" / "config.toml"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_settings(tmp_path / "home").api_key == "sk-secret-777"
    shown = runner.invoke(main, ["config", "show", "--json"])
    assert '"api_key": "(set)"' in shown.output and "sk-secret-777" not in shown.output
    assert '"top_k": "9"' in shown.output
    assert "sk-secret-777" not in repr(load_settings(tmp_path / "home"))
    bad = runner.invoke(main, ["config", "set", "top_k", "lots"])
    assert bad.exit_code == 1 and "top_k must be an integer" in bad.output
    assert runner.invoke(main, ["config", "unset", "api_key"]).exit_code == 0
    assert "sk-secret" not in path.read_text()


def test_every_command_has_help_with_an_example():
    from click.testing import CliRunner

    from ragchat.cli import main

    runner = CliRunner()
    for name, command in main.commands.items():
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        if not hasattr(command, "commands"):
            assert "Example:" in result.output, f"{name} --help has no example"


def test_option_help_says_the_settings_default_and_variable():
    """Help texts are derived from Settings: a changed default cannot leave a stale help."""
    import click

    from ragchat.cli import main
    from ragchat.config import FIELDS

    def commands(group: click.Group):
        for command in group.commands.values():
            yield from commands(command) if isinstance(command, click.Group) else [command]

    checked = set()
    for command in commands(main):
        for option in command.params:
            if option.name not in FIELDS or isinstance(option.default, int | str):
                continue  # not a setting (search -k has a default of its own)
            if (command.name, option.name) == ("eval", "collection"):
                continue  # BEIR data goes to a temporary collection, not the setting's
            help_text = option.help or ""
            assert f"RAGCHAT_{option.name.upper()}" in help_text, (command.name, option.name)
            shown = re.search(r"\[default: ([^;]+);", help_text)
            if shown and option.name != "threads":  # 0 threads is shown as "one per core"
                assert shown.group(1) == str(FIELDS[option.name].default), (
                    command.name,
                    option.name,
                )
            checked.add(option.name)
    assert {
        "collection",
        "mode",
        "top_k",
        "chunk_tokens",
        "chroma_url",
        "model",
        "embedding_base_url",
        "embedding_device",
    } <= checked
