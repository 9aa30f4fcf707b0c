"""The commands that explore a collection with its embeddings: similar, cluster, map and
spectrum (the logic is in explore.py; these parse, delegate and render). ``ragchat.cli``
adds them to the ``ragchat`` group.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ragchat.cli_options import (
    F,
    OutputFile,
    allow_remote_option,
    announce_destination,
    base_url_option,
    build_app,
    collection_option,
    consoles,
    count_option,
    echo_json,
    embedding_option,
    handle_errors,
    json_option,
    model_option,
)
from ragchat.map_drawing import PROJECTIONS
from ragchat.text import plural, shown_path


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@collection_option
@count_option("count", "How many related documents.")
@json_option("the related documents")
@handle_errors
def similar(path: Path, count: int, as_json: bool, **flags: Any) -> None:
    """The documents most like the one at PATH (cosine similarity).

    A document's vector is the normalised mean of its chunks' vectors (ingest keeps one per
    document), so this is one nearest-neighbour query, fast on any collection. No model is
    loaded.

    \b
    Example:
        ragchat similar docs/design.md -n 5
        ragchat similar notes/2024-03.md --collection notes --json
    """
    from ragchat.explore import similar as similar_documents
    from ragchat.render import related_view

    app = build_app(**flags)
    related = similar_documents(app.collection, path, count)
    if as_json:
        echo_json(
            {
                "path": str(path.expanduser().resolve()),
                "collection": app.collection.name,
                "results": [r.to_dict(n) for n, r in enumerate(related, 1)],
            }
        )
        return
    out, _ = consoles()
    out.print(related_view(shown_path(str(path)), related))


@click.command()
@click.argument("count", metavar="N", type=click.IntRange(min=1), required=False)
@collection_option
@click.option(
    "--summary",
    is_flag=True,
    help="Ask the LLM for a short name for each cluster (prompts/cluster.md).",
)
@click.option(
    "--members",
    type=click.IntRange(min=0),
    default=0,
    help="Show at most this many members per cluster [default: all].",
)
@model_option("LLM for --summary: .gguf path, hub 'REPO:FILE.gguf', 'bundled' or openai:NAME")
@base_url_option
@allow_remote_option("Allow sending titles and first lines to an endpoint off this machine")
@json_option("the clusters")
@handle_errors
def cluster(count: int | None, summary: bool, members: int, as_json: bool, **flags: Any) -> None:
    """Group the documents into N clusters by topic.

    k-means over document vectors. Each cluster is listed with its most distinctive words and its members, nearest the
    centre first. N defaults to about the square root of half the number of documents
    (2 to 10). --summary names each cluster with the LLM from its members' titles and
    first lines.

    \b
    Example:
        ragchat cluster 5
        ragchat cluster 8 --summary --members 5
        ragchat cluster --json --collection notes
    """
    from ragchat.explore import clusters as document_clusters
    from ragchat.render import clusters_view, counting_progress

    app = build_app(**flags)
    if summary:
        announce_destination(app, as_json)
    _, err = consoles(as_json)
    clusters = document_clusters(
        app.collection,
        count,
        app.llm if summary else None,
        app.home,
        lambda total: counting_progress(err, "Naming clusters", total),
    )
    if as_json:
        echo_json(
            {"collection": app.collection.name, "clusters": [c.to_dict(members) for c in clusters]}
        )
        return
    out, _ = consoles()
    out.print(clusters_view(clusters, members))


@click.command(name="map")
@collection_option
@click.option(
    "--out",
    "-o",
    type=OutputFile(),
    default=Path("map.html"),
    show_default=True,
    help="Where to write: .html (interactive, works offline) or .png.",
)
@click.option("--force", "-f", is_flag=True, help="Overwrite the file if it exists.")
@click.option(
    "--method",
    type=click.Choice(PROJECTIONS),
    default="auto",
    show_default=True,
    help="Projection to 2-D: t-SNE or UMAP keep clusters apart (auto: UMAP when"
    " umap-learn is installed, else t-SNE); pca keeps the directions of most variance.",
)
@click.option(
    "--color",
    "--colour",
    "colour",
    type=click.Choice(["cluster", "folder"]),
    default="cluster",
    show_default=True,
    help="Colour points by k-means cluster or by folder.",
)
@click.option(
    "--clusters",
    type=click.IntRange(min=1),
    help="How many clusters to colour [default: about sqrt(documents/2), 2 to 10].",
)
@click.option(
    "--summary",
    is_flag=True,
    help="Name the clusters with the LLM (see 'ragchat cluster --summary').",
)
@model_option("LLM for --summary")
@click.option("--quiet", "-q", is_flag=True, help="Do not say where the map was written.")
@handle_errors
def map_command(
    out: Path,
    force: bool,
    method: str,
    colour: str,
    clusters: int | None,
    summary: bool,
    quiet: bool,
    **flags: Any,
) -> None:
    """Draw the collection as a map: one point per document.

    Each document is a point in 2-D, coloured by cluster or folder. Documents near each other are about similar things. The HTML page shows a document's
    title and path on hover and works offline; the PNG labels groups and a sample of titles.

    \b
    Example:
        ragchat map --out map.html
        ragchat map --out map.png --color folder
        ragchat map --method umap --clusters 8 --summary -o topics.html
    """
    from ragchat.explore import document_map as draw
    from ragchat.map_drawing import write
    from ragchat.render import counting_progress

    replacing = out.exists()
    if replacing and not force:
        raise click.UsageError(f"{out} exists; add --force to overwrite it, or give another --out.")
    app = build_app(**flags)
    if summary:
        announce_destination(app, quiet)
    document_map = draw(
        app.collection,
        app.embedder_id,
        method,
        colour,
        clusters,
        app.llm if summary else None,
        app.home,
        lambda total: counting_progress(consoles(quiet)[1], "Naming clusters", total),
    )
    write(document_map, out)
    if not quiet:
        click.echo(
            f"{'Replaced' if replacing else 'Wrote'} {shown_path(str(out))}"
            f" ({plural(len(document_map.points), 'document')},"
            f" {plural(len(document_map.groups), colour + ' group')}).",
            err=True,
        )


def examples_option(flag: str, which: str) -> Callable[[F], F]:
    """A file of examples for one end of the spectrum, one per line."""
    return click.option(
        flag,
        flag.lstrip("-") + "_file",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help=f"Examples of {which}, one per line.",
    )


@click.command()
@click.argument("texts", nargs=-1)
@examples_option("--a", "one end (score 0)")
@examples_option("--b", "the other end (score 1)")
@click.option(
    "--chunks",
    "all_chunks",
    is_flag=True,
    help="Score every chunk of the collection and show the lowest and highest.",
)
@count_option("count", "With --chunks: how many from each end.")
@collection_option
@embedding_option
@json_option("the scores")
@handle_errors
def spectrum(
    texts: tuple[str, ...],
    a_file: Path,
    b_file: Path,
    all_chunks: bool,
    count: int,
    as_json: bool,
    **flags: Any,
) -> None:
    """Place texts between two sets of examples (A at 0, B at 1).

    The axis runs from the mean embedding of the A examples to that of the B examples; a
    text's score is where its embedding falls along it (below 0: more A than A's examples,
    above 1: more B than B's). Score TEXTS given as arguments, '-' for one per line on stdin,
    or --chunks for every chunk of the collection.

    \b
    Example:
        ragchat spectrum --a concrete.txt --b abstract.txt "The cat sat on the mat."
        ragchat spectrum --a formal.txt --b casual.txt --chunks -n 5
        cat sentences.txt | ragchat spectrum --a a.txt --b b.txt - --json
    """
    from ragchat.explore import place_chunks, place_texts, read_examples, spectrum_axis
    from ragchat.render import spectrum_view

    if all_chunks == bool(texts):
        raise click.UsageError(
            "Give texts to score (or '-' for stdin), or --chunks to score the collection; not both."
        )
    lines = [t for t in texts if t != "-"]
    if "-" in texts:
        lines += [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
    if not all_chunks and not lines:
        raise click.UsageError("Nothing to score: stdin was empty.")
    app = build_app(**flags)
    axis = spectrum_axis(
        app.collection,
        app.embedder,
        read_examples(a_file),
        read_examples(b_file),
        (a_file.stem, b_file.stem),
    )
    result: dict[str, Any] = {"a": str(a_file), "b": str(b_file)}
    if all_chunks:
        low, high, scored = place_chunks(app.collection, axis, count)
        result.update(
            collection=app.collection.name,
            chunks=scored,
            lowest=[p.to_dict() for p in low],
            highest=[p.to_dict() for p in high],
        )
        groups = [
            (f"Most like {a_file.stem} (lowest of {plural(scored, 'chunk')})", low),
            (f"Most like {b_file.stem} (highest)", high),
        ]
    else:
        placed = place_texts(axis, app.embedder, lines)
        result["results"] = [p.to_dict() for p in placed]
        groups = [("", placed)]
    if as_json:
        echo_json(result)
        return
    out, _ = consoles()
    out.print(spectrum_view(axis, groups))


COMMANDS = [similar, cluster, map_command, spectrum]
