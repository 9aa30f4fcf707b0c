from __future__ import annotations

import re

from ragchat.chunking import chunk_pages
from ragchat.pages import Block, Page, markdown_page, paragraph_blocks


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


PYTHON = '''"""Module docstring."""

import os

LIMIT = 3


# Retries a flaky call.
@decorator
def retry(call):
    return call()


class Store:
    """Keeps things."""

    size = 1

    def put(self, item):
        return item

    async def get(self):
        return None
'''


def test_python_file_is_one_chunk_per_function_with_its_lines():
    from ragchat.loaders import python_page

    page = python_page(PYTHON, "store.py")
    chunks = chunk_pages([page], words, target=200, limit=256)
    found = [(c.symbol, c.line, c.end_line) for c in chunks]
    assert found == [
        ("", 1, 5),
        ("retry", 8, 11),
        ("Store", 14, 17),
        ("Store.put", 19, 20),
        ("Store.get", 22, 23),
    ]
    lines = PYTHON.split("\n")
    for chunk in chunks:  # the line numbers point at the chunk's own text
        assert chunk.text.split("\n")[0].strip() == lines[chunk.line - 1].strip()
        assert chunk.text.split("\n")[-1].strip() == lines[chunk.end_line - 1].strip()
    assert chunks[3].embed_text.startswith("store.py > def Store.put\n")


def test_long_function_splits_into_line_ranges_that_keep_its_name():
    from ragchat.loaders import python_page

    body = "\n".join(f"    value_{i} = compute(value_{i - 1}, 'a: b', {i})" for i in range(1, 60))
    text = f"def long_one():\n{body}\n    return value_59\n"
    chunks = chunk_pages([python_page(text, "long.py")], words, target=40, limit=60)
    assert len(chunks) > 3 and {c.symbol for c in chunks} == {"long_one"}
    lines = text.split("\n")
    previous_end = 0
    for chunk in chunks:
        assert chunk.line == previous_end + 1  # consecutive, whole lines
        assert chunk.text.strip() == "\n".join(lines[chunk.line - 1 : chunk.end_line]).strip()
        previous_end = chunk.end_line


def test_python_that_does_not_parse_is_read_as_text():
    from ragchat.loaders import python_page

    page = python_page("def broken(:\n    pass\n\nSome prose.", "broken.py")
    assert not page.code and len(page.blocks) == 2
    chunks = chunk_pages([page], words, target=200, limit=256)
    assert chunks and all(c.line is None and c.symbol == "" for c in chunks)
