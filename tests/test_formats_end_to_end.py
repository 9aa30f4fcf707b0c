"""A folder of documents as people keep them, through the real CLI and the bundled embedder:
every file found by its fact, every table row whole, pages cited by what they are."""

from __future__ import annotations

import json
from pathlib import Path

import documents
import pytest
from helpers import ragchat

from ragchat import ocr

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, Path, str]:
    base = tmp_path_factory.mktemp("formats")
    docs = documents.folder_of_documents(base / "docs")
    home = base / "home"
    result = ragchat("ingest", str(docs), env={"RAGCHAT_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    return home, docs, result.stderr


@pytest.mark.parametrize("name", sorted(documents.FACTS))
def test_search_finds_each_file_by_its_fact(folder, name: str):
    home, docs, _ = folder
    if name == "scan.pdf" and not ocr.available():
        pytest.skip("needs pip install 'ragchat[ocr]'")
    query, fact = documents.FACTS[name]
    result = ragchat("search", "--json", "-k", "3", query, env={"RAGCHAT_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["results"]
    mine = [h for h in hits if h["path"] == str(docs / name)]
    assert mine, [(h["path"], h["text"][:80]) for h in hits]
    assert any(fact in h["text"] for h in mine), [h["text"] for h in mine]


def test_ingest_summary_names_what_was_off(folder):
    _, _, stderr = folder
    assert "7 added, 0 updated, 0 removed, 0 unchanged, 0 skipped" in stderr
    if ocr.available():
        assert "  scan.pdf: OCR'd (pages 1-2)" in stderr


def test_citations_name_slides_and_sheets(folder):
    home, docs, _ = folder
    result = ragchat(
        "search", "--json", "-k", "1", "eleven new tugboats", env={"RAGCHAT_HOME": str(home)}
    )
    hit = json.loads(result.stdout)["results"][0]
    assert (hit["path"], hit["page"], hit["page_label"]) == (str(docs / "deck.pptx"), 1, "slide 1")
    assert hit["headings"] == "Fleet renewal"
    shown = ragchat(
        "search", "-k", "1", "Osprey berth dues autumn", env={"RAGCHAT_HOME": str(home)}
    )
    assert "sheet.xlsx, sheet Berth dues — Berth dues" in shown.stdout


def test_chunks_shows_how_a_file_is_split(folder, tmp_path: Path):
    home, docs, _ = folder
    env = {"RAGCHAT_HOME": str(home)}
    result = ragchat("chunks", "--json", str(docs / "report.docx"), env=env)
    assert result.returncode == 0, result.stderr
    split = json.loads(result.stdout)
    assert split["embedder"] == "sentence-transformers/all-MiniLM-L6-v2"
    chunks = split["chunks"]
    table = next(c for c in chunks if "Kestrel quay" in c["text"])
    assert table["text"].startswith("Quay | 2022 | 2023 | 2024\n")
    assert table["headings"] == "Harbour annual report > Cargo handled"
    assert all(0 < c["tokens"] <= split["limit_tokens"] for c in chunks)
    shown = ragchat("chunks", str(docs / "deck.pptx"), env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"{docs / 'deck.pptx'}: 3 chunks, ")
    assert lines[1].startswith("[1] slide 1 — Fleet renewal  (") and lines[1].endswith(" tokens)")
    assert lines[2] == "    The fleet plan adds eleven new tugboats Two pilot boats retire"
    (tmp_path / "data.bin").write_bytes(b"\x00\x01")
    refused = ragchat("chunks", str(tmp_path / "data.bin"), env=env)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "Error: Cannot read data.bin: binary"
