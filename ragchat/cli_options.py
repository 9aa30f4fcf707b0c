"""What every ``ragchat`` command shares: its options (their help derived from ``Settings``),
the App it builds, its consoles, and the error handling that turns a RagchatError into one
line on stderr. Imports only click and ragchat.config, so ``ragchat --help`` stays fast.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ragchat.config import EMBEDDING_BACKENDS, EMBEDDING_DEVICES, FIELDS, MODES
from ragchat.errors import RagchatError
from ragchat.text import escaped

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


PIPED_WIDTH = 10_000  # "no limit": a pipe or a file gets lines as long as their content


def make_console(stderr: bool = False, quiet: bool = False, **options: Any) -> Console:
    """A console for ragchat's output. On a terminal, text wraps at words to its width;
    into a pipe or a file, lines are not wrapped at all (``soft_wrap``, no width limit), so
    tools downstream get whole lines."""
    from rich.console import Console

    console = Console(stderr=stderr, quiet=quiet, highlight=False, **options)
    console.on_broken_pipe = broken_pipe  # type: ignore[method-assign]
    if not console.is_terminal:
        console.soft_wrap = True
        if "width" not in options:
            console.width = PIPED_WIDTH
    return console


def consoles(quiet: bool = False) -> tuple[Console, Console]:
    """(stdout, stderr) consoles; ``quiet`` silences the second."""
    return make_console(), make_console(stderr=True, quiet=quiet)


def build_app(**flags: Any) -> App:
    """The App for these flags (None: not given) over the environment and the config file."""
    from ragchat.app import App
    from ragchat.config import load_settings_explained, resolve_home

    home = resolve_home()
    settings, explicit = load_settings_explained(home, **flags)
    return App(home, settings, explicit)


def handle_errors(command: F) -> F:
    """Expected failures become one line on stderr and exit code 1, never a traceback. With
    --json, the error is also on stdout as ``{"error": "..."}`` (same exit code), so a
    script reading the JSON sees it."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ragchat import interrupts

        as_json = bool(kwargs.get("as_json"))

        def fail(message: str, code: int) -> None:
            if as_json:
                echo_json({"error": message})
            click.echo(f"Error: {message}" if code != 130 else message, err=True)
            sys.exit(code)

        def interrupted() -> None:
            if as_json:
                echo_json({"error": interrupts.INTERRUPTED})
            interrupts.exit_interrupted()

        try:
            result = command(*args, **kwargs)
            interrupts.check()  # a Ctrl-C that native code swallowed still ends the command
            sys.stdout.flush()  # a failed write is found now, not after the exit code is set
            return result
        except RagchatError as exc:
            if interrupts.requested():  # the failure of something Ctrl-C cut short
                interrupted()
            fail(escaped(str(exc)), exc.exit_code)
        except KeyboardInterrupt:
            interrupted()
        except click.exceptions.Abort as exc:  # Ctrl-C, or the end of input, at a prompt
            if isinstance(exc.__context__, EOFError):
                fail("the input ended before a value was given.", 1)
            interrupted()
        except click.ClickException as exc:  # a usage error found by the command itself
            if as_json:
                echo_json({"error": exc.format_message()})
            raise
        except (click.exceptions.Exit, SystemExit):
            raise
        except BrokenPipeError:
            broken_pipe()
        except Exception as exc:  # a bug or an unforeseen failure: still one line, no traceback
            if interrupts.requested():  # e.g. an ImportError from a module Ctrl-C cut short
                interrupted()
            if isinstance(exc, OSError) and not _stdout_usable():
                _stop_writing()
                fail(f"cannot write the output: stdout is not writable ({exc.strerror}).", 1)
            if os.environ.get("RAGCHAT_DEBUG"):
                raise
            fail(
                f"unexpected {type(exc).__name__}: {escaped(str(exc))[:300]}"
                " (set RAGCHAT_DEBUG=1 to see where; please report it)",
                1,
            )

    return wrapper


def broken_pipe() -> NoReturn:
    """The reader went away (``| head``): stop quietly, with the exit code of a program that
    SIGPIPE ended (128 + 13), as cat does."""
    _stop_writing()
    sys.exit(141)


def _stdout_usable() -> bool:
    try:
        os.write(1, b"")
    except OSError:
        return False
    return True


