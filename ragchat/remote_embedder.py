"""Embeddings from an OpenAI-compatible server: ``--embedding-model openai:MODEL``.

For a laptop too slow to embed: vLLM, TEI, Ollama or llama.cpp's server on a GPU box (or
OpenAI) does the work through the ``openai`` client's embeddings API. The consent rule is
the hosted LLM's (``llms.Endpoint``): an endpoint off this machine is refused, before any
connection, unless ``--allow-remote``. The collection records ``openai:MODEL`` and the
vector dimension; a server that starts answering with another dimension is refused.

Chunk sizes need token counts, and the server gives no tokenizer. When the model's own
tokenizer is on this machine (the bundled model, a local folder, or a hub model already in
the cache) it counts exactly; otherwise ``len(text) / CHARS_PER_TOKEN`` (3) estimates: English
runs ~4 characters a token in the BPE and WordPiece vocabularies embedding models use, so
the estimate counts high and chunks come out a little under target, never over the model's
limit (code and other languages run ~2.5-3, still inside: the limit is 512 against a 200-token
target). Nothing is downloaded to count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragchat.bundled import bundled_embedding_model
from ragchat.embedders import Embedder, profile_for
from ragchat.errors import ConfigError, EmbedderMismatch, EmbeddingError
from ragchat.llms import CHARS_PER_TOKEN, OPENAI_PREFIX, Endpoint

if TYPE_CHECKING:
    from ragchat.config import Settings

REQUEST_BATCH = 64  # texts per request: well under every server's limit, few round trips
DEFAULT_MAX_TOKENS = 512  # what most embedding models take, when the profile does not say
DIMENSION_PROBE = "dimension"


def is_remote(spec: str) -> bool:
    return spec.startswith(OPENAI_PREFIX)


class OpenAIEmbedder(Embedder):
    """An embedding model behind an OpenAI-compatible ``/v1/embeddings``."""

    backend = "openai"

    def __init__(
        self,
        spec: str,
        base_url: str = "",
        api_key: str = "",
        allow_remote: bool = False,
        dimension: int | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.model = spec[len(OPENAI_PREFIX) :]
        if not self.model:
            raise ConfigError(
                "--embedding-model openai: needs a model name, e.g. openai:text-embedding-3-small."
            )
        self.id = spec
        self.profile = profile_for(self.model)  # E5's "query: " / "passage: " by name
        self.endpoint = Endpoint(
            base_url,
            api_key,
            allow_remote,
            flag="--embedding-base-url",
            key_settings="RAGCHAT_EMBEDDING_API_KEY, OPENAI_API_KEY or embedding_api_key in"
            " config.toml",
        )
        self.endpoint.check("text to be embedded")  # refused before anything connects
        self.expected = dimension  # the collection's, when it has one
        self._dimension: int | None = None
        if self.endpoint.remote and notify:
            notify(f"Note: text is sent to {self.endpoint.host} to be embedded ({self.id}).")

    @classmethod
    def from_settings(
        cls,
        spec: str,
        settings: Settings,
        dimension: int | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> OpenAIEmbedder:
        """The embedder ``spec`` names, at the endpoint, key and consent of ``settings``;
        ``dimension`` is the collection's, when it has one."""
        return cls(
            spec,
            settings.embedding_base_url,
            settings.embedding_api_key,
            settings.allow_remote,
            dimension,
            notify,
        )

    @property
    def destination(self) -> str | None:
        return self.endpoint.host if self.endpoint.remote else None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed_batch([DIMENSION_PROBE])
        assert self._dimension is not None
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self.profile.max_tokens or DEFAULT_MAX_TOKENS

    @cached_property
    def tokenizer(self) -> Any:
        """The model's own tokenizer when it is on this machine, else None (estimate)."""
        found = local_tokenizer(self.model)
        if found is None:
            return None
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(found))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        return tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        prefixed = [self.profile.passage_prefix + t for t in texts]
        if self.tokenizer is None:
            return [len(t) // CHARS_PER_TOKEN + 2 for t in prefixed]  # 2: start and end tokens
        return [len(e.ids) for e in self.tokenizer.encode_batch(prefixed)]

    def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), REQUEST_BATCH):
            vectors += self._request(list(texts[start : start + REQUEST_BATCH]))
        return vectors

    def _request(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        try:
            response = self.endpoint.client.embeddings.create(
                model=self.model, input=texts, encoding_format="float"
            )
        except Exception as exc:  # from None: no trace of the request or the key
            raise self.endpoint.error(
                exc, self.model, "--embedding-model", EmbeddingError
            ) from None
        rows = sorted(response.data, key=lambda row: row.index)
        if len(rows) != len(texts):
            raise EmbeddingError(
                f"{self.endpoint.host} returned {len(rows)} embeddings for {len(texts)} texts;"
                " check that it serves an embedding model (llama.cpp: --embedding true)."
            )
        vectors = np.array([_pooled(row.embedding) for row in rows], dtype=np.float32)
        self._check_dimension(vectors.shape[1])
        if self.profile.normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors.tolist()  # type: ignore[no-any-return]

    def _check_dimension(self, dimension: int) -> None:
        wanted = self._dimension or self.expected
        if wanted is not None and dimension != wanted:
            raise EmbedderMismatch(
                f"{self.endpoint.host} now returns {dimension}-d vectors for {self.model!r}, but"
                f" the collection holds {wanted}-d ones: it serves another model than the one"
                " that built it; serve that one again, or rebuild with 'ragchat ingest --reindex PATH'."
            )
        self._dimension = dimension


def _pooled(embedding: Any) -> Any:
    """One vector for a text: a server answering with a vector per token (llama.cpp's server
    for a model without a pooling layer) is mean-pooled here."""
    import numpy as np

    array = np.asarray(embedding, dtype=np.float32)
    if array.ndim == 2:
        return array.mean(axis=0)
    if array.ndim != 1 or not array.size:
        raise EmbeddingError(
            "The embeddings server answered with something that is not a vector; check that it"
            " serves an embedding model."
        )
    return array


def local_tokenizer(model: str) -> Path | None:
    """tokenizer.json of ``model`` when it is here already: bundled, a local folder, or a hub
    model in the cache. Never downloads."""
    if model.lower().rstrip("/").endswith("all-minilm-l6-v2"):  # the bundled one, by any name
        folder = bundled_embedding_model()
    elif Path(model).expanduser().is_dir():
        folder = Path(model).expanduser()
    else:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "tokenizer.json")
        except Exception:  # not a hub name at all (e.g. "text-embedding-3-small:v2")
            return None
        return Path(cached) if isinstance(cached, str) else None
    file = folder / "tokenizer.json" if folder else None
    return file if file is not None and file.is_file() else None
