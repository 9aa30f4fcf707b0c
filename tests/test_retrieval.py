"""Ranking on a small real store: lexical and dense disagree, hybrid gets both right."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeEmbedder
from helpers import make_app, text_pdf, write

from ragchat.lexical import query_words
from ragchat.retrieval import HybridRetriever, convex_fusion, fuse, reciprocal_rank_fusion
from ragchat.store import Hit


def test_query_words_drop_stopwords_and_syntax():
    assert query_words('What is "NEAR" the AND-gate?') == ["near", "gate"]
    assert query_words("the of") == ["the", "of"]
    assert query_words("?!") == []


def test_rrf_by_hand():
    a, b, c = (Hit(id=x, path=x, score=0.0) for x in "abc")
    fused = reciprocal_rank_fusion([a, b], [b, c])
    assert fused == {"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 62}
    ranked = fuse([a, b], [b, c], reciprocal_rank_fusion)
    assert [h.id for h in ranked] == ["b", "a", "c"]
    assert convex_fusion([a], [])["a"] == 0.5


def test_lexical_follows_ingest_modify_delete(ragchat_home: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    write(docs, "a.md", "The zeppelin hangar is in Friedrichshafen.")
    write(docs, "b.md", "Bananas are yellow.")
    app = make_app(ragchat_home)
    app.ingest(docs)
    lexical = app.retriever("lexical")
    assert [h.path for h in lexical.retrieve("zeppelins", 5)] == [str(docs / "a.md")]  # stemmed

    write(docs, "a.md", "Airships are now kept elsewhere.")
    app.ingest(docs)
    assert lexical.retrieve("zeppelin", 5) == []
    assert [h.path for h in lexical.retrieve("airship", 5)] == [str(docs / "a.md")]

    (docs / "a.md").unlink()
    app.ingest(docs)
    assert lexical.retrieve("airships", 5) == []


class SynonymEmbedder(FakeEmbedder):
    """Like a real model: knows 'automobile' means 'car', but is blind to part codes."""

    def embed_batch(self, texts):
        def understood(text: str) -> str:
            words = [
                w
                for w in text.lower().replace("automobile", "car").split()
                if not any(c.isdigit() for c in w)
            ]
            return " ".join(words)

        return super().embed_batch([understood(t) for t in texts])


def test_hybrid_finds_what_each_ranking_alone_misses(ragchat_home: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    write(docs, "car.md", "The car would not start this morning.")
    write(docs, "part.md", "Order part Q7 from the supplier.")
    write(docs, "other.md", "Gardening notes about tomatoes.")
    app = make_app(ragchat_home, SynonymEmbedder())
    app.ingest(docs)
    query = "automobile Q7"
    dense = [h.path for h in app.retriever("dense").retrieve(query, 3)]
    lexical = [h.path for h in app.retriever("lexical").retrieve(query, 3)]
    hybrid = app.retriever("hybrid").retrieve(query, 2)
    assert dense[0] == str(docs / "car.md") and str(docs / "part.md") not in dense[:1]
    assert lexical == [str(docs / "part.md")]
    assert {h.path for h in hybrid} == {str(docs / "car.md"), str(docs / "part.md")}
    part = next(h for h in hybrid if h.path == str(docs / "part.md"))
    assert set(part.scores) == {"dense", "lexical", "fused"}  # no name matches: no name score


def test_the_direct_reader_returns_what_the_chroma_client_returns(
    ragchat_home: Path, tmp_path: Path
):
    """The fast read path (Chroma's engine without the chromadb package) against the client."""
    from ragchat.store import DirectReader, VectorStore

    docs = tmp_path / "docs"
    for n in range(12):
        write(
            docs,
            f"d{n}.md",
            f"# Note {n}\n\nParagraph about topic {n % 3} and item {n}.\n\nMore on {n * 7}.",
        )
    app = make_app(ragchat_home)
    app.ingest(docs)
    client_store = app.store
    assert client_store.reader is None  # this process already has the client: no second engine
    fresh = VectorStore(client_store.path)
    assert isinstance(fresh.reader, DirectReader)
    vector = FakeEmbedder().embed_query("topic 1 item 4")
    only = [str(docs / "d4.md"), str(docs / "d7.md")]
    for where in (None, {"path": {"$in": only}}):
        direct = fresh.query("default", vector, 10, where)
        reference = client_store.query("default", vector, 10, where)
        assert [(h.id, round(h.score, 6)) for h in direct] == [
            (h.id, round(h.score, 6)) for h in reference
        ]
        assert fresh.hydrate("default", direct) == client_store.hydrate("default", reference)
    assert fresh.reader is not None  # it never had to fall back
    # a collection it cannot find falls back to the client, which explains the problem
    from ragchat.errors import StoreError

    with pytest.raises(StoreError, match="missing from the Chroma store"):
        fresh.query("nothing-here", vector, 3)


def test_name_words_split_between_letters_and_digits():
    from ragchat.lexical import name_text, name_words

    assert name_words("What was 3M's FY2018 capex (10-K)?") == [
        "3",
        "m",
        "s",
        "fy",
        "2018",
        "capex",
        "10",
        "k",
    ]
    assert name_text("/filings/ADOBE_2015_10K.pdf") == "adobe 2015 10 k"
    assert name_text("/docs/Invoice 2023-04 ACME.pdf") == "invoice 2023 04 acme"
    assert name_text("/scifact/4983") == ""  # no word with a letter: not indexed
    assert name_text("/photos/IMG_0001.jpg") == "img 0001"


def test_the_document_stage_finds_the_year_the_file_name_gives(ragchat_home: Path, tmp_path: Path):
    """Two look-alike reports: the text cannot tell the years apart, the file names can."""
    docs = tmp_path / "docs"
    text = "Revenue grew and the board proposed a dividend to members.\n"
    write(docs, "Harbor_Annual_Report_2022.md", text)
    write(docs, "Harbor_Annual_Report_2023.md", text)
    write(docs, "notes.md", "Unrelated notes about gardening and tomatoes.\n")
    app = make_app(ragchat_home)
    app.ingest(docs)
    hybrid = app.retriever("hybrid")
    for year in ("2022", "2023"):
        hits = hybrid.retrieve(f"What dividend did the board propose in FY{year}?", 3)
        assert Path(hits[0].path).name == f"Harbor_Annual_Report_{year}.md"
        assert hits[0].scores["name"] == pytest.approx(0.3)
        assert hits[0].score == pytest.approx(hits[0].scores["fused"] + 0.3)
    plain = HybridRetriever(hybrid.dense, hybrid.lexical, name_weight=0.0)
    assert "name" not in plain.retrieve("dividend in FY2023?", 1)[0].scores

    # the name index follows the files: a rename, a removal
    (docs / "Harbor_Annual_Report_2023.md").rename(docs / "Harbor_Annual_Report_2024.md")
    (docs / "Harbor_Annual_Report_2022.md").unlink()
    app.ingest(docs)
    hits = hybrid.retrieve("the dividend proposed in 2024", 3)
    assert Path(hits[0].path).name == "Harbor_Annual_Report_2024.md" and "name" in hits[0].scores
    best, scores = app.collection.lexical.name_scores("2022 or 2023", {"x"})
    assert best == 0.0 and scores == {}  # neither old name is left in the index


def test_a_collection_indexed_before_names_gets_its_name_index(ragchat_home: Path, tmp_path: Path):
    import shutil

    docs = tmp_path / "docs"
    write(docs, "minutes-2024.md", "The meeting approved the budget.\n")
    write(docs, "minutes-2025.md", "The meeting approved the budget.\n")
    app = make_app(ragchat_home)
    app.ingest(docs)
    index = app.collection.lexical
    index.close()
    shutil.rmtree(index.names_folder)  # as a store made before the name index existed
    fresh = make_app(ragchat_home)
    hits = fresh.retriever("hybrid").retrieve("budget approved in 2025", 2)
    assert Path(hits[0].path).name == "minutes-2025.md" and "name" in hits[0].scores


def test_one_result_per_pdf_page(ragchat_home: Path, tmp_path: Path):
    """Chunks of one page come back as one result (its best); text files keep every chunk."""
    docs = tmp_path / "docs"
    docs.mkdir()
    lines = [
        f"Sentence {n} of page {{page}} is about the harbour ferry timetable." for n in range(24)
    ]
    text_pdf(
        docs / "timetable.pdf", [[(50, [line.format(page=p) for line in lines])] for p in (1, 2, 3)]
    )
    part = "The harbour ferry timetable, part {n}, " + "lists more sailings of the day " * 6
    write(docs, "ferry.md", "\n\n".join(part.format(n=n) for n in range(6)))
    app = make_app(ragchat_home)
    app.ingest(docs)
    retriever = app.retriever("lexical")
    chunks = app.collection.hydrate(retriever.candidates("harbour ferry timetable page", 40))
    pdf_chunks = [h for h in chunks if h.path.endswith(".pdf")]
    assert len(pdf_chunks) > len({h.page for h in pdf_chunks}) == 3  # several chunks a page
    results = retriever.retrieve("harbour ferry timetable page", 8)
    pages = [h.page for h in results if h.path.endswith(".pdf")]
    assert sorted(pages) == [1, 2, 3]  # each page once
    assert len([h for h in results if h.path.endswith(".md")]) == 5  # the rest: text chunks
    best = max((h for h in chunks if h.page == pages[0]), key=lambda h: h.score)
    assert results[[h.page for h in results].index(pages[0])].id == best.id  # its best chunk


def test_rankings_of_several_queries_are_fused_by_rank():
    from ragchat.retrieval import fuse_rankings

    a, b, c = (
        Hit(id=x, path=x, score=s, scores={"fused": s})
        for x, s in (("a", 9.0), ("b", 0.2), ("c", 0.1))
    )
    fused = fuse_rankings([[a, b], [b, c]])
    assert [h.id for h in fused] == ["b", "a", "c"]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61) and fused[0].scores["fused"] == 0.2
