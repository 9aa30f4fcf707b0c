"""Document and chunk ids: made here, and read back here, nowhere else.

A document's id is the first 20 hex digits of the SHA-1 of its path (as the manifest records
it); chunk ``i`` of that document is ``<document id>-<i>``. Both are deterministic, so
re-ingesting a file overwrites its own chunks, and a chunk id says which document it belongs
to without a lookup. The document id also names the file's record in ``NAME__docs`` and, on a
Chroma server, in ``NAME__files``.
"""

from __future__ import annotations

import hashlib

from ragchat.errors import RagchatError


def document_id(path: str) -> str:
    """The id of the document at ``path``: what every chunk id of it starts with."""
    return hashlib.sha1(path.encode()).hexdigest()[:20]


def chunk_id(path: str, index: int) -> str:
    """The id of chunk ``index`` (from 0) of the document at ``path``."""
    return f"{document_id(path)}-{index}"


def parse_chunk_id(chunk: str) -> tuple[str, int]:
    """(document id, index) of a chunk id made by ``chunk_id``; anything else (an id typed
    by hand, or handed over by an MCP client) is an error naming where ids come from."""
    document, _, index = chunk.rpartition("-")
    if not document or not index.isdigit():
        raise RagchatError(f"{chunk!r} is not a chunk id; use a chunk_id from a search result.")
    return document, int(index)
