"""The ``ragchat`` command: parses, delegates to the library, renders. Nothing heavy at import.

The group and the commands that ingest, answer, search, measure and check are here; the
commands that explore a collection are in cli_explore.py, the long-running ones (watch, mcp)
in cli_serve.py, the options they all share in cli_options.py.

Exit codes: 0 done, 1 error (one line on stderr naming the fix), 2 usage error, 3 the
documents do not answer the question (ask), 130 interrupted, 128+N a crash by signal N in
native code (see supervisor.py).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ragchat import __version__, cli_explore, cli_serve
from ragchat.cli_options import (
    OneLineUsageError,
    allow_remote_option,
    announce_destination,
    backend_option,
    build_app,
    collection_option,
    confirmed,
    consoles,
    count_option,
    echo_json,
    embedding_option,
    handle_errors,
    ingest_options,
    json_option,
    llm_options,
    mode_option,
    read_question,
    remote_embedding_option,
    selection_options,
    setting_option,
)
from ragchat.config import MODES
from ragchat.text import escaped, plural, shown_path

if TYPE_CHECKING:
    from ragchat.app import App

NOT_FOUND_EXIT = 3  # ask: nothing in the collection answers the question


class _Group(click.Group):
    """The ``ragchat`` group: a question typed where a command goes is pointed to ``ask``."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError:
            name = args[0] if args else ""
            if len(name.split()) > 1 or name.endswith("?"):
                quoted = re.sub(r'(["\\$`])', r"\\\1", escaped(name))
                raise OneLineUsageError(
                    f'{escaped(name)!r} is not a command; to ask it: ragchat ask "{quoted}"'
                ) from None
            raise


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="ragchat")
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
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="With --rebuild on a Chroma server: drop other paths' documents without asking.",
)
@selection_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
@json_option("the summary")
@handle_errors
def ingest(
    paths: tuple[Path, ...],
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    collection: str | None,
    chroma_url: str | None,
    reindex: bool,
    yes: bool,
    quiet: bool,
    as_json: bool,
    **flags: Any,
) -> None:
    """Load, embed and store documents; a re-run does what changed.

    Each file is loaded, split into chunks and embedded. Reads Markdown, text, HTML, PDF,
    Word, PowerPoint, Excel, CSV, OpenDocument, e-mail, EPUB, notebooks, RTF and source files
    under each PATH (scans and images with the OCR extra). Files that changed are re-embedded,
    deleted ones removed, unchanged ones skipped without reading.

    \b
    Example:
        ragchat ingest ./docs --collection notes
        ragchat ingest --rebuild ./docs    # after 'ragchat doctor' reports damage
        ragchat ingest ~/notes --include '*.md' --exclude archive
        RAGCHAT_EMBEDDING_MODEL=bundled ragchat ingest corpora/harbor
    """
    from ragchat.discovery import Selection
    from ragchat.render import IngestProgress, ingest_line

    selection = Selection(include, exclude)
    app = build_app(collection=collection, chroma_url=chroma_url, **flags)
    out, err = consoles(quiet or as_json)
    if reindex and not yes:
        _confirm_shared_rebuild(app, paths)
    if quiet or as_json:
        app.notify = lambda message: None
    reports = []
    try:
        for index, path in enumerate(paths):
            with IngestProgress(err) as progress:
                reports.append(app.ingest(path, progress, reindex and index == 0, selection))
    except KeyboardInterrupt:
        from ragchat.interrupts import exit_interrupted

        exit_interrupted(
            "Interrupted: what was embedded so far is kept; run the same command again to finish"
            " (it will not redo that work)."
        )
    if as_json:
        out.print_json(
            json.dumps([r.to_dict() for r in reports] if len(reports) > 1 else reports[0].to_dict())
        )
        return
    for path, report in zip(paths, reports, strict=True):
        err.print(ingest_line(path, report), markup=False)


