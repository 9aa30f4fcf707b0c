"""The HTML map in a real headless browser (issue 18.9): at 200 documents in 10 clusters the
group names are all shown, above the points, overlapping nothing; they keep their size on the
screen when the map is zoomed; a hidden group's labels go; the page logs nothing to the
console. Chromium is driven by its DevTools protocol; screenshots are taken at each step."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port, make_app

from ragchat import explore
from ragchat.map_drawing import write

pytestmark = pytest.mark.slow  # a browser, t-SNE and a 200-file ingest: about half a minute

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOPICS = ["solar", "tides", "bread", "chess", "violin", "orchids", "comets", "knitting",
          "cycling", "volcano"]  # fmt: skip
WIDTH, HEIGHT = 1400, 900


class Browser:
    """Headless Chromium with one page, spoken to over the DevTools protocol."""

    def __init__(self, url: str, profile: Path) -> None:
        from websockets.sync.client import connect

        port = free_port()
        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                f"--window-size={WIDTH},{HEIGHT}",
                f"--remote-debugging-port={port}",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    pages = [t for t in json.load(r) if t["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.time() > deadline or self.process.poll() is not None:
                raise RuntimeError("chromium did not start")
            time.sleep(0.2)
        self.stack = contextlib.ExitStack()
        self.socket = self.stack.enter_context(
            connect(pages[0]["webSocketDebuggerUrl"], max_size=50_000_000)
        )
        self.calls = 0

    def call(self, method: str, **params) -> dict:
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.calls:
                if "error" in message:
                    raise RuntimeError(message["error"])
                return message["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def labels(self) -> list[dict]:
        deadline = time.time() + 30
        while self.evaluate("document.body && document.body.dataset.layout") != "done":
            assert time.time() < deadline, "the page never laid its labels out"
            time.sleep(0.1)
        return json.loads(self.evaluate("document.body.dataset.labels"))

    def screenshot(self, path: Path) -> None:
        import base64

        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot")["data"]))

    def close(self) -> str:
        """Stop the browser; what it logged."""
        self.stack.close()
        self.process.terminate()
        try:
            _, log = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, log = self.process.communicate()
        return log


def overlapping(labels: list[dict]) -> list[tuple[str, str]]:
    return [
        (a["text"], b["text"])
        for i, a in enumerate(labels)
        for b in labels[i + 1 :]
        if a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
    ]  # fmt: skip


def coloured_share(png: Path, colour: str) -> float:
    """The share of the picture's pixels that are (about) ``colour``."""
    import matplotlib.image

    pixels = matplotlib.image.imread(png)[..., :3]
    target = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    close = (abs(pixels - target) < 0.06).all(axis=-1)
    return float(close.mean())


@pytest.fixture(scope="module")
def two_hundred(tmp_path_factory) -> Path:
    """A 200-document collection in 10 topics, mapped to map.html (t-SNE, 10 clusters)."""
    base = tmp_path_factory.mktemp("map200")
    docs, home = base / "docs", base / "home"
    generator = random.Random(0)
    for topic in TOPICS:
        words = [f"{topic}{i}" for i in range(40)] + [topic] * 10
        (docs / topic).mkdir(parents=True)
        for n in range(20):
            text = " ".join(generator.choices(words, k=30))
            (docs / topic / f"{topic}-{n:02d}.md").write_text(
                f"# {topic.title()} note {n}\n\n{text}.\n"
            )
    app = make_app(home)
    app.ingest(docs)
    document_map = explore.document_map(app.collection, "fake", n_clusters=10)
    assert "placed by t-SNE" in document_map.subtitle  # umap-learn is not installed here
    write(document_map, base / "map.html")
    return base


@pytest.fixture
def browser(two_hundred: Path, tmp_path: Path, request):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    fragment = getattr(request, "param", "")
    opened = Browser((two_hundred / "map.html").as_uri() + fragment, tmp_path / "profile")
    yield opened
    log = opened.close()
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert console == [], console  # no errors, nor anything else, in the page's console


def test_group_names_are_shown_without_overlaps_and_keep_their_size(browser, tmp_path: Path):
    screenshots = Path(os.environ.get("MAP_SCREENSHOTS", tmp_path))
    labels = browser.labels()
    browser.screenshot(screenshots / "map-200.png")
    groups = [label for label in labels if label["kind"] == "group"]
    assert len(groups) == 10, groups
    assert overlapping(labels) == []
    assert sum(1 for label in labels if label["kind"] == "title") >= 15
    # drawn: the picture holds the group colours (points and names), not a blank page
    assert coloured_share(screenshots / "map-200.png", "#1f77b4") > 0.0005

    # zoom in 3 steps around the middle of the plot: names keep their size on the screen,
    # the groups spread apart, and no two shown labels overlap
    browser.evaluate(
        """(() => { const svg = document.getElementById("svg"), box = svg.getBoundingClientRect();
        for (let i = 0; i < 3; i++) svg.dispatchEvent(new WheelEvent("wheel", {deltaY: -100,
          clientX: box.x + box.width / 2, clientY: box.y + box.height / 2, bubbles: true, cancelable: true}));
        })()"""
    )
    zoomed = browser.labels()
    browser.screenshot(screenshots / "map-200-zoomed.png")
    heights = {label["text"]: label["h"] for label in groups}
    for label in zoomed:
        if label["kind"] == "group" and label["text"] in heights:
            assert abs(label["h"] - heights[label["text"]]) < 1.0, label
    assert overlapping(zoomed) == []


@pytest.mark.parametrize("browser", ["#group=3"], indirect=True)
def test_a_hidden_group_hides_its_labels(browser, tmp_path: Path):
    screenshots = Path(os.environ.get("MAP_SCREENSHOTS", tmp_path))
    shown = browser.labels()
    browser.screenshot(screenshots / "map-200-one-group.png")
    assert {label["group"] for label in shown} == {2}
    assert [label["kind"] for label in shown].count("group") == 1
    # clicking the group again shows every group, and their names, again
    browser.evaluate('document.querySelectorAll(".legend div")[2].click()')
    everything = browser.labels()
    assert len({label["group"] for label in everything if label["kind"] == "group"}) == 10
    browser.evaluate('document.querySelectorAll(".legend div")[0].click()')
    assert {label["group"] for label in browser.labels()} == {0}
