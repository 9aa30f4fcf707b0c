"""Follow-ups in a conversation: a rewrite that is not a question is discarded, and retrieval
never depends on the rewrite alone."""

from __future__ import annotations

from pathlib import Path

from fakes import FakeLLM
from helpers import make_app, write

from ragchat.engine import copies, is_question, usable_rewrite
from ragchat.prompting import Turn

LAST = Turn(
    "How do I make a backup?",
    "Run the backup tool each night; it copies the whole archive to the second disk [1].",
)


def test_a_rewrite_must_read_as_a_question():
    assert is_question("How long does restoring from the nightly backup take?")
    assert is_question("restore time of the nightly backup?")
    assert is_question("Explain how restoring works.")
    assert not is_question("The backup tool copies the archive.")
    assert not is_question("")


def test_a_rewrite_that_copies_the_last_answer_is_discarded():
    question = "And how long does restoring from it take?"
    assert copies("Run the backup tool each night; it copies the whole archive.", LAST.answer)
    assert not copies("How long does restoring from the nightly backup take?", LAST.answer)
    assert not usable_rewrite(LAST.answer, question, [LAST])  # the bundled model did this
    assert not usable_rewrite("Is " + LAST.answer, question, [LAST])  # a question in form only
    assert not usable_rewrite("", question, [LAST])
    assert usable_rewrite("How long does restoring from the nightly backup take?", question, [LAST])


def follow_up_app(home: Path, tmp_path: Path, replies: list[str]):
    docs = tmp_path / "docs"
    write(docs, "backup.md", "# Backups\n\nRun the backup tool each night to copy the archive.\n")
    write(
        docs,
        "restore.md",
        "# Restoring\n\nRestoring the archive from a backup takes forty minutes.\n",
    )
    write(docs, "garden.md", "# Garden\n\nTomatoes need sun and water every day.\n")
    app = make_app(home)
    app._llm = FakeLLM(replies)
    app.ingest(docs)
    return app, docs


def test_a_bad_rewrite_is_not_searched_and_the_follow_up_still_finds_its_excerpt(
    ragchat_home: Path, tmp_path: Path
):
    app, docs = follow_up_app(ragchat_home, tmp_path, [LAST.answer, "It takes forty minutes [1]."])
    engine = app.engine()
    answer = engine.ask("And how long does restoring from it take?", history=[LAST])
    assert answer.queries == [f"{LAST.question} And how long does restoring from it take?"]
    assert str(docs / "restore.md") in [h.path for h in answer.sources]


def test_a_good_rewrite_is_searched_beside_the_follow_up(ragchat_home: Path, tmp_path: Path):
    rewrite = "How long does restoring the archive from a backup take?"
    app, docs = follow_up_app(ragchat_home, tmp_path, [rewrite, "Forty minutes [1]."])
    answer = app.engine().ask("And how long does restoring from it take?", history=[LAST])
    assert answer.queries == [rewrite, f"{LAST.question} And how long does restoring from it take?"]
    assert answer.query == rewrite and answer.sources[0].path == str(docs / "restore.md")
    assert "queries" in answer.sources[0].scores  # ranked by the fusion of both searches
    assert answer.to_dict()["queries"] == answer.queries


def test_a_follow_up_that_stands_alone_is_searched_as_itself_too(
    ragchat_home: Path, tmp_path: Path
):
    question = "How long does restoring the archive take?"
    app, docs = follow_up_app(ragchat_home, tmp_path, [question, "Forty minutes [1]."])
    answer = app.engine().ask(question, history=[LAST])
    assert answer.queries == [question, f"{LAST.question} {question}"]
    assert answer.sources[0].path == str(docs / "restore.md")
