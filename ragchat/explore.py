"""Exploring a collection with its embeddings: related documents (``similar``), k-means
clusters (``clusters``), a 2-D map grouped by cluster or by folder (``document_map``, drawn by
map_drawing.py), and a spectrum between two sets of examples (``spectrum_axis``,
``place_texts``, ``place_chunks``).

Everything here works on document vectors (document_vectors.py) or chunk vectors already in
the store; only the spectrum's examples and texts are embedded, and only naming clusters asks
the LLM. scikit-learn and numpy are imported inside the functions that need them, so
``import ragchat`` stays fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragchat.collection import Collection
from ragchat.document_vectors import Document, DocumentIndex
from ragchat.embedders import Embedder
from ragchat.errors import ExploreError
from ragchat.ids import document_id
from ragchat.llms import LLM
from ragchat.map_drawing import PROJECTION_NAMES, PROJECTIONS, DocumentMap, Point
from ragchat.text import did_you_mean, location, plural, sanitize, shorten

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

NAME_CHARS = 48  # longest cluster name kept from the LLM
NAME_TOKENS = 24
MEMBERS_IN_PROMPT = 12  # the members nearest the centre describe a cluster well enough
MAX_DEFAULT_CLUSTERS = 10  # more colours than this stop being told apart on a map


@dataclass
class Related:
    path: str
    title: str
    score: float

    def to_dict(self, n: int) -> dict[str, Any]:
        return {"n": n, "path": self.path, "title": self.title, "score": round(self.score, 6)}


@dataclass
class Cluster:
    number: int  # from 1
    members: list[Document]  # nearest the centre first
    distances: list[float]  # each member's distance from the centre
    keywords: list[str] = field(default_factory=list)
    name: str = ""  # from the LLM, when asked for
    rejected: str = ""  # the LLM's reply when it did not look like a name (keywords instead)

    @property
    def label(self) -> str:
        return self.name or ", ".join(self.keywords) or f"cluster {self.number}"

    def shown(self, most: int = 0) -> list[Document]:
        """The members to show: all of them, or the ``most`` nearest the centre."""
        return self.members[:most] if most else self.members

    def to_dict(self, most: int = 0) -> dict[str, Any]:
        """The cluster as JSON, with all its members or the ``most`` nearest the centre
        (``size`` still counts them all)."""
        return {
            "cluster": self.number,
            "name": self.name or None,
            "rejected_name": self.rejected or None,  # the LLM's reply, when keywords name it
            "keywords": self.keywords,
            "size": len(self.members),
            "members": [
                {"path": d.path, "title": d.title, "distance": round(distance, 6)}
                for d, distance in zip(self.shown(most), self.distances, strict=False)
            ],
        }


# the collection's documents


def document_index(collection: Collection) -> DocumentIndex:
    """The collection's document vectors; any that ingest did not write (a collection built
    before they existed) are first made from the chunk vectors in the store."""
    collection.require()
    index = collection.documents
    files = [path for path, record in collection.files().items() if record.chunks]
    if index.count() != len(files):
        index.rebuild(files)
    return index


def similar(collection: Collection, path: Path, n: int = 10) -> list[Related]:
    """The ``n`` documents nearest to ``path`` by cosine similarity of document vectors."""
    key = str(path.expanduser().resolve())
    collection.require()
    record = collection.files().get(key)
    if record is None:
        meant = did_you_mean(collection.paths_like(key))
        if not path.exists():
            raise ExploreError(f"No such file: {path}{meant}")
        raise ExploreError(
            f"{path} is not in collection {collection.name!r}; ingest it first:"
            f" ragchat ingest {path} --collection {collection.name}{meant}"
        )
    if not record.chunks:
        raise ExploreError(f"{path} has no text to compare (it was ingested as empty).")
    index = document_index(collection)
    own = document_id(key)
    found = index.get([own])
    if own not in found:  # written by an older ragchat and not rebuilt: say how to mend it
        raise ExploreError(
            f"{path} has no document vector; run 'ragchat ingest --reindex PATH' to rebuild"
            " the collection."
        )
    neighbours = index.nearest(found[own].vector, n + 1)
    nearest = [(i, score) for i, score in neighbours if i != own][:n]
    documents = index.get([i for i, _ in nearest])
    return [
        Related(documents[i].path, documents[i].title, score)
        for i, score in nearest
        if i in documents
    ]


# clusters


Naming = Callable[[int], AbstractContextManager[Callable[[], None]]]  # progress over N clusters


def clusters(
    collection: Collection,
    n: int | None = None,
    llm: LLM | None = None,
    home: Path | None = None,
    naming: Naming | None = None,
) -> list[Cluster]:
    """k-means clusters of the collection's documents (``n`` of them, or a default for the
    size); with ``llm``, the LLM names each one (prompts/cluster.md, or the user's own in
    ``home``/prompts), ``naming(count)`` giving the function that advances a progress bar."""
    documents = document_index(collection).all()
    if not documents:
        raise ExploreError(
            f"Collection {collection.name!r} has no documents with text; ingest some first."
        )
    found = cluster(documents, n if n is not None else default_cluster_count(len(documents)))
    if llm is not None:
        from ragchat.prompting import load_template, prompts_dirs

        llm.check()
        template = load_template("cluster", prompts_dirs(home))
        with (naming or _no_progress)(len(found)) as advance:
            name_clusters(found, llm, template, advance)
    return found


@contextmanager
def _no_progress(total: int) -> Iterator[Callable[[], None]]:
    yield lambda: None


def default_cluster_count(documents: int) -> int:
    """About sqrt(n/2) clusters (a common rule of thumb), between 2 and 10."""
    return max(2, min(MAX_DEFAULT_CLUSTERS, round((documents / 2) ** 0.5)))


def cluster(documents: Sequence[Document], n: int) -> list[Cluster]:
    """k-means over document vectors, largest cluster first, members nearest the centre first.

    The vectors are unit length, so Euclidean k-means ranks like cosine similarity would."""
    if n < 1:
        raise ExploreError(f"Cannot make {n} clusters; ask for 1 or more.")
    if n > len(documents):
        raise ExploreError(
            f"Cannot make {n} clusters from {plural(len(documents), 'document')};"
            f" ask for at most {len(documents)}."
        )
    import numpy as np
    from sklearn.cluster import KMeans

    matrix = np.asarray([d.vector for d in documents], dtype=np.float64)
    model = KMeans(n_clusters=n, n_init="auto", random_state=0).fit(matrix)
    distances = np.linalg.norm(matrix - model.cluster_centers_[model.labels_], axis=1)
    groups = []
    for label in range(n):
        members = sorted(
            (int(i) for i in np.flatnonzero(model.labels_ == label)),
            key=lambda i: (distances[i], documents[i].path),
        )
        if members:
            groups.append(([documents[i] for i in members], [float(distances[i]) for i in members]))
    groups.sort(key=lambda g: (-len(g[0]), g[0][0].path))
    clusters = [
        Cluster(number, members, dists) for number, (members, dists) in enumerate(groups, start=1)
    ]
    add_keywords(clusters)
    return clusters


_TOKEN = r"(?u)\b[^\W\d_][\w'-]*[^\W_]\b"  # words of 2+ letters, no numbers or underscores
# the first lines of source files are mostly imports: words no topic is named by
_CODE_WORDS = {
    "import",
    "from",
    "def",
    "class",
    "return",
    "self",
    "none",
    "true",
    "false",
    "annotations",
    "future",
    "typing",
    "pathlib",
}


# what a website repeats on every page, and file types of titles that are file names
_BOILERPLATE = {
    "home", "menu", "blog", "login", "log", "sign", "subscribe", "newsletter", "copyright",
    "privacy", "policy", "cookie", "cookies", "terms", "rights", "reserved", "contact",
    "skip", "navigation", "search", "share", "twitter", "facebook", "linkedin", "instagram",
    "click", "read", "page", "pages", "untitled", "pdf", "html", "htm", "md", "txt", "doc",
    "docx",
}  # fmt: skip


def add_keywords(clusters: Sequence[Cluster], count: int = 3) -> None:
    """The words that most set each cluster's titles and opening lines apart from the others'
    (tf-idf with each cluster as one text): a name that costs no LLM."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    texts = [" ".join(f"{d.title} {d.lead}" for d in c.members) for c in clusters]
    try:
        # a word most clusters share names none of them
        shared = 0.5 if len(texts) >= 4 else len(texts) - 1 if len(texts) > 1 else 1.0
        vectorizer = TfidfVectorizer(
            stop_words=sorted(ENGLISH_STOP_WORDS | _CODE_WORDS | _BOILERPLATE),
            token_pattern=_TOKEN,
            sublinear_tf=True,
            max_df=shared,
        )
        weights = vectorizer.fit_transform(texts).toarray()
    except ValueError:  # no words at all (e.g. only numbers): no keywords
        return
    vocabulary = vectorizer.get_feature_names_out()
    for c, row in zip(clusters, weights, strict=True):
        ranked = sorted(range(len(row)), key=lambda i: (-row[i], vocabulary[i]))
        c.keywords = [str(vocabulary[i]) for i in ranked[:count] if row[i] > 0]


