from __future__ import annotations

import json
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
    assert "sk-secret-777" not in shown.output
    settings = json.loads(shown.output)
    assert settings["api_key"] == {"value": "(set)", "source": "file", "origin": str(path)}
    assert settings["top_k"]["value"] == 9  # typed, not "9"
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


def invoke(*args: str, env: dict[str, str] | None = None):
    from click.testing import CliRunner

    from ragchat.cli import main

    return CliRunner().invoke(main, list(args), env=env)


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("mode", "fuzzy", "mode must be dense, lexical or hybrid, got 'fuzzy'"),
        ("temperature", "5", "temperature must be from 0 to 2, got 5.0"),
        ("temperature", "nan", "temperature must be from 0 to 2, got nan"),
        ("temperature", "inf", "temperature must be from 0 to 2, got inf"),
        ("top_k", "0", "top_k must be a positive integer, got 0"),
        ("chunk_tokens", "-5", "chunk_tokens must be a positive integer"),
        ("threads", "-1", "threads must be 0 or more"),
        ("embedding_backend", "cuda", "embedding_backend must be onnx or torch"),
        ("allow_remote", "perhaps", "allow_remote must be true or false"),
        ("chroma_url", "http://127.0.0.1:99999", "invalid port '99999'"),
        ("chroma_url", "ftp://host", "not an http(s) URL"),
        ("collection", "a b", "collection must be 3-512 letters"),
        ("n_ctx", "256", "max_tokens (512) must be smaller than n_ctx (256)"),
    ],
)
def test_config_set_refuses_what_load_would_refuse(ragchat_home: Path, name, value, why):
    result = invoke("config", "set", name, value)
    assert result.exit_code == 1 and why in result.output, result.output
    assert "nothing was written" in result.output
    assert not (ragchat_home / "config.toml").exists()
    # the same check at load, from the environment: one line naming the variable and the fix
    loaded = invoke("search", "x", env={f"RAGCHAT_{name.upper()}": value})
    assert loaded.exit_code == 1 and why in loaded.output, loaded.output
    assert f"unset RAGCHAT_{name.upper()}" in loaded.output


def test_config_set_of_an_unknown_name_suggests_the_close_one():
    result = invoke("config", "set", "topk", "3")
    assert result.exit_code == 1
    assert "unknown setting 'topk'; did you mean 'top_k'?" in result.output


def test_a_bad_value_in_the_file_names_the_file_and_the_fix_and_show_still_works(
    ragchat_home: Path,
):
    ragchat_home.mkdir()
    path = ragchat_home / "config.toml"
    path.write_text('mode = "fuzzy"\ntemperature = 5\ntop_k = 9\nallow_remote = true\n')
    for command in (["search", "x"], ["status"], ["config", "get", "mode"]):
        result = invoke(*command)
        assert result.exit_code == 1, command
        assert result.output.count("\n") == 1, result.output  # one line
        assert (
            str(path) in result.output and "mode must be dense, lexical or hybrid" in result.output
        )
        assert "ragchat config unset mode" in result.output
        assert "ragchat config set mode VALUE" in result.output
    shown = invoke("config", "show", "--json")
    assert shown.exit_code == 0, shown.output
    settings = json.loads(shown.stdout)
    assert settings["mode"]["invalid"] == "must be dense, lexical or hybrid, got 'fuzzy'"
    assert settings["temperature"]["value"] == 5 and "invalid" in settings["temperature"]
    assert settings["top_k"] == {"value": 9, "source": "file", "origin": str(path)}
    assert settings["allow_remote"]["value"] is True
    assert settings["n_ctx"] == {"value": 4096, "source": "default"}
    table = invoke("config", "show")
    assert table.exit_code == 0
    assert re.search(r"mode +fuzzy +\(config file\) +invalid: must be dense", table.output)
    assert "2 invalid" in table.output
    # the fix it names works
    assert invoke("config", "unset", "mode").exit_code == 0
    assert invoke("config", "set", "temperature", "0.7").exit_code == 0
    assert invoke("config", "get", "temperature").output == "0.7\n"


def test_config_show_and_get_say_where_each_value_comes_from(ragchat_home: Path):
    assert invoke("config", "set", "top_k", "9").exit_code == 0
    env = {"RAGCHAT_TOP_K": "4", "RAGCHAT_MODE": "lexical"}
    settings = json.loads(invoke("config", "show", "--json", env=env).stdout)
    assert settings["top_k"] == {"value": 4, "source": "env", "origin": "RAGCHAT_TOP_K"}
    assert settings["mode"]["source"] == "env"
    assert settings["n_ctx"]["source"] == "default"
    assert invoke("config", "get", "top_k", env=env).output == "4\n"
    assert invoke("config", "get", "top_k").output == "9\n"
    assert invoke("config", "get", "api_key").output == "(not set)\n"
    table = invoke("config", "show", env=env).output
    assert re.search(r"top_k +4 +\(environment RAGCHAT_TOP_K\)", table)
    assert re.search(r"n_ctx +4096 +\(default\)", table)


def test_unknown_key_in_the_file_can_be_unset(ragchat_home: Path):
    ragchat_home.mkdir()
    (ragchat_home / "config.toml").write_text("topk = 7\ntop_k = 3\n")
    result = invoke("search", "x")
    assert result.exit_code == 1 and "ragchat config unset topk" in result.output
    assert invoke("config", "show").exit_code == 0
    assert invoke("config", "unset", "topk").exit_code == 0
    assert (ragchat_home / "config.toml").read_text() == "top_k = 3\n"


def test_a_flag_with_a_bad_value_is_named():
    result = invoke("search", "x", "--chroma-url", "http://127.0.0.1:99999")
    assert result.exit_code == 1
    assert "--chroma-url: chroma_url has an invalid port '99999'" in result.output
