"""Two machines sharing one real Chroma server (`chroma run` on 127.0.0.1), and a server that
goes away for a while."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from fakes import FakeEmbedder
from helpers import chroma_run, free_port, ragchat, write

from ragchat.app import App
from ragchat.config import Settings
from ragchat.errors import StoreError
from ragchat.store import VectorStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    with chroma_run(tmp_path_factory.mktemp("chroma-server"), free_port()) as (url, _):
        yield url


def machine(home: Path, url: str, collection: str, embedder=None) -> App:
    settings = Settings(chroma_url=url, collection=collection)
    return App(
        home, settings, explicit=frozenset({"embedding_model"}), embedder=embedder or FakeEmbedder()
    )


def test_two_machines_stay_consistent(chroma_server, tmp_path: Path):
    docs_a, docs_b = tmp_path / "a", tmp_path / "b"
    write(docs_a, "zeppelin.md", "The zeppelin hangar is in Friedrichshafen.")
    write(docs_a, "tea.md", "Green tea is unoxidised.")
    write(docs_b, "volcano.md", "Basalt lava is runny.")
    embedder = FakeEmbedder()
    one = machine(tmp_path / "home1", chroma_server, "shared-one", embedder)
    assert len(one.ingest(docs_a).added) == 2

    two = machine(tmp_path / "home2", chroma_server, "shared-one")
    assert [h.path for h in two.retriever("lexical").retrieve("zeppelins", 3)] == [
        str(docs_a / "zeppelin.md")
    ]
    assert two.status()["collections"][0]["documents"] == 2
    assert len(two.ingest(docs_b).added) == 1

    embedder.embedded.clear()
    again = machine(tmp_path / "home1", chroma_server, "shared-one", embedder)
    report = again.ingest(docs_a)
    assert report.unchanged == 2 and report.removed == [] and embedder.embedded == []
    assert [h.path for h in again.retriever("hybrid").retrieve("basalt lava", 1)] == [
        str(docs_b / "volcano.md")
    ]

    (docs_a / "zeppelin.md").unlink()
    assert again.ingest(docs_a).removed == [str(docs_a / "zeppelin.md")]
    later = machine(tmp_path / "home2", chroma_server, "shared-one")
    assert later.retriever("lexical").retrieve("zeppelin", 3) == []
    assert later.manifest.counts("shared-one")[0] == 2


def test_cli_ingest_search_ask_through_the_server(chroma_server, tmp_path: Path):
    from helpers import CORPUS

    docs = tmp_path / "docs"
    shutil.copytree(CORPUS, docs)
    env = {
        "RAGCHAT_HOME": str(tmp_path / "h"),
        "RAGCHAT_CHROMA_URL": chroma_server,
        "RAGCHAT_COLLECTION": "harbor",
    }
    first = ragchat("ingest", "--json", str(docs), env=env)
    assert first.returncode == 0, first.stderr
    assert len(json.loads(first.stdout)["added"]) == 5
    second = json.loads(ragchat("ingest", "--json", str(docs), env=env).stdout)
    assert second["chunks_embedded"] == 0 and second["unchanged"] == 5
    (docs / "faq.html").unlink()
    third = json.loads(ragchat("ingest", "--json", str(docs), env=env).stdout)
    assert third["removed"] == [str(docs / "faq.html")]
    found = json.loads(ragchat("search", "--json", "joining fee crowns", env=env).stdout)
    assert found["results"][0]["path"] == str(docs / "handbook.md")
    assert all(r["path"] != str(docs / "faq.html") for r in found["results"])
    answer = ragchat("ask", "--json", "How much energy did the array produce?", env=env)
    assert answer.returncode == 0, answer.stderr
    assert str(docs / "annual-report-2024.pdf") in [
        s["path"] for s in json.loads(answer.stdout)["sources"]
    ]
    status = json.loads(ragchat("status", "--json", env=env).stdout)
    assert status["store"] == chroma_server


def test_unreachable_server_is_a_clear_error(tmp_path: Path):
    docs = tmp_path / "d"
    write(docs, "a.md", "hello")
    env = {
        "RAGCHAT_HOME": str(tmp_path / "h"),
        "RAGCHAT_CHROMA_URL": f"http://127.0.0.1:{free_port()}",
    }
    result = ragchat("ingest", str(docs), env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Chroma server" in result.stderr


def local_copy(app: App) -> tuple[list[tuple], list[tuple], list[tuple[str, str, str]]]:
    """This machine's copy of the server's manifest (rows with their ingest times, so a row
    fetched again would differ) and its lexical index."""
    db = sqlite3.connect(app.manifest.path)
    try:
        collections = db.execute("SELECT * FROM collections ORDER BY name").fetchall()
        files = db.execute("SELECT * FROM files ORDER BY collection, path").fetchall()
    finally:
        db.close()
    lexical = sorted(app.collection.lexical.entries())
    app.collection.lexical.close()
    return collections, files, lexical


def test_a_server_that_is_down_is_an_error_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    docs, home, data, port = tmp_path / "docs", tmp_path / "home", tmp_path / "data", free_port()
    write(docs, "zeppelin.md", "The zeppelin hangar is in Friedrichshafen.")
    write(docs, "tea.md", "Green tea is unoxidised.")
    url = f"http://127.0.0.1:{port}"
    down = (
        re.escape(f"Cannot reach the Chroma server at {url} (")
        + r"\w+\); is 'chroma run' running there\?"
    )
    with chroma_run(data, port):
        app = machine(home, url, "outage")
        assert len(app.ingest(docs).added) == 2
        chat = app.retriever("hybrid")  # a long-lived process (a chat), synced while it was up
        assert chat.retrieve("zeppelin", 1)[0].path == str(docs / "zeppelin.md")
        before = local_copy(app)
        assert len(before[1]) == 2 and len(before[2]) == 2

    # stopped: every way in is one error naming the server, and the local copy stays
    lost = re.escape(f"Lost the Chroma server at {url} (") + r"\w+\); nothing already stored"
    with pytest.raises(StoreError, match=lost):  # it had answered this process before
        chat.retrieve("zeppelin", 1)
    fresh = machine(home, url, "outage")  # a new process, whose first sync meets the outage
    with pytest.raises(StoreError, match=down):
        fresh.retriever("lexical").retrieve("zeppelin", 1)
    env = {"RAGCHAT_HOME": str(home), "RAGCHAT_CHROMA_URL": url, "RAGCHAT_COLLECTION": "outage"}
    for command in (["search", "zeppelin"], ["status"]):
        result = ragchat(*command, env=env)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and re.match("Error: " + down, result.stderr)
    assert local_copy(fresh) == before

    # started again on the same data: search works, and nothing had to be fetched again
    fetched: list[object] = []
    records = VectorStore.records
    monkeypatch.setattr(
        VectorStore, "records", lambda self, *a, **k: fetched.append(a) or records(self, *a, **k)
    )
    with chroma_run(data, port):
        again = machine(home, url, "outage")
        assert again.retriever("hybrid").retrieve("zeppelin", 1)[0].path == str(
            docs / "zeppelin.md"
        )
        assert chat.retrieve("green tea", 1)[0].path == str(docs / "tea.md")  # reconnected
        status = json.loads(ragchat("status", "--json", env=env).stdout)
        assert status["collections"][0]["documents"] == 2
        assert fetched == [] and local_copy(again) == before


def test_forget_and_drop_on_a_shared_store(chroma_server, tmp_path: Path):
    docs = tmp_path / "docs"
    write(docs, "zeppelin.md", "The zeppelin hangar is in Friedrichshafen.")
    write(docs, "tea.md", "Green tea is unoxidised.")
    one = machine(tmp_path / "home1", chroma_server, "shared-drop")
    assert len(one.ingest(docs).added) == 2
    other = machine(tmp_path / "home2", chroma_server, "shared-drop")
    assert other.retriever("lexical").retrieve("zeppelin", 1)[0].path == str(docs / "zeppelin.md")

    # forgetting on one machine is forgetting everywhere (the file list is on the server)
    one.forget([docs / "zeppelin.md"])
    again = machine(tmp_path / "home2", chroma_server, "shared-drop")
    assert list(again.collection.files()) == [str(docs / "tea.md")]
    assert again.retriever("lexical").retrieve("zeppelin", 5) == []

    # drop says it removes the collection from the server, for every machine
    env = {"RAGCHAT_HOME": str(tmp_path / "home1")}
    result = ragchat("drop", "shared-drop", "--chroma-url", chroma_server, "--yes", env=env)
    assert result.returncode == 0, result.stderr
    assert (
        f"Dropped collection 'shared-drop' (1 document, 1 chunk) from the Chroma server at"
        f" {chroma_server}, for every machine that uses it" in result.stderr
    )
    names = VectorStore(tmp_path / "unused", chroma_server).collection_names()
    assert not [n for n in names if n.startswith("shared-drop")]
    assert not machine(tmp_path / "home2", chroma_server, "shared-drop").collection.exists
