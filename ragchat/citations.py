"""Checking an answer's citations against the excerpts it was given.

A marker [n] must point at a source; a quotation ("…") must occur in the excerpt it cites (or,
when it cites none, in some excerpt). Comparison ignores case, spacing and typographic quotes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragchat.text import shorten

_MARKER = re.compile(r"\[(\d{1,3})\]")
_QUOTE = re.compile(r"[\"“”]([^\"“”]{12,}?)[\"“”]((?:\s*\[\d{1,3}\])*)")
_SPACE = re.compile(r"\s+")


def markers(text: str) -> list[int]:
    """The source numbers an answer cites, in order of first appearance."""
    return list(dict.fromkeys(int(n) for n in _MARKER.findall(text)))


def _normal(text: str) -> str:
    text = text.replace("’", "'").replace("‘", "'")
    return _SPACE.sub(" ", text).strip().lower()


def check(answer: str, sources: Sequence[str]) -> list[str]:
    """Problems with the citations of ``answer``; ``sources[n-1]`` is the text of source n."""
    problems = [
        f"[{n}] points to no source (there are {len(sources)})"
        for n in markers(answer)
        if not 1 <= n <= len(sources)
    ]
    for match in _QUOTE.finditer(answer):
        quote = _normal(match.group(1))
        cited = [int(n) for n in _MARKER.findall(match.group(2))]
        where = [n for n in cited if 1 <= n <= len(sources)] or range(1, len(sources) + 1)
        if not any(quote in _normal(sources[n - 1]) for n in where):
            target = " ".join(f"[{n}]" for n in cited) if cited else "any excerpt"
            problems.append(f'quotation "{shorten(match.group(1), 60)}" is not in {target}')
    return problems
