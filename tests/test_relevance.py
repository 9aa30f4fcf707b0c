"""The relevance floor: the rule, its calibration per collection (cached, redone when the
collection changes), and on a real collection with the bundled embedder."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from fakes import FakeEmbedder, FakeLLM
from helpers import CORPUS, make_app, ragchat, write
from rich.console import Console

from ragchat.engine import WEAK_TEXT
from ragchat.relevance import PROBES, Z_CAP, Null, judge


def test_null_is_the_median_and_a_robust_scale():
    null = Null.of([1.0, 2.0, 3.0, 4.0, 100.0])  # one outlier does not move it
    assert null.median == 3.0 and null.scale == pytest.approx(1.4826)
    assert null.z(3.0 + 2 * 1.4826) == pytest.approx(2.0)


def test_null_of_probes_that_mostly_score_alike_still_has_a_scale():
    null = Null.of([0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 4.0])  # median and MAD are both 0
    assert null.median == 0.0 and null.scale > 0 and null.z(6.0) > 5
    # every probe scored 0 (none of their words is in a small collection): a question that
    # scores at all shares words with it, and stands above them all
    assert Null.of([0.0] * 32).z(3.0) == Z_CAP and Null.of([0.0] * 32).z(0.0) == 0.0


def test_the_rule():
    assert judge(1.4, 4.9).level == "none"  # nothing like it, and no rare word of it
    assert judge(1.4, 5.0).level == "weak"  # its rare words are there: not refused
    assert judge(1.5, 0.0).level == "weak"
    assert judge(2.9, 0.0).level == "weak"
    assert judge(3.0, 0.0).level == "strong"
    assert not judge(0.0, 0.0).found and judge(3.0, 0.0).found


class CountingEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return super().embed_query(text)


def test_calibration_is_kept_until_the_collection_changes(ragchat_home: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    write(docs, "tides.md", "High tide in the harbour is at six in the morning.")
    write(docs, "boats.md", "The ferry to the island leaves every hour from the quay.")
    embedder = CountingEmbedder()
    app = make_app(ragchat_home, embedder)
    app.ingest(docs)
    floor = app.floor()
    floor.support(["When is high tide in the harbour?"])
    assert embedder.queries.count(PROBES[0]) == 1  # calibrated once: 32 probes
    make_app(ragchat_home, embedder).floor().support(["When does the ferry leave?"])
    assert embedder.queries.count(PROBES[0]) == 1  # another process: read from the manifest
    rows = sqlite3.connect(ragchat_home / "manifest.sqlite3").execute(
        "SELECT collection, data FROM calibrations"
    )
    (name, data), *rest = list(rows)
    assert name == "default" and set(json.loads(data)) == {"dense", "lexical"} and not rest

    write(docs, "fees.md", "Mooring costs forty crowns a night.")
    app.ingest(docs)
    app.floor().support(["How much is a mooring?"])
    assert embedder.queries.count(PROBES[0]) == 2  # the collection changed: calibrated again
    app.drop_collection()
    assert sqlite3.connect(ragchat_home / "manifest.sqlite3").execute(
        "SELECT COUNT(*) FROM calibrations"
    ).fetchone() == (0,)


def test_an_unsupported_question_is_not_found_and_the_llm_is_not_called(
    ragchat_home: Path, tmp_path: Path
):
    docs = tmp_path / "docs"
    write(docs, "tides.md", "High tide in the harbour is at six in the morning.\n")
    write(docs, "boats.md", "The ferry to the island leaves every hour from the quay.\n")
    llm = FakeLLM(["High tide is at six [1]."])
    app = make_app(ragchat_home)
    app._llm = llm
    app.ingest(docs)
    engine = app.engine()
    refused = engine.ask("Which violinist recorded Paganini caprices?")
    assert refused.status == "not_found" and not refused.found
    assert refused.closest and not refused.sources and llm.prompts == []
    data = refused.to_dict()
    assert data["status"] == "not_found" and data["support"]["level"] == "none"
    assert data["answer"] == "Nothing in your documents answers this." and data["checks"] is None
    answered = engine.ask("When is high tide in the harbour in the morning?")
    assert answered.found and "".join(answered.stream()) == "High tide is at six [1]."
    assert answered.to_dict()["status"] == "answered" and len(llm.prompts) == 1


# the real bundled embedder on a collection never used to choose the rule

ANSWERABLE = [
    "What is the joining fee?",
    "How much does a share cost?",
    "Who can join the cooperative?",
    "Where are the solar panels?",
    "How much energy did the array produce in 2024?",
    "What did the board decide about the inverter?",
    "How many shares can a household hold?",
    "What does the glossary say an inverter does?",
]
OFF_TOPIC = [
    "What is the capital of Peru?",
    "How do I bake sourdough bread?",
    "Who won the 1998 World Cup?",
    "What are the side effects of ibuprofen?",
    "How do I configure a VPN on Windows?",
    "What is Adobe's operating margin in FY2022?",
]


@pytest.mark.slow
def test_harbor_answers_what_it_holds_and_refuses_the_rest(ingested, bundled_embedder):
    from ragchat.app import App
    from ragchat.config import Settings

    home, _ = ingested
    floor = App(home, Settings(), embedder=bundled_embedder).floor()
    supported = {q: floor.support([q]) for q in ANSWERABLE}
    assert all(s.found for s in supported.values()), supported
    refused = {q: floor.support([q]) for q in OFF_TOPIC}
    assert not any(s.found for s in refused.values()), refused


@pytest.mark.slow
def test_ask_off_topic_exits_3_without_loading_the_llm(ingested, tmp_path: Path):
    home, _ = ingested
    broken = tmp_path / "broken.gguf"  # a GGUF by its first bytes, which llama.cpp cannot load
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    env = {"RAGCHAT_HOME": str(home), "RAGCHAT_MODEL": str(broken)}
    result = ragchat("ask", "--json", "Who won the 1998 World Cup?", env=env)
    assert result.returncode == 3, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "not_found" and data["sources"] == [] and data["closest"]
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(
        data, json.loads((CORPUS.parent.parent / "docs" / "ask.schema.json").read_text())
    )
    shown = ragchat("ask", "Who won the 1998 World Cup?", env=env)
    assert shown.returncode == 3, shown.stderr
    assert shown.stdout.startswith(
        "Nothing in your documents answers this.\nClosest, not relevant:"
    )
    # the same model on a question the documents answer: it is loaded, and fails
    loaded = ragchat("ask", "What is the joining fee?", env=env)
    assert loaded.returncode == 1 and "llama.cpp could not load" in loaded.stderr


class FixedFloor:
    """A floor that judges every question the same (to test what each level shows)."""

    def __init__(self, dense_z: float, lexical_z: float = 0.0) -> None:
        self.judged = judge(dense_z, lexical_z)

    def nulls(self) -> None:
        return None

    def support(self, queries, paths=None):
        return self.judged


def engine_with(home: Path, tmp_path: Path, floor: FixedFloor, reply: str):
    docs = tmp_path / "docs"
    write(docs, "tides.md", "High tide in the harbour is at six in the morning.\n")
    app = make_app(home)
    app._llm = FakeLLM([reply])
    app.ingest(docs)
    engine = app.engine()
    engine.floor = floor
    return engine


def test_weak_support_is_a_warning_line(ragchat_home: Path, tmp_path: Path):
    from ragchat.render import warning_line

    engine = engine_with(ragchat_home, tmp_path, FixedFloor(2.0), "High tide is at six [1].")
    answer = engine.ask("When is high tide?")
    "".join(answer.stream())
    assert answer.found and answer.to_dict()["support"]["level"] == "weak"
    assert answer.warnings == [WEAK_TEXT]
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(warning_line(answer.warnings[0]))
    assert console.file.getvalue() == (
        "⚠ Weak support: the excerpts only loosely match the question; check the answer \n"
        "against them.\n"
    )
    strong = engine_with(ragchat_home, tmp_path, FixedFloor(3.0), "High tide is at six [1].")
    answer = strong.ask("When is high tide?")
    "".join(answer.stream())
    assert answer.warnings == []


def test_json_flags_a_number_no_excerpt_holds_and_an_answer_citing_nothing(
    ragchat_home: Path, tmp_path: Path
):
    engine = engine_with(ragchat_home, tmp_path, FixedFloor(4.0), "High tide is at 4 o'clock.")
    answer = engine.ask("When is high tide?")
    "".join(answer.stream())
    data = answer.to_dict()
    assert data["status"] == "answered"
    assert data["checks"]["unsupported_numbers"] == ["4"] and data["checks"]["uncited"] is True
    assert data["checks"]["citations_valid"] is False
    assert data["warnings"] == ["number 4 not found in any excerpt", "the answer cites no excerpt"]


def test_not_found_shows_the_closest_excerpts_at_80_columns(ragchat_home: Path, tmp_path: Path):
    from ragchat.render import not_found_view

    engine = engine_with(ragchat_home, tmp_path, FixedFloor(0.0), "never asked")
    answer = engine.ask("Who painted the ceiling?")
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(not_found_view(answer))
    lines = console.file.getvalue().splitlines()
    assert lines[:2] == ["Nothing in your documents answers this.", "Closest, not relevant:"]
    closest = "".join(lines[2:])  # one excerpt, its long temporary path wrapped
    assert closest.startswith("[1] ") and "tides.md" in closest and "[2]" not in closest
    assert engine.llm.prompts == []


def test_z_is_the_same_on_a_crowded_cosine_scale():
    # MiniLM-like cosines spread over 0..0.8; E5-like ones crowd into 0.7..0.9 (0.7 + 0.25 s)
    probes = [0.12, 0.18, 0.2, 0.22, 0.25, 0.27, 0.3, 0.35]
    spread, crowded = Null.of(probes), Null.of([0.7 + 0.25 * p for p in probes])
    for question in (0.28, 0.45, 0.62):
        assert crowded.z(0.7 + 0.25 * question) == pytest.approx(spread.z(question))
    assert judge(crowded.z(0.7 + 0.25 * 0.28), 0.0).level == "none"  # 0.77: unrelated on E5
    assert judge(crowded.z(0.7 + 0.25 * 0.62), 0.0).level == "strong"  # 0.855
