"""The chat REPL driven by given lines: every slash command, @path scoping, and surviving
errors. Fast: a real Chroma store with the fake embedder and the queued fake LLM (the real
terminal, with the bundled models, is test_repl.py)."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path

from fakes import FakeEmbedder, FakeLLM
from helpers import write
from rich.console import Console

from ragchat.app import App
from ragchat.config import Settings
from ragchat.errors import LLMError
from ragchat.llms import Generation, Message
from ragchat.repl import Repl
from ragchat.retrieval import LexicalRetriever


def chat_app(home: Path, llm: FakeLLM | None = None, collection: str = "default") -> App:
    settings = Settings(collection=collection, embedding_model="fake/bag-of-words")
    return App(
        home,
        settings,
        explicit=frozenset({"embedding_model"}),
        embedder=FakeEmbedder(),
        llm=llm or FakeLLM(),
    )


def run(app: App, lines: Sequence[str]) -> tuple[str, Repl]:
    """What the session printed for these lines, and the REPL after them."""
    out = io.StringIO()
    repl = Repl(app, Console(file=out, width=120, color_system=None), lines=lines)
    repl.run()
    return out.getvalue(), repl


def test_every_slash_command(ragchat_home: Path, docs: Path, tmp_path: Path):
    llm = FakeLLM()
    app = chat_app(ragchat_home, llm)
    app.ingest(docs)
    saved, unwritable = tmp_path / "talk.md", tmp_path / "missing" / "talk.md"
    output, repl = run(
        app,
        [
            "/help",
            "/sources",
            "/why",
            "What colour are bananas?",
            "/sources",
            "/why",
            "/k",
            "/k 0",
            "/k 2",
            "/mode",
            "/mode fuzzy",
            "/mode lexical",
            "/model",
            "/clear",
            f"/save {saved}",
            "/save",
            f"/save {unwritable}",
            "/frobnicate",
            "/EXIT",
            "Never asked?",
        ],
    )
    assert "ragchat — collection 'default', LLM fake-llm." in output
    assert "/collection  NAME: ask another collection" in output  # /help
    assert "@path in a question searches only that file or folder." in output
    assert "No sources yet: ask a question first." in output
    assert "Nothing to explain yet: ask a question first." in output

    # the question: a streamed answer, its sources, the context line
    assert "The answer is in the excerpt [1]." in output
    assert f"[1] {docs / 'b.txt'}" in output
    assert "excerpts," in output and "of 2048 context tokens" in output
    # /sources: each source with its text; /why: what was searched and what went in
    assert "Bananas are yellow." in output
    assert "Searched: What colour are bananas?" in output and "in prompt" in output

    assert "Usage: /k N (now 5)" in output and output.count("Usage: /k N") == 2
    assert "Retrieving 2 excerpts per question." in output and repl.engine.top_k == 2
    assert "Usage: /mode dense|lexical|hybrid (now hybrid)" in output
    assert output.count("Usage: /mode") == 2
    assert "Ranking excerpts by lexical." in output
    assert repl.app.settings.mode == "lexical"
    assert isinstance(repl.engine.retriever, LexicalRetriever)
    assert repl.app.embedder is app.embedder  # the same model, not loaded again
    assert "LLM: fake-llm (context 2048 tokens)" in output
    assert "Embeddings: fake/bag-of-words" in output and "Ranking: lexical, 2 excerpts" in output
    assert "Conversation forgotten." in output and repl.turns == []

    assert f"Saved 1 answers to {saved}." in output
    text = saved.read_text()
    assert text.startswith("# ragchat conversation, ")
    assert "## What colour are bananas?\n\nThe answer is in the excerpt [1]." in text
    assert f"1. {docs / 'b.txt'}" in text
    assert "Usage: /save FILE" in output
    assert f"Cannot write {unwritable}: No such file or directory" in output
    assert "Unknown command /frobnicate; /help lists them." in output

    assert len(llm.prompts) == 1  # /EXIT left before the last line
    assert len(repl.answers) == 1


def test_quit_leaves_and_the_end_of_input_too(ragchat_home: Path, docs: Path):
    llm = FakeLLM()
    app = chat_app(ragchat_home, llm)
    app.ingest(docs)
    run(app, ["/quit", "Not asked?"])
    assert llm.prompts == []
    output, repl = run(app, ["", "   ", "Are cherries small?"])  # blank lines are skipped
    assert len(llm.prompts) == 1 and len(repl.answers) == 1 and repl.turns
    assert output.rstrip().endswith("context tokens")


def test_collection_switches_and_a_missing_one_is_an_error(
    ragchat_home: Path, docs: Path, tmp_path: Path
):
    write(tmp_path / "notes", "tides.md", "The spring tide rises two metres at the quay.")
    chat_app(ragchat_home).ingest(docs)
    chat_app(ragchat_home, collection="notes").ingest(tmp_path / "notes")
    output, repl = run(
        chat_app(ragchat_home),
        [
            "What colour are bananas?",
            "/collection",
            "/collection nowhere",
            "/collection notes",
            "How high is the spring tide?",
        ],
    )
    assert "Usage: /collection NAME (now default)" in output
    assert (
        "Error: Collection 'nowhere' is empty (known: default, notes); run 'ragchat ingest PATH"
        " --collection nowhere' first." in output
    )
    assert "Asking collection 'notes' (conversation cleared)." in output
    assert repl.engine.collection == "notes" and repl.app.collection.name == "notes"
    assert [h.path for h in repl.answers[-1].sources] == [str(tmp_path / "notes" / "tides.md")]
    assert len(repl.turns) == 1  # the conversation restarted in the new collection


def test_at_path_searches_only_that_folder(ragchat_home: Path, docs: Path):
    # the second question is a follow-up: the LLM rewrites it (as itself) before the search
    app = chat_app(
        ragchat_home, FakeLLM(["Cherries [1].", "Which fruit is yellow?", "Bananas [1]."])
    )
    app.ingest(docs)
    output, repl = run(
        app, [f"Which fruits are small? @{docs / 'sub'}", "Which fruit is yellow? @nowhere"]
    )
    scoped, unscoped = repl.answers
    assert scoped.question == "Which fruits are small?"  # the @path word is not searched
    assert scoped.sources and {h.path for h in scoped.sources} == {str(docs / "sub" / "c.html")}
    assert "Nothing ingested under nowhere; searching everything." in output
    assert unscoped.sources[0].path == str(docs / "b.txt")


class BreakingLLM(FakeLLM):
    """Fails the first question with a RagchatError, breaks the second mid-answer with an
    unexpected exception, then answers."""

    def stream(
        self, messages: Sequence[Message], max_tokens: int, temperature: float
    ) -> Generation:
        self.prompts.append(list(messages))
        if len(self.prompts) == 1:
            raise LLMError("The model is out to lunch; try again later.")
        if len(self.prompts) == 2:

            def pieces() -> Iterator[tuple[str, str | None]]:
                yield "Half an", None
                raise RuntimeError("the wire snapped")

            return Generation(pieces())
        return super().stream(messages, max_tokens, temperature)


def test_the_session_survives_errors_mid_question(ragchat_home: Path, docs: Path):
    app = chat_app(ragchat_home, BreakingLLM())
    app.ingest(docs)
    output, repl = run(
        app, ["What colour are bananas?", "What colour are apples?", "Are cherries small?"]
    )
    assert "Error: The model is out to lunch; try again later." in output
    assert "Half an" in output and "Error: unexpected RuntimeError: the wire snapped" in output
    assert "The answer is in the excerpt [1]." in output  # the third question is answered
    assert output.rstrip().endswith("context tokens")
    assert [t.question for t in repl.turns] == ["Are cherries small?"]


def test_a_question_the_documents_do_not_answer_is_said_and_the_chat_goes_on(
    ragchat_home: Path, docs: Path
):
    llm = FakeLLM(["Bananas are yellow [1]."])
    app = chat_app(ragchat_home, llm)
    app.ingest(docs)
    output, repl = run(
        app, ["Which violinist recorded Paganini caprices?", "Which fruit is yellow?"]
    )
    refused, answered = repl.answers
    assert refused.status == "not_found" and answered.status == "answered"
    assert "Nothing in your documents answers this.\nClosest, not relevant:\n[1] " in output
    assert "Bananas are yellow [1]." in output
    assert len(llm.prompts) == 1  # only the answered question reached the LLM
    assert [t.question for t in repl.turns] == ["Which fruit is yellow?"]  # no refused turn
