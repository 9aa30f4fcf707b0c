"""What every ``ragchat`` command shares: its options (their help derived from ``Settings``),
the App it builds, its consoles, and the error handling that turns a RagchatError into one
line on stderr. Imports only click and ragchat.config, so ``ragchat --help`` stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ragchat.config import EMBEDDING_BACKENDS, FIELDS, MODES
from ragchat.errors import RagchatError

if TYPE_CHECKING:
    from rich.console import Console

    from ragchat.app import App

F = Callable[..., Any]


def setting_help(name: str, text: str, default: str | bool = True, fallback: str = "") -> str:
    """``text`` followed by where the setting ``name`` comes from, read off ``Settings``:
    "TEXT [default: VALUE; RAGCHAT_NAME]." ``default`` is how to show the default (True: its
    value, False: not at all); ``fallback`` is what is read when RAGCHAT_NAME is unset."""
    if name not in FIELDS:
        raise KeyError(f"{name} is not a setting")
    sources = f"RAGCHAT_{name.upper()}" + (f", else {fallback}" if fallback else "")
    if default is True:
        default = str(FIELDS[name].default)
    return f"{text} [default: {default}; {sources}]." if default else f"{text} [{sources}]."


def setting_option(*declarations: str, name: str, text: str, **options: Any) -> Callable[[F], F]:
    """A click option for the setting ``name`` (None when not given, so the environment and
    config file still apply), its help from ``setting_help``."""
    shown = options.pop("default_shown", True)
    fallback = options.pop("fallback", "")
    return click.option(
        *declarations, name, help=setting_help(name, text, shown, fallback), **options
    )


def consoles(quiet: bool = False) -> tuple[Console, Console]:
    """(stdout, stderr) consoles; ``quiet`` silences the second."""
    from rich.console import Console

    return (
        Console(highlight=False, soft_wrap=True),
        Console(stderr=True, highlight=False, soft_wrap=True, quiet=quiet),
    )


def build_app(**flags: Any) -> App:
    """The App for these flags (None: not given) over the environment and the config file."""
    from ragchat.app import App
    from ragchat.config import load_settings_explained, resolve_home

    home = resolve_home()
    settings, explicit = load_settings_explained(home, **flags)
    return App(home, settings, explicit)


def handle_errors(command: F) -> F:
    """Expected failures become one line on stderr and exit code 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ragchat import interrupts

        try:
            result = command(*args, **kwargs)
            interrupts.check()  # a Ctrl-C that native code swallowed still ends the command
            return result
        except KeyboardInterrupt:
            interrupts.exit_interrupted()
        except click.exceptions.Abort as exc:  # Ctrl-C, or the end of input, at a prompt
            if isinstance(exc.__context__, EOFError):
                click.echo("Error: the input ended before a value was given.", err=True)
                sys.exit(1)
            interrupts.exit_interrupted()
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except RagchatError as exc:
            if interrupts.requested():  # the failure of something Ctrl-C cut short
                interrupts.exit_interrupted()
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:  # a bug or an unforeseen failure: still one line, no traceback
            if interrupts.requested():  # e.g. an ImportError from a module Ctrl-C cut short
                interrupts.exit_interrupted()
            if os.environ.get("RAGCHAT_DEBUG"):
                raise
            from ragchat.text import sanitize

            click.echo(
                f"Error: unexpected {type(exc).__name__}: {sanitize(str(exc))[:300]}"
                " (set RAGCHAT_DEBUG=1 to see where; please report it)",
                err=True,
            )
            sys.exit(1)

    return wrapper


def collection_option(command: F) -> F:
    command = setting_option(
        "--chroma-url",
        name="chroma_url",
        text="Store and query through this Chroma server, e.g. http://127.0.0.1:8000",
        default_shown=False,
    )(command)
    return setting_option("--collection", "-c", name="collection", text="Collection to use")(
        command
    )


def embedding_option(command: F) -> F:
    return setting_option(
        "--embedding-model",
        name="embedding_model",
        text="Embedding model: hub name, local folder or 'bundled'; querying uses the"
        " collection's own model unless you name one",
    )(command)


def backend_option(command: F) -> F:
    return setting_option(
        "--embedding-backend",
        name="embedding_backend",
        text="Run the embedder as int8 ONNX (fast) or torch fp32, for new or --reindex'ed"
        " collections",
        type=click.Choice(EMBEDDING_BACKENDS),
    )(command)


def mode_option(command: F) -> F:
    return setting_option(
        "--mode",
        name="mode",
        text="Ranking: embeddings, BM25, or both fused",
        type=click.Choice(MODES),
    )(command)


def model_option(text: str) -> Callable[[F], F]:
    return setting_option("--model", "-m", name="model", text=text, default_shown=False)


def base_url_option(command: F) -> F:
    return setting_option(
        "--base-url",
        name="base_url",
        text="Endpoint for --model openai:NAME",
        default_shown=False,
        fallback="OPENAI_BASE_URL",
    )(command)


def allow_remote_option(text: str) -> Callable[[F], F]:
    return setting_option(
        "--allow-remote",
        name="allow_remote",
        text=text,
        is_flag=True,
        default=None,
        default_shown=False,
    )


def llm_options(command: F) -> F:
    options = [
        model_option("LLM: .gguf path, hub 'REPO:FILE.gguf' or 'bundled'"),
        setting_option("-k", name="top_k", text="Excerpts to retrieve", type=int),
        setting_option(
            "--max-tokens", name="max_tokens", text="Longest answer in tokens", type=int
        ),
        setting_option("--n-ctx", name="n_ctx", text="LLM context window in tokens", type=int),
        setting_option(
            "--threads",
            name="threads",
            text="LLM CPU threads",
            type=int,
            default_shown="one per core",
        ),
        setting_option(
            "--temperature", name="temperature", text="Sampling temperature", type=float
        ),
        base_url_option,
        setting_option(
            "--api-key",
            name="api_key",
            text="Key for that endpoint; prefer the environment",
            default_shown=False,
            fallback="OPENAI_API_KEY",
        ),
        allow_remote_option("Allow sending excerpts to an endpoint off this machine"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def json_option(what: str) -> Callable[[F], F]:
    """``--json``: print ``what`` as JSON instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON.")


def echo_json(data: Any) -> None:
    """``data`` as indented JSON on stdout, text as it is (not escaped to ASCII)."""
    import json

    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def announce_destination(app: App, quiet: bool) -> None:
    """Excerpts are about to leave the machine: say where, once."""
    if app.llm.destination and not quiet:
        click.echo(
            f"Note: document excerpts are sent to {app.llm.destination} ({app.llm.id}).", err=True
        )


def read_question(question: str) -> str:
    """The question, or stdin for '-'; an empty one is a usage error."""
    text = sys.stdin.read() if question == "-" else question
    text = text.strip()
    if not text:
        raise click.UsageError(
            "The question is empty; pass it as an argument or on stdin with '-'."
        )
    return text
