"""The commands that keep running: ``watch`` (follows a folder into its collection) and ``mcp``
(serves the collections to AI applications); the logic is in watch.py and mcp_server.py.
``ragchat.cli`` adds them to the ``ragchat`` group. Both run supervised (supervisor.py), which
passes stdin and stdout through untouched and forwards a ``kill`` to the child.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ragchat.cli_options import (
    build_app,
    collection_option,
    consoles,
    handle_errors,
    ingest_options,
    llm_options,
    mode_option,
    remote_embedding_option,
    selection_options,
)


@click.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@collection_option
@ingest_options
@selection_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or lines, only errors.")
@handle_errors
def watch(
    path: Path, include: tuple[str, ...], exclude: tuple[str, ...], quiet: bool, **flags: Any
) -> None:
    """Ingest PATH, then sync its collection as files change.

    Added, edited, renamed and deleted files are synced a second or two after their last
    change (one line per sync); editors' temporary files are ignored. The store is locked
    only while a sync runs, so search, ask and chat work meanwhile. Ctrl-C stops it.

    \b
    Example:
        ragchat watch ./notes --collection notes
    """
    from ragchat.ingest import IngestReport, Selection
    from ragchat.render import IngestProgress, ingest_line, sync_line
    from ragchat.watch import Watcher, interrupt_on_terminate

    selection = Selection(include, exclude)
    app = build_app(**flags)
    _, err = consoles(quiet)
    if quiet:
        app.notify = lambda message: None

    def initial() -> IngestReport:
        with IngestProgress(err) as progress:
            return app.ingest(path, progress, selection=selection)

    watcher = Watcher(
        app,
        path,
        on_start=lambda report: err.print(
            ingest_line(path, report, then="; watching for changes (Ctrl-C to stop)."),
            markup=False,
        ),
        on_sync=lambda report: err.print(sync_line(report, watcher.root), markup=False),
        on_wait=lambda message: err.print(message, markup=False),
        selection=selection,
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


@click.command(name="mcp")
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


COMMANDS = [watch, mcp_command]
