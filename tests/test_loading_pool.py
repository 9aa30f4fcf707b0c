"""Reading files in a pool of worker processes (isolation.py) and feeding the ingest in file
order (ingest.py): side by side, each file still capped, and nothing depending on timing."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fakes import FakeEmbedder
from helpers import make_app, ragchat

from ragchat.config import cores, load_settings
from ragchat.errors import ConfigError, LoadError
from ragchat.ingest import Ingestor, TextSource
from ragchat.isolation import SafeLoader, cpu_share
from ragchat.pages import Page


def _meet(folder: Path) -> list[Page]:
    """Leave a mark, then wait for a second worker's mark: true only if two files are being
    read at the same time (in two processes)."""
    (folder / f"{os.getpid()}.mark").write_text("")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if len(list(folder.glob("*.mark"))) >= 2:
            return [Page(text="met")]
        time.sleep(0.05)
    return [Page(text="alone")]


def _hang(path: Path) -> list[Page]:
    while True:
        time.sleep(1)


def _pid(path: Path) -> list[Page]:
    return [Page(text=str(os.getpid()))]


def _share(path: Path) -> list[Page]:
    return [Page(text=str(cpu_share()))]


def test_two_workers_read_two_files_at_once(tmp_path: Path):
    pool = SafeLoader(workers=2)
    try:
        with ThreadPoolExecutor(2) as threads:
            texts = [
                pages[0].text
                for pages in threads.map(lambda _: pool.load_with(_meet, tmp_path), range(2))
            ]
    finally:
        pool.close()
    assert texts == ["met", "met"]
    assert len(list(tmp_path.glob("*.mark"))) == 2  # two processes


def test_a_file_that_hangs_costs_only_its_own_worker(tmp_path: Path):
    pool = SafeLoader(workers=2, timeout=60)
    try:
        # started first: spawning the workers on a busy machine is not what is measured
        with ThreadPoolExecutor(2) as threads:
            before = set(threads.map(lambda _: pool.load_with(_meet, tmp_path)[0].text, range(2)))
        assert before == {"met"}
        pool.timeout = 2
        with ThreadPoolExecutor(2) as threads:
            hanging = threads.submit(pool.load_with, _hang, tmp_path)
            time.sleep(0.2)  # the hanging file has taken a worker
            fine = [threads.submit(pool.load_with, _pid, tmp_path) for _ in range(3)]
            assert len({f.result()[0].text for f in fine}) == 1  # all read by the other worker
            with pytest.raises(LoadError, match="took longer than 2s"):
                hanging.result()
        # the killed worker is replaced: two files are again read at once
        for mark in tmp_path.glob("*.mark"):
            mark.unlink()
        pool.timeout = 60
        with ThreadPoolExecutor(2) as threads:
            after = set(threads.map(lambda _: pool.load_with(_meet, tmp_path)[0].text, range(2)))
        assert after == {"met"}
    finally:
        pool.close()


def test_ocr_in_a_pool_takes_its_share_of_the_cores(tmp_path: Path):
    assert cpu_share() == cores()  # in this process: every core
    pool = SafeLoader(workers=2)
    try:
        assert pool.load_with(_share, tmp_path)[0].text == str(max(1, cores() // 2))
    finally:
        pool.close()


class SlowSource(TextSource):
    """A text whose reading takes ``delay`` seconds: the first files read slowest."""

    delay: float = 0.0

    def load(self) -> list[Page]:
        time.sleep(self.delay)
        return super().load()


def _sources(count: int) -> list[SlowSource]:
    sources = []
    for n in range(count):
        source = SlowSource(
            f"/docs/{n:02}.txt", f"Document {n} is about topic {n}.\n\nIt has two paragraphs."
        )
        source.delay = 0.3 if n < 3 else 0.0  # read ahead, the later ones finish first
        sources.append(source)
    return sources


def _stored(app) -> tuple[list, list, list]:
    got = app.store._collection("default").get(include=["documents", "metadatas", "embeddings"])
    order = sorted(range(len(got["ids"])), key=lambda i: got["ids"][i])
    return (
        [got["ids"][i] for i in order],
        [got["documents"][i] for i in order],
        [list(got["embeddings"][i]) for i in order],
    )


@pytest.mark.parametrize("workers", [1, 4])
def test_files_read_ahead_are_written_in_file_order(ragchat_home: Path, workers: int):
    embedder = FakeEmbedder()
    app = make_app(ragchat_home, embedder, chunk_tokens=8)
    sources = _sources(12)
    ingestor = Ingestor(app.collection, embedder, 8, workers=workers)
    report = ingestor.sync(sources, lambda key: True)
    assert report.added == [s.key for s in sources]
    # embedded (and so written) in the order of the files, whatever finished reading first
    expected = [c for s in sources for c in (s.text.split("\n\n"))]
    assert [t.split("\n")[-1] for t in embedder.embedded] == expected
    files = app.manifest.files("default")
    assert list(files) == [s.key for s in sources]
    assert {"read", "read_wait", "chunk", "embed", "write"} <= set(report.timings)


def test_the_store_does_not_depend_on_the_number_of_workers(tmp_path: Path):
    stores = []
    for workers in (1, 3):
        home = tmp_path / str(workers)
        app = make_app(home, FakeEmbedder(), chunk_tokens=8)
        Ingestor(app.collection, app.embedder, 8, workers=workers).sync(
            _sources(10), lambda key: True
        )
        stores.append((_stored(app), app.manifest.files("default")))
    assert stores[0] == stores[1]


def test_ingest_takes_workers_as_a_flag_and_a_setting(ragchat_home: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "blob.bin").write_bytes(b"\x00\x01" * 100)  # nothing to embed: no model loads
    result = ragchat("ingest", str(docs), "--workers", "2", "--json")
    assert result.returncode == 0, result.stderr
    bad = ragchat("ingest", str(docs), env={"RAGCHAT_WORKERS": "-1"})
    assert bad.returncode == 1 and "workers must be 0 or more" in bad.stderr
    with pytest.raises(ConfigError, match="workers"):
        load_settings(ragchat_home, workers=-2)
    assert make_app(ragchat_home, workers=3).ingestor().workers == 3
    assert make_app(ragchat_home).ingestor().workers == cores()  # 0: one per core


def _eat_memory(path: Path) -> list[Page]:
    blocks = []
    while True:
        blocks.append(bytearray(50 * 1024 * 1024))


def _die(path: Path) -> list[Page]:
    import signal

    os.kill(os.getpid(), signal.SIGKILL)  # a crash in a native library looks like this
    return []


def test_each_file_keeps_its_memory_cap_and_a_crash_costs_one_worker(tmp_path: Path):
    pool = SafeLoader(workers=2, memory_mb=300)
    try:
        with ThreadPoolExecutor(2) as threads:
            hungry = threads.submit(pool.load_with, _eat_memory, tmp_path)
            crashing = threads.submit(pool.load_with, _die, tmp_path)
            with pytest.raises(LoadError, match="more than 300 MB"):
                hungry.result()
            with pytest.raises(LoadError, match="crashed the reader"):
                crashing.result()
            # the crashed worker is replaced: two processes again read two files at once
            met = set(threads.map(lambda _: pool.load_with(_meet, tmp_path)[0].text, range(2)))
        assert met == {"met"}
    finally:
        pool.close()


@pytest.mark.slow  # ~20 s of PDF parsing
def test_real_pdfs_give_the_same_store_with_one_worker_or_several(eval_pdfs: Path, tmp_path: Path):
    import shutil

    docs = tmp_path / "docs"
    docs.mkdir()
    for pdf in sorted(eval_pdfs.glob("*8K*.pdf")):
        shutil.copy2(pdf, docs / pdf.name)
    shutil.copy2(Path(__file__).parent.parent / "corpora/harbor/annual-report-2024.pdf", docs)
    for n in range(5):  # text files, read in the threads, between the PDFs
        (docs / f"note-{n}.md").write_text(f"Note {n} on the filings.\n\nA second paragraph {n}.")
    stores = []
    for workers in (1, 3):
        app = make_app(tmp_path / f"home{workers}", FakeEmbedder(), workers=workers)
        report = app.ingest(docs)
        assert not report.skipped and report.pages > 10
        stores.append((_stored(app), app.manifest.files("default")))
    assert stores[0] == stores[1]
