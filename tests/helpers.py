"""Plain helpers the tests share: paths, the real CLI in a subprocess, real servers on
127.0.0.1, and a test App (real Chroma, fake embedder). Fixtures are in conftest.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeEmbedder

from ragchat.app import App
from ragchat.config import Settings
from ragchat.embedders import Embedder

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpora" / "harbor"
EVAL = Path(os.environ.get("RAGCHAT_EVAL_DATA", ROOT.parent / "shared" / "eval"))


# Runs a command as root without the capabilities that ignore file permissions (the tests run
# as root): dropped from the bounding and inheritable sets, so exec'ing the command cannot
# regain them. CAP_FOWNER too: with it, root may chmod files it does not own.
UNPRIVILEGED = [
    "setpriv",
    "--inh-caps=-dac_override,-dac_read_search,-fowner",
    "--bounding-set=-dac_override,-dac_read_search,-fowner",
]


def unprivileged() -> list[str]:
    """The ``UNPRIVILEGED`` prefix, or a skip where setpriv is missing."""
    import shutil

    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop root's file capabilities")
    return UNPRIVILEGED


def ragchat(
    *args: str,
    input: str | None = None,
    env: dict | None = None,
    prefix: Sequence[str] = (),
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "RAGCHAT_EMBEDDING_MODEL": "bundled",
        "RAGCHAT_MODEL": "bundled",
        "RAGCHAT_N_CTX": "2048",
        "RAGCHAT_MAX_TOKENS": "96",
        **(env or {}),
    }
    return subprocess.run(
        [*prefix, sys.executable, "-m", "ragchat", *args],
        input=input,
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(
    command: list[str], probe: str, headers: dict[str, str] | None = None, timeout: float = 120
):
    """Run a real server on 127.0.0.1 until ``probe`` answers, yielding its process; stop it
    afterwards."""
    import time
    import urllib.request

    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    deadline = time.time() + timeout
    try:
        while True:
            try:
                urllib.request.urlopen(
                    urllib.request.Request(probe, headers=headers or {}), timeout=2
                ).read()
                break
            except OSError:
                if time.time() > deadline or process.poll() is not None:
                    pytest.fail(f"{command[0]} {command[1]} did not start")
                time.sleep(0.3)
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)  # a test may have stopped it
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def chroma_run(path: Path, port: int) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real Chroma server on 127.0.0.1:``port`` keeping its data in ``path``: its URL and
    its process."""
    chroma = str(Path(sys.executable).parent / "chroma")
    with serving(
        [chroma, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/api/v2/heartbeat",
        timeout=60,
    ) as process:
        yield f"http://127.0.0.1:{port}", process


@contextmanager
def llama_cpp_serving(key: str, *extra: str) -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server for the bundled GGUF (as model "smol") on
    127.0.0.1 with the API key ``key``, while the block runs; yields its /v1 URL."""
    from ragchat.bundled import bundled_llm

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    command = [
        *(sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_llm())),
        *("--model_alias", "smol", "--host", "127.0.0.1", "--port", str(port)),
        *("--api_key", key, "--n_threads", "2", *extra),
    ]
    with serving(command, url + "/models", {"Authorization": f"Bearer {key}"}):
        yield url


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler of a stub HTTP API on 127.0.0.1 that answers JSON and logs nothing."""

    def send_json(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def read_json(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def stub_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free port of 127.0.0.1 in a thread; yields its /v1 URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # a short poll: shutdown() waits for it (the default is half a second, at every test's end)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def ingest_corpus(base: Path) -> tuple[Path, Path]:
    """A copy of the sample corpus in ``base``/docs ingested with the bundled embedder by the
    CLI into ``base``/home; (home, docs)."""
    home, docs = base / "home", base / "docs"
    shutil.copytree(CORPUS, docs)
    result = ragchat("ingest", str(docs), env={"RAGCHAT_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert "5 added, 0 updated, 0 removed, 0 unchanged, 0 skipped" in result.stderr
    return home, docs


def make_app(home: Path, embedder: Embedder | None = None, **settings) -> App:
    """An App over a real store in ``home`` with the fake embedder (or ``embedder``)."""
    explicit = frozenset({"embedding_model"}) if embedder is not None else frozenset()
    return App(home, Settings(**settings), explicit=explicit, embedder=embedder or FakeEmbedder())


def chroma_paths(app: App) -> dict[str, int]:
    """Chunks per file, read from the Chroma collection itself."""
    got = app.store._collection(app.collection.name).get(include=["metadatas"])
    counts: dict[str, int] = {}
    for meta in got["metadatas"]:
        counts[meta["path"]] = counts.get(meta["path"], 0) + 1
    return counts


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def ingest_in_child(home: Path, folder: Path, prefix: Sequence[str] = ()) -> dict:
    """Ingest ``folder`` into ``home`` with the fake embedder in a new process run under
    ``prefix`` (e.g. ``unprivileged()``); the report as a dict, its summary included."""
    script = (
        "import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[3]);"
        "from helpers import make_app; report = make_app(Path(sys.argv[1])).ingest(Path(sys.argv[2]));"
        "print(json.dumps({**report.to_dict(), 'summary': report.summary()}))"
    )
    result = subprocess.run(
        [*prefix, sys.executable, "-c", script, str(home), str(folder), str(ROOT / "tests")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A real, small file system (tmpfs of ``size``, e.g. '2m') mounted at ``folder``; skips the
    test when mounting is not permitted here."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def remount(folder: Path, size: str) -> None:
    """Give the tmpfs at ``folder`` another size (the disk was freed, or filled)."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)


def text_pdf(path: Path, pages: list[list[tuple[int, list[str]]]]) -> Path:
    """A PDF drawn with pypdf alone: each page a list of (x, lines) columns of Helvetica text
    from the top of the page down."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    fonts = DictionaryObject({NameObject("/F1"): writer._add_object(font)})
    for columns in pages:
        operations = []
        for x, lines in columns:
            operations.append(f"BT /F1 10 Tf 12 TL {x} 700 Td")
            operations += [f"({line}) Tj T*" for line in lines]
            operations.append("ET")
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
        stream = DecodedStreamObject()
        stream.set_data("\n".join(operations).encode())
        page[NameObject("/Contents")] = writer._add_object(stream)
    writer.write(path)
    return path
