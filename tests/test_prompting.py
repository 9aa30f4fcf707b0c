from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeLLM

from ragchat.errors import LLMError, PromptError
from ragchat.prompting import Prompts, build_messages, pack
from ragchat.store import Hit


def hit(n: int, words: int = 10, page: int | None = None) -> Hit:
    return Hit(
        id=f"id{n}",
        text=" ".join([f"w{n}"] * words),
        path=f"/docs/f{n}.md",
        page=page,
        score=1.0 - n / 100,
    )


def test_shipped_prompts_load_and_say_the_rules():
    prompts = Prompts.load()
    assert "[1]" in prompts.system and "only" in prompts.system
    messages = build_messages(prompts, "Why?", [hit(1, page=4)])
    assert messages[0]["role"] == "system"
    assert "[1] w1" in messages[1]["content"]
    assert "Question: Why?" in messages[1]["content"]


def test_user_override_with_wrong_variables_is_refused(tmp_path: Path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "question.md").write_text("{question} {context}")
    with pytest.raises(PromptError, match=r"missing \{excerpts\}, unknown \{context\}"):
        Prompts.load(tmp_path)


def test_excerpt_template_may_name_the_source(tmp_path: Path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "excerpt.md").write_text("[{n}] ({source}) {text}")
    messages = build_messages(Prompts.load(tmp_path), "Why?", [hit(1, page=4)])
    assert "[1] (/docs/f1.md, page 4) w1" in messages[1]["content"]


def test_user_override_is_used(tmp_path: Path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "system.md").write_text("Talk like a pirate.")
    assert Prompts.load(tmp_path).system == "Talk like a pirate."


def test_pack_drops_lowest_ranked_whole_excerpts():
    prompts = Prompts.load()
    llm = FakeLLM(n_ctx=400)
    hits = [hit(n, words=60) for n in range(1, 8)]
    packed = pack(llm, prompts, "question?", hits, max_tokens=100)
    assert packed.used == hits[: len(packed.used)]
    assert packed.dropped == hits[len(packed.used) :]
    assert 0 < len(packed.used) < 7
    assert packed.prompt_tokens <= 300
    for used in packed.used:  # whole, never cut mid-excerpt
        assert used.text in packed.messages[1]["content"]


def test_pack_refuses_a_question_that_cannot_fit():
    with pytest.raises(LLMError, match="shorten it or raise --n-ctx"):
        pack(FakeLLM(n_ctx=200), Prompts.load(), "word " * 500, [hit(1)], max_tokens=100)
