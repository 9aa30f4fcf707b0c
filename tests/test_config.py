from __future__ import annotations

from pathlib import Path

import pytest

from ragchat.config import load_settings, load_settings_explained
from ragchat.errors import ConfigError


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path, monkeypatch):
    (tmp_path / "config.toml").write_text('top_k = 7\nmodel = "file.gguf"\nembedding_model = "bundled"\n')
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
