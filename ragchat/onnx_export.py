"""Turn a sentence-transformers model into an int8 ONNX model, once per model.

Why: on a CPU the fp32 model is compute-bound; int8 matrix products (VNNI on x86, dot-product
instructions on ARM) run about three times faster, and ONNX Runtime loads in a fraction of the
time ``import sentence_transformers`` takes, which is what makes a cold query fast.

The export traces the sentence-transformers model itself (transformer *and* its pooling), so
the ONNX graph computes what ``SentenceTransformer.encode`` computes; then the weights of the
matrix products are quantised to int8, per output channel (per-tensor quantisation cost ~6% cosine
on all-MiniLM-L6-v2; per-channel keeps it under 1%). Activations are quantised dynamically, per
batch, so no calibration data is needed.

Heavy imports (torch, sentence-transformers, onnx) happen only here, and only when a model is
exported; querying an exported model needs ONNX Runtime and tokenizers alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from ragchat.config import ensure_private_dir
from ragchat.errors import ModelNotAvailable

EXPORT_VERSION = 2  # bump when the exported graph or its quantisation changes
MODEL_FILE = "model_int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
INFO_FILE = "info.json"


def export_int8(location: str, target: Path, fingerprint: str) -> None:
    """Write ``target``/{model_int8.onnx, tokenizer.json, info.json} for the model at ``location``.

    The files are built in a temporary folder beside ``target`` and moved into place whole,
    so a killed export never leaves a half-written model behind.
    """
    for name, value in (
        ("TOKENIZERS_PARALLELISM", "false"),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("HF_HUB_DISABLE_TELEMETRY", "1"),
    ):
        os.environ.setdefault(name, value)
    try:
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging
    except ImportError as exc:
        raise ModelNotAvailable(
            f"Cannot build the fast embedding model ({exc}); run: pip install onnx onnxruntime,"
            ' or set embedding_backend = "torch".'
        ) from exc

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    # eager attention traces to plain matrix products; PyTorch's fused SDPA traces to extra
    # masking ops (Where, IsNaN) that cost ~10% of the ONNX model's time
    model = SentenceTransformer(
        location, device="cpu", model_kwargs={"attn_implementation": "eager"}
    ).eval()
    tokenizer = model.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ModelNotAvailable(
            f"{location} has no fast tokenizer, which the ONNX backend needs;"
            ' set embedding_backend = "torch" for this model.'
        )
    sample = tokenizer(
        ["a short sentence", "and a somewhat longer second sentence"],
        padding=True,
        return_tensors="pt",
    )
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in sample]

    class Encoder(torch.nn.Module):
        """Positional tensors in, the sentence embedding out (what encode() returns, unnormalised)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return self.model(dict(zip(names, tensors, strict=True)))["sentence_embedding"]

    ensure_private_dir(target.parent)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        fp32 = work / "model_fp32.onnx"
        axes = {name: {0: "batch", 1: "sequence"} for name in names}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer chatter about Python control flow
            torch.onnx.export(
                Encoder(),
                tuple(sample[name] for name in names),
                str(fp32),
                input_names=names,
                output_names=["sentence_embedding"],
                dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        quiet = (
            logging.getLogger()
        )  # the quantiser logs advice about calibration to the root logger
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            quantize_dynamic(
                str(fp32),
                str(work / MODEL_FILE),
                weight_type=QuantType.QInt8,
                per_channel=True,
                extra_options={"MatMulConstBOnly": True},  # weights only: attention stays fp32
            )
        finally:
            quiet.setLevel(level)
        fp32.unlink()
        backend.save(str(work / TOKENIZER_FILE))
        info = {
            "source": location,
            "fingerprint": fingerprint,
            "export_version": EXPORT_VERSION,
            "inputs": names,
            "max_seq_length": int(model.max_seq_length or tokenizer.model_max_length),
            "dimension": int(_dimension(model)),
        }
        (work / INFO_FILE).write_text(json.dumps(info, indent=2))
        if target.exists():  # an older export (or a concurrent one): ours is as good
            shutil.rmtree(target, ignore_errors=True)
        with contextlib.suppress(OSError):  # another process won the race, with the same model
            work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _dimension(model: Any) -> int:
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())
