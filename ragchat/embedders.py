"""Embedders: text to vectors, behind one small seam.

An ``Embedder`` needs only ``embed_batch`` (and a tokenizer for chunk sizes). What differs
per model (query/passage prefixes, normalisation, token limit) lives in one table,
``PROFILES``. Two backends run the same sentence-transformers models:

- ``onnx`` (the default): the model exported once to int8 ONNX (see ``onnx_export``) and run
  by ONNX Runtime with the model's own fast tokenizer: ~3x the throughput on a CPU, and a
  query process that never imports torch.
- ``torch``: sentence-transformers itself, fp32; the reference the ONNX path is tested against.

A collection records the backend that built it and is always queried with the same one, so
query and passage vectors come from the same arithmetic. Heavy imports happen on first use.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragchat import interrupts
from ragchat.bundled import (
    BUNDLED,
    BUNDLED_EMBEDDING_ID,
    bundled_embedding_model,
    bundled_missing,
    use_bundled,
)
from ragchat.config import EMBEDDING_BACKENDS, cores
from ragchat.errors import ConfigError, ModelNotAvailable

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor


@dataclass(frozen=True)
class ModelProfile:
    query_prefix: str = ""
    passage_prefix: str = ""
    normalize: bool = True
    max_tokens: int | None = None


# Matched against the model id (lower case) and against "*/<folder name>" for local paths.
PROFILES: list[tuple[str, ModelProfile]] = [
    ("*e5-*", ModelProfile("query: ", "passage: ", True, 512)),
    ("*all-minilm-l6-v2", ModelProfile("", "", True, 256)),
    ("*bge-*-en-v1.5", ModelProfile("Represent this sentence for searching relevant passages: ", "", True, 512)),
    ("*nomic-embed-text-*", ModelProfile("search_query: ", "search_document: ", True, 8192)),
    ("*gte-*", ModelProfile("", "", True, 512)),
]  # fmt: skip


def profile_for(model_id: str) -> ModelProfile:
    name = model_id.lower().rstrip("/")
    for pattern, profile in PROFILES:
        if fnmatch.fnmatch(name, pattern):
            return profile
    return ModelProfile()


class Embedder(ABC):
    """Turns texts into vectors. Subclasses implement ``embed_batch`` and ``count_tokens``."""

    id: str
    profile: ModelProfile = ModelProfile()
    backend: str = "torch"

    @abstractmethod
    def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, as given (prefixes already applied)."""

    @abstractmethod
    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens the model sees for each passage, passage prefix and special tokens included."""

    @property
    @abstractmethod
    def dimension(self) -> int: ...

    @property
    @abstractmethod
    def max_tokens(self) -> int: ...

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        return self.embed_batch([self.profile.passage_prefix + t for t in texts])

    def embed_query(self, text: str) -> list[float]:
        return self.embed_batch([self.profile.query_prefix + text])[0]

    def describe(self) -> dict[str, Any]:
        """What a collection records about the embedder that built it."""
        return {
            "embedder": self.id,
            "dimension": self.dimension,
            "query_prefix": self.profile.query_prefix,
            "passage_prefix": self.profile.passage_prefix,
            "backend": self.backend,
        }


def embedding_model_id(spec: str) -> str:
    """The id a collection records for an --embedding-model value (cheap: loads nothing)."""
    if spec == BUNDLED:
        return BUNDLED_EMBEDDING_ID
    path = Path(spec).expanduser()
    if path.is_dir():
        return str(path.resolve())
    return spec


def model_location(spec: str) -> str:
    """A local folder holding the model, downloading it if it is neither bundled nor cached."""
    model_id = embedding_model_id(spec)
    if model_id == BUNDLED_EMBEDDING_ID:
        path = bundled_embedding_model()
        if path is not None:
            return str(path)
        if spec == BUNDLED:
            raise bundled_missing("embedding model")
    if Path(model_id).is_dir():
        return model_id
    return download_model(model_id)


def torch_device(wanted: str = "auto") -> str:
    """Where torch runs the model: a CUDA GPU, else Apple's (MPS), else the CPU ('auto');
    or the device asked for."""
    if wanted != "auto":
        return wanted
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def onnx_providers(wanted: str = "auto") -> list[str]:
    """ONNX Runtime's execution providers, best first: CUDA when ``onnxruntime-gpu`` is
    installed and can use a GPU (and one is not refused), the CPU always last."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if wanted in ("auto", "cuda") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def embedding_device(backend: str, wanted: str = "auto") -> str:
    """Where the local embedding model runs on ``backend``, as ``doctor`` reports it (imports
    the runtime, loads no model)."""
    if backend == "onnx":
        return "cuda" if onnx_providers(wanted)[0] == "CUDAExecutionProvider" else "cpu"
    if backend == "torch":
        return torch_device(wanted)
    return "remote"


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model (torch, fp32): a hub name, a local folder, or 'bundled'."""

    backend = "torch"

    def __init__(self, spec: str, device: str = "auto") -> None:
        self.spec = spec
        self.id = embedding_model_id(spec)
        self.profile = profile_for(self.id)
        self.wanted = device

    @cached_property
    def device(self) -> str:
        return torch_device(self.wanted)

    @cached_property
    def location(self) -> str:
        return model_location(self.spec)

    @cached_property
    def model(self) -> Any:
        location = self.location
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()  # no "sequence longer than max" chatter
        transformers_logging.disable_progress_bar()  # ragchat shows its own progress
        try:
            return SentenceTransformer(location, device=self.device)
        except (OSError, ValueError) as exc:
            raise ModelNotAvailable(
                f"Cannot load embedding model {self.id!r} from {location} ({exc});"
                " check the path, or use --embedding-model bundled."
            ) from exc

    @property
    def dimension(self) -> int:
        get = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        return int(get())

    @property
    def max_tokens(self) -> int:
        limits = [self.model.max_seq_length, self.profile.max_tokens]
        return int(min(x for x in limits if x))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        prefix = self.profile.passage_prefix
        encoded = self.model.tokenizer(
            [prefix + t for t in texts], add_special_tokens=True, truncation=False
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self.model.encode(
            list(texts),
            batch_size=32,
            normalize_embeddings=self.profile.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.tolist()  # type: ignore[no-any-return]


class OnnxEmbedder(Embedder):
    """The same model exported to int8 ONNX, run by ONNX Runtime (see ``onnx_export``).

    The export lives in ``cache``/<model>/ and is made on first use (seconds for small
    models, about a minute for large ones); ``info`` rebuilds it when a local source model
    changes on disk. Querying loads only ONNX Runtime and tokenizers (~0.2 s), never torch.
    """

    backend = "onnx"

    def __init__(
        self,
        spec: str,
        cache: Path,
        threads: int = 0,
        notify: Callable[[str], None] | None = None,
        device: str = "auto",
    ) -> None:
        self.spec = spec
        self.id = embedding_model_id(spec)
        self.profile = profile_for(self.id)
        self.folder = cache / _cache_name(self.id)
        self.threads = threads
        self.notify = notify or (lambda message: None)
        self.device = device

    @cached_property
    def info(self) -> dict[str, Any]:
        """The export's description, exporting the model first if needed."""
        from ragchat import onnx_export

        info_file = self.folder / onnx_export.INFO_FILE
        source = self._local_source()
        fingerprint = _fingerprint(source) if source else None
        if info_file.exists():
            info: dict[str, Any] = json.loads(info_file.read_text())
            if fingerprint is None or info.get("fingerprint") == fingerprint:
                return info
        location = source or model_location(self.spec)
        self.notify(
            f"Preparing a fast int8 copy of embedding model {self.id} (once; a few seconds to a minute)..."
        )
        try:
            onnx_export.export_int8(location, self.folder, fingerprint or _fingerprint(location))
        except ModelNotAvailable:
            raise
        except Exception as exc:  # an architecture the exporter cannot trace, a full disk, ...
            raise ModelNotAvailable(
                f"Could not build the int8 ONNX copy of {self.id} ({type(exc).__name__}: {exc});"
                ' use --embedding-backend torch (or embedding_backend = "torch") for this model.'
            ) from exc
        return json.loads(info_file.read_text())  # type: ignore[no-any-return]

    def _local_source(self) -> str | None:
        """The model's folder when finding it is cheap (bundled or a local path): hub models
        are trusted as exported, so a query never touches the hub."""
        if self.id == BUNDLED_EMBEDDING_ID or Path(self.id).is_dir():
            return model_location(self.spec)
        return None

    @cached_property
    def runtime(self) -> tuple[Any, list[str]]:
        """The ONNX Runtime session, and the names of the inputs it takes.

        ONNX Runtime rewrites the graph (fusions) each time it loads a model: ~70% of a
        session's start, which a cold query pays. The rewritten graph is saved beside the model
        on first use (one file per model file, ONNX Runtime version and providers) and later loaded as it is; the vectors
        are bit for bit the same (tests/test_embedders.py)."""
        from ragchat import onnx_export

        info = self.info
        import onnxruntime

        levels = onnxruntime.GraphOptimizationLevel
        model = self.folder / onnx_export.MODEL_FILE
        providers = onnx_providers(self.device)
        key = _optimized_key(model, onnxruntime.__version__, providers)
        optimized = self.folder / f"{model.stem}.opt-{key}.onnx"

        def session(path: Path, level: Any, save: Path | None = None) -> Any:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1  # parallel across texts instead (see embed_batch)
            options.inter_op_num_threads = 1
            options.log_severity_level = 3  # errors only
            options.graph_optimization_level = level
            if save is not None:
                options.optimized_model_filepath = str(save)
            return onnxruntime.InferenceSession(str(path), options, providers=providers)

        if optimized.exists():
            try:
                return session(optimized, levels.ORT_DISABLE_ALL), info["inputs"]
            except Exception:  # damaged: made again from the model below
                optimized.unlink(missing_ok=True)
        writable = os.access(self.folder, os.W_OK)  # else each start optimizes again
        partial = optimized.with_name(f"{optimized.name}.{os.getpid()}.part") if writable else None
        try:
            # extended, not all: the saved graph then holds no data layout of this CPU's
            loaded = session(model, levels.ORT_ENABLE_EXTENDED, partial)
        except Exception as exc:  # a damaged or foreign file: rebuilding it is the fix
            if partial is not None:
                partial.unlink(missing_ok=True)
            raise ModelNotAvailable(
                f"Cannot load the int8 embedding model in {self.folder} ({exc}); delete that folder"
                " and run the command again to rebuild it."
            ) from exc
        if partial is not None:
            with contextlib.suppress(OSError):
                partial.replace(optimized)
            for stale in self.folder.glob(f"{model.stem}.opt-*.onnx"):  # older models' or runtimes'
                if stale != optimized:
                    stale.unlink(missing_ok=True)
        return loaded, info["inputs"]

    @cached_property
    def tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        from ragchat import onnx_export

        self.info  # noqa: B018 - the export writes the tokenizer
        tokenizer = Tokenizer.from_file(str(self.folder / onnx_export.TOKENIZER_FILE))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        return tokenizer

    @property
    def dimension(self) -> int:
        return int(self.info["dimension"])

    @property
    def max_tokens(self) -> int:
        limits = [self.info["max_seq_length"], self.profile.max_tokens]
        return int(min(x for x in limits if x))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        prefix = self.profile.passage_prefix
        return [len(e.ids) for e in self.tokenizer.encode_batch([prefix + t for t in texts])]

    @cached_property
    def workers(self) -> ThreadPoolExecutor:
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(self.threads or cores(), thread_name_prefix="embed")

    def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        """One text per ONNX Runtime call, texts spread over one thread per core.

        The int8 activations are scaled per call, so batching would make a text's vector
        depend on its batch-mates (and a query's differ from the same text ingested);
        unbatched, a text always gets the same vector. Single-threaded calls run side by side
        (ONNX Runtime releases the GIL) were also faster here than batches: 3.3x against 2.5x
        the fp32 sentence-transformers throughput, see bench/RESULTS.md."""
        import numpy as np

        if not texts:
            return []
        session, inputs = self.runtime
        limit = int(self.info["max_seq_length"])  # what sentence-transformers truncates to

        def embed(encoding: Any) -> Any:
            interrupts.check()  # Ctrl-C in the main thread: the texts not yet begun are not
            ids, types = _truncated(encoding, limit)
            feed = {
                "input_ids": np.array([ids], dtype=np.int64),
                "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
                "token_type_ids": np.array([types], dtype=np.int64),
            }
            return session.run(None, {name: feed[name] for name in inputs})[0][0]

        encodings = self.tokenizer.encode_batch(list(texts))
        rows = (
            [embed(encodings[0])]
            if len(encodings) == 1
            else list(self.workers.map(embed, encodings))
        )
        vectors = np.array(rows, dtype=np.float32).reshape(len(texts), -1)
        if self.profile.normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors.tolist()  # type: ignore[no-any-return]


