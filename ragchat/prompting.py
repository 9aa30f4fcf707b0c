"""Prompt templates (files in prompts/) and packing excerpts into the LLM's token budget.

Excerpts are document text, so they are quoted where no document can reach out of them:
each excerpt's text stands between two fence lines of double quotes, longer than any run of
quotes in any excerpt of the request (as a Markdown code fence is longer than any run of
backticks inside it), and its number stands outside the fence. A document that writes its
own closing quotes, ``[9]`` or ``Question:`` lines stays inside its own quote.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from ragchat.errors import LLMError, PromptError
from ragchat.llms import LLM, TEMPLATE_OVERHEAD, Message
from ragchat.store import Hit

# Each template: the variables it must use, and those it may use.
TEMPLATES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "system": (frozenset(), frozenset()),
    "question": (frozenset({"excerpts", "question"}), frozenset({"fence"})),
    "excerpt": (frozenset({"n", "text"}), frozenset({"source"})),
    "condense": (frozenset({"history", "question"}), frozenset()),
    "cluster": (frozenset({"documents"}), frozenset({"keywords"})),
}
HISTORY_SHARE = 4  # the conversation may take at most 1/4 of the prompt budget
FENCE = '"'
_QUOTE_RUNS = re.compile(FENCE + "+")


def prompts_dirs(home: Path | None = None) -> list[Path]:
    """Where templates are looked up: the user's overrides first, then the shipped ones."""
    package = Path(__file__).resolve().parent
    dirs = [package / "prompts", package.parent / "prompts"]
    if home is not None:
        dirs.insert(0, home / "prompts")
    return [d for d in dirs if d.is_dir()]


def load_template(name: str, dirs: Sequence[Path]) -> str:
    for folder in dirs:
        path = folder / f"{name}.md"
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            check_variables(name, text, path)
            return text.strip("\n")
    raise PromptError(
        f"Prompt template {name}.md not found in {', '.join(map(str, dirs))}; reinstall ragchat."
    )


def check_variables(name: str, text: str, path: Path) -> None:
    try:
        found = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except ValueError as exc:
        raise PromptError(f"{path}: {exc}; write a literal brace as '{{{{' or '}}}}'.") from exc
    required, optional = TEMPLATES[name]
    missing, unknown = sorted(required - found), sorted(found - required - optional)
    if missing or unknown:
        problems = [f"missing {{{m}}}" for m in missing] + [f"unknown {{{u}}}" for u in unknown]
        allowed = ", ".join("{" + v + "}" for v in sorted(required | optional)) or "no variables"
        raise PromptError(f"{path}: {', '.join(problems)}; the template may use {allowed}.")


@dataclass(frozen=True)
class Prompts:
    system: str
    question: str
    excerpt: str
    condense: str

    @classmethod
    def load(cls, home: Path | None = None) -> Prompts:
        dirs = prompts_dirs(home)
        return cls(*(load_template(f.name, dirs) for f in fields(cls)))


def source_label(hit: Hit) -> str:
    """Where an excerpt is from, on one line (a file name may hold a newline)."""
    label = hit.location
    if hit.symbol:
        label += f" — {hit.symbol}"
    elif hit.headings:
        label += f" — {hit.headings}"
    return " ".join(label.split())


def fence_for(texts: Sequence[str]) -> str:
    """The quote fence for these excerpts: three double quotes, or one more than the longest
    run of them in any text, so no text holds a line that closes it."""
    longest = max((len(run) for t in texts for run in _QUOTE_RUNS.findall(t)), default=0)
    return FENCE * max(3, longest + 1)


def format_excerpt(prompts: Prompts, n: int, hit: Hit, fence: str) -> str:
    """Excerpt ``n`` as the model sees it: its number outside, its text between fences."""
    quoted = f"{fence}\n{hit.text.strip()}\n{fence}"
    return prompts.excerpt.format(n=n, source=source_label(hit), text=quoted)


@dataclass(frozen=True)
class Turn:
    """One exchange of a conversation."""

    question: str
    answer: str


@dataclass
class Packed:
    messages: list[Message]
    used: list[Hit]
    dropped: list[Hit]
    prompt_tokens: int
    budget: int
    history: list[Turn] = field(default_factory=list)  # the turns that fitted


def recent_turns(llm: LLM, turns: Sequence[Turn], allowance: int) -> list[Turn]:
    """The newest turns whose text fits in ``allowance`` tokens, oldest first."""
    kept: list[Turn] = []
    total = 0
    for turn in reversed(turns):
        total += (
            llm.count_tokens(turn.question) + llm.count_tokens(turn.answer) + 2 * TEMPLATE_OVERHEAD
        )
        if total > allowance:
            break
        kept.insert(0, turn)
    return kept


def build_messages(
    prompts: Prompts, question: str, hits: Sequence[Hit], history: Sequence[Turn] = ()
) -> list[Message]:
    """System, then the conversation so far, then the excerpts with the question: the stable
    part comes first, so llama.cpp reuses its cache for it on a follow-up."""
    fence = fence_for([hit.text for hit in hits])
    excerpts = "\n\n".join(
        format_excerpt(prompts, n, hit, fence) for n, hit in enumerate(hits, start=1)
    )
    conversation: list[Message] = []
    for turn in history:
        conversation.append({"role": "user", "content": turn.question})
        conversation.append({"role": "assistant", "content": turn.answer})
    return [
        {"role": "system", "content": prompts.system},
        *conversation,
        {
            "role": "user",
            "content": prompts.question.format(
                excerpts=excerpts or "(no excerpts found)", question=question, fence=fence
            ),
        },
    ]


def pack(
    llm: LLM,
    prompts: Prompts,
    question: str,
    hits: Sequence[Hit],
    max_tokens: int,
    history: Sequence[Turn] = (),
) -> Packed:
    """The prompt with as many excerpts as fit in n_ctx - max_tokens; the rest dropped,
    lowest-ranked first, never cut mid-excerpt. The newest turns of the conversation come
    along, within a quarter of the budget."""
    budget = llm.n_ctx - max_tokens
    history = recent_turns(llm, history, budget // HISTORY_SHARE) if history else []
    base = llm.prompt_tokens(build_messages(prompts, question, [], history))
    if base > budget:
        raise LLMError(
            f"The question alone needs {base} tokens but only {budget} fit"
            f" (n_ctx {llm.n_ctx} - max_tokens {max_tokens}); shorten it or raise --n-ctx."
        )
    fence = fence_for([h.text for h in hits])  # the longest any subset of them needs
    costs = [
        llm.count_tokens(format_excerpt(prompts, n, h, fence) + "\n\n")
        for n, h in enumerate(hits, start=1)
    ]
    keep, total = 0, base
    for cost in costs:
        if total + cost > budget:
            break
        total += cost
        keep += 1
    while True:  # the estimate is additive; confirm with the exact count
        messages = build_messages(prompts, question, hits[:keep], history)
        tokens = llm.prompt_tokens(messages)
        if tokens <= budget or keep == 0:
            return Packed(
                messages, list(hits[:keep]), list(hits[keep:]), tokens, budget, list(history)
            )
        keep -= 1


def condense_messages(
    llm: LLM, prompts: Prompts, question: str, history: Sequence[Turn], allowance: int
) -> list[Message]:
    """The request that turns a follow-up into a standalone query for retrieval."""
    turns = recent_turns(llm, history, allowance)
    text = "\n".join(f"User: {t.question}\nAssistant: {t.answer}" for t in turns)
    return [{"role": "user", "content": prompts.condense.format(history=text, question=question)}]
