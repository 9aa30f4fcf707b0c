"""Checking an answer against the excerpts it was given.

A marker [n] must point at a source; a quotation ("…") must occur in the excerpt it cites (or,
when it cites none, in some excerpt). Comparison ignores case, spacing and typographic quotes.
``review`` adds two checks a small model needs: every number in the answer must be found in
an excerpt or the question (allowing rounding and a change of scale by thousands; citation
markers and list numbering are not numbers here; excerpts' numbers written as
words, "forty", count), and an answer given excerpts must cite at least one (unless it says
the documents do not say).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ragchat.text import shorten

_MARKER = re.compile(r"\[(\d{1,3})\]")
_QUOTE = re.compile(r"[\"“”]([^\"“”]{12,}?)[\"“”]((?:\s*\[\d{1,3}\])*)")
_SPACE = re.compile(r"\s+")
# 1,800 / 1800 / 27.5 / 0.25; digits next to letters count too (FY2023 -> 2023)
_NUMBER = re.compile(r"(?<![\d.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d])")
_LIST_ITEM = re.compile(r"^\s*\d{1,3}[.)](?=\s)", re.MULTILINE)
_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_NUMBER_WORD = re.compile(
    r"\b(?:("
    + "|".join(_TENS)
    + r")(?:[- ]("
    + "|".join(_UNITS[1:10])
    + r"))?|("
    + "|".join(_UNITS)
    + r")|(hundred|thousand))\b",
    re.IGNORECASE,
)
# What a model says when the excerpts do not hold the answer (the system prompt asks it to
# say "the documents do not say").
_DECLINES = re.compile(
    r"\b(?:do(?:es)? not|don't|doesn't|did not|didn't) (?:say|mention|contain|include|provide"
    r"|specify|state)|\bnot (?:mentioned|stated|specified|provided|found|available|included)\b"
    r"|\bno (?:information|mention|details?|data)\b|\b(?:cannot|can't|unable to) (?:find|answer"
    r"|determine|tell)",
    re.IGNORECASE,
)


def markers(text: str) -> list[int]:
    """The source numbers an answer cites, in order of first appearance."""
    return list(dict.fromkeys(int(n) for n in _MARKER.findall(text)))


def _normal(text: str) -> str:
    text = text.replace("’", "'").replace("‘", "'")
    return _SPACE.sub(" ", text).strip().lower()


def check(answer: str, sources: Sequence[str]) -> list[str]:
    """Problems with the citations of ``answer``; ``sources[n-1]`` is the text of source n."""
    return _unknown(answer, sources) + _unquoted(answer, sources)


def _unknown(answer: str, sources: Sequence[str]) -> list[str]:
    return [
        f"[{n}] points to no source (there are {len(sources)})"
        for n in markers(answer)
        if not 1 <= n <= len(sources)
    ]


def _unquoted(answer: str, sources: Sequence[str]) -> list[str]:
    problems = []
    for match in _QUOTE.finditer(answer):
        quote = _normal(match.group(1))
        cited = [int(n) for n in _MARKER.findall(match.group(2))]
        where = [n for n in cited if 1 <= n <= len(sources)] or range(1, len(sources) + 1)
        if not any(quote in _normal(sources[n - 1]) for n in where):
            target = " ".join(f"[{n}]" for n in cited) if cited else "any excerpt"
            problems.append(f'quotation "{shorten(match.group(1), 60)}" is not in {target}')
    return problems


def declines(answer: str) -> bool:
    """Does the answer say the documents do not hold the answer?"""
    return bool(_DECLINES.search(answer))


def numbers(text: str) -> list[str]:
    """The numbers written in ``text`` as digits, in order, without citation markers and
    list numbering ("1. ", "2) " at the start of a line)."""
    text = _LIST_ITEM.sub(" ", _MARKER.sub(" ", text))
    return list(dict.fromkeys(m.group(0) for m in _NUMBER.finditer(text)))


def _values(text: str) -> set[float]:
    """Every number in ``text``: digits, and small numbers written as words (forty-eight)."""
    found = {float(n.replace(",", "")) for n in numbers(text)}
    for match in _NUMBER_WORD.finditer(text):
        tens, unit, single, big = (g.lower() if g else g for g in match.groups())
        if tens:
            found.add(10.0 * (_TENS.index(tens) + 2) + (_UNITS.index(unit) if unit else 0))
        elif single:
            found.add(float(_UNITS.index(single)))
        elif big:
            found.add(100.0 if big == "hundred" else 1000.0)
    return found


def supported(number: str, values: Iterable[float]) -> bool:
    """Is ``number`` (as the answer writes it) one of ``values``, allowing what a faithful
    answer does to a number: rounding to the decimals it shows, and a change of scale by
    thousands (1,800 in a table "in millions" is $1.8 billion)."""
    value = float(number.replace(",", ""))
    decimals = len(number.partition(".")[2])
    for candidate in values:
        for scale in (1.0, 1e3, 1e-3, 1e6, 1e-6):
            if abs(round(candidate * scale, decimals) - value) <= 1e-9 * max(1.0, abs(value)):
                return True
    return False


@dataclass(frozen=True)
class Review:
    """What is wrong with an answer, against its excerpts."""

    unknown_markers: list[str] = field(default_factory=list)  # "[n] points to no source ..."
    unverified_quotes: list[str] = field(default_factory=list)
    unsupported_numbers: list[str] = field(default_factory=list)  # as written in the answer
    uncited: bool = False  # excerpts were given, the answer cites none of them

    @property
    def citations_valid(self) -> bool:
        """Cited sources exist, quotations are verbatim, numbers are in the excerpts."""
        return not (self.unknown_markers or self.unverified_quotes or self.unsupported_numbers)

    @property
    def problems(self) -> list[str]:
        """One line per problem, as the chat and ``ask`` show them."""
        lines = [*self.unknown_markers, *self.unverified_quotes]
        if self.unsupported_numbers:
            listed = ", ".join(self.unsupported_numbers[:8])
            more = len(self.unsupported_numbers) - 8
            lines.append(
                f"number{'s' if len(self.unsupported_numbers) > 1 else ''} {listed}"
                f"{f' (and {more} more)' if more > 0 else ''} not found in any excerpt"
            )
        if self.uncited:
            lines.append("the answer cites no excerpt")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "citations_valid": self.citations_valid,
            "unknown_markers": self.unknown_markers,
            "unverified_quotes": self.unverified_quotes,
            "unsupported_numbers": self.unsupported_numbers,
            "uncited": self.uncited,
        }


def review(answer: str, sources: Sequence[str], question: str = "") -> Review:
    """Check ``answer`` against ``sources`` (``sources[n-1]`` is the text of source n): its
    markers and quotations (``check``), its numbers (found in an excerpt or the question?),
    and whether it cites anything at all."""
    values = _values(question)
    for text in sources:
        values |= _values(text)
    unsupported = [n for n in numbers(answer) if not supported(n, values)]
    return Review(
        unknown_markers=_unknown(answer, sources),
        unverified_quotes=_unquoted(answer, sources),
        unsupported_numbers=unsupported,
        uncited=bool(sources and answer.strip() and not markers(answer) and not declines(answer)),
    )