def _confirm_shared_rebuild(app: App, paths: Sequence[Path]) -> None:
    """--rebuild drops the whole collection. On a Chroma server it may hold other machines'
    or other folders' documents, which this ingest will not put back: say how many, and ask
    (refuse without a terminal). A local collection is the user's own: no question."""
    if not app.store.url:
        return
    others = app.collection.files_outside(paths)
    if not others:
        return
    shown = ", ".join(shown_path(p) for p in sorted(others)[:3]) + (
        ", ..." if len(others) > 3 else ""
    )
    what = (
        f"--rebuild drops collection {app.collection.name!r} on the Chroma server at"
        f" {app.store.url} for every machine, with {plural(len(others), 'document')} from"
        f" other paths ({shown}) that this ingest will not put back"
    )
    refusal = f"{what}. Add --yes to drop them too, or ingest those paths in the same command."
    if not confirmed(f"{what}. Drop them too?", refusal):
        raise click.Abort()


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@collection_option
@json_option("the files removed")
@handle_errors
def forget(paths: tuple[Path, ...], as_json: bool, **flags: Any) -> None:
    """Remove files, or all files under folders, from the collection.

    PATHs are the paths as ingested (absolute; a relative one is taken from the current
    folder), also when they are gone from disk. Their chunks, lexical rows and document
    vectors go, and their text is scrubbed from the store's files, as ingest does for deleted
    files. Nothing is removed when a PATH holds no ingested file.

    \b
    Example:
        ragchat forget docs/old-drafts
        ragchat forget /home/me/notes/2019.md --collection notes
    """
    app = build_app(**flags)
    removed = app.forget(list(paths))
    chunks = sum(record.chunks for record in removed.values())
    if as_json:
        echo_json({"collection": app.collection.name, "removed": sorted(removed), "chunks": chunks})
        return
    click.echo(
        f"Forgot {plural(len(removed), 'file')} ({plural(chunks, 'chunk')}) from collection"
        f" {app.collection.name!r}.",
        err=True,
    )


