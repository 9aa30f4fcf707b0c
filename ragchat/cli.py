"""The ``ragchat`` command: parses, delegates to ``App``, renders. Nothing heavy at import.

Exit codes: 0 done, 1 error (one line on stderr naming the fix), 2 usage error,
130 interrupted, 128+N a crash by signal N in native code (see supervisor.py).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ragchat import __version__
from ragchat.config import EMBEDDING_BACKENDS
from ragchat.errors import RagchatError

F = Callable[..., Any]


def _consoles(quiet: bool = False) -> tuple[Any, Any]:
    from rich.console import Console

    return (
        Console(highlight=False, soft_wrap=True),
        Console(stderr=True, highlight=False, soft_wrap=True, quiet=quiet),
    )


def build_app(**flags: Any) -> Any:
    from ragchat.app import App
    from ragchat.config import load_settings_explained, resolve_home

    home = resolve_home()
    settings, explicit = load_settings_explained(home, **flags)
    return App(home, settings, explicit)


def handle_errors(command: F) -> F:
    """Expected failures become one line on stderr and exit code 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RagchatError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # a bug or an unforeseen failure: still one line, no traceback
            if os.environ.get("RAGCHAT_DEBUG"):
                raise
            from ragchat.render import sanitize

            click.echo(
                f"Error: unexpected {type(exc).__name__}: {sanitize(str(exc))[:300]}"
                " (set RAGCHAT_DEBUG=1 to see where; please report it)",
                err=True,
            )
            sys.exit(1)

    return wrapper


def collection_option(command: F) -> F:
    command = click.option(
        "--chroma-url",
        help="Store and query through this Chroma server, e.g. http://127.0.0.1:8000 [RAGCHAT_CHROMA_URL].",
    )(command)
    return click.option(
        "--collection", "-c", help="Collection to use [default: default; RAGCHAT_COLLECTION]."
    )(command)


def embedding_option(command: F) -> F:
    return click.option(
        "--embedding-model",
        help="Embedding model: hub name, local folder, 'bundled' or 'openai:NAME' (a server,"
        " see --embedding-base-url) [RAGCHAT_EMBEDDING_MODEL]."
        " Querying uses the collection's own model unless you name one.",
    )(command)


def remote_embedding_option(command: F) -> F:
    """Where --embedding-model openai:NAME is served."""
    return click.option(
        "--embedding-base-url",
        help="Endpoint for --embedding-model openai:NAME, e.g. http://gpu-box:8000/v1"
        " [RAGCHAT_EMBEDDING_BASE_URL; key: RAGCHAT_EMBEDDING_API_KEY, else OPENAI_API_KEY].",
    )(command)


def allow_remote_option(command: F) -> F:
    return click.option(
        "--allow-remote",
        is_flag=True,
        default=None,
        help="Allow sending text to an endpoint off this machine [RAGCHAT_ALLOW_REMOTE].",
    )(command)