def name_clusters(
    clusters: Sequence[Cluster],
    llm: LLM,
    template: str,
    advance: Callable[[], None] = lambda: None,
) -> None:
    """Ask the LLM for a short name per cluster from its members' titles and first lines;
    a reply that does not look like a name (``clean_name``) leaves the keywords in place and
    is kept in ``rejected``. ``advance`` is called after each cluster."""
    for c in clusters:
        listing = "\n".join(
            f"- {d.title}: {shorten(d.lead, 120)}"
            if d.lead and d.lead != d.title
            else f"- {d.title}"
            for d in c.members[:MEMBERS_IN_PROMPT]
        )
        prompt = template.format(documents=listing, keywords=", ".join(c.keywords) or "(none)")
        generation = llm.stream([{"role": "user", "content": prompt}], NAME_TOKENS, 0.0)
        reply = sanitize("".join(generation)).strip()
        c.name = clean_name(reply)
        c.rejected = "" if c.name else shorten(reply, NAME_CHARS * 2)
        advance()


_NAME_PREFIX = re.compile(
    r"^(?:(?:group |cluster |topic )?name|title|topic|(?:the )?(?:group|topic|name) is(?: called)?)"
    r"\s*[:\-–]?\s*",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"[\"“]([^\"“”]{3,60})[\"”]")


