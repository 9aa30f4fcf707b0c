from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from fakes import FakeLLM
from helpers import make_app, write

from ragchat.errors import ConfigError
from ragchat.evaluation import (
    close,
    correct,
    document_ranking,
    gold_numbers,
    load_beir,
    load_gold,
    mrr_at_k,
    ndcg_at_k,
    plumbing_note,
    recall_at_k,
    run_gold,
    span_scores,
    token_f1,
)
from ragchat.store import Hit


def hit(path: str, start: int = 0, end: int = 0) -> Hit:
    return Hit(id=path + str(start), path=path, start=start, end=end, score=0.0)


def test_ndcg_by_hand():
    # relevant d1 (gain 1) at rank 2 and d3 (gain 2) at rank 3; ideal is d3, d1
    relevant = {"d1": 1, "d3": 2}
    ranked = ["x", "d1", "d3", "y"]
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["d3", "d1"], relevant) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], relevant) == 0.0
    assert ndcg_at_k(ranked, relevant, 2) == pytest.approx((1 / math.log2(3)) / idcg)


def test_recall_and_mrr_by_hand():
    relevant = {"a": 1, "b": 1, "c": 1, "z": 0}
    ranked = ["x", "b", "y", "a", "z"]
    assert recall_at_k(ranked, relevant, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, relevant, 10) == pytest.approx(2 / 3)
    assert mrr_at_k(ranked, relevant, 10) == pytest.approx(0.5)
    assert mrr_at_k(ranked, relevant, 1) == 0.0
    assert mrr_at_k(["z", "c"], relevant) == pytest.approx(0.5)  # gain 0 is not relevant


def test_document_score_is_its_best_chunk():
    hits = [hit("d2"), hit("d1"), hit("d2", 5), hit("d3")]
    assert document_ranking(hits, 10) == ["d2", "d1", "d3"]
    assert document_ranking(hits, 2) == ["d2", "d1"]


def test_span_recall_and_precision_in_characters():
    gold = [("f", 10, 20), ("f", 40, 50)]
    hits = [hit("f", 0, 15), hit("g", 0, 100), hit("f", 45, 60)]
    recall, precision = span_scores(hits, gold, k=3)
    assert recall == pytest.approx((5 + 5) / 20)
    assert precision == pytest.approx(10 / (15 + 100 + 15))
    assert span_scores(hits, gold, k=1) == (pytest.approx(5 / 20), pytest.approx(5 / 15))


def test_load_beir_picks_the_split_and_keeps_judged_queries(tmp_path: Path):
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "1", "title": "T", "text": "x"}\n{"_id": "2", "text": "y"}\n'
    )
    (tmp_path / "queries-train.jsonl").write_text(
        '{"_id": "q1", "text": "a?"}\n{"_id": "q2", "text": "b?"}\n'
    )
    (tmp_path / "qrels-train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t1\t1\nq9\t2\t1\n")
    data = load_beir(tmp_path)
    assert data.split == "train" and data.qrels == {"q1": {"1": 1}}
    assert data.corpus["2"] == ("", "y")
    source = data.sources()[0]
    assert source.load()[0].blocks[0].headings == ("T",)


def test_gold_set_paths_are_relative_to_the_file(tmp_path: Path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"question": "q", "sources": ["docs/a.md"]}) + "\n")
    assert load_gold(gold)[0].sources == [str(tmp_path / "docs" / "a.md")]


def test_answers_with_numbers_are_right_within_the_tolerance():
    gold = "The FY2018 capital expenditure was $1,577 million."
    assert correct(gold, "Capex was 1,577 [1].")[:2] == (True, "numbers")  # the year aside
    assert correct(gold, "About $1.6 billion [2].")[0]  # 1,600 is within 2.5% of 1,577
    assert not correct(gold, "About $1.7 billion [2].")[0]
    assert not correct(gold, "In FY2018 [1].")[0]
    assert gold_numbers("It was 12.5% in 2022 and 14% in 2023.") == [12.5, 14.0]
    assert gold_numbers("In 2019.") == [2019.0]  # years count when they are all there is
    assert close(100.0, 102.4) and not close(100.0, 102.6)


def test_answers_without_numbers_are_right_by_token_overlap():
    assert token_f1("The Kestrel Power inverter", "the kestrel power inverter!") == 1.0
    assert token_f1("yes", "no") == 0.0
    assert token_f1("At six in the morning", "At 7 in the evening") == 0.0
    right, judged, f1 = correct(
        "Kestrel Power supplied it.", "It was supplied by Kestrel Power [1]."
    )
    assert judged == "tokens" and right and f1 == 1.0  # no [1], it, was, by
    assert not correct("Kestrel Power supplied it.", "A rival supplier [1].")[0]


def test_gold_answers_load_without_sources(tmp_path: Path):
    gold = tmp_path / "gold.jsonl"
    rows = [
        {"question": "q1", "answer": "42"},
        {"question": "q2", "unanswerable": True},
        {"question": "q3", "answer": "x", "sources": ["a.md"]},
        {"question": "q4", "sources": ["a.md"]},
    ]
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    questions = load_gold(gold)
    assert [q.scores_answer for q in questions] == [True, True, True, False]
    assert questions[1].unanswerable and questions[2].sources == [str(tmp_path / "a.md")]
    gold.write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(ConfigError, match='"answer" or "unanswerable": true'):
        load_gold(gold)


def test_run_answers_scores_correctness_refusals_citations_and_evidence(
    ragchat_home: Path, tmp_path: Path
):
    docs = tmp_path / "docs"
    write(docs, "fees.md", "The joining fee for members is 75 crowns.\n")
    write(docs, "tides.md", "High tide in the harbour is at six in the morning.\n")
    gold = tmp_path / "gold.jsonl"
    rows = [
        {"question": "What is the joining fee for members?", "answer": "75 crowns", "sources": ["docs/fees.md"]},
        {"question": "When is high tide in the harbour?", "answer": "At six in the morning"},
        {"question": "Which violinist recorded Paganini caprices?", "unanswerable": True},
    ]  # fmt: skip
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    app = make_app(ragchat_home)
    app._llm = FakeLLM(["The fee is 75 crowns [1].", "At 7 in the evening [9]."])
    app.ingest(docs)
    result = run_gold(app, gold)
    assert result["note"] is None and result["llm"] == "fake-llm"
    first, second, third = result["per_question"]
    assert first["correct"] and first["citations_valid"] and first["evidence"]
    assert not second["correct"] and not second["citations_valid"]  # [9] and 7 are not there
    assert third["refused"] and third["status"] == "not_found"
    figures = result["answers"]
    assert figures["correct"] == 0.5 and figures["refusal_rate"] == 1.0
    assert figures["false_refusals"] == 0.0 and figures["citations_valid"] == 0.5
    assert figures["evidence_recall"] == 1.0  # over the questions that name sources
    assert figures["unanswerable"] == 1 and figures["answerable"] == 2


def test_the_bundled_llm_is_said_to_measure_the_plumbing():
    assert "plumbing" in (plumbing_note("SmolLM2-135M-Instruct (bundled)") or "")
    assert plumbing_note("openai:gpt-4o") is None