def _stop_writing() -> None:
    """Point stdout at /dev/null, so the output still buffered is not written again (and
    fails again, "Exception ignored ...") when Python exits."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def confirmed(question: str, refusal: str) -> bool:
    """Ask ``question`` on the terminal (no by default); without a terminal there is no one to
    ask, so the command stops with ``refusal`` (which names --yes)."""
    if not sys.stdin.isatty():
        raise click.UsageError(refusal)
    return click.confirm(question, default=False, err=True)


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
        text="Embedding model: hub name, local folder, 'bundled' or 'openai:NAME' (a server, see"
        " --embedding-base-url); querying uses the collection's own model unless you name one",
    )(command)


def remote_embedding_option(command: F) -> F:
    """Where --embedding-model openai:NAME is served."""
    return setting_option(
        "--embedding-base-url",
        name="embedding_base_url",
        text="Endpoint for --embedding-model openai:NAME, e.g. http://gpu-box:8000/v1 (its key:"
        " RAGCHAT_EMBEDDING_API_KEY, else OPENAI_API_KEY)",
        default_shown=False,
        fallback="OPENAI_BASE_URL",
    )(command)


def device_option(command: F) -> F:
    return setting_option(
        "--embedding-device",
        name="embedding_device",
        text="Where the embedding model runs: auto takes a CUDA or Apple GPU when there is one",
        type=click.Choice(EMBEDDING_DEVICES),
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


def ingest_options(command: F) -> F:
    """What ingest and watch are told about embedding and chunking."""
    options = [
        embedding_option,
        remote_embedding_option,
        allow_remote_option("Allow sending document text to an embeddings server off this machine"),
        backend_option,
        device_option,
        setting_option(
            "--chunk-tokens",
            name="chunk_tokens",
            text="Target chunk size in embedder tokens",
            type=int,
        ),
        setting_option(
            "--max-file-mb", name="max_file_mb", text="Skip files larger than this", type=int
        ),
        setting_option(
            "--workers",
            name="workers",
            text="Processes reading documents (PDF, Office, OCR) side by side; 0: one per core",
            type=int,
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def selection_options(command: F) -> F:
    """--include and --exclude: which files under the folders ingest and watch take."""
    command = click.option(
        "--exclude",
        multiple=True,
        metavar="GLOB",
        help="Leave out files and folders matching GLOB, e.g. 'drafts' or '*.log'; repeatable."
        " Files left out that were ingested before are removed.",
    )(command)
    return click.option(
        "--include",
        multiple=True,
        metavar="GLOB",
        help="Only files matching GLOB (their path under PATH, or their name), e.g. '*.md';"
        " repeatable.",
    )(command)


def llm_options(command: F) -> F:
    options = [
        model_option("LLM: .gguf path, hub 'REPO:FILE.gguf' or 'bundled'"),
        setting_option(
            "-k", "-n", name="top_k", text="Excerpts to retrieve", type=click.IntRange(min=1)
        ),
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


def count_option(name: str, text: str, default: int = 10) -> Callable[[F], F]:
    """How many results: ``-k`` or ``-n``, the same spelling on every command."""
    return click.option(
        "-k",
        "-n",
        name,
        type=click.IntRange(min=1),
        default=default,
        show_default=True,
        help=text,
    )


class OutputFile(click.Path):
    """A file to write: checked before any work is done, so a bad path costs nothing. Its
    folder must exist and be writable; a folder is not a file."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = Path(os.fsdecode(super().convert(value, param, ctx))).expanduser()
        folder = path.absolute().parent
        if not folder.exists():
            self.fail(f"the folder {folder} does not exist; create it first.", param, ctx)
        if not folder.is_dir():
            self.fail(f"{folder} is not a folder.", param, ctx)
        if not os.access(folder, os.W_OK):
            self.fail(f"the folder {folder} is not writable.", param, ctx)
        return path


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


class OneLineUsageError(click.ClickException):
    """A usage error (exit code 2) in one line, without the usage text (which would say
    nothing more)."""

    exit_code = 2


def read_question(question: str, what: str = "question") -> str:
    """The question (or query), or stdin for '-'; an empty one, one that cannot be read and
    one with bytes that are not UTF-8 are usage errors."""
    if question == "-":
        try:
            text = sys.stdin.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = "it is not UTF-8 text"
            if isinstance(exc, OSError):
                reason = "stdin is closed" if exc.errno == errno.EBADF else str(exc.strerror)
            raise OneLineUsageError(
                f"Cannot read the {what} from stdin ({reason}); pass it as an argument."
            ) from None
    else:
        text = question
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a byte the shell passed that is not UTF-8 (a lone surrogate)
        raise OneLineUsageError(
            f"The {what} has bytes that are not UTF-8 text ({escaped(text)}); type it again."
        ) from None
    text = text.strip()
    if not text:
        raise click.UsageError(f"The {what} is empty; pass it as an argument or on stdin with '-'.")
    return text
