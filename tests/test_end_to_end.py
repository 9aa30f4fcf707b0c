"""The whole loop with the real bundled models, a real Chroma store and the real CLI."""

from __future__ import annotations

import json

import pytest
from helpers import ROOT, ragchat

pytestmark = pytest.mark.slow


def test_ask_json_cites_the_pdf_page(ingested):
    home, docs = ingested
    result = ragchat(
        "ask",
        "--json",
        "How much energy did the array produce in 2024?",
        env={"RAGCHAT_HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(data, json.loads((ROOT / "docs" / "ask.schema.json").read_text()))
    assert (str(docs / "annual-report-2024.pdf"), 2) in {
        (s["path"], s["page"]) for s in data["sources"]
    }
    assert data["answer"].strip()
    assert data["models"] == {
        "embedder": "sentence-transformers/all-MiniLM-L6-v2",
        "llm": "SmolLM2-135M-Instruct (bundled)",
    }
    assert [s["n"] for s in data["sources"]] == list(range(1, len(data["sources"]) + 1))


def test_ask_from_stdin_streams_answer_then_sources(ingested):
    home, _ = ingested
    result = ragchat(
        "ask",
        "-",
        input="What is the phone number of the outage hotline?\n",
        env={"RAGCHAT_HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr
    answer, _, sources = result.stdout.partition("\nSources\n")
    assert answer.strip()
    assert "faq.html" in sources.splitlines()[0]
    assert "context tokens" in result.stderr


def test_second_ingest_embeds_nothing(ingested):
    home, docs = ingested
    result = ragchat("ingest", "--json", str(docs), env={"RAGCHAT_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["chunks_embedded"] == 0 and report["unchanged"] == 5


def test_status_json_counts_the_collection(ingested):
    home, _ = ingested
    result = ragchat("status", "--json", env={"RAGCHAT_HOME": str(home)})
    data = json.loads(result.stdout)
    (collection,) = data["collections"]
    assert (
        collection["name"] == "default"
        and collection["documents"] == 5
        and collection["chunks"] > 5
    )
    assert (
        collection["embedder"] == "sentence-transformers/all-MiniLM-L6-v2"
        and collection["dimension"] == 384
    )


def test_chat_reads_questions_from_a_pipe(ingested):
    home, _ = ingested
    result = ragchat(
        "chat", input="What is the joining fee?\n/sources\n/exit\n", env={"RAGCHAT_HOME": str(home)}
    )
    assert result.returncode == 0, result.stderr
    assert "Sources" in result.stdout and "handbook.md" in result.stdout


def test_other_embedder_refused_in_one_line(ingested, tmp_path):
    home, _ = ingested
    fake_model = tmp_path / "e5-small-v2"
    fake_model.mkdir()
    result = ragchat(
        "ask",
        "What is the joining fee?",
        env={"RAGCHAT_HOME": str(home), "RAGCHAT_EMBEDDING_MODEL": str(fake_model)},
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(
        "Error: Collection 'default' was built with embedding model 'sentence-transformers/all-MiniLM-L6-v2'"
    )


def test_missing_default_embedder_offline_names_the_bundled_one(tmp_path):
    docs = tmp_path / "d"
    docs.mkdir()
    (docs / "a.md").write_text("hello")
    result = ragchat(
        "ingest",
        str(docs),
        env={
            "RAGCHAT_HOME": str(tmp_path / "h"),
            "RAGCHAT_EMBEDDING_MODEL": "",
            "HF_HUB_OFFLINE": "1",
        },
    )
    assert result.returncode == 1
    assert "intfloat/e5-large-v2" in result.stderr and "--embedding-model bundled" in result.stderr
    assert "Traceback" not in result.stderr


def test_ask_with_bundled_llm_in_process(ingested, bundled_llm, bundled_embedder):
    from ragchat.app import App
    from ragchat.config import Settings

    home, docs = ingested
    app = App(home, Settings(max_tokens=8, n_ctx=2048), embedder=bundled_embedder, llm=bundled_llm)
    answer = app.engine().ask("What is the joining fee for members?")
    text = "".join(answer.stream())
    assert text and answer.truncated
    assert str(docs / "handbook.md") in [s.path for s in answer.sources]


def test_default_llm_offline_names_the_bundled_one(ingested):
    home, _ = ingested
    result = ragchat(
        "ask",
        "What is the joining fee?",
        env={"RAGCHAT_HOME": str(home), "RAGCHAT_MODEL": "", "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Qwen/Qwen2.5-1.5B-Instruct-GGUF" in result.stderr and "--model bundled" in result.stderr


def test_llm_from_a_local_gguf_path(ingested):
    from ragchat.bundled import bundled_llm

    home, _ = ingested
    gguf = bundled_llm()
    result = ragchat(
        "ask",
        "--json",
        "What is the joining fee?",
        env={"RAGCHAT_HOME": str(home), "RAGCHAT_MODEL": str(gguf)},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["models"]["llm"] == str(gguf)


def test_the_bundled_model_does_not_loop_on_a_list(ingested):
    """With llama.cpp's default repeat penalty (1.0) SmolLM2-135M answers this with
    "1. 1. 1. 1. 2. 3. 4. … 62." (issue 18, item 3); with ragchat's 1.1 it writes the list."""
    home, _ = ingested
    result = ragchat(
        "ask", "--json", "--max-tokens", "256", "--temperature", "0.2",
        "List the rules for the harbour.",
        env={"RAGCHAT_HOME": str(home)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    words = json.loads(result.stdout)["answer"].split()
    assert len(words) > 40 and sum(w.rstrip(".").isdigit() for w in words) < len(words) / 3