def _optimized_key(model: Path, runtime_version: str, providers: Sequence[str]) -> str:
    """Names the saved graph of ``model`` (``OnnxEmbedder.runtime``): a new model file,
    another ONNX Runtime or other execution providers (a GPU's fusions) make it anew."""
    import hashlib

    try:
        stat = model.stat()
    except OSError:
        return "missing"
    key = f"{runtime_version}:{','.join(providers)}:{stat.st_size}:{stat.st_mtime_ns}"
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def _truncated(encoding: Any, limit: int) -> tuple[list[int], list[int]]:
    """Ids and type ids cut to ``limit`` tokens, keeping the final special token (as
    sentence-transformers' tokenizer does with truncation)."""
    ids, types = encoding.ids, encoding.type_ids
    if len(ids) <= limit:
        return ids, types
    special = encoding.special_tokens_mask
    tail = 1 if special and special[-1] else 0
    return ids[: limit - tail] + ids[len(ids) - tail :], types[: limit - tail] + types[
        len(types) - tail :
    ]


def _cache_name(model_id: str) -> str:
    import hashlib
    import re

    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", model_id.rstrip("/").rsplit("/", 1)[-1])[:40]
    return f"{tail}-{hashlib.sha1(model_id.encode()).hexdigest()[:10]}"


