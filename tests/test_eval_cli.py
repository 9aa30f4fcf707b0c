"""`ragchat eval` end to end with the bundled embedder, on data the test writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import ragchat

pytestmark = pytest.mark.slow

DOCS = {
    "d1": ("Zebras", "Zebras have black and white stripes that confuse biting flies."),
    "d2": ("Penguins", "Emperor penguins breed during the Antarctic winter."),
    "d3": ("Volcanoes", "Basaltic lava flows are runny because they are low in silica."),
    "d4": ("Tea", "Green tea is made from unoxidised leaves of Camellia sinensis."),
}


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in DOCS.items())
    )
    (folder / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "why do zebras have stripes"})
        + "\n"
        + json.dumps({"_id": "q2", "text": "when do emperor penguins breed"})
        + "\n"
    )
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    return folder


def test_eval_beir_json_and_temporary_collection(beir: Path, tmp_path: Path):
    home = tmp_path / "home"
    result = ragchat("eval", str(beir), "--json", env={"RAGCHAT_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["split"] == "test" and data["queries"] == 2 and data["documents"] == 4
    assert set(data["modes"]) == {"dense", "lexical", "hybrid"}
    for figures in data["modes"].values():
        assert set(figures) == {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
        assert figures["recall@10"] == 1.0
    assert data["modes"]["hybrid"]["ndcg@10"] == pytest.approx(1.0)
    status = json.loads(ragchat("status", "--json", env={"RAGCHAT_HOME": str(home)}).stdout)
    assert status["collections"] == []  # the temporary collection is gone


def test_eval_beir_table_on_screen(beir: Path, tmp_path: Path):
    result = ragchat(
        "eval",
        str(beir),
        "--collection",
        "tiny",
        "--mode",
        "lexical",
        env={"RAGCHAT_HOME": str(tmp_path / "h")},
    )
    assert result.returncode == 0, result.stderr
    assert "tiny (test: 2 queries, 4 documents)" in result.stdout
    assert "lexical" in result.stdout and "dense" not in result.stdout.split("\n", 2)[2]


def test_eval_gold_sources(ingested, tmp_path: Path):
    home, docs = ingested
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        json.dumps(
            {"question": "How much is the joining fee?", "sources": [str(docs / "handbook.md")]}
        )
        + "\n"
        + json.dumps(
            {
                "question": "Which number do I call for an outage?",
                "sources": [str(docs / "faq.html")],
            }
        )
        + "\n"
    )
    result = ragchat("eval", str(gold), "--json", env={"RAGCHAT_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)["modes"]
    assert figures["hybrid"]["source_recall@10"] == 1.0


def test_eval_rejects_a_folder_without_corpus(tmp_path: Path):
    result = ragchat("eval", str(tmp_path), env={"RAGCHAT_HOME": str(tmp_path / "h")})
    assert result.returncode == 1 and "has no corpus.jsonl" in result.stderr


def test_eval_answers_with_the_bundled_llm_says_it_measures_the_plumbing(ingested, tmp_path: Path):
    home, docs = ingested
    gold = tmp_path / "answers.jsonl"
    rows = [
        {"question": "How much is the joining fee?", "answer": "75 crowns", "sources": [str(docs / "handbook.md")]},
        {"question": "Who won the 1998 World Cup?", "unanswerable": True},
    ]  # fmt: skip
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {"RAGCHAT_HOME": str(home), "RAGCHAT_MAX_TOKENS": "48"}
    result = ragchat("eval", str(gold), "--json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert "plumbing" in data["note"] and data["llm"] == "SmolLM2-135M-Instruct (bundled)"
    answered, refused = data["per_question"]
    assert answered["status"] == "answered" and answered["evidence"] is True
    assert {"correct", "f1", "citations_valid", "uncited"} <= set(answered)
    assert refused["status"] == "not_found" and refused["refused"]
    assert data["answers"]["refusal_rate"] == 1.0 and data["answers"]["false_refusals"] == 0.0
    table = ragchat("eval", str(gold), env=env)
    assert table.returncode == 0, table.stderr
    assert "refusal rate (unanswerable refused)" in table.stdout and "plumbing" in table.stdout
