"""Settings: one typed model, resolved as flag > environment > config file > default.

The user directory is ``RAGCHAT_HOME`` (else the platform's data dir); it holds the store,
the manifest, the REPL history and ``config.toml``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragchat.errors import ConfigError

DEFAULT_EMBEDDING_MODEL = "intfloat/e5-large-v2"
# A small instruct GGUF that runs on a laptop CPU; fetched from the hub on first use.
DEFAULT_MODEL = "Qwen/Qwen2.5-1.5B-Instruct-GGUF:qwen2.5-1.5b-instruct-q4_k_m.gguf"
EMBEDDING_BACKENDS = ("onnx", "torch")  # int8 ONNX Runtime (default), sentence-transformers fp32
EMBEDDING_DEVICES = ("auto", "cpu", "cuda", "mps")  # auto: a CUDA or Apple GPU, else the CPU
# How chunks are ranked (retrieval.py): embeddings, BM25, or both fused.
MODES = ("dense", "lexical", "hybrid")
DEFAULT_MODE = "hybrid"
DEFAULT_LLM_TIMEOUT = 120.0  # seconds a hosted model may take to begin answering
TRUE_VALUES = ("1", "true", "yes", "on")  # how a yes/no setting (or HF_HUB_OFFLINE) says yes
FALSE_VALUES = ("0", "false", "no", "off")


def _setting(default: Any, description: str) -> Any:
    return field(default=default, metadata={"description": description})


@dataclass(frozen=True)
class Settings:
    """Everything a command can be told; each field is also RAGCHAT_<NAME> and a config key."""

    collection: str = _setting("default", "Chroma collection to ingest into and ask.")
    embedding_model: str = _setting(
        DEFAULT_EMBEDDING_MODEL,
        "Embedding model: a hub name, a local sentence-transformers folder, 'bundled', or"
        " 'openai:NAME' (an OpenAI-compatible embeddings server, see embedding_base_url).",
    )
    embedding_base_url: str = _setting(
        "",
        "OpenAI-compatible endpoint for --embedding-model openai:NAME (else OPENAI_BASE_URL,"
        " else OpenAI).",
    )
    embedding_api_key: str = field(
        default="",
        repr=False,
        metadata={"description": "API key for that endpoint (else OPENAI_API_KEY). Never shown."},
    )
    embedding_device: str = _setting(
        "auto",
        "Where the local embedding model runs: auto (a CUDA or Apple GPU when there is one), cpu,"
        " cuda or mps.",
    )
    embedding_backend: str = _setting(
        "onnx",
        "How new collections run the embedding model: 'onnx' (int8, ~3x faster on a CPU) or"
        " 'torch' (sentence-transformers fp32). A collection keeps the backend it was built with.",
    )
    model: str = _setting(
        DEFAULT_MODEL,
        "LLM: a local .gguf path, a hub 'REPO:FILE.gguf', or 'bundled'.",
    )
    top_k: int = _setting(5, "How many excerpts to retrieve for a question.")
    mode: str = _setting(DEFAULT_MODE, "Retrieval ranking: dense, lexical or hybrid (both, fused).")
    n_ctx: int = _setting(4096, "LLM context window in tokens.")
    max_tokens: int = _setting(512, "Most tokens an answer may have (reserved in the context).")
    threads: int = _setting(0, "CPU threads for the LLM; 0 means one per core.")
    temperature: float = _setting(0.2, "LLM sampling temperature.")
    chunk_tokens: int = _setting(
        200, "Target chunk size in embedder tokens (capped by the embedder's limit)."
    )
    max_file_mb: int = _setting(200, "Files larger than this (in MB) are skipped by ingest.")
    chroma_url: str = _setting(
        "", "A Chroma server to store and query through (http://host:port); empty: the local store."
    )
    base_url: str = _setting(
        "",
        "OpenAI-compatible endpoint for --model openai:NAME (else OPENAI_BASE_URL, else OpenAI).",
    )
    api_key: str = field(
        default="",
        repr=False,  # never printed, not even in a debug dump of the settings
        metadata={"description": "API key for that endpoint (else OPENAI_API_KEY). Never shown."},
    )
    allow_remote: bool = _setting(
        False,
        "Allow sending document text (excerpts to an LLM, chunks to an embeddings server) to an"
        " endpoint that is not on this machine.",
    )
    llm_timeout: float = _setting(
        DEFAULT_LLM_TIMEOUT,
        "Seconds a hosted model (--model openai:NAME) may take to begin its answer, retries"
        " included, and then to send each next piece of it.",
    )

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("ragchat", appauthor=False))


def resolve_home(flag: str | os.PathLike[str] | None = None) -> Path:
    """The user directory: --home flag, else RAGCHAT_HOME, else the platform data dir."""
    value = flag or os.environ.get("RAGCHAT_HOME")
    return Path(value).expanduser().resolve() if value else default_home()


def model_cache() -> Path:
    """Where derived models (the int8 ONNX exports) live: RAGCHAT_CACHE, else the platform's
    cache dir. A cache, not user data: deleting it costs one re-export."""
    value = os.environ.get("RAGCHAT_CACHE")
    if value:
        return Path(value).expanduser().resolve()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("ragchat", appauthor=False))


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by the user only."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):  # not ours to change (a shared mount): files still are
        path.chmod(0o700)
    return path


def _convert(name: str, raw: Any, origin: str) -> Any:
    kind = FIELDS[name].type
    expected = {"int": "an integer", "float": "a number", "bool": "true or false"}.get(
        str(kind), "text"
    )
    try:
        if kind in ("bool", bool):
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in TRUE_VALUES:
                return True
            if str(raw).lower() in FALSE_VALUES:
                return False
            raise ValueError
        if kind in ("int", int):
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if kind in ("float", float):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{origin}: {name} must be {expected}, got {raw!r}; fix the value and try again."
        ) from None


def read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix or delete it.") from exc
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting {unknown[0]!r}; known settings: {', '.join(FIELDS)}."
        )
    return {k: _convert(k, v, str(path)) for k, v in data.items()}


def load_settings(home: Path, **flags: Any) -> Settings:
    """Settings from flags (None = not given) over RAGCHAT_* over config.toml over defaults."""
    return load_settings_explained(home, **flags)[0]


def load_settings_explained(home: Path, **flags: Any) -> tuple[Settings, frozenset[str]]:
    """Settings, and the names of those the user set (by flag, environment or config file)."""
    values: dict[str, Any] = read_config_file(home / "config.toml")
    for name in FIELDS:
        env = os.environ.get(f"RAGCHAT_{name.upper()}")
        if env not in (None, ""):
            values[name] = _convert(name, env, f"RAGCHAT_{name.upper()}")
    for name, value in flags.items():
        if name not in FIELDS:
            raise ConfigError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = _convert(name, value, f"--{name.replace('_', '-')}")
    settings = Settings(**values)
    _validate(settings)
    return settings, frozenset(values)


def either(values: Sequence[str]) -> str:
    """'a, b or c'."""
    return " or ".join([", ".join(values[:-1]), values[-1]] if len(values) > 1 else values)


def _validate(settings: Settings) -> None:
    positive = ("top_k", "n_ctx", "max_tokens", "chunk_tokens")  # fmt: skip
    for name in positive:
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name} must be positive, got {getattr(settings, name)}.")
    if settings.mode not in MODES:
        raise ConfigError(f"mode must be {either(MODES)}, got {settings.mode!r}.")
    if settings.embedding_backend not in EMBEDDING_BACKENDS:
        raise ConfigError(
            f"embedding_backend must be {either(EMBEDDING_BACKENDS)},"
            f" got {settings.embedding_backend!r}."
        )
    if not settings.llm_timeout > 0:  # also refuses nan
        raise ConfigError(
            f"llm_timeout must be a positive number of seconds, got {settings.llm_timeout}."
        )
    if settings.embedding_device not in EMBEDDING_DEVICES:
        raise ConfigError(
            f"embedding_device must be {either(EMBEDDING_DEVICES)},"
            f" got {settings.embedding_device!r}."
        )
    if settings.threads < 0:
        raise ConfigError(f"threads must be 0 (auto) or more, got {settings.threads}.")
    if settings.max_tokens >= settings.n_ctx:
        raise ConfigError(
            f"max_tokens ({settings.max_tokens}) must be smaller than n_ctx ({settings.n_ctx});"
            " lower --max-tokens or raise --n-ctx."
        )


SECRET_SETTINGS = frozenset({"api_key", "embedding_api_key"})


def write_setting(home: Path, name: str, value: str | None) -> Path:
    """Set (or with None, remove) one setting in config.toml; the file is the user's alone."""
    if name not in FIELDS:
        raise ConfigError(f"unknown setting {name!r}; known settings: {', '.join(FIELDS)}.")
    path = ensure_private_dir(home) / "config.toml"
    values = read_config_file(path)
    if value is None:
        values.pop(name, None)
    else:
        values[name] = _convert(name, value, name)
    lines = [f"{key} = {_toml_value(v)}" for key, v in values.items()]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + ("\n" if lines else ""))
    path.chmod(0o600)
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


def shown(name: str, value: Any) -> str:
    """A setting as it may be displayed: secrets are masked."""
    if name in SECRET_SETTINGS:
        return "(set)" if value else "(not set)"
    return str(value)
