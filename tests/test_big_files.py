"""Big files (issue 19.7): read as windows, chunked with linear work, embedded and written a
part at a time; spans stay offsets into the file's text. Fast: small windows and batches
stand in for megabytes (the measured memory bound is test_memory.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fakes import FakeEmbedder
from helpers import chroma_paths, make_app, write

import ragchat.ingest as ingest_module
import ragchat.loaders as loaders
from ragchat import chunking
from ragchat.chunking import chunk_pages
from ragchat.document_vectors import mean_vector
from ragchat.ids import chunk_id, document_id
from ragchat.loaders import Page, load, paragraph_blocks, read_text


def words(texts):
    return [len(re.findall(r"\S+", t)) + 2 for t in texts]  # 2 special tokens


class Recording:
    """A token counter (one token a word) that remembers what it was handed."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return words(texts)

    @property
    def characters(self) -> int:
        return sum(len(t) for call in self.calls for t in call)


def one_line(sentences: int, punctuation: bool = True) -> str:
    end = ". " if punctuation else " "
    return end.join(f"Sentence {n} talks about tides and harbour walls" for n in range(sentences))


def test_a_one_line_text_splits_at_sentences_with_linear_work():
    text = one_line(4000)
    counter = Recording()
    chunks = chunk_pages([Page(text=text, blocks=paragraph_blocks(text))], counter, 40, 60)
    assert len(chunks) > 100
    assert all(words([c.text])[0] <= 60 for c in chunks)
    assert all(c.text == text[c.start : c.end] for c in chunks)
    assert all(c.text.endswith(("walls", "walls.")) for c in chunks[:-1])  # at sentence ends
    # the whole line is never handed over at once, nor in a batch much over the bound
    assert max(len(t) for call in counter.calls for t in call) < len(text) // 10
    assert (
        max(sum(len(t) for t in call) for call in counter.calls) <= 2 * chunking.COUNT_BATCH_CHARS
    )
    assert counter.characters < 3 * len(text)  # pieces once, chunks once


def test_a_line_without_sentence_ends_splits_at_words_and_a_giant_word_at_characters():
    text = one_line(3000, punctuation=False) + " " + "QUJD" * 5000 + " the end"
    counter = Recording()
    chunks = chunk_pages([Page(text=text, blocks=paragraph_blocks(text))], counter, 40, 60)
    assert all(words([c.text])[0] <= 60 for c in chunks)
    assert all(c.text == text[c.start : c.end] for c in chunks)
    assert "".join(c.text for c in chunks if "QUJD" in c.text).count("QUJD") >= 4999
    assert counter.characters < 3 * len(text)


def test_dense_text_is_halved_until_it_fits():
    def per_character(texts):  # a script the tokenizer spells a character per token, and more
        return [2 * len(t) + 2 for t in texts]

    text = "漢字" * 3000
    chunks = chunk_pages([Page(text=text, blocks=paragraph_blocks(text))], per_character, 50, 64)
    assert all(per_character([c.text])[0] <= 64 for c in chunks)
    assert "".join(c.text for c in chunks) == text


def test_code_lines_are_found_without_counting_from_the_start():
    from ragchat.loaders import python_page

    source = "\n".join(f"def f{n}():\n    return {n}\n" for n in range(300))
    chunks = chunk_pages([python_page(source, "many.py")], words, 40, 60)
    lines = source.split("\n")
    for chunk in chunks:
        assert "\n".join(lines[chunk.line - 1 : chunk.end_line]).strip() == chunk.text


@pytest.fixture
def small_windows(monkeypatch):
    monkeypatch.setattr(loaders, "WINDOW_CHARS", 2000)
    monkeypatch.setattr(loaders, "_READ_BYTES", 700)  # blocks end mid-line, mid-\r\n, mid-character


def test_a_big_text_file_is_read_as_windows_that_make_up_its_text(tmp_path: Path, small_windows):
    paragraphs = [
        f"Paragraph {n}: the ferry leaves at {n} o'clock, née Ünal.\r\n" for n in range(400)
    ]
    path = tmp_path / "big.txt"
    path.write_bytes("\r\n".join(paragraphs).encode("utf-8"))
    pages = load(path)
    assert not isinstance(pages, list)  # read lazily
    pages = list(pages)
    whole = read_text(path)
    assert "".join(p.text for p in pages) == whole
    assert [p.offset for p in pages] == [
        sum(len(q.text) for q in pages[:i]) for i in range(len(pages))
    ]
    assert len(pages) > 10 and all(len(p.text) <= 2000 for p in pages)
    assert all(p.text.endswith("\n\n") for p in pages[:-1])  # cut at blank lines
    assert all(p.number is None for p in pages)


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252"])
def test_windows_decode_as_the_whole_file_would(tmp_path: Path, small_windows, encoding):
    text = "\n\n".join(f"Café {n} serves crème brûlée — à la carte" for n in range(300))
    path = tmp_path / "legacy.txt"
    path.write_bytes(text.encode(encoding))
    assert "".join(p.text for p in load(path)) == read_text(path) == text