# Words that make a reply a sentence about the group rather than its name
_SENTENCE_WORDS = frozenset({
    "is", "are", "was", "were", "be", "consists", "consist", "contains", "contain", "includes",
    "include", "covers", "cover", "discusses", "discuss", "describes", "describe", "focuses",
    "focus", "relates", "relate", "seems", "seem", "appears", "appear", "deals", "deal",
    "talks", "share", "shares", "has", "have", "this", "these", "they", "here", "sure",
})  # fmt: skip
MAX_NAME_WORDS = 6


def clean_name(text: str) -> str:
    """The first line of a model's reply, without labels, quotes and trailing dots; "" when it
    does not look like a short name: too long, over MAX_NAME_WORDS words, or a sentence
    ("This group consists of…": a verb, a pronoun, or several words ending in a period)."""
    line = next((line for line in text.splitlines() if line.strip()), "").strip()
    quoted = _QUOTED.search(line)  # 'The topic is "Bread baking"': the name is the quote
    if quoted:
        line = quoted.group(1)
    line = _NAME_PREFIX.sub("", line.lstrip("#*-• ").strip()).strip(" \"'“”*`").strip()
    words = line.rstrip(".").split()
    sentence = line.endswith(".") and len(words) > 3
    if (
        not line
        or len(line) > NAME_CHARS * 2
        or len(words) > MAX_NAME_WORDS
        or sentence
        or any(w.lower().strip(",;:") in _SENTENCE_WORDS for w in words)
    ):
        return ""
    return shorten(line.rstrip(".").strip(), NAME_CHARS)


def umap_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("umap") is not None


