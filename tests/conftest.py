from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpora" / "harbor"
EVAL = Path(os.environ.get("RAGCHAT_EVAL_DATA", ROOT.parent / "shared" / "eval"))

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never reach a model hub
os.environ["ANONYMIZED_TELEMETRY"] = "False"


@pytest.fixture(autouse=True)
def ragchat_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty RAGCHAT_HOME and no RAGCHAT_* settings from outside."""
    for name in list(os.environ):
        if name.startswith("RAGCHAT_") and name != "RAGCHAT_EVAL_DATA":
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