@main.command()
@click.argument("name", metavar="COLLECTION")
@setting_option(
    "--chroma-url",
    name="chroma_url",
    text="Drop it from this Chroma server (for every machine that uses it)",
    default_shown=False,
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask; needed when stdin is not a terminal.")
@handle_errors
def drop(name: str, chroma_url: str | None, yes: bool) -> None:
    """Delete a collection, text and all; asks first unless --yes.

    Its chunks, lexical index, document vectors and file list go, and its text is scrubbed
    from the store's files. The documents themselves are not touched: 'ragchat ingest PATH
    --collection COLLECTION' rebuilds it.

    \b
    Example:
        ragchat drop old-notes
        ragchat drop scratch --yes
    """
    app = build_app(collection=name, chroma_url=chroma_url)
    app.collection.require()
    documents, chunks = app.collection.counts()
    what = f"collection {name!r} ({plural(documents, 'document')}, {plural(chunks, 'chunk')})"
    if app.settings.chroma_url:
        what += (
            f" from the Chroma server at {app.settings.chroma_url}, for every machine that uses"
            f" it (its Chroma collections {name}, {name}__docs and {name}__files)"
        )
    refusal = f"Not dropping {what} without asking; add --yes to drop it."
    if not yes and not confirmed(f"Drop {what}?", refusal):
        click.echo("Nothing dropped.", err=True)
        sys.exit(1)
    app.drop()
    click.echo(f"Dropped {what}.", err=True)


@main.command()
@click.argument("question")
@collection_option
@embedding_option
@remote_embedding_option
@mode_option
@llm_options
@json_option("status, question, answer, sources, checks, models and timings")
@click.option("--quiet", "-q", is_flag=True, help="Only the answer and its sources.")
@handle_errors
def ask(question: str, as_json: bool, quiet: bool, **flags: Any) -> None:
    """Answer one question from the collection, citing its sources.

    QUESTION may be '-' to read it from stdin. When nothing in the collection answers it,
    says so with the closest excerpts, and exits with code 3 without running the LLM.

    \b
    Example:
        ragchat ask "What is the warranty period?"
        echo "Who wrote the report?" | ragchat ask - --json
    """
    from ragchat.render import (
        StatusLine,
        answer_context,
        not_found_view,
        sources_view,
        stream_markdown,
        warning_line,
    )

    text = read_question(question)
    app = build_app(**flags)
    out, err = consoles(quiet or as_json)
    engine = app.engine()
    with StatusLine(err, "Loading the models…") as status:
        answer = engine.ask(text)
        if as_json:
            if answer.found:
                for _ in answer.stream():
                    pass
            status.stop()
            echo_json(answer.to_dict())
            sys.exit(0 if answer.found else NOT_FOUND_EXIT)
        if not answer.found:  # no LLM ran: nothing to announce
            status.stop()
            out.print(not_found_view(answer))
            sys.exit(NOT_FOUND_EXIT)
        announce_destination(app, quiet)
        status.update(f"Reading {plural(len(answer.sources), 'excerpt')}…")
        stream_markdown(out, answer.stream(), waiting=status.stop)
    out.print()
    out.print(sources_view(answer.sources))
    for warning in answer.warnings:
        err.print(warning_line(warning))
    err.print(answer_context(answer, app.llm.n_ctx))


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
    out, err = consoles()
    Repl(app, out, errors=err).run()  # the REPL announces a hosted model's host itself


@main.command()
@click.argument("query")
@collection_option
@embedding_option
@remote_embedding_option
@allow_remote_option("Allow sending the query to an embeddings server off this machine")
@mode_option
@count_option("top_k", "How many excerpts to show.")
@json_option("the ranked excerpts")
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

    text = read_question(query, "query")
    app = build_app(**flags)
    hits = app.retriever().retrieve(text, top_k)
    if as_json:
        echo_json(
            {
                "query": text,
                "mode": app.settings.mode,
                "results": [h.to_dict(n) for n, h in enumerate(hits, 1)],
            }
        )
        return
    out, _ = consoles()
    out.print(search_view(hits, text))


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@collection_option
@embedding_option
@remote_embedding_option
@setting_option(
    "--chunk-tokens", name="chunk_tokens", text="Target chunk size in embedder tokens", type=int
)
@json_option("the chunks (whole texts)")
@handle_errors
def chunks(path: Path, as_json: bool, **flags: Any) -> None:
    """Show how a file is split into chunks; nothing is stored.

    Each chunk as it would be cited (path, page, slide, sheet or message), its heading path,
    its size in embedder tokens and the start of its text. Nothing is embedded or stored.

    Sizes are counted with the collection's embedding model (or the one named), so they are
    the sizes an ingest would make.

    \b
    Example:
        ragchat chunks report.docx
        ragchat chunks deck.pptx --json --collection notes
    """
    from ragchat.preview import split_file
    from ragchat.render import chunks_view

    app = build_app(**flags)
    split = split_file(path, app.embedder, app.settings.chunk_tokens)
    if as_json:
        echo_json(split.to_dict())
        return
    out, _ = consoles()
    out.print(chunks_view(split))


@main.command(name="eval")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--collection",
    "-c",
    help="BEIR: keep the corpus in this collection (re-runs reuse it); default: a temporary"
    " one. Gold set: the collection to ask.",
)
@click.option("--split", help="BEIR: which qrels split [default: test, or the only one].")
@embedding_option
@backend_option
@click.option(
    "--mode",
    "modes",
    multiple=True,
    type=click.Choice(MODES),
    help="Modes to score [default: all of them].",
)
@setting_option(
    "--chunk-tokens",
    name="chunk_tokens",
    text="BEIR: chunk size used when ingesting the corpus",
    type=int,
)
@llm_options
@json_option("the figures (answers: per question too)")
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
    **llm: Any,
) -> None:
    """Score retrieval, and answers, on BEIR data or your own gold set.

    BEIR data gets nDCG@10, Recall@10/100 and MRR@10 per mode; a gold set, recall.
    DATA is a BEIR folder (corpus.jsonl, queries.jsonl, qrels) — its corpus is ingested into
    a temporary collection, or --collection to keep it — or a JSONL gold set scored against
    an existing collection: {"question": ..., "sources": [path, ...]} or {"question": ...,
    "spans": [{"path", "start", "end"}]} for retrieval; a line with "answer" (and optional
    "sources"), or "unanswerable": true, has the answers scored with the configured LLM:
    correctness, refusals, citation validity and evidence recall.

    \b
    Example:
        ragchat eval ../shared/eval/scifact --split train --embedding-model bundled
        ragchat eval my-questions.jsonl --collection notes
        ragchat eval my-answers.jsonl --collection notes --model ~/models/qwen2.5-7b.gguf
    """
    from ragchat.evaluation import run_beir, run_gold, temporary_collection
    from ragchat.render import IngestProgress, answers_table, counting_progress, eval_table

    out, err = consoles(quiet or as_json)

    def querying(total: int) -> AbstractContextManager[Callable[[], None]]:
        return counting_progress(err, "Querying", total)

    if data.is_dir():
        app = build_app(
            collection=collection or temporary_collection(),
            embedding_model=embedding_model,
            embedding_backend=embedding_backend,
            chunk_tokens=chunk_tokens,
        )
        result = run_beir(
            app,
            data,
            split,
            modes,
            keep=collection is not None,
            ingesting=IngestProgress(err),
            querying=querying,
        )
    else:
        app = build_app(collection=collection, embedding_model=embedding_model, **llm)
        result = run_gold(app, data, modes, querying)
    if as_json:
        echo_json(result)
        return
    if "answers" in result:
        out.print(answers_table(result["title"], result["answers"], result["note"]))
        return
    out.print(eval_table(result["title"], result["modes"]))


