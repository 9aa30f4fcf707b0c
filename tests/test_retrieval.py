"""Ranking on a small real store: lexical and dense disagree, hybrid gets both right."""

from __future__ import annotations

from pathlib import Path

from fakes import FakeEmbedder
from helpers import make_app, write

from ragchat.lexical import query_words
from ragchat.retrieval import convex_fusion, fuse, reciprocal_rank_fusion
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
    assert set(part.scores) == {"dense", "lexical", "fused"}


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
    import pytest

    from ragchat.errors import StoreError

    with pytest.raises(StoreError, match="missing from the Chroma store"):
        fresh.query("nothing-here", vector, 3)
