"""Settings: one typed model, resolved as flag > environment > config file > default.

The user directory is ``RAGCHAT_HOME`` (else the platform's data dir); it holds the store,
the manifest, the REPL history and ``config.toml``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragchat.errors import ConfigError, StoreError
from ragchat.text import close_matches, did_you_mean, either, parse_http_url

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
    workers: int = _setting(
        0, "Processes that read documents (PDF, Office, OCR) during ingest; 0 means one per core."
    )
    temperature: float = _setting(0.2, "LLM sampling temperature.")
    chunk_tokens: int = _setting(
        200, "Target chunk size in embedder tokens (capped by the embedder's limit)."
    )
    max_file_mb: int = _setting(200, "Files larger than this (in MB) are skipped by ingest.")
    chroma_url: str = _setting(
        "", "A Chroma server to store and query through (http://host:port); empty: the local store."
    )
    chroma_timeout: float = _setting(
        30.0, "Seconds a Chroma server has to answer a request before ragchat gives up on it."
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


def cores() -> int:
    """The cores this process may run on (what a setting of 0 threads or workers means)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by the user only. A folder that exists is left
    as it is: its mode is the user's choice (``ragchat doctor`` warns when others can read it)."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def prepare_home(home: Path) -> bool:
    """Make sure the user directory can be used, creating it (private) when it is missing;
    True when ragchat may write there, False when it can only read (a read-only store).
    StoreError, one line naming the folder and the problem, when it cannot be used at all."""
    fix = "set RAGCHAT_HOME to a writable folder"
    if home.is_dir():
        if not os.access(home, os.R_OK | os.X_OK):
            raise StoreError(f"Cannot read RAGCHAT_HOME {home} (permission denied); {fix}.")
        return os.access(home, os.W_OK)
    if home.exists() or home.is_symlink():
        kind = "a broken symlink" if not home.exists() else "a file, not a folder"
        raise StoreError(f"RAGCHAT_HOME {home} is {kind}; {fix}.")
    try:
        home.mkdir(parents=True, mode=0o700)
    except FileExistsError:  # made meanwhile by another ragchat
        return prepare_home(home)
    except OSError as exc:
        raise StoreError(
            f"Cannot create RAGCHAT_HOME {home} ({exc.strerror or exc}); {fix}."
        ) from exc
    return True


def home_read_only(home: Path) -> str:
    """The one line that says a read-only home cannot be written, and what to do."""
    return (
        f"RAGCHAT_HOME {home} is read-only: searching and asking work, but writing the store"
        " does not; make it writable (chmod u+w) or set RAGCHAT_HOME to a writable folder."
    )


# What each setting may be, beyond its type: checked the same way for a flag, a variable, the
# config file and 'config set' (``problem``).
POSITIVE = ("top_k", "n_ctx", "max_tokens", "chunk_tokens", "max_file_mb")
SECONDS = ("llm_timeout",)  # a positive number of seconds
CHOICES = {
    "mode": MODES,
    "embedding_backend": EMBEDDING_BACKENDS,
    "embedding_device": EMBEDDING_DEVICES,
}
RANGES = {
    "temperature": (0.0, 2.0),
    "threads": (0, None),
    "chroma_timeout": (0.1, None),
    "workers": (0, None),
}  # (least, most), inclusive
URLS = ("chroma_url", "base_url", "embedding_base_url")  # empty, or an http(s) URL
CONFIG_FILE = "config.toml"


def _parse(name: str, raw: Any) -> Any:
    """``raw`` (a string from a flag or the environment, or a TOML value) as the setting's
    type; ValueError saying what it must be."""
    kind = str(FIELDS[name].type)
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in TRUE_VALUES:
            return True
        if str(raw).lower() in FALSE_VALUES:
            return False
        raise ValueError("must be true or false")
    if kind == "int":
        try:
            if isinstance(raw, bool | float):
                raise TypeError
            return int(raw)
        except (TypeError, ValueError):
            raise ValueError("must be an integer") from None
    if kind == "float":
        try:
            if isinstance(raw, bool):
                raise TypeError
            return float(raw)
        except (TypeError, ValueError):
            raise ValueError("must be a number") from None
    if isinstance(raw, bool | int | float | list | dict):
        raise ValueError("must be text")
    return str(raw)


def problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the setting ``name`` ("must be dense, lexical or
    hybrid"), or None when it is usable. Every source of a setting is checked here."""
    if name in POSITIVE and value <= 0:
        return "must be a positive integer"
    if name in SECONDS and not value > 0:  # nan is not > 0 either
        return "must be a positive number of seconds"
    if name in CHOICES and value not in CHOICES[name]:
        return f"must be {either(CHOICES[name])}"
    if name in RANGES:
        least, most = RANGES[name]
        if not (value >= least and (most is None or value <= most)):  # nan fails both
            return (
                f"must be from {least:g} to {most:g}"
                if most is not None
                else (f"must be {least:g} or more")
            )
    if name in URLS and value:
        try:
            parse_http_url(value)
        except ValueError as exc:
            return str(exc)
    if name == "collection":
        from ragchat.store import collection_name_problem

        return collection_name_problem(value)
    return None


@dataclass(frozen=True)
class Resolved:
    """One setting in effect: its value, where it came from, and what is wrong with it."""

    name: str
    value: Any  # the parsed value; the raw one when it could not be parsed
    source: str  # flag, env, file or default
    origin: str  # the flag, the variable or the file it came from ("default" for a default)
    error: str = ""  # "must be ..., got ...": the setting cannot be used as it is

    @property
    def fix(self) -> str:
        """What to do about a bad value, for its source."""
        if self.source == "file":
            return (
                f"run 'ragchat config unset {self.name}' or 'ragchat config set {self.name} VALUE'"
            )
        if self.source == "env":
            return f"fix or unset {self.origin}"
        return f"give {self.origin} another value"

    @property
    def message(self) -> str:
        return f"{self.origin}: {self.name} {self.error}; {self.fix}."


def read_config_file(path: Path) -> dict[str, Any]:
    """The config file's values as written (TOML types, unchecked); {} when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except NotADirectoryError:  # the home is a file: said where the home is opened
        return {}
    except OSError as exc:
        raise ConfigError(
            f"Cannot read {path} ({exc.strerror or exc}); check its permissions."
        ) from exc
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix or delete it.") from exc


def _resolve_one(name: str, raw: Any, source: str, origin: str) -> Resolved:
    try:
        value = _parse(name, raw)
    except ValueError as exc:
        return Resolved(name, raw, source, origin, f"{exc}, got {raw!r}")
    wrong = problem(name, value)
    return Resolved(name, value, source, origin, f"{wrong}, got {value!r}" if wrong else "")


def resolve_settings(home: Path, **flags: Any) -> dict[str, Resolved]:
    """Every setting as in effect: flags (None = not given) over RAGCHAT_* over the config
    file over the default, each with where it came from; bad values are kept, with their
    error, so ``config show`` can still show them."""
    unknown = sorted(set(flags) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}")
    path = home / CONFIG_FILE
    return _resolve(read_config_file(path), path, flags, os.environ)


def _resolve(
    written: dict[str, Any], path: Path, flags: dict[str, Any], environment: Mapping[str, str]
) -> dict[str, Resolved]:
    settings: dict[str, Resolved] = {}
    for name, setting in FIELDS.items():
        variable = f"RAGCHAT_{name.upper()}"
        if flags.get(name) is not None:
            settings[name] = _resolve_one(name, flags[name], "flag", f"--{name.replace('_', '-')}")
        elif environment.get(variable, "") != "":
            settings[name] = _resolve_one(name, environment[variable], "env", variable)
        elif name in written:
            settings[name] = _resolve_one(name, written[name], "file", str(path))
        else:
            settings[name] = Resolved(name, setting.default, "default", "default")
    reserve, window = settings["max_tokens"], settings["n_ctx"]
    clash = _no_room(reserve, window)
    if clash:  # on the one the user set (both set: the answer's reserve)
        culprit = reserve if reserve.source != "default" else window
        settings[culprit.name] = dataclasses.replace(culprit, error=clash)
    return settings


def _no_room(reserve: Resolved, window: Resolved) -> str | None:
    """Between settings: the answer's reserve (max_tokens) must leave room in n_ctx."""
    if reserve.error or window.error or reserve.value < window.value:
        return None
    return (
        f"leaves no room: max_tokens ({reserve.value}) must be smaller than n_ctx ({window.value})"
    )


def unknown_in_file(home: Path) -> list[str]:
    """Keys of the config file that are no setting."""
    return sorted(set(read_config_file(home / CONFIG_FILE)) - set(FIELDS))


def load_settings(home: Path, **flags: Any) -> Settings:
    """Settings from flags (None = not given) over RAGCHAT_* over config.toml over defaults."""
    return load_settings_explained(home, **flags)[0]


def load_settings_explained(home: Path, **flags: Any) -> tuple[Settings, frozenset[str]]:
    """Settings, and the names of those the user set (by flag, environment or config file).
    A bad value is a ConfigError naming where it came from and the fix."""
    unknown = unknown_in_file(home)
    if unknown:
        raise ConfigError(
            f"{home / CONFIG_FILE}: unknown setting {unknown[0]!r}; run 'ragchat config"
            f" unset {unknown[0]}'{_known(unknown[0])}"
        )
    resolved = resolve_settings(home, **flags)
    bad = next((r for r in resolved.values() if r.error), None)
    if bad is not None:
        raise ConfigError(bad.message)
    settings = Settings(**{name: r.value for name, r in resolved.items()})
    return settings, frozenset(n for n, r in resolved.items() if r.source != "default")


SECRET_SETTINGS = frozenset({"api_key", "embedding_api_key"})


def check_setting_name(name: str) -> str:
    if name not in FIELDS:
        raise ConfigError(f"unknown setting {name!r}{_known(name)}")
    return name


def _known(name: str) -> str:
    """'; did you mean ...?' naming the settings most like it, else the list of settings."""
    return did_you_mean(close_matches(name, FIELDS)) or f"; known settings: {', '.join(FIELDS)}."


def write_setting(home: Path, name: str, value: str | None) -> Path:
    """Set (or with None, remove) one setting in config.toml; the file is the user's alone.
    A value is checked as the settings are at load, so a bad one is never written."""
    path = home / CONFIG_FILE
    values = read_config_file(path)
    if value is None:
        if name not in values:  # unset of an unknown key still removes it from the file
            check_setting_name(name)
        values.pop(name, None)
    else:
        check_setting_name(name)
        given = _resolve_one(name, value, "set", name)
        if given.error:
            raise ConfigError(f"{name} {given.error}; nothing was written.")
        values[name] = given.value
        if name in ("max_tokens", "n_ctx"):  # as the file will be read at load
            together = _resolve(values, path, {}, {})
            clash = together["max_tokens"].error or together["n_ctx"].error
            if clash:
                raise ConfigError(f"{name}: {clash}; nothing was written.")
    lines = [f"{key} = {_toml_value(v)}" for key, v in values.items()]
    if not prepare_home(home):
        raise StoreError(home_read_only(home))
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


def shown(name: str, value: Any) -> Any:
    """A setting as it may be displayed: secrets are masked, the rest keep their type."""
    if name in SECRET_SETTINGS:
        return "(set)" if value else "(not set)"
    return value