def test_big_markdown_windows_keep_headings_and_never_cut_a_code_fence(
    tmp_path: Path, small_windows
):
    parts = ["# Manual\n"]
    for n in range(40):
        parts.append(f"## Section {n}\n\nSome text about section {n}.\n")
        parts.append("```\n" + "\n\n".join(f"code line {k}" for k in range(30)) + "\n```\n")
    path = tmp_path / "manual.md"
    path.write_text("\n".join(parts))
    pages = list(load(path))
    assert len(pages) > 5
    assert "".join(p.text for p in pages) == read_text(path)
    for page in pages:
        assert page.text.count("```") % 2 == 0  # every fence opens and closes in one window
        for block in page.blocks:
            assert block.headings[0] == "Manual"
            body = page.text[block.start : block.end]
            if body.startswith("Some text about section"):
                assert block.headings[-1] == f"Section {body.split()[-1].rstrip('.')}"


def test_a_big_file_is_ingested_a_part_at_a_time(
    ragchat_home: Path, tmp_path: Path, monkeypatch, small_windows
):
    monkeypatch.setattr(ingest_module, "EMBED_BATCH", 7)
    docs = tmp_path / "docs"
    text = "\n\n".join(
        f"Note {n}: the harbour wall was repaired in year {1900 + n}." for n in range(300)
    )
    write(docs, "big.txt", text)
    write(docs, "small.txt", "A small note about gulls.")
    embedder = FakeEmbedder(limit=24)
    batches: list[int] = []
    real = embedder.embed_batch
    monkeypatch.setattr(
        embedder, "embed_batch", lambda texts: batches.append(len(texts)) or real(texts)
    )
    app = make_app(ragchat_home, embedder)
    report = app.ingest(docs)
    assert sorted(report.added) == [str(docs / "big.txt"), str(docs / "small.txt")]
    assert max(batches) <= 7 + 1  # no batch holds the whole file
    count = app.manifest.files("default")[str(docs / "big.txt")].chunks
    assert count == chroma_paths(app)[str(docs / "big.txt")] > 20
    stored = app.store._collection("default").get(
        ids=[chunk_id(str(docs / "big.txt"), i) for i in range(count)],
        include=["documents", "metadatas", "embeddings"],
    )
    whole = read_text(docs / "big.txt")
    for document, meta in zip(stored["documents"], stored["metadatas"], strict=True):
        assert whole[meta["start"] : meta["end"]] == document
    vector = app.collection.documents.get([document_id(str(docs / "big.txt"))])[
        document_id(str(docs / "big.txt"))
    ].vector
    assert vector == pytest.approx(mean_vector(stored["embeddings"]), abs=1e-6)
    assert app.manifest.pending("default") == []
    assert make_app(ragchat_home, embedder).ingest(docs).unchanged == 2


def test_a_big_file_that_fails_half_way_leaves_nothing_behind(
    ragchat_home: Path, tmp_path: Path, monkeypatch, small_windows
):
    monkeypatch.setattr(ingest_module, "EMBED_BATCH", 5)
    docs = tmp_path / "docs"
    write(docs, "big.txt", "\n\n".join(f"Line {n} of a log that is cut short." for n in range(400)))
    write(docs, "other.txt", "Gulls nest on the harbour wall.")
    real = loaders.text_windows

    def failing(path, cut=None):
        for n, window in enumerate(real(path, cut)):
            if n == 3:
                raise OSError(5, "Input/output error")
            yield window

    monkeypatch.setattr(loaders, "text_windows", failing)
    app = make_app(ragchat_home)
    report = app.ingest(docs)
    assert report.added == [str(docs / "other.txt")]
    assert (str(docs / "big.txt"), "cannot read (Input/output error)") in report.skipped
    assert set(chroma_paths(app)) == {str(docs / "other.txt")}
    assert app.manifest.pending("default") == []
    assert [path for _, path, _ in app.collection.lexical.entries()] == [str(docs / "other.txt")]
