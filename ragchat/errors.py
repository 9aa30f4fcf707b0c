"""The errors ragchat raises on purpose.

Every expected failure is a ``RagchatError`` whose message names the fix; only the CLI turns
them into output (one line on stderr, exit code 1).

    RagchatError
    ├── ConfigError          bad setting, flag or config file
    ├── ModelNotAvailable    a model that is neither on disk nor downloadable
    ├── EmbeddingError       an embeddings server failed (--embedding-model openai:NAME)
    ├── EmbedderMismatch     a collection opened with another embedding model
    ├── StoreError           the Chroma store or the manifest cannot be used
    │   └── StoreBusy        another process holds the store's write lock
    ├── CollectionNotFound   asking a collection that was never ingested
    ├── NotIngested          a path the collection holds no file at or under
    ├── PromptError          a prompt template with missing or unknown variables
    ├── LoadError            one document cannot be read (the ingest goes on without it)
    ├── ExploreError         similar / cluster / map / spectrum asked of what cannot give it
    └── LLMError             the language model failed to load or to answer
"""

from __future__ import annotations


class RagchatError(Exception):
    """Base of every error ragchat raises on purpose; its message names the fix."""

    exit_code = 1


class ConfigError(RagchatError):
    """A setting, flag or config file has a value ragchat cannot use."""


class ModelNotAvailable(RagchatError):
    """A model is neither cached nor downloadable."""


class EmbeddingError(RagchatError):
    """An embeddings server refused, failed or answered something unusable."""


class EmbedderMismatch(RagchatError):
    """A collection was built with another embedding model."""


class StoreError(RagchatError):
    """The vector store or the manifest cannot be opened or written."""


class StoreBusy(StoreError):
    """Another process (an ingest, a watcher) holds the store's write lock."""


class CollectionNotFound(RagchatError):
    """The collection has never been ingested."""


class NotIngested(RagchatError):
    """A path the collection holds no file at or under."""


class PromptError(RagchatError):
    """A prompt template is missing or has the wrong variables."""


class LLMError(RagchatError):
    """The language model could not be loaded or failed while answering."""


class ExploreError(RagchatError):
    """A document not in the collection, more clusters than documents, unusable examples."""


class LoadError(RagchatError):
    """One document cannot be read; its message is the reason shown in the ingest summary."""
