"""One-line messages a newcomer meets (issue 18's polish): typos get "did you mean", missing
things are named for what they are, every count option is spelled -k or -n."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import make_app

from ragchat.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_a_mistyped_collection_is_not_called_empty(ragchat_home: Path, docs: Path):
    make_app(ragchat_home).ingest(docs)
    result = invoke("search", "apples", "-c", "defualt")
    assert result.exit_code == 1
    assert result.output.startswith("Error: No collection 'defualt'; did you mean 'default'?")
    assert "empty" not in result.output
    other = invoke("search", "apples", "-c", "zebra")
    assert "No collection 'zebra' (there are: default)" in other.output
    assert "'ragchat ingest PATH --collection zebra'" in other.output


def test_no_collection_at_all_says_how_to_make_one(ragchat_home: Path):
    result = invoke("search", "apples")
    assert result.exit_code == 1
    assert "No collection 'default' yet; create it with 'ragchat ingest PATH" in result.output


def test_an_empty_query_is_called_a_query():
    result = invoke("search", "")
    assert result.exit_code == 2 and "The query is empty" in result.output
    result = invoke("ask", "  ")
    assert result.exit_code == 2 and "The question is empty" in result.output


def test_a_model_folder_is_called_a_folder(tmp_path: Path):
    from ragchat.errors import ModelNotAvailable
    from ragchat.llms import resolve_gguf

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny.Q4_K_M.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelNotAvailable, match=r"is a folder, not a model file \(it holds tiny"):
        resolve_gguf(str(tmp_path / "models"))


def test_every_count_option_takes_k_and_n():
    for name in ("search", "ask", "chat", "similar", "spectrum"):
        counts = [
            p
            for p in main.commands[name].params
            if "-k" in p.opts or "-n" in p.opts  # type: ignore[attr-defined]
        ]
        assert len(counts) == 1 and {"-k", "-n"} <= set(counts[0].opts), name
    assert invoke("search", "x", "-n", "0").exit_code == 2  # at least 1, as -k abc is refused
