from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpora" / "harbor"
EVAL = Path(os.environ.get("RAGCHAT_EVAL_DATA", ROOT.parent / "shared" / "eval"))

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


def ragchat(
    *args: str, input: str | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "RAGCHAT_EMBEDDING_MODEL": "bundled",
        "RAGCHAT_MODEL": "bundled",
        "RAGCHAT_N_CTX": "2048",
        "RAGCHAT_MAX_TOKENS": "96",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "ragchat", *args],
        input=input,
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )


@pytest.fixture(scope="session")
def ingested(tmp_path_factory) -> tuple[Path, Path]:
    """The sample corpus ingested once with the bundled embedder, via the CLI."""
    base = tmp_path_factory.mktemp("e2e")
    home, docs = base / "home", base / "docs"
    shutil.copytree(CORPUS, docs)
    result = ragchat("ingest", str(docs), env={"RAGCHAT_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert "5 added, 0 updated, 0 removed, 0 unchanged, 0 skipped" in result.stderr
    return home, docs


def llama_cpp_server(port: int, key: str, *extra: str) -> list[str]:
    """The command of llama.cpp's OpenAI-compatible server for the bundled GGUF ("smol")."""
    from ragchat.embedders import bundled_path
    from ragchat.llms import BUNDLED_LLM_DIST, BUNDLED_LLM_FILE

    model = str(bundled_path(BUNDLED_LLM_DIST, BUNDLED_LLM_FILE))
    return [
        *(sys.executable, "-m", "llama_cpp.server", "--model", model, "--model_alias", "smol"),
        *("--host", "127.0.0.1", "--port", str(port), "--api_key", key, "--n_threads", "2"),
        *extra,
    ]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(
    command: list[str], probe: str, headers: dict[str, str] | None = None, timeout: float = 120
):
    """Run a real server on 127.0.0.1 until ``probe`` answers; stop it afterwards."""
    import time
    import urllib.request

    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    deadline = time.time() + timeout
    try:
        while True:
            try:
                urllib.request.urlopen(
                    urllib.request.Request(probe, headers=headers or {}), timeout=2
                ).read()
                break
            except OSError:
                if time.time() > deadline or process.poll() is not None:
                    pytest.fail(f"{command[0]} {command[1]} did not start")
                time.sleep(0.3)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