def project(
    documents: Sequence[Document], method: str = "auto"
) -> tuple[list[tuple[float, float]], tuple[str, str], str]:
    """2-D coordinates of the documents, the axis labels, and the projection used.

    t-SNE and UMAP keep neighbours together and clusters apart (PCA keeps the directions of
    most variance, which can pile several clusters into one corner); a handful of documents is
    placed by PCA, as t-SNE and UMAP need more neighbours than that."""
    if len(documents) < 2:
        raise ExploreError("A map needs at least 2 documents; ingest more first.")
    if method not in PROJECTIONS:
        raise ExploreError(f"Unknown projection {method!r}; use {', '.join(PROJECTIONS)}.")
    import numpy as np

    if method == "auto":
        method = "umap" if umap_installed() else "tsne"
    if len(documents) < 6:
        method = "pca"
    matrix = np.asarray([d.vector for d in documents], dtype=np.float64)
    if method == "umap":
        try:
            import umap  # type: ignore[import-not-found]
        except ImportError:
            raise ExploreError(
                "UMAP is not installed; run: pip install umap-learn (or use --method tsne)."
            ) from None
        neighbours = max(2, min(15, len(documents) - 1))
        points = umap.UMAP(
            n_components=2, n_neighbors=neighbours, metric="cosine", random_state=0
        ).fit_transform(matrix)
        labels = ("UMAP 1", "UMAP 2")
    elif method == "tsne":
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        perplexity = max(2.0, min(30.0, (len(documents) - 1) / 3))
        model = TSNE(
            n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=0
        )
        # up to a few thousand documents one thread is quick (~3 s for 200), and immune to
        # OpenMP threads spinning against each other on a busy machine (10x slower there)
        with threadpool_limits(1 if len(documents) < 3000 else None):
            points = model.fit_transform(matrix)
        labels = ("t-SNE 1", "t-SNE 2")
    else:
        from sklearn.decomposition import PCA

        model = PCA(n_components=2, random_state=0)
        points = model.fit_transform(matrix)
        share = model.explained_variance_ratio_
        labels = (f"PC 1 ({share[0]:.0%} of variance)", f"PC 2 ({share[1]:.0%} of variance)")
    return [(float(x), float(y)) for x, y in points], labels, PROJECTION_NAMES[method]


# the map


def document_map(
    collection: Collection,
    embedder_id: str,
    method: str = "auto",
    colour: str = "cluster",
    n_clusters: int | None = None,
    llm: LLM | None = None,
    home: Path | None = None,
    naming: Naming | None = None,
) -> DocumentMap:
    """Every document as a point in 2-D (``project``), grouped by k-means cluster
    (``clusters``, named by ``llm`` if given) or by folder (``folder_groups``)."""
    documents = document_index(collection).all()
    coordinates, axes, projection = project(documents, method)
    if colour == "folder":
        names = folder_groups(documents)
        # the biggest folders first, "other folders" last
        groups = sorted(set(names), key=lambda g: (g == "other folders", -names.count(g), g))
        group_of = {d.id: groups.index(name) for d, name in zip(documents, names, strict=True)}
        kind = plural(len(groups), "folder")
    elif colour == "cluster":
        found = clusters(collection, n_clusters, llm, home, naming)
        groups = [c.label for c in found]
        group_of = {d.id: c.number - 1 for c in found for d in c.members}
        kind = plural(len(groups), "cluster")
    else:
        raise ExploreError(f"Unknown colouring {colour!r}; use cluster or folder.")
    points = [
        Point(x, y, d.title, d.path, group_of[d.id])
        for d, (x, y) in zip(documents, coordinates, strict=True)
    ]
    return DocumentMap(
        title=f"Collection {collection.name!r}: {plural(len(documents), 'document')}",
        subtitle=(
            f"Each point is a document (the mean of its chunks' embeddings, {embedder_id}),"
            f" placed by {projection}; colour: {kind}."
        ),
        axes=axes,
        groups=groups,
        points=points,
    )


def folder_groups(documents: Sequence[Document], most: int = MAX_DEFAULT_CLUSTERS) -> list[str]:
    """Each document's folder relative to the folders' common parent; past the ``most``
    biggest folders, the rest are "other folders"."""
    import os
    from collections import Counter

    folders = [str(Path(d.path).parent) for d in documents]
    root = os.path.commonpath(folders) if folders else ""
    names = [os.path.relpath(f, Path(root).parent) if root else f for f in folders]
    common = {name for name, _ in Counter(names).most_common(most)}
    return [name if name in common else "other folders" for name in names]


# the spectrum