@main.command()
@setting_option(
    "--chroma-url",
    name="chroma_url",
    text="Check the store on this Chroma server",
    default_shown=False,
)
@json_option("the checks")
@handle_errors
def doctor(chroma_url: str | None, as_json: bool) -> None:
    """Check that the store, the models and permissions are sound.

    Chroma, the manifest and the lexical index must agree; models, versions and the
    store's permissions are checked too.
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
        echo_json([r.__dict__ for r in results])
    else:
        out, _ = consoles()
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
    """Show or change settings (config.toml, readable by you only).

    The file is $RAGCHAT_HOME/config.toml.

    A value is checked when it is set (as every setting is when it is read), so a bad one is
    refused and nothing is written.

    \b
    Example:
        ragchat config set embedding_model bundled
        ragchat config set api_key        # prompts for the value, without echo
        ragchat config get top_k
        ragchat config show
    """


@config.command(name="set", context_settings={"ignore_unknown_options": True})  # VALUE may be -1
@click.argument("name")
@click.argument("value", required=False)
@handle_errors
def config_set(name: str, value: str | None) -> None:
    """Set NAME to VALUE (secrets are asked for without echo when VALUE is left out)."""
    from ragchat.config import SECRET_SETTINGS, check_setting_name, resolve_home, write_setting

    if value is None:
        value = click.prompt(check_setting_name(name), hide_input=name in SECRET_SETTINGS)
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


@config.command(name="get")
@click.argument("name")
@handle_errors
def config_get(name: str) -> None:
    """Print the value of NAME in effect (environment > config file > default); keys are masked.

    \b
    Example:
        ragchat config get top_k
    """
    from ragchat.config import check_setting_name, resolve_home, resolve_settings, shown
    from ragchat.errors import ConfigError

    setting = resolve_settings(resolve_home())[check_setting_name(name)]
    if setting.error:
        raise ConfigError(setting.message)
    click.echo(shown(name, setting.value))


@config.command(name="show")
@json_option("the settings, each with its value (typed) and source")
@handle_errors
def config_show(as_json: bool) -> None:
    """Every setting in effect and where it comes from (environment > config file > default);
    keys are masked. A bad value is shown, marked invalid, with its fix.

    \b
    Example:
        ragchat config show --json
    """
    from ragchat.config import (
        CONFIG_FILE,
        resolve_home,
        resolve_settings,
        shown,
        unknown_in_file,
    )

    home = resolve_home()
    settings = resolve_settings(home)
    unknown = unknown_in_file(home)
    masked = {name: shown(name, setting.value) for name, setting in settings.items()}
    if as_json:
        rows: dict[str, Any] = {}
        for name, setting in settings.items():
            row = {"value": masked[name], "source": setting.source}
            if setting.source != "default":
                row["origin"] = setting.origin
            if setting.error:
                row["invalid"] = setting.error
                row["fix"] = setting.fix
            rows[name] = row
        for name in unknown:
            rows[name] = {
                "source": "file",
                "invalid": "unknown setting",
                "fix": f"run 'ragchat config unset {name}'",
            }
        echo_json(rows)
        return
    from rich.text import Text

    from ragchat.render import key_value_table
    from ragchat.text import sanitize

    out, err = consoles()
    where = {"env": "environment", "file": "config file", "flag": "flag", "default": "default"}
    lines = []
    for name, setting in settings.items():
        line = Text(sanitize(str(masked[name])))
        source = where[setting.source] + (f" {setting.origin}" if setting.source == "env" else "")
        line.append(f"  ({source})", style="dim")
        if setting.error:
            line.append(f"  invalid: {setting.error}; {setting.fix}", style="red")
        lines.append((name, line))
    for name in unknown:
        fix = f"unknown setting; run 'ragchat config unset {name}'"
        lines.append((name, Text(fix, style="red")))
    out.print(key_value_table(lines))
    out.print(Text(f"Config file: {home / CONFIG_FILE}", style="dim"))
    bad = [r for r in settings.values() if r.error]
    if bad or unknown:
        err.print(
            f"{len(bad) + len(unknown)} invalid: every other command refuses to run until"
            " it is fixed.",
            markup=False,
            style="yellow",
        )


@main.command()
@collection_option
@json_option("the status")
@handle_errors
def status(collection: str | None, chroma_url: str | None, as_json: bool) -> None:
    """Where the store lives, its collections, the models in use.

    \b
    Example:
        ragchat status --json
    """
    from ragchat.render import collections_table, key_value_table

    app = build_app(collection=collection, chroma_url=chroma_url)
    info = app.status()
    if as_json:
        echo_json(info)
        return
    out, _ = consoles()
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


for _command in [*cli_explore.COMMANDS, *cli_serve.COMMANDS]:
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