def ingest_options(command: F) -> F:
    """What ingest and watch are told about embedding and chunking."""
    options = [
        embedding_option,
        remote_embedding_option,
        allow_remote_option,
        backend_option,
        click.option(
            "--chunk-tokens", type=int, help="Target chunk size in embedder tokens [default: 200]."
        ),
        click.option("--max-file-mb", type=int, help="Skip files larger than this [default: 200]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def backend_option(command: F) -> F:
    return click.option(
        "--embedding-backend",
        type=click.Choice(EMBEDDING_BACKENDS),
        help="Run the embedder as int8 ONNX (fast) or torch fp32, for new or --reindex'ed"
        " collections [default: onnx; RAGCHAT_EMBEDDING_BACKEND].",
    )(command)


def mode_option(command: F) -> F:
    return click.option(
        "--mode",
        type=click.Choice(["dense", "lexical", "hybrid"]),
        help="Ranking: embeddings, BM25, or both fused [default: hybrid; RAGCHAT_MODE].",
    )(command)


def llm_options(command: F) -> F:
    options = [
        click.option(
            "--model",
            "-m",
            help="LLM: .gguf path, hub 'REPO:FILE.gguf' or 'bundled' [RAGCHAT_MODEL].",
        ),
        click.option("-k", "top_k", type=int, help="Excerpts to retrieve [default: 5]."),
        click.option("--max-tokens", type=int, help="Longest answer in tokens [default: 512]."),
        click.option("--n-ctx", type=int, help="LLM context window in tokens [default: 4096]."),
        click.option("--threads", type=int, help="LLM CPU threads [default: one per core]."),
        click.option("--temperature", type=float, help="Sampling temperature [default: 0.2]."),
        click.option(
            "--base-url",
            help="Endpoint for --model openai:NAME [RAGCHAT_BASE_URL, else OPENAI_BASE_URL].",
        ),
        click.option(
            "--api-key",
            help="Key for that endpoint [RAGCHAT_API_KEY, else OPENAI_API_KEY]; prefer the environment.",
        ),
        click.option(
            "--allow-remote",
            is_flag=True,
            default=None,
            help="Allow sending excerpts to an endpoint off this machine [RAGCHAT_ALLOW_REMOTE].",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ragchat")
def main() -> None:
    """Ask questions about your own documents, privately, in the terminal.

    Everything runs on this machine: documents are embedded into a local Chroma store
    ($RAGCHAT_HOME) and answered by a local llama.cpp model.

    \b
    Example:
        ragchat ingest ./docs
        ragchat ask "What does the design say about caching?"
    """


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@collection_option
@ingest_options
@click.option(
    "--rebuild",
    "--reindex",
    "reindex",
    is_flag=True,
    help="Drop the collection and rebuild it from the files: after doctor finds damage, or to change embedder.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@handle_errors
def ingest(
    paths: tuple[Path, ...],
    collection: str | None,
    chroma_url: str | None,
    embedding_model: str | None,
    embedding_base_url: str | None,
    allow_remote: bool | None,
    embedding_backend: str | None,
    chunk_tokens: int | None,
    max_file_mb: int | None,
    reindex: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Load, chunk, embed and store documents; a re-run only does what changed.

    Reads Markdown, text, HTML, PDF and source files under each PATH. Files that changed
    are re-embedded, deleted ones removed, unchanged ones skipped without reading.

    \b
    Example:
        ragchat ingest ./docs --collection notes
        ragchat ingest --rebuild ./docs    # after 'ragchat doctor' reports damage
        RAGCHAT_EMBEDDING_MODEL=bundled ragchat ingest corpora/harbor
    """
    from ragchat.render import IngestProgress

    app = build_app(
        collection=collection,
        chroma_url=chroma_url,
        embedding_model=embedding_model,
        embedding_base_url=embedding_base_url,
        allow_remote=allow_remote,
        embedding_backend=embedding_backend,
        chunk_tokens=chunk_tokens,
        max_file_mb=max_file_mb,
    )
    out, err = _consoles(quiet or as_json)
    if quiet or as_json:
        app.notify = lambda message: None
    reports = []
    try:
        for index, path in enumerate(paths):
            with IngestProgress(err) as progress:
                reports.append(app.ingest(path, progress, reindex=reindex and index == 0))
    except KeyboardInterrupt:
        click.echo(
            "Interrupted: what was embedded so far is kept; run the same command again to finish"
            " (it will not redo that work).",
            err=True,
        )
        sys.exit(130)
    if as_json:
        out.print_json(
            json.dumps([r.to_dict() for r in reports] if len(reports) > 1 else reports[0].to_dict())
        )
        return
    for path, report in zip(paths, reports, strict=True):
        err.print(ingest_summary(path, report), markup=False)


def ingest_summary(path: Path, report: Any) -> str:
    return f"{path}: {report.summary()} ({report.chunks_embedded} chunks embedded in {report.seconds:.1f}s)"


@main.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@collection_option
@ingest_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or lines, only errors.")
@handle_errors
def watch(path: Path, quiet: bool, **flags: Any) -> None:
    """Ingest the folder PATH, then keep the collection in step with it as files change.

    Added, edited, renamed and deleted files are synced a second or two after their last
    change (one line per sync); editors' temporary files are ignored. The store is locked
    only while a sync runs, so search, ask and chat work meanwhile. Ctrl-C stops it.

    \b
    Example:
        ragchat watch ./notes --collection notes
    """
    from ragchat.render import IngestProgress
    from ragchat.watch import Watcher, interrupt_on_terminate, sync_line

    app = build_app(**flags)
    _, err = _consoles(quiet)
    if quiet:
        app.notify = lambda message: None

    def initial() -> Any:
        with IngestProgress(err) as progress:
            return app.ingest(path, progress)

    watcher = Watcher(
        app,
        path,
        on_start=lambda report: err.print(
            ingest_summary(path, report) + "; watching for changes (Ctrl-C to stop).",
            markup=False,
        ),
        on_sync=lambda report: err.print(sync_line(report, watcher.root), markup=False),
        on_wait=lambda message: err.print(message, markup=False),
    )
    interrupt_on_terminate()
    try:
        watcher.run(initial=initial)
    except KeyboardInterrupt:
        click.echo(
            "Stopped during a sync: what was embedded is kept; the next 'ragchat watch' or"
            " 'ragchat ingest' of this folder finishes it."
            if watcher.syncing
            else f"Stopped watching {path}; {len(watcher.waiting.paths)} changed paths not synced"
            " yet are picked up by the next 'ragchat watch' or 'ragchat ingest'."
            if watcher.waiting.paths
            else f"Stopped watching {path}.",
            err=True,
        )
        sys.exit(130)


def announce_destination(app: Any, quiet: bool) -> None:
    """Excerpts are about to leave the machine: say where, once."""
    if app.llm.destination and not quiet:
        click.echo(
            f"Note: document excerpts are sent to {app.llm.destination} ({app.llm.id}).", err=True
        )


def read_question(question: str) -> str:
    text = sys.stdin.read() if question == "-" else question
    text = text.strip()
    if not text:
        raise click.UsageError(
            "The question is empty; pass it as an argument or on stdin with '-'."
        )
    return text


@main.command()
@click.argument("question")
@collection_option
@embedding_option
@remote_embedding_option
@mode_option
@llm_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print question, answer, sources, models and timings as JSON.",
)
@click.option("--quiet", "-q", is_flag=True, help="Only the answer and its sources.")
@handle_errors
def ask(question: str, as_json: bool, quiet: bool, **flags: Any) -> None:
    """Answer one question from the collection, citing its sources.

    QUESTION may be '-' to read it from stdin.

    \b
    Example:
        ragchat ask "What is the warranty period?"
        echo "Who wrote the report?" | ragchat ask - --json
    """
    from ragchat.render import context_line, sanitize, sources_view

    text = read_question(question)
    app = build_app(**flags)
    out, err = _consoles(quiet or as_json)
    engine = app.engine()
    announce_destination(app, quiet)
    answer = engine.ask(text)
    if as_json:
        for _ in answer.stream():
            pass
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    for piece in answer.stream():
        out.file.write(sanitize(piece))
        out.file.flush()
    out.file.write("\n")
    out.print()
    out.print(sources_view(answer.sources))
    err.print(
        context_line(
            len(answer.sources),
            len(answer.packed.dropped),
            answer.packed.prompt_tokens,
            app.llm.n_ctx,
            answer.truncated,
        )
    )


@main.command()
@collection_option
@embedding_option
@remote_embedding_option
@mode_option
@llm_options
@handle_errors
def chat(**flags: Any) -> None:
    """Talk with your documents: an interactive REPL.

    Each question retrieves fresh excerpts; answers stream and cite their sources.
    Ctrl-C stops an answer, Ctrl-D (or /exit) leaves. Type /help for commands.

    \b
    Example:
        ragchat chat --collection notes
    """
    from ragchat.repl import Repl

    app = build_app(**flags)
    out, _ = _consoles()
    Repl(app, out).run()  # the REPL announces a hosted model's host itself


@main.command()
@click.argument("query")
@collection_option
@embedding_option
@remote_embedding_option
@allow_remote_option
@mode_option
@click.option(
    "-k", "top_k", type=int, default=10, show_default=True, help="How many excerpts to show."
)
@click.option("--json", "as_json", is_flag=True, help="Print the ranked excerpts as JSON.")
@handle_errors
def search(query: str, top_k: int, as_json: bool, **flags: Any) -> None:
    """Semantic search: the best-matching excerpts, with their scores. No LLM involved.

    Each result shows its path, page, and the component scores: dense (cosine similarity),
    lexical (BM25) and fused (the hybrid ranking). QUERY may be '-' to read it from stdin.

    \b
    Example:
        ragchat search "battery capacity" -k 5
        ragchat search --mode lexical "Kestrel Power" --json
    """
    from ragchat.render import search_view

    text = read_question(query)
    app = build_app(**flags)
    hits = app.retriever().retrieve(text, top_k)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "query": text,
                    "mode": app.settings.mode,
                    "results": [h.to_dict(n) for n, h in enumerate(hits, 1)],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    out, _ = _consoles()
    out.print(search_view(hits))


@main.command(name="mcp")
@collection_option
@remote_embedding_option
@mode_option
@llm_options
@click.option(
    "--http",
    "http_port",
    type=click.IntRange(1, 65535),
    help="Serve streamable HTTP on http://127.0.0.1:PORT/mcp instead of stdio.",
)
@handle_errors
def mcp_command(http_port: int | None, **flags: Any) -> None:
    """Serve the collections to AI applications as read-only MCP tools.

    Tools: search, ask, get_chunk, get_document, list_collections, status. Speaks the
    Model Context Protocol over stdio (how Claude Desktop, Claude Code or Cursor start a
    server), or over streamable HTTP on this machine with --http. Never writes to the store.

    \b
    Example:
        ragchat mcp --collection notes
        ragchat mcp --http 8765
    """
    from ragchat.mcp_server import serve

    serve(build_app(**flags), http_port)


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@collection_option
@click.option(
    "-n",
    "count",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many related documents.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the related documents as JSON.")
@handle_errors
def similar(path: Path, count: int, as_json: bool, **flags: Any) -> None:
    """The documents most related to the document at PATH, by cosine similarity.

    A document's vector is the normalised mean of its chunks' vectors (ingest keeps one per
    document), so this is one nearest-neighbour query, fast on any collection. No model is
    loaded.

    \b
    Example:
        ragchat similar docs/design.md -n 5
        ragchat similar notes/2024-03.md --collection notes --json
    """
    from ragchat.render import related_view

    app = build_app(**flags)
    related = app.similar(path, count)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "path": str(path.expanduser().resolve()),
                    "collection": app.collection,
                    "results": [r.to_dict(n) for n, r in enumerate(related, 1)],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    out, _ = _consoles()
    out.print(related_view(str(path), related))


@main.command()
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
@click.option(
    "--model",
    "-m",
    help="LLM for --summary: .gguf path, hub 'REPO:FILE.gguf', 'bundled' or openai:NAME [RAGCHAT_MODEL].",
)
@click.option(
    "--base-url", help="Endpoint for --model openai:NAME [RAGCHAT_BASE_URL, else OPENAI_BASE_URL]."
)
@click.option(
    "--allow-remote",
    is_flag=True,
    default=None,
    help="Allow sending titles and first lines to an endpoint off this machine.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the clusters as JSON.")
@handle_errors
def cluster(count: int | None, summary: bool, members: int, as_json: bool, **flags: Any) -> None:
    """Group the documents into N clusters by topic (k-means over document vectors).

    Each cluster is listed with its most distinctive words and its members, nearest the
    centre first. N defaults to about the square root of half the number of documents
    (2 to 10). --summary names each cluster with the LLM from its members' titles and
    first lines.

    \b
    Example:
        ragchat cluster 5
        ragchat cluster 8 --summary --members 5
        ragchat cluster --json --collection notes
    """
    from ragchat.render import clusters_view

    app = build_app(**flags)
    if summary:
        announce_destination(app, as_json)
    clusters = app.clusters(count, named=summary)
    if as_json:
        click.echo(
            json.dumps(
                {"collection": app.collection, "clusters": [c.to_dict() for c in clusters]},
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    out, _ = _consoles()
    out.print(clusters_view(clusters, members))


@main.command(name="map")
@collection_option
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("map.html"),
    show_default=True,
    help="Where to write: .html (interactive, works offline) or .png.",
)
@click.option(
    "--method",
    type=click.Choice(["pca", "umap"]),
    default="pca",
    show_default=True,
    help="Projection to 2-D; umap needs: pip install umap-learn.",
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
@click.option("--model", "-m", help="LLM for --summary [RAGCHAT_MODEL].")
@click.option("--quiet", "-q", is_flag=True, help="Do not say where the map was written.")
@handle_errors
def map_command(
    out: Path,
    method: str,
    colour: str,
    clusters: int | None,
    summary: bool,
    quiet: bool,
    **flags: Any,
) -> None:
    """Draw the collection: each document a point in 2-D, coloured by cluster or folder.

    Documents near each other are about similar things. The HTML page shows a document's
    title and path on hover and works offline; the PNG labels groups and a sample of titles.

    \b
    Example:
        ragchat map --out map.html
        ragchat map --out map.png --color folder
        ragchat map --method umap --clusters 8 --summary -o topics.html
    """
    from ragchat.mapping import write

    app = build_app(**flags)
    if summary:
        announce_destination(app, quiet)
    document_map = app.map(method, colour, clusters, named=summary)
    write(document_map, out)
    if not quiet:
        click.echo(
            f"Wrote {out} ({len(document_map.points)} documents, {len(document_map.groups)} {colour} groups).",
            err=True,
        )


@main.command()
@click.argument("texts", nargs=-1)
@click.option(
    "--a",
    "a_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Examples of one end (score 0), one per line.",
)
@click.option(
    "--b",
    "b_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Examples of the other end (score 1), one per line.",
)
@click.option(
    "--chunks",
    "all_chunks",
    is_flag=True,
    help="Score every chunk of the collection and show the lowest and highest.",
)
@click.option(
    "-n",
    "count",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="With --chunks: how many from each end.",
)
@collection_option
@embedding_option
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
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
    """Place texts on an axis between two sets of examples (A at 0, B at 1).

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
    from ragchat.explore import read_examples
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
    axis = app.spectrum(read_examples(a_file), read_examples(b_file), (a_file.stem, b_file.stem))
    result: dict[str, Any] = {"a": str(a_file), "b": str(b_file)}
    if all_chunks:
        low, high, scored = app.place_chunks(axis, count)
        result.update(
            collection=app.collection,
            chunks=scored,
            lowest=[p.to_dict() for p in low],
            highest=[p.to_dict() for p in high],
        )
        groups = [
            (f"Most like {a_file.stem} (lowest of {scored} chunks)", low),
            (f"Most like {b_file.stem} (highest)", high),
        ]
    else:
        placed = app.place_texts(axis, lines)
        result["results"] = [p.to_dict() for p in placed]
        groups = [("", placed)]
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    out, _ = _consoles()
    out.print(spectrum_view(axis, groups))


@main.command(name="eval")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--collection",
    "-c",
    help="BEIR: keep the corpus in this collection (re-runs reuse it); default: a temporary one. Gold set: the collection to ask.",
)
@click.option("--split", help="BEIR: which qrels split [default: test, or the only one].")
@embedding_option
@backend_option
@click.option(
    "--mode",
    "modes",
    multiple=True,
    type=click.Choice(["dense", "lexical", "hybrid"]),
    help="Modes to score [default: all three].",
)
@click.option("--chunk-tokens", type=int, help="BEIR: chunk size used when ingesting the corpus.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@handle_errors
def eval_command(
    data: Path,
    collection: str | None,
    split: str | None,
    embedding_model: str | None,
    embedding_backend: str | None,
    modes: tuple[str, ...],
    chunk_tokens: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Score retrieval: nDCG@10, Recall@10/100, MRR@10 on BEIR data; recall on your gold set.

    DATA is a BEIR folder (corpus.jsonl, queries.jsonl, qrels) — its corpus is ingested into
    a temporary collection, or --collection to keep it — or a JSONL gold set of
    {"question": ..., "sources": [path, ...]} or {"question": ..., "spans": [{"path",
    "start", "end"}]} scored against an existing collection.

    \b
    Example:
        ragchat eval ../shared/eval/scifact --split train --embedding-model bundled
        ragchat eval my-questions.jsonl --collection notes
    """
    from ragchat.render import eval_table

    out, err = _consoles(quiet or as_json)
    if data.is_dir():
        result = run_beir_eval(
            data, collection, split, embedding_model, embedding_backend, modes, chunk_tokens, err
        )
    else:
        result = run_gold_eval(data, collection, embedding_model, modes, err)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    out.print(eval_table(result["title"], result["modes"]))


def run_beir_eval(
    data: Path,
    collection: str | None,
    split: str | None,
    embedding_model: str | None,
    embedding_backend: str | None,
    modes: tuple[str, ...],
    chunk_tokens: int | None,
    err: Any,
) -> dict[str, Any]:
    import os

    from ragchat.evaluation import evaluate_beir, load_beir
    from ragchat.render import IngestProgress, counting_progress

    beir = load_beir(data, split)
    temporary = collection is None
    app = build_app(
        collection=collection or f"eval-tmp-{os.getpid()}",
        embedding_model=embedding_model,
        embedding_backend=embedding_backend,
        chunk_tokens=chunk_tokens,
    )
    try:
        with IngestProgress(err) as progress, app.writing():
            report = app.ingestor(progress).sync(beir.sources(), lambda key: True)
        with counting_progress(err, "Querying", len(beir.qrels)) as advance:
            figures = evaluate_beir(beir, app.evaluation_ranker(modes), advance)
    finally:
        if temporary:
            app.drop_collection()
    return {
        "title": f"{data.name} ({beir.split}: {len(beir.qrels)} queries, {len(beir.corpus)} documents)",
        "data": str(data),
        "split": beir.split,
        "queries": len(beir.qrels),
        "documents": len(beir.corpus),
        "chunks": app.manifest.counts(app.collection)[1]
        if not temporary
        else report.chunks_embedded,
        "embedder": app.embedder.id,
        "backend": app.embedder.backend,
        "modes": figures,
    }


def run_gold_eval(
    data: Path,
    collection: str | None,
    embedding_model: str | None,
    modes: tuple[str, ...],
    err: Any,
) -> dict[str, Any]:
    from ragchat.evaluation import GOLD_KS, evaluate_gold, load_gold
    from ragchat.render import counting_progress

    questions = load_gold(data)
    app = build_app(collection=collection, embedding_model=embedding_model)
    with counting_progress(err, "Querying", len(questions)) as advance:
        figures = evaluate_gold(
            questions, app.evaluation_ranker(modes, hydrate=GOLD_KS[-1]), GOLD_KS, progress=advance
        )
    return {
        "title": f"{data.name} ({len(questions)} questions, collection {app.collection!r})",
        "data": str(data),
        "questions": len(questions),
        "collection": app.collection,
        "embedder": app.embedder.id,
        "modes": figures,
    }


@main.command()
@click.option("--chroma-url", help="Check the store on this Chroma server [RAGCHAT_CHROMA_URL].")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@handle_errors
def doctor(chroma_url: str | None, as_json: bool) -> None:
    """Check the store (Chroma, manifest, lexical index agree), models, versions, permissions.

    Exits 1 when a check fails; each failure says how to fix it.

    \b
    Example:
        ragchat doctor
    """
    from rich.table import Table
    from rich.text import Text

    from ragchat import doctor as checks

    app = build_app(chroma_url=chroma_url)
    results = checks.run(app)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        out, _ = _consoles()
        table = Table(show_header=False, box=None)
        colours = {"ok": "green", "warn": "yellow", "fail": "red"}
        for result in results:
            table.add_row(
                Text(result.status, style=colours[result.status]),
                Text(result.name),
                Text(result.detail),
            )
        out.print(table)
    if any(r.status == "fail" for r in results):
        sys.exit(1)


@main.group()
def config() -> None:
    """Show or change settings in $RAGCHAT_HOME/config.toml (written readable by you only).

    \b
    Example:
        ragchat config set embedding_model bundled
        ragchat config set api_key        # prompts for the value, without echo
        ragchat config show
    """


@config.command(name="set")
@click.argument("name")
@click.argument("value", required=False)
@handle_errors
def config_set(name: str, value: str | None) -> None:
    """Set NAME to VALUE (secrets are asked for without echo when VALUE is left out)."""
    from ragchat.config import SECRET_SETTINGS, resolve_home, write_setting

    if value is None:
        value = click.prompt(name, hide_input=name in SECRET_SETTINGS)
    path = write_setting(resolve_home(), name, value)
    click.echo(f"Set {name} in {path}.", err=True)


@config.command(name="unset")
@click.argument("name")
@handle_errors
def config_unset(name: str) -> None:
    """Remove NAME from the config file (back to the environment or the default)."""
    from ragchat.config import resolve_home, write_setting

    path = write_setting(resolve_home(), name, None)
    click.echo(f"Removed {name} from {path}.", err=True)


@config.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
@handle_errors
def config_show(as_json: bool) -> None:
    """Every setting in effect (flag > environment > config file > default); keys are masked."""

    from ragchat.config import FIELDS, load_settings_explained, resolve_home, shown

    settings, explicit = load_settings_explained(resolve_home())
    rows = {name: shown(name, getattr(settings, name)) for name in FIELDS}
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from ragchat.render import key_value_table

    out, _ = _consoles()
    out.print(
        key_value_table(
            [(n, v + ("" if n in explicit else "  (default)")) for n, v in rows.items()]
        )
    )


@main.command()
@collection_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@handle_errors
def status(collection: str | None, chroma_url: str | None, as_json: bool) -> None:
    """Where the store lives, its collections and counts, and the models in use.

    \b
    Example:
        ragchat status --json
    """
    from ragchat.render import collections_table, key_value_table

    app = build_app(collection=collection, chroma_url=chroma_url)
    info = app.status()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    out, _ = _consoles()
    out.print(
        key_value_table(
            [
                ("Store", info["store"]),
                ("Config file", info["config_file"]),
                ("Collection", info["collection"]),
                ("Embedding model", info["embedding_model"]),
                ("Embedding device", info["embedding_device"]),
                ("LLM", info["llm"]),
            ]
        )
    )
    if info["collections"]:
        out.print(collections_table(info["collections"]))
    else:
        out.print("No collections yet: run 'ragchat ingest PATH'.", markup=False)


if __name__ == "__main__":  # pragma: no cover
    main()
