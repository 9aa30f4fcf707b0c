from __future__ import annotations

import re

from ragchat.chunking import chunk_pages
from ragchat.loaders import Block, Page, markdown_page, paragraph_blocks


def words(texts):
    return [len(re.findall(r"\S+", t)) + 2 for t in texts]  # 2 special tokens


def page_of(text, number=None):
    return Page(text=text, number=number, blocks=paragraph_blocks(text))


def test_short_neighbours_merge_up_to_target():
    text = "\n\n".join(f"Para {i} has five words." for i in range(10))
    chunks = chunk_pages([page_of(text)], words, target=17, limit=40)
    assert all(words([c.text])[0] <= 17 for c in chunks)
    assert [c.text.count("Para") for c in chunks] == [3, 3, 3, 1]
    assert all(text[c.start : c.end] == c.text for c in chunks)


def test_long_paragraph_splits_at_sentences_and_respects_limit():
    sentence = "This sentence has exactly seven words. "
    text = sentence * 30
    chunks = chunk_pages([page_of(text)], words, target=30, limit=40)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text.endswith("words.")
        assert words([chunk.embed_text])[0] <= 30


def test_sentence_longer_than_limit_splits_at_words():
    text = " ".join(f"w{i}" for i in range(100))
    chunks = chunk_pages([page_of(text)], words, target=20, limit=20)
    assert all(words([c.text])[0] <= 20 for c in chunks)
    assert " ".join(c.text for c in chunks) == text


def test_chunks_never_cross_pages_or_headings():
    md = markdown_page("# A\n\none.\n\n## B\n\ntwo.\n\nthree.\n")
    chunks = chunk_pages([md, page_of("four.", number=2)], words, target=100, limit=100)
    assert [(c.text, c.headings, c.page) for c in chunks] == [
        ("one.", ("A",), None),
        ("two.\n\nthree.", ("A", "B"), None),
        ("four.", (), 2),
    ]
    assert chunks[1].embed_text == "A > B\ntwo.\n\nthree."


def test_heading_tokens_count_against_the_limit():
    heading = "Very long heading " * 5
    md = markdown_page(f"# {heading}\n\n" + "word " * 30)
    chunks = chunk_pages([md], words, target=40, limit=40)
    assert all(words([c.embed_text])[0] <= 40 for c in chunks)


def test_empty_page_gives_no_chunks():
    assert chunk_pages([Page(text="   ", blocks=[Block(0, 3)])], words, 10, 10) == []