@dataclass
class Axis:
    """A direction between two sets of examples: A's centre scores 0, B's scores 1."""

    a_centre: NDArray[np.float64]
    direction: NDArray[np.float64]  # B's centre minus A's
    a_label: str = "a"
    b_label: str = "b"

    @classmethod
    def from_examples(
        cls,
        embedder: Embedder,
        a: Sequence[str],
        b: Sequence[str],
        a_label: str = "a",
        b_label: str = "b",
    ) -> Axis:
        import numpy as np

        if not a or not b:
            raise ExploreError("Each side of a spectrum needs at least one example (one per line).")
        # passages, like the stored chunks, so chunk vectors and examples are comparable
        vectors = np.asarray(embedder.embed_passages([*a, *b]), dtype=np.float64)
        a_centre, b_centre = vectors[: len(a)].mean(axis=0), vectors[len(a) :].mean(axis=0)
        if not np.linalg.norm(b_centre - a_centre) > 1e-9:
            raise ExploreError(
                "The two sets of examples embed to the same place; give examples that differ."
            )
        return cls(a_centre, b_centre - a_centre, a_label, b_label)

    def scores(self, vectors: Sequence[Sequence[float]]) -> list[float]:
        """Where each vector falls: its projection onto the axis, over the axis' length."""
        import numpy as np

        if not len(vectors):
            return []
        matrix = np.asarray(vectors, dtype=np.float64)
        return [
            float(s)
            for s in (matrix - self.a_centre)
            @ self.direction
            / float(self.direction @ self.direction)
        ]


@dataclass
class Placed:
    """A text on a spectrum."""

    text: str
    score: float
    path: str = ""
    location: str = ""

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"score": round(self.score, 6), "text": self.text}
        if self.path:
            found.update(path=self.path, location=self.location)
        return found


def read_examples(path: Path) -> list[str]:
    """One example per non-blank line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExploreError(
            f"Cannot read examples from {path} ({exc}); give a UTF-8 text file, one example per line."
        ) from exc
    examples = [line.strip() for line in text.splitlines() if line.strip()]
    if not examples:
        raise ExploreError(f"{path} has no examples; write one example per line.")
    return examples


def spectrum_axis(
    collection: Collection,
    embedder: Embedder,
    a: Sequence[str],
    b: Sequence[str],
    labels: tuple[str, str] = ("a", "b"),
) -> Axis:
    """The axis from the A examples to the B examples, embedded as the collection's chunks
    were (a collection built with another embedder is refused)."""
    if collection.exists:
        collection.check_embedder(embedder.id)
    return Axis.from_examples(embedder, a, b, *labels)


def place_texts(axis: Axis, embedder: Embedder, texts: Sequence[str]) -> list[Placed]:
    """The texts on the axis, lowest score first."""
    scores = axis.scores(embedder.embed_passages(list(texts)))
    return sorted((Placed(t, s) for t, s in zip(texts, scores, strict=True)), key=lambda p: p.score)


def place_chunks(
    collection: Collection, axis: Axis, n: int
) -> tuple[list[Placed], list[Placed], int]:
    """The ``n`` chunks of the collection lowest and highest on the axis, and how many were
    scored; read from the store a page at a time, nothing re-embedded."""
    import heapq
    from itertools import islice

    collection.require()
    records = collection.store.scan(collection.name, text=True)
    low: list[tuple[float, str, Placed]] = []  # heaps of (key, id, chunk), kept to n
    high: list[tuple[float, str, Placed]] = []
    scored = 0
    while page := list(islice(records, 1000)):
        for record, score in zip(page, axis.scores([r.vector for r in page]), strict=True):
            scored += 1
            meta = record.metadata
            path = str(meta.get("path", ""))
            where = location(
                path, meta.get("line"), meta.get("page"), str(meta.get("page_label", ""))
            )
            placed = Placed(record.text, score, path, where)
            for heap, key in ((low, -score), (high, score)):
                if len(heap) < n:
                    heapq.heappush(heap, (key, record.id, placed))
                elif key > heap[0][0]:
                    heapq.heapreplace(heap, (key, record.id, placed))
    return (
        sorted((p for _, _, p in low), key=lambda p: p.score),
        sorted((p for _, _, p in high), key=lambda p: -p.score),
        scored,
    )
