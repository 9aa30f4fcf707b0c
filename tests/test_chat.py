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
from ragchat.repl import ChatCompleter, Repl
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
    assert "@path in a question searches only that file or folder" in output
    assert "No sources yet: ask a question first." in output
    assert "Nothing to explain yet: ask a question first." in output

    # the question: a streamed answer, its sources, the context line
    assert "The answer is in the excerpt [1]." in output
    assert f"[1] {docs / 'b.txt'}" in output
    assert "excerpts," in output and "of 2048 context tokens" in output
    # /sources: each source with its text; /why: what was searched and what went in
    assert "Bananas are yellow." in output
    assert "Searched: What colour are bananas?" in output and "in prompt" in output

    assert "Usage: /k N (now 5)" in output and output.count("Usage: /k N") == 1
    assert "/k 0 would retrieve no excerpts, so nothing to answer from; give 1 or more" in output
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

    assert f"Saved 1 answer to {saved}." in output
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
        "Error: No collection 'nowhere' (there are: default, notes); create it with"
        " 'ragchat ingest PATH --collection nowhere'." in output
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


def test_at_path_punctuation_quotes_and_the_saved_question(
    ragchat_home: Path, docs: Path, tmp_path: Path, monkeypatch
):
    write(docs, "Trip to Lisboa.md", "The tram to Belém leaves from Praça da Figueira.")
    app = chat_app(ragchat_home)
    app.ingest(docs)
    monkeypatch.chdir(docs)  # @paths relative to the working directory
    saved = tmp_path / "talk.md"
    output, repl = run(
        app,
        [
            "Which fruit is small in @sub?",
            'Where does the tram leave from? @"Trip to Lisboa.md"',
            "Anything small in @'sub/c.html'.",  # a question c.html answers (else: not found)
            f"/save {saved}",
        ],
    )
    first, second, third = repl.answers
    assert first.question == "Which fruit is small in"
    assert {h.path for h in first.sources} == {str(docs / "sub" / "c.html")}
    assert {h.path for h in second.sources} == {str(docs / "Trip to Lisboa.md")}
    assert {h.path for h in third.sources} == {str(docs / "sub" / "c.html")}
    assert "Nothing ingested" not in output
    text = saved.read_text()
    assert "## Which fruit is small in @sub?" in text  # the question as typed
    assert '## Where does the tram leave from? @"Trip to Lisboa.md"' in text


def test_exit_and_quit_without_a_slash_and_q_leave(ragchat_home: Path, docs: Path):
    llm = FakeLLM()
    app = chat_app(ragchat_home, llm)
    app.ingest(docs)
    for word in ("exit", "QUIT", "/q"):
        run(app, [word, "Not asked?"])
    assert llm.prompts == []
    run(app, ["exit the building: which fruit is red?"])  # a question that starts so
    assert len(llm.prompts) == 1


def test_model_switches_the_llm_and_keeps_the_collection_and_conversation(
    ragchat_home: Path, docs: Path, monkeypatch
):
    first, second = FakeLLM(), FakeLLM(["Bananas are yellow [1]."])
    second.id = "other-llm"
    app = chat_app(ragchat_home, first)
    app.ingest(docs)
    monkeypatch.setattr("ragchat.app.build_llm", lambda settings: second)
    output, repl = run(
        app,
        [
            "What colour are bananas?",
            "/k 3",
            "/model /nowhere/model.gguf",  # one that cannot load: the old one stays
            "/model other",
            "And apples?",
            "/model",
        ],
    )
    assert "Answering with other-llm (collection and conversation kept)." in output
    assert repl.app.settings.model == "other" and repl.engine.llm is second
    assert len(first.prompts) == 1 and second.prompts  # the follow-up went to the new model
    assert len(repl.turns) == 2 and repl.engine.top_k == 3
    assert "LLM: other-llm" in output and repl.app.collection.name == "default"


def test_help_aligns_at_80_columns(ragchat_home: Path, docs: Path):
    chat_app(ragchat_home).ingest(docs)
    out = io.StringIO()
    Repl(chat_app(ragchat_home), Console(file=out, width=80), lines=["/help"]).run()
    lines = out.getvalue().splitlines()
    lines = lines[next(i for i, line in enumerate(lines) if line.startswith("  /help")) :]
    assert any(line.startswith("  /why ") for line in lines)
    for line in lines:
        assert len(line) <= 80
        assert line.startswith("  /") or line.startswith(" " * 15) or not line.strip(), line


def test_tab_completes_commands_and_ingested_paths(ragchat_home: Path, docs: Path, monkeypatch):
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    write(docs, "Trip to Lisboa.md", "Trams.")
    app = chat_app(ragchat_home)
    app.ingest(docs)
    monkeypatch.chdir(docs)
    repl = Repl(app, Console(file=io.StringIO()), lines=[])
    completer = ChatCompleter(repl.completable_paths)

    def complete(text: str) -> list[str]:
        found = completer.get_completions(Document(text), CompleteEvent(completion_requested=True))
        return [c.text for c in found]

    assert complete("What about @s") == ["sub/", "sub/c.html"]
    assert complete("What about @T") == ['"Trip to Lisboa.md"']
    assert complete('What about @"Trip t') == ['"Trip to Lisboa.md"']
    assert complete("What about @nothing") == []
    assert "/model" in complete("/mo") and complete("no @ here") == []


def test_a_history_path_that_is_a_folder_is_one_line_and_the_chat_runs(
    ragchat_home: Path, docs: Path
):
    from prompt_toolkit.history import InMemoryHistory

    app = chat_app(ragchat_home)
    app.ingest(docs)
    (ragchat_home / "history").mkdir()
    out = io.StringIO()
    history = Repl(app, Console(file=out, width=200), lines=[])._history()
    assert isinstance(history, InMemoryHistory)
    assert out.getvalue() == (
        f"Cannot keep the chat history in {ragchat_home / 'history'} (Is a directory);"
        " this chat keeps none.\n"
    )


def test_status_lines_go_to_the_terminal_only(ragchat_home: Path, docs: Path):
    app = chat_app(ragchat_home)
    app.ingest(docs)
    for terminal in (False, True):
        errors = io.StringIO()
        console = Console(file=errors, force_terminal=terminal, width=80)
        Repl(app, Console(file=io.StringIO()), lines=["Bananas?"], errors=console).run()
        status = errors.getvalue()
        assert ("excerpts…" in status) is terminal  # "Reading 3 excerpts…"
        assert status.endswith("\x1b[2K") or not terminal  # then erased


def test_hostile_text_and_file_names_are_neutralised_in_the_chat(
    ragchat_home: Path, tmp_path: Path
):
    """A file name with a newline cannot forge a result line, and bidi or zero-width
    characters from documents or the model do not reach the screen (answers, /why, /sources,
    the saved transcript)."""
    hostile = "\u202e\u2066\u2069\u200b\u200d\ufeff"
    docs = tmp_path / "docs"
    write(docs, "a\n[9] forged.txt", f"The tide{hostile} rises two metres at the quay.")
    llm = FakeLLM([f"It rises two metres{hostile} [1]."])
    app = chat_app(ragchat_home, llm)
    app.ingest(docs)
    saved = tmp_path / "talk.md"
    output, _ = run(app, ["How high is the tide?", "/why", "/sources", f"/save {saved}"])
    for text in (output, saved.read_text()):
        assert not any(c in text for c in hostile)
        assert not any(line.startswith("[9] forged.txt") for line in text.splitlines())
    assert "It rises two metres [1]." in output
    assert f"[1] {docs}/a\\n[9] forged.txt" in output