def _fingerprint(location: str) -> str:
    """Changes when any file of the model folder changes (sizes and times, not contents)."""
    import hashlib

    from ragchat.onnx_export import EXPORT_VERSION

    digest = hashlib.sha1(str(EXPORT_VERSION).encode())
    root = Path(location)
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".cache" not in path.parts:
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def make_embedder(
    spec: str,
    backend: str,
    cache: Path,
    notify: Callable[[str], None] | None = None,
    device: str = "auto",
) -> Embedder:
    """The embedder that runs ``spec`` here, on ``backend`` ('onnx' or 'torch') and ``device``
    (see ``embedding_device``). An embeddings server ('openai:NAME') is ``remote_embedder``'s."""
    if backend == "onnx":
        return OnnxEmbedder(spec, cache, notify=notify, device=device)
    if backend == "torch":
        return SentenceTransformerEmbedder(spec, device=device)
    raise ConfigError(
        f"embedding_backend must be one of {', '.join(EMBEDDING_BACKENDS)}, got {backend!r}."
    )


def download_model(repo_id: str) -> str:
    """A hub model's local folder: from the cache, else downloaded; a clear error offline."""
    from ragchat.hub import fetch

    return fetch(
        repo_id,
        None,
        f"Embedding model {repo_id!r}",
        "use the bundled offline model instead: "
        + use_bundled("--embedding-model", bundled_embedding_model())
        + ' (or RAGCHAT_EMBEDDING_MODEL=bundled, or embedding_model = "bundled" in config.toml).',
    )
