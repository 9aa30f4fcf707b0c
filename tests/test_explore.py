"""Exploring a collection: similar, cluster, map, spectrum, and code as documents.

Fast tests use the fake embedder on a real Chroma store; the ``slow`` ones drive the real CLI
with the bundled MiniLM (and SmolLM2 for --summary) on a corpus built here.
"""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import pytest
from fakes import FakeEmbedder, FakeLLM
from helpers import ragchat
from rich.console import Console

from ragchat import explore
from ragchat.app import App
from ragchat.config import Settings
from ragchat.document_vectors import Document, docs_collection, mean_vector
from ragchat.errors import ExploreError
from ragchat.explore import Axis, clean_name, cluster, name_clusters
from ragchat.ids import document_id
from ragchat.map_drawing import DocumentMap, Point, build_figure, html_page

COOKING = [
    "How to bake sourdough bread: mix flour, water, salt and a lively starter, knead the dough and let it rise overnight before baking it in a hot oven.",
    "A tomato pasta sauce: fry garlic in olive oil, add crushed tomatoes and fresh basil, simmer for twenty minutes and season with salt and pepper.",
    "Roasting vegetables: cut carrots and potatoes into chunks, toss them with oil and rosemary, and roast at 220 degrees until golden and crisp.",
    "Making pancakes: whisk flour, eggs and milk into a smooth batter, fry ladlefuls in butter and flip them when bubbles appear on top.",
]
ASTRONOMY = [
    "Jupiter is the largest planet in the solar system, a gas giant with a great red spot storm and dozens of moons orbiting it.",
    "A neutron star forms when a massive star collapses in a supernova; its core is so dense that a teaspoon of it weighs a billion tons.",
    "The Andromeda galaxy is the nearest large spiral galaxy to the Milky Way, about two and a half million light years away from Earth.",
    "Telescopes collect starlight with mirrors or lenses; astronomers observe distant nebulae and measure the redshift of faraway galaxies.",
]
DUPLICATE = (
    COOKING[0].replace("overnight", "through the night").replace("hot oven", "very hot oven")
)

CLIENT = '''"""A small HTTP client."""

import time
import urllib.request

ATTEMPTS = 3


class Client:
    """Talks to one web server."""

    timeout = 10

    def __init__(self, base_url):
        self.base_url = base_url

    # Network errors are usually brief: try again with a growing pause.
    @staticmethod
    def fetch_with_retry(url):
        """Download a URL, retrying failed HTTP requests with exponential backoff."""
        for attempt in range(ATTEMPTS):
            try:
                return urllib.request.urlopen(url).read()
            except OSError:
                time.sleep(2 ** attempt)
        raise OSError(url)


def parse_csv_line(line):
    """Split one line of comma-separated values."""
    return [cell.strip() for cell in line.split(",")]
'''


def build_corpus(folder: Path) -> Path:
    for n, text in enumerate(COOKING):
        (folder / "cooking").mkdir(parents=True, exist_ok=True)
        (folder / "cooking" / f"recipe-{n}.md").write_text(f"# Recipe {n}\n\n{text}\n")
    for n, text in enumerate(ASTRONOMY):
        (folder / "astronomy").mkdir(parents=True, exist_ok=True)
        (folder / "astronomy" / f"sky-{n}.md").write_text(f"# Sky note {n}\n\n{text}\n")
    (folder / "cooking" / "recipe-0-copy.md").write_text(f"# Bread, again\n\n{DUPLICATE}\n")
    return folder


def fake_app(home: Path) -> App:
    return App(home, Settings(), explicit=frozenset({"embedding_model"}), embedder=FakeEmbedder())


def doc_ids(app: App) -> set[str]:
    name = docs_collection(app.collection.name)
    return set(app.store.ids(name)) if app.store.exists(name) else set()


# document vectors, kept by ingest


