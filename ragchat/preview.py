"""What an ingest makes of one file, without embedding or storing it (``ragchat chunks``).

The file is read exactly as an ingest reads it (in the worker, for the formats that need
one), split by the same chunker for the same embedder, and each chunk's size counted with
that embedder's tokenizer: what a user needs to see why a question missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragchat.chunking import Chunk, chunk_pages
from ragchat.embedders import Embedder
from ragchat.errors import LoadError
from ragchat.ingest import reader_for
from ragchat.isolation import SafeLoader
from ragchat.loaders import file_notes, loader_for, unsupported_reason


@dataclass
class Split:
    path: str
    chunks: list[Chunk]
    tokens: list[int]  # per chunk: what the embedder sees (headings, prefix, special tokens)
    notes: list[str]  # what was off reading the file
    embedder: str
    target: int  # the chunk size aimed at, and the embedder's hard limit, in tokens
    limit: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "embedder": self.embedder,
            "target_tokens": self.target,
            "limit_tokens": self.limit,
            "notes": self.notes,
            "chunks": [
                {
                    "n": n,
                    "page": chunk.page,
                    "page_label": chunk.label,
                    "headings": chunk.heading_path,
                    "tokens": tokens,
                    "start": chunk.start,
                    "end": chunk.end,
                    "text": chunk.text,
                    **({"line": chunk.line, "end_line": chunk.end_line} if chunk.line else {}),
                }
                for n, (chunk, tokens) in enumerate(zip(self.chunks, self.tokens, strict=True), 1)
            ],
        }


def split_file(path: Path, embedder: Embedder, chunk_tokens: int) -> Split:
    """How ``path`` is split into chunks for ``embedder``; LoadError when it cannot be read."""
    path = path.expanduser().absolute()
    if not path.is_file():
        raise LoadError(f"{path} is not a file; name one file, e.g. ragchat chunks report.docx")
    if loader_for(path) is None:
        raise LoadError(f"Cannot read {path.name}: {unsupported_reason(path)}")
    safe = SafeLoader()
    try:
        pages = list(reader_for(path, safe)(path))  # a big file's windows too
    except LoadError as exc:
        raise LoadError(f"Cannot read {path.name}: {exc}") from None
    finally:
        safe.close()
    limit = embedder.max_tokens
    chunks = chunk_pages(pages, embedder.count_tokens, chunk_tokens, limit)
    tokens = embedder.count_tokens([c.embed_text for c in chunks]) if chunks else []
    return Split(
        str(path), chunks, tokens, file_notes(pages), embedder.id, min(chunk_tokens, limit), limit
    )
