"""Where the local embedding model runs: a GPU when there is one (faked here: no GPU)."""

from __future__ import annotations

import pytest

from ragchat.embedders import (
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    embedding_device,
    onnx_providers,
    torch_device,
)


@pytest.fixture
def torch_sees(monkeypatch: pytest.MonkeyPatch):
    torch = pytest.importorskip("torch")

    def sees(cuda: bool = False, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return sees


@pytest.mark.slow
def test_torch_takes_cuda_then_mps_then_the_cpu(torch_sees):
    torch_sees(cuda=True, mps=True)
    assert torch_device() == "cuda"
    torch_sees(mps=True)
    assert torch_device() == "mps"
    torch_sees()
    assert torch_device() == "cpu"
    torch_sees(cuda=True)
    assert torch_device("cpu") == "cpu"  # asked for: no probing


@pytest.mark.slow
def test_the_torch_embedder_loads_on_the_chosen_device(torch_sees, monkeypatch):
    import sys
    import types

    seen = {}

    def loaded(location, device):
        seen["device"] = device
        return "model"

    # sentence-transformers itself (seconds to import) is not what is tested here
    fake = types.ModuleType("sentence_transformers")
    fake.SentenceTransformer = loaded
    quiet = types.SimpleNamespace(
        set_verbosity_error=lambda: None, disable_progress_bar=lambda: None
    )
    utils = types.ModuleType("transformers.utils")
    utils.logging = quiet
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    monkeypatch.setitem(sys.modules, "transformers.utils", utils)
    torch_sees(cuda=True)
    embedder = SentenceTransformerEmbedder("bundled")
    assert embedder.model == "model"
    assert seen["device"] == "cuda" and embedding_device("torch") == "cuda"
    assert SentenceTransformerEmbedder("bundled", device="cpu").device == "cpu"


def test_onnx_runtime_uses_cuda_when_onnxruntime_gpu_offers_it(monkeypatch):
    import onnxruntime

    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: gpu)
    assert onnx_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    assert embedding_device("onnx") == "cuda"
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert onnx_providers("cuda") == ["CPUExecutionProvider"]  # nothing to use it with
    assert embedding_device("onnx") == "cpu"


def test_the_onnx_session_is_made_with_those_providers(monkeypatch, tmp_path):
    import onnxruntime

    seen = {}

    def session(path, options, providers):
        seen["providers"] = providers
        return "session"

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    monkeypatch.setattr(
        onnxruntime,
        "get_available_providers",
        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    embedder = OnnxEmbedder("bundled", tmp_path)
    embedder.__dict__["info"] = {"inputs": ["input_ids"]}  # as if exported
    assert embedder.runtime == ("session", ["input_ids"])
    assert seen["providers"] == ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_status_shows_the_setting_without_loading_a_runtime():
    """status runs unsupervised (supervisor.LIGHT): it must load no native library, so it
    shows the setting; doctor probes the device."""
    import json
    import subprocess
    import sys

    probe = """
import json, sys
from click.testing import CliRunner
from ragchat.cli import main
shown = []
for env in json.loads(sys.argv[1]):
    shown.append(json.loads(CliRunner().invoke(main, ["status", "--json"], env=env).output))
loaded = [m for m in ("onnxruntime", "torch") if m in sys.modules]
print(json.dumps([[s["embedding_device"] for s in shown], loaded]))
"""
    cases = [
        {},
        {"RAGCHAT_EMBEDDING_DEVICE": "cpu", "RAGCHAT_EMBEDDING_BACKEND": "torch"},
        {
            "RAGCHAT_EMBEDDING_MODEL": "openai:nomic-embed-text",
            "RAGCHAT_EMBEDDING_BASE_URL": "http://127.0.0.1:11434/v1/",
        },
    ]
    found = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(cases)], capture_output=True, text=True
    )
    assert found.returncode == 0, found.stderr
    devices, loaded = json.loads(found.stdout)
    assert devices == ["auto", "cpu", "remote, at http://127.0.0.1:11434/v1"]
    assert loaded == []


def test_doctor_says_where_the_embedder_runs(monkeypatch: pytest.MonkeyPatch):
    import json

    from click.testing import CliRunner

    from ragchat.cli import main

    def device_check(**env: str) -> dict[str, str]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(main, ["doctor", "--json"])
        return next(c for c in json.loads(result.output) if c["name"] == "embedding device")

    monkeypatch.setenv("RAGCHAT_MODEL", "bundled")
    check = device_check()
    assert check == {  # no GPU on this machine
        "name": "embedding device",
        "status": "ok",
        "detail": "cpu (onnx, embedding_device = auto)",
    }
    refused = device_check(RAGCHAT_EMBEDDING_DEVICE="mps")
    assert refused["status"] == "warn"
    assert "not mps: ONNX Runtime has no MPS provider" in refused["detail"]
    assert device_check(RAGCHAT_EMBEDDING_DEVICE="cuda")["detail"].endswith(
        "not cuda: install onnxruntime-gpu in place of onnxruntime"
    )
    remote = device_check(
        RAGCHAT_EMBEDDING_MODEL="openai:nomic-embed-text",
        RAGCHAT_EMBEDDING_BASE_URL="http://127.0.0.1:11434/v1",
    )
    assert remote["detail"] == "http://127.0.0.1:11434/v1"