def test_ingest_keeps_one_document_vector_per_file(ragchat_home: Path, tmp_path: Path):
    docs = build_corpus(tmp_path / "docs")
    app = fake_app(ragchat_home)
    app.ingest(docs)
    files = app.manifest.files("default")
    assert doc_ids(app) == {document_id(p) for p in files} and len(files) == 9

    # the vector is the normalised mean of the file's chunk vectors
    path = str(docs / "cooking" / "recipe-1.md")
    chunks = [r.vector for r in app.store.scan("default", where={"path": path})]
    stored = explore.document_index(app.collection).get([document_id(path)])[document_id(path)]
    assert stored.title == "Recipe 1" and stored.path == path
    assert all(
        math.isclose(a, b, abs_tol=1e-6)
        for a, b in zip(stored.vector, mean_vector(chunks), strict=True)
    )

    (docs / "astronomy" / "sky-3.md").unlink()
    (docs / "cooking" / "recipe-2.md").write_text("")  # now empty: no text, no vector
    app.ingest(docs)
    left = {document_id(p) for p, r in app.manifest.files("default").items() if r.chunks}
    assert doc_ids(app) == left and len(left) == 7

    app.drop_collection()
    assert not app.store.exists(docs_collection("default"))


def test_killed_ingest_leaves_no_document_vector_without_its_file(
    ragchat_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    docs = build_corpus(tmp_path / "docs")
    app = fake_app(ragchat_home)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(app.manifest, "put_file", crash)  # dies after the vectors, before the rows
    with pytest.raises(KeyboardInterrupt):
        app.ingest(docs)
    assert document_id(str(docs / "astronomy" / "sky-1.md")) in doc_ids(
        app
    )  # written first, like the chunks
    monkeypatch.undo()
    (
        docs / "astronomy" / "sky-1.md"
    ).unlink()  # gone before the next ingest: no row will ever own it
    resumed = fake_app(ragchat_home)
    resumed.ingest(docs)
    assert doc_ids(resumed) == {document_id(p) for p in resumed.manifest.files("default")}
    assert len(doc_ids(resumed)) == 8


def test_collection_from_before_document_vectors_gets_them_on_first_use(
    ragchat_home: Path, tmp_path: Path
):
    docs = build_corpus(tmp_path / "docs")
    app = fake_app(ragchat_home)
    app.ingest(docs)
    before = {d.id: d.vector for d in explore.document_index(app.collection).all()}
    app.store.drop(docs_collection("default"))  # as a collection built by an older ragchat

    related = explore.similar(fake_app(ragchat_home).collection, docs / "cooking" / "recipe-0.md")
    assert related[0].path.endswith("recipe-0-copy.md")
    after = {d.id: d.vector for d in explore.document_index(app.collection).all()}
    assert set(after) == set(before)
    assert all(
        math.isclose(a, b, abs_tol=1e-6)
        for i in before
        for a, b in zip(before[i], after[i], strict=True)
    )


def test_similar_and_cluster_refuse_what_they_cannot_do(ragchat_home: Path, tmp_path: Path):
    docs = build_corpus(tmp_path / "docs")
    app = fake_app(ragchat_home)
    app.ingest(docs)
    with pytest.raises(ExploreError, match=r"^No such file: .*elsewhere.md$"):
        explore.similar(app.collection, tmp_path / "elsewhere.md")
    # a typo: the ingested files named most like it
    with pytest.raises(ExploreError, match=r"No such file: .*sky-00.md; did you mean '.*sky-0.md'"):
        explore.similar(app.collection, docs / "astronomy" / "sky-00.md")
    (tmp_path / "elsewhere.md").write_text("Not ingested.")
    with pytest.raises(ExploreError, match=r"not in collection 'default'; ingest it first"):
        explore.similar(app.collection, tmp_path / "elsewhere.md")
    with pytest.raises(
        ExploreError, match="Cannot make 20 clusters from 9 documents; ask for at most 9"
    ):
        explore.clusters(app.collection, 20)
    results = explore.similar(app.collection, docs / "astronomy" / "sky-0.md", n=3)
    assert len(results) == 3 and all(not r.path.endswith("sky-0.md") for r in results)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


# clusters and their names


def unit(*values: float) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def test_cluster_lists_members_nearest_the_centre_first():
    documents = [
        Document("a1", "/d/a1.md", "bread dough", "bread flour oven", unit(1, 0.05, 0)),
        Document("a2", "/d/a2.md", "bread loaf", "bread yeast oven", unit(1, 0, 0)),
        Document("a3", "/d/a3.md", "bread crust", "bread crust oven", unit(1, 0.3, 0)),
        Document("b1", "/d/b1.md", "galaxy", "galaxy stars", unit(0, 0, 1)),
        Document("b2", "/d/b2.md", "nebula", "nebula stars", unit(0, 0.1, 1)),
        Document("b3", "/d/b3.md", "comet", "comet stars", unit(0, 0.4, 1)),
    ]
    clusters = cluster(documents, 2)
    assert [[d.id for d in c.members] for c in clusters] == [["a1", "a2", "a3"], ["b2", "b1", "b3"]]
    assert clusters[0].distances == sorted(clusters[0].distances)
    assert "bread" in clusters[0].keywords and "stars" in clusters[1].keywords


def test_cluster_names_from_the_llm_are_short_plain_text():
    documents = [
        Document(str(i), f"/d/{i}.md", f"title {i}", "lead", unit(1, i / 10)) for i in range(4)
    ]
    clusters = cluster(documents, 2)
    llm = FakeLLM(["Name: \x1b[31mBread\x1b[0m baking.", "word " * 80])
    name_clusters(clusters, llm, "{documents}\n{keywords}")
    assert clusters[0].name == "Bread baking"
    assert clusters[1].name == "" and clusters[1].label == (
        ", ".join(clusters[1].keywords) or "cluster 2"
    )
    assert "- title" in llm.prompts[0][0]["content"]


@pytest.mark.parametrize(
    ("reply", "name"),
    [
        ('The topic is "Home gardening tips"', "Home gardening tips"),
        ("**Cooking recipes**\nBecause...", "Cooking recipes"),
        ("Topic: Star formation", "Star formation"),
        ("", ""),
        ("x" * 200, ""),
        ("Bread baking.", "Bread baking"),
        ("IT security audits", "IT security audits"),
        ("This group consists of documents about bread baking.", ""),
        ("Documents that contain recipes", ""),
        ("These are recipes", ""),
        ("Notes on the harbour, its boats and the moorings", ""),  # over six words
        ("The harbour keeps the boats.", ""),  # a sentence
    ],
)
def test_clean_name(reply: str, name: str):
    assert clean_name(reply) == name


def test_a_name_that_falls_back_to_keywords_says_so():
    from ragchat.render import clusters_view

    documents = [
        Document(str(i), f"/d/{i}.md", f"title {i}", "lead", unit(1, i / 10)) for i in range(4)
    ]
    clusters = cluster(documents, 2)
    llm = FakeLLM(["Bread baking", "This group consists of documents about bread."])
    advanced = []
    name_clusters(clusters, llm, "{documents}\n{keywords}", lambda: advanced.append(1))
    assert len(advanced) == 2  # progress per cluster
    assert clusters[1].name == "" and clusters[1].to_dict()["rejected_name"] == (
        "This group consists of documents about bread."
    )
    assert clusters[0].to_dict()["rejected_name"] is None
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(clusters_view(clusters))
    assert (
        "  named by its words: the model's reply was not a short name"
        " ('This group consists of documents about bread.')" in console.file.getvalue()
    )


# spectrum


def test_axis_puts_a_at_zero_and_b_at_one():
    table = {"a1": [1.0, 0.0], "a2": [1.0, 2.0], "b1": [3.0, 0.0], "b2": [3.0, 2.0]}

    class Fixed(FakeEmbedder):
        def embed_batch(self, texts):
            return [table[t] for t in texts]

    axis = Axis.from_examples(Fixed(), ["a1", "a2"], ["b1", "b2"])
    assert axis.scores([[1.0, 1.0], [3.0, 1.0], [2.0, 5.0], [5.0, 0.0]]) == pytest.approx(
        [0.0, 1.0, 0.5, 2.0]
    )
    with pytest.raises(ExploreError, match="the same place"):
        Axis.from_examples(Fixed(), ["a1"], ["a1"])


# the map's data


def small_map(count: int = 7) -> DocumentMap:
    points = [
        Point(math.cos(i), math.sin(i) * (i % 3), f"Doc {i} $5 </script>", f"/d/{i}.md", i % 2)
        for i in range(count)
    ]
    return DocumentMap(
        "Collection 'x': 7 documents", "subtitle", ("PC 1", "PC 2"), ["first", "second"], points
    )


def test_html_map_carries_one_point_per_document_and_no_markup_from_titles():
    page = html_page(small_map())
    assert (
        "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    )  # nothing fetched
    data = json.loads(
        re.search(
            r'<script type="application/json" id="map-data">(.*?)</script>', page, re.S
        ).group(1)
    )
    assert len(data["points"]) == 7 and data["points"][0]["title"] == "Doc 0 $5 </script>"
    assert page.count("</script>") == 2  # a title cannot close the data element


def test_png_figure_plots_every_document():
    figure = build_figure(small_map())
    axes = figure.axes[0]
    assert sum(len(c.get_offsets()) for c in axes.collections) == 7
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["first (4)", "second (3)"]


def crowded_map() -> DocumentMap:
    """10 groups of 20 points, all within a few units of one corner (as PCA drew 200 documents
    in issue 18.9), each point titled."""
    import random

    generator = random.Random(1)
    points = [
        Point(generator.gauss(g % 3, 0.8), generator.gauss(g // 3, 0.8), f"Note {g}-{i}", "", g)
        for g in range(10)
        for i in range(20)
    ]
    points.append(Point(40.0, 30.0, "far away", "", 0))  # the other corner, where nothing is
    names = [f"group name number {g}" for g in range(10)]
    return DocumentMap("Collection 'x': 201 documents", "subtitle", ("1", "2"), names, points)


def test_png_labels_are_above_the_points_and_overlap_nothing():
    figure = build_figure(crowded_map())
    axes = figure.axes[0]
    renderer = figure.canvas.get_renderer()
    names = {f"group name number {g}" for g in range(10)}
    shown = [t for t in axes.texts if t.get_visible() and t.get_text()]
    assert names <= {t.get_text() for t in shown}  # every group is named
    assert "far away" in {t.get_text() for t in shown}  # a title with room around it is written
    points_z = max(c.get_zorder() for c in axes.collections)
    assert all(t.get_zorder() > points_z for t in shown if t.get_text() in names)
    from matplotlib.text import Text

    boxes = [Text.get_window_extent(t, renderer) for t in shown]  # the text, not its line
    assert [
        (shown[i].get_text(), shown[j].get_text())
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if boxes[i].overlaps(boxes[j])
    ] == []


def test_the_map_separates_clusters_by_t_sne_and_keeps_pca():
    """10 clusters in 40 dimensions: t-SNE (the default when UMAP is not installed) keeps them
    apart in 2-D; PCA (still there as --method pca) piles most of them up."""
    import numpy as np
    from sklearn.metrics import silhouette_score

    generator = np.random.default_rng(0)
    centres = generator.normal(size=(10, 40))
    documents = [
        Document(f"{c}-{i}", f"/d/{c}-{i}.md", "t", "", centres[c] + generator.normal(0, 0.8, 40))
        for c in range(10)
        for i in range(15)
    ]
    groups = [c for c in range(10) for _ in range(15)]
    tsne, axes, name = explore.project(documents)
    assert (name, axes) == ("t-SNE", ("t-SNE 1", "t-SNE 2"))
    pca, _, pca_name = explore.project(documents, "pca")
    assert pca_name == "PCA"
    assert silhouette_score(tsne, groups) > 0.7 > silhouette_score(pca, groups) + 0.3
    with pytest.raises(ExploreError, match="Unknown projection 'mds'"):
        explore.project(documents, "mds")


# the commands, end to end with the bundled models


@pytest.fixture(scope="module")
def explored(tmp_path_factory) -> tuple[dict[str, str], Path]:
    base = tmp_path_factory.mktemp("explore")
    docs = build_corpus(base / "docs")
    env = {"RAGCHAT_HOME": str(base / "home")}
    result = ragchat("ingest", str(docs), env=env)
    assert result.returncode == 0, result.stderr
    return env, docs


@pytest.mark.slow
def test_similar_finds_the_near_duplicate_first(explored):
    env, docs = explored
    result = ragchat("similar", str(docs / "cooking" / "recipe-0.md"), "--json", "-n", "4", env=env)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)["results"]
    assert (
        len(found) == 4
        and found[0]["path"].endswith("recipe-0-copy.md")
        and found[0]["score"] > 0.9
    )
    assert all("/cooking/" in r["path"] for r in found[:4])  # the other recipes before any star
    text = ragchat("similar", str(docs / "astronomy" / "sky-1.md"), "-n", "3", env=env)
    assert text.returncode == 0 and "sky-" in text.stdout.splitlines()[1]
    missing = ragchat("similar", str(docs / "nowhere.md"), env=env)
    assert (
        missing.returncode == 1
        and missing.stderr.count("\n") == 1
        and "No such file" in missing.stderr
    )


@pytest.mark.slow
def test_two_clusters_separate_the_two_topics(explored):
    env, _ = explored
    result = ragchat("cluster", "2", "--json", env=env)
    assert result.returncode == 0, result.stderr
    clusters = json.loads(result.stdout)["clusters"]
    topics = [{Path(m["path"]).parent.name for m in c["members"]} for c in clusters]
    assert sorted(map(sorted, topics)) == [["astronomy"], ["cooking"]]
    assert [c["size"] for c in clusters] == [5, 4]
    text = ragchat("cluster", "2", env=env)
    assert "Cluster 1:" in text.stdout and "Cluster 2:" in text.stdout
    too_many = ragchat("cluster", "12", env=env)
    assert too_many.returncode == 1 and "ask for at most 9" in too_many.stderr


@pytest.mark.slow
def test_cluster_summary_names_come_from_the_bundled_llm(explored):
    env, _ = explored
    result = ragchat("cluster", "2", "--summary", "--json", env=env)
    assert result.returncode == 0, result.stderr
    for found in json.loads(result.stdout)["clusters"]:
        # SmolLM2-135M may not give a usable name; when it does it is short plain text
        assert found["name"] is None or (
            0 < len(found["name"]) <= 48 and "\x1b" not in found["name"]
        )
        assert (found["name"] is None) == (found["rejected_name"] is not None)  # said so
        assert found["keywords"]


@pytest.mark.slow
def test_map_writes_html_and_png_with_one_point_per_document(explored, tmp_path: Path):
    from PIL import Image

    env, _ = explored
    page, picture = tmp_path / "map.html", tmp_path / "map.png"
    assert ragchat("map", "--out", str(page), env=env).returncode == 0
    html = page.read_text()
    data = json.loads(re.search(r'id="map-data">(.*?)</script>', html, re.S).group(1))
    assert len(data["points"]) == 9 and len(data["groups"]) == 2
    assert {Path(p["path"]).name for p in data["points"]} >= {"recipe-0.md", "sky-3.md"}
    assert all(p["title"] for p in data["points"]) and "<script src" not in html

    result = ragchat("map", "-o", str(picture), "--color", "folder", env=env)
    assert result.returncode == 0, result.stderr
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.width >= 1200 and image.height >= 800
        assert image.text["ragchat:documents"] == "9"  # type: ignore[attr-defined]
    bad = ragchat("map", "-o", str(tmp_path / "map.gif"), env=env)
    assert bad.returncode == 1 and ".html (interactive) or .png" in bad.stderr


@pytest.mark.slow
def test_spectrum_ranks_obvious_examples_in_order(explored, tmp_path: Path):
    env, _ = explored
    concrete, abstract = tmp_path / "concrete.txt", tmp_path / "abstract.txt"
    concrete.write_text(
        "The red brick wall is two metres high.\nShe poured hot coffee into a blue mug.\n"
        "The dog chewed the wooden chair leg.\nA cold rain fell on the tin roof all night.\n"
    )
    abstract.write_text(
        "Justice requires a balance between freedom and responsibility.\n"
        "Knowledge is shaped by the assumptions we bring to it.\n"
        "Love is a commitment that transcends momentary feelings.\nTruth matters more than comfort.\n"
    )
    texts = [
        "Freedom is the essence of human dignity.",
        "The kettle boiled on the stove.",
        "The cat slept on a warm windowsill.",
    ]
    result = ragchat(
        "spectrum", "--a", str(concrete), "--b", str(abstract), *texts, "--json", env=env
    )
    assert result.returncode == 0, result.stderr
    ranked = [r["text"] for r in json.loads(result.stdout)["results"]]
    assert ranked[-1] == "Freedom is the essence of human dignity."

    piped = ragchat(
        "spectrum",
        "--a",
        str(concrete),
        "--b",
        str(abstract),
        "-",
        input="\n".join(texts) + "\n",
        env=env,
    )
    assert piped.returncode == 0 and piped.stdout.index("kettle") < piped.stdout.index("Freedom")

    cooking, stars = tmp_path / "cooking.txt", tmp_path / "stars.txt"
    cooking.write_text("Stir the soup and add salt.\nBake the cake for forty minutes.\n")
    stars.write_text("The comet passed close to the sun.\nA red giant star swells as it ages.\n")
    chunks = ragchat(
        "spectrum", "--a", str(cooking), "--b", str(stars), "--chunks", "-n", "3", "--json", env=env
    )
    assert chunks.returncode == 0, chunks.stderr
    found = json.loads(chunks.stdout)
    assert found["chunks"] == 9
    assert all("/cooking/" in r["path"] for r in found["lowest"]) and all(
        "/astronomy/" in r["path"] for r in found["highest"]
    )


@pytest.mark.slow
def test_code_search_finds_the_function_and_cites_its_line(tmp_path: Path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "client.py").write_text(CLIENT)
    (code / "broken.py").write_text("def oops(:\n    pass\n\nThis file does not parse.\n")
    env = {"RAGCHAT_HOME": str(tmp_path / "home")}
    ingest = ragchat("ingest", str(code), env=env)
    assert ingest.returncode == 0 and "2 added" in ingest.stderr and "0 skipped" in ingest.stderr
    result = ragchat("search", "where do we retry HTTP requests?", "-k", "1", "--json", env=env)
    assert result.returncode == 0, result.stderr
    top = json.loads(result.stdout)["results"][0]
    assert top["symbol"] == "Client.fetch_with_retry"
    assert (top["line"], top["end_line"]) == (17, 26)  # from the comment above the decorator
    shown = ragchat("search", "where do we retry HTTP requests?", "-k", "1", env=env)
    assert re.search(r"client\.py:17 — Client\.fetch_with_retry", shown.stdout), shown.stdout


def test_cluster_json_honours_members(ragchat_home: Path, tmp_path: Path):
    from click.testing import CliRunner

    from ragchat.cli import main

    fake_app(ragchat_home).ingest(build_corpus(tmp_path / "docs"))
    result = CliRunner().invoke(main, ["cluster", "2", "--json", "--members", "2"])
    assert result.exit_code == 0, result.output
    clusters = json.loads(result.stdout)["clusters"]
    assert [len(c["members"]) for c in clusters] == [2, 2]
    assert sum(c["size"] for c in clusters) == 9  # the size still counts every member
    everyone = json.loads(CliRunner().invoke(main, ["cluster", "2", "--json"]).stdout)
    assert sum(len(c["members"]) for c in everyone["clusters"]) == 9
    assert [c["members"][:2] for c in everyone["clusters"]] == [c["members"] for c in clusters]


def test_documents_are_titled_by_title_h1_pdf_metadata_or_file_name(
    ragchat_home: Path, tmp_path: Path
):
    from helpers import CORPUS
    from pypdf import PdfWriter

    docs = tmp_path / "docs"
    docs.mkdir()
    nav = "<nav><a href='/'>Home</a> | <a href='/blog'>Blog</a></nav>"
    (docs / "post.html").write_text(
        f"<html><head><title>Solar panels on the barn</title></head><body>{nav}"
        "<p>Twelve panels went up in May.</p></body></html>"
    )
    (docs / "bare.html").write_text(f"<body>{nav}<h1>Battery sizing</h1><p>Ten kWh.</p></body>")
    for name, title in (
        ("report.pdf", "Harbor Lights Annual Report"),
        ("scan.pdf", "Microsoft Word - x.doc"),
    ):
        writer = PdfWriter(clone_from=CORPUS / "annual-report-2024.pdf")
        writer.add_metadata({"/Title": title})
        with (docs / name).open("wb") as handle:
            writer.write(handle)
    app = fake_app(ragchat_home)
    app.ingest(docs)
    titles = {Path(d.path).name: d.title for d in explore.document_index(app.collection).all()}
    assert titles == {
        "post.html": "Solar panels on the barn",
        "bare.html": "Battery sizing",
        "report.pdf": "Harbor Lights Annual Report",
        "scan.pdf": "scan.pdf",
    }
    related = explore.similar(app.collection, docs / "report.pdf", n=3)
    assert {r.title for r in related} == {"Solar panels on the barn", "Battery sizing", "scan.pdf"}
    document_map = explore.document_map(app.collection, "fake", method="pca", n_clusters=2)
    assert sorted(p.title for p in document_map.points) == sorted(titles.values())


def test_cluster_keywords_skip_stop_words_and_boilerplate():
    import numpy as np

    def doc(i: int, title: str, lead: str) -> Document:
        return Document(str(i), f"/d/{i}.html", title, lead, np.ones(4) / 2)

    clusters = [
        explore.Cluster(
            1,
            [
                doc(
                    1,
                    "Home | Blog: sourdough starter",
                    "Read more: the sourdough starter rises; subscribe",
                ),
                doc(2, "Sourdough loaf", "Copyright all rights reserved; sourdough"),
            ],
            [0.0, 0.0],
        ),
        explore.Cluster(
            2,
            [
                doc(
                    3,
                    "Home | Blog: tomato seedlings",
                    "Click to read the tomato page; privacy policy",
                ),
                doc(4, "Tomato report.pdf", "tomato seedlings in the greenhouse"),
            ],
            [0.0, 0.0],
        ),
    ]
    explore.add_keywords(clusters)
    words = {w for c in clusters for w in c.keywords}
    assert "sourdough" in clusters[0].keywords and "tomato" in clusters[1].keywords
    assert not words & {
        "home",
        "blog",
        "read",
        "more",
        "subscribe",
        "copyright",
        "click",
        "page",
        "privacy",
        "pdf",
        "the",
    }
