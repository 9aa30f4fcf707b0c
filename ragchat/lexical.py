"""The lexical index: BM25 over chunk text, in SQLite FTS5 with the Porter stemmer.

It lives in the manifest's database, one FTS5 table per collection, and is written in the
same transaction as the manifest row of each file, so the two can never disagree.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Sequence

# Words that match nearly every chunk: dropped from queries (not from the index).
STOPWORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves"]
)
_WORDS = re.compile(r"\w+", re.UNICODE)


def table_name(collection: str) -> str:
    return "fts_" + hashlib.sha1(collection.encode()).hexdigest()[:16]


def match_expression(query: str) -> str | None:
    """An FTS5 query that ORs the query's words (quoted, so no word is FTS syntax)."""
    words = []
    for word in _WORDS.findall(query.lower()):
        if word not in STOPWORDS and word not in words:
            words.append(word)
    if not words:
        words = list(dict.fromkeys(_WORDS.findall(query.lower())))
    return " OR ".join(f'"{w}"' for w in words) or None


class LexicalIndex:
    """BM25 search over one collection's chunks; shares the manifest's connection."""

    def __init__(self, db: sqlite3.Connection, collection: str) -> None:
        self.db = db
        self.table = table_name(collection)
        self.db.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {self.table} USING fts5("
            "text, chunk_id UNINDEXED, path UNINDEXED,"
            " tokenize = 'porter unicode61 remove_diacritics 2')"
        )

    def replace(self, path: str, ids: Sequence[str], texts: Sequence[str]) -> None:
        """The chunks of ``path`` become exactly these (call inside a transaction)."""
        self.remove(path)
        self.add(path, ids, texts)

    def add(self, path: str, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Index the chunks of a file that has none indexed yet."""
        self.db.executemany(
            f"INSERT INTO {self.table} (text, chunk_id, path) VALUES (?, ?, ?)",
            [(text, chunk_id, path) for chunk_id, text in zip(ids, texts, strict=True)],
        )

    def remove(self, *paths: str) -> None:
        """Forget these files' chunks. ``path`` is not indexed (FTS5 columns cannot be), so
        each call scans the table: remove many files in one call."""
        for start in range(0, len(paths), 500):
            batch = paths[start : start + 500]
            self.db.execute(f"DELETE FROM {self.table} WHERE path IN ({', '.join('?' * len(batch))})", batch)

    def drop(self) -> None:
        self.db.execute(f"DROP TABLE IF EXISTS {self.table}")

    def count(self) -> int:
        return int(self.db.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0])

    def search(
        self, query: str, k: int, paths: Sequence[str] | None = None
    ) -> list[tuple[str, str, float]]:
        """(chunk id, path, BM25 score: higher is better) of the ``k`` best matches."""
        expression = match_expression(query)
        if expression is None:
            return []
        sql = f"SELECT chunk_id, path, bm25({self.table}) AS score FROM {self.table} WHERE {self.table} MATCH ?"
        params: list[object] = [expression]
        if paths:
            sql += f" AND path IN ({', '.join('?' * len(paths))})"
            params.extend(paths)
        sql += " ORDER BY score LIMIT ?"
        params.append(k)
        return [(chunk_id, path, -score) for chunk_id, path, score in self.db.execute(sql, params)]
