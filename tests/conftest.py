"""Fixtures. Plain helpers (running the CLI, real servers, a test App) are in helpers.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import CORPUS, EVAL, ingest_corpus, write

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never reach a model hub
os.environ["ANONYMIZED_TELEMETRY"] = "False"


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Path:
    """One cache of derived (int8 ONNX) models for the whole session: exported once."""
    folder = tmp_path_factory.mktemp("model-cache")
    os.environ["RAGCHAT_CACHE"] = str(folder)
    return folder


@pytest.fixture(autouse=True)
def ragchat_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty RAGCHAT_HOME and no RAGCHAT_* settings from outside."""
    for name in list(os.environ):
        if name.startswith("RAGCHAT_") and name not in ("RAGCHAT_EVAL_DATA", "RAGCHAT_CACHE"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("RAGCHAT_HOME", str(home))
    return home


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of the sample corpus, free to modify."""
    target = tmp_path / "docs"
    shutil.copytree(CORPUS, target)
    return target


@pytest.fixture(scope="session")
def bundled_embedder():
    from ragchat.embedders import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder("bundled")


@pytest.fixture(scope="session")
def bundled_llm():
    from ragchat.llms import LlamaCppLLM

    return LlamaCppLLM("bundled", n_ctx=2048, threads=2)


@pytest.fixture
def eval_pdfs() -> Path:
    folder = EVAL / "pdfs"
    if not folder.is_dir():
        pytest.skip("../shared/eval/pdfs is absent (it ships only with the project's shared data)")
    return folder


@pytest.fixture(scope="session")
def ingested(tmp_path_factory) -> tuple[Path, Path]:
    """The sample corpus ingested once with the bundled embedder, via the CLI."""
    return ingest_corpus(tmp_path_factory.mktemp("e2e"))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A small folder: Markdown, text and HTML to ingest, a binary file and a hidden one not to."""
    folder = tmp_path / "docs"
    write(folder, "a.md", "# Alpha\n\nApples are red.\n\nAlpha has two paragraphs.\n")
    write(folder, "b.txt", "Bananas are yellow.\n\nBananas grow in bunches.")
    write(folder, "sub/c.html", "<h1>Cherry</h1><p>Cherries are small.</p>")
    (folder / "blob.bin").write_bytes(b"\x00\x01binary")
    write(folder, ".hidden.md", "never ingested")
    return folder
