from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ragchat.evaluation import (
    document_ranking,
    load_beir,
    load_gold,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    span_scores,
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
