"""The ``ragchat`` entry point: commands that run native code (llama.cpp, Chroma, torch) run
in a child process, so a crash in there becomes one line naming a crash log, not a bare
"Segmentation fault".

The parent imports nothing heavy (it costs a Python start-up, ~20 ms) and only waits. Signals:
Ctrl-C at a terminal reaches the child directly (same process group), so the parent forwards
only signals sent to it by another program (``kill``), never one twice. The parent blocks
them as its first act, and the child starts with SIGINT blocked and takes it once its own
handler (ragchat/interrupts.py) is in place: a Ctrl-C at any moment, even while Python starts
up, ends as "Interrupted." and exit code 130, never as a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence

from ragchat.interrupts import INTERRUPTED

# The commands that run unguarded, in this process: they read settings and the manifest and
# load no native library. Every other command (and any new one) runs supervised, since it may
# open Chroma's engine or load llama.cpp or torch; tests/test_supervisor.py checks the split.
LIGHT = frozenset({"config", "status"})
HELP = frozenset({"--help", "-h"})
PROG = "ragchat"  # usage lines say this, not the child's "python -m ragchat"
CHILD = "RAGCHAT_SUPERVISED"  # set in the child: run the command itself
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT}
FORWARDED = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
_crash_file = None


def supervised_command(args: Sequence[str]) -> str | None:
    """The command ``args`` run when it is to run supervised: not a light one, not --help,
    not ``ragchat`` alone or ``ragchat --version``."""
    command = next((a for a in args if not a.startswith("-")), "")
    if not command or command in LIGHT or HELP & set(args):
        return None
    return command


def hold_standard_streams() -> None:
    """A closed stdin, stdout or stderr (``ragchat search x >&-``) is held by /dev/null
    opened the wrong way round: the next file ragchat opens (the crash log) cannot take its
    number and receive the output, and using it still fails as a closed descriptor does
    (EBADF), which the command reports instead of exiting 0 having written nothing."""
    for descriptor, mode, name in ((0, os.O_WRONLY, "stdin"), (1, os.O_RDONLY, "stdout"),
                                   (2, os.O_RDONLY, "stderr")):  # fmt: skip
        try:
            os.fstat(descriptor)
            continue
        except OSError:
            held = os.open(os.devnull, mode)
        if held != descriptor:
            os.dup2(held, descriptor)
            os.close(held)
        if getattr(sys, name) is None:  # Python found it closed at start-up
            setattr(sys, name, open(descriptor, "w" if descriptor else "r", closefd=False))  # noqa: SIM115


def main() -> None:
    hold_standard_streams()
    crash_fd = os.environ.get(CHILD)
    if crash_fd is not None:
        _run_child(crash_fd)
    elif command := supervised_command(sys.argv[1:]):
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED | {signal.SIGCHLD})
        sys.exit(_supervise(command))
    else:
        from ragchat import interrupts

        interrupts.install()
        _interruptible(_cli)


def _cli() -> None:
    from ragchat.cli import main as cli

    cli(prog_name=PROG)


def _child_cli() -> None:
    # from here a Ctrl-C is ours to handle; one that came while Python started up arrives now
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _cli()


def _interruptible(run: Callable[[], None]) -> None:
    """``run``, with a Ctrl-C that comes before (or around) a command's own handling of it
    (while modules load, while click parses) ending the same way: "Interrupted.", 130."""
    from ragchat import interrupts

    try:
        run()
    except KeyboardInterrupt:
        interrupts.exit_interrupted()
    except Exception:
        if interrupts.requested():  # e.g. an ImportError from a module Ctrl-C cut short
            interrupts.exit_interrupted()
        raise


def _run_child(value: str) -> None:
    import faulthandler

    global _crash_file
    crash_fd, _, parent = value.partition(",")
    if sys.platform.startswith("linux"):
        import ctypes

        # die with the supervisor: a `kill -9` of ragchat must stop the work, as it did
        # before there was a child (PR_SET_PDEATHSIG = 1)
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
        if parent.isdigit() and os.getppid() != int(parent):
            os._exit(128 + signal.SIGKILL)  # the supervisor was gone before prctl took effect
    if crash_fd.isdigit():  # the Python stack of every thread goes to the crash log
        _crash_file = os.fdopen(int(crash_fd), "w")  # kept open for the life of the process
        faulthandler.enable(_crash_file, all_threads=True)
    os.environ.pop(CHILD)  # not inherited by the workers this process starts
    from ragchat import interrupts

    interrupts.install()
    _interruptible(_child_cli)


def _crash_log() -> tuple[str, int] | None:
    from ragchat.config import ensure_private_dir, resolve_home

    try:
        folder = ensure_private_dir(resolve_home() / "crashes")
        path = str(folder / f"crash-{os.getpid()}.log")
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.set_inheritable(handle, True)
        return path, handle
    except OSError:
        return None  # a crash is still reported, without the stack


def _supervise(command: str) -> int:
    log = _crash_log()
    env = {**os.environ, CHILD: f"{log[1] if log else ''},{os.getpid()}"}
    if signal.SIGINT in signal.sigpending():  # Ctrl-C before there was a child to get it
        if log:
            os.close(log[1])
            os.unlink(log[0])
        print(INTERRUPTED, file=sys.stderr)
        return 130
    try:
        child = os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", "ragchat", *sys.argv[1:]],
            env,
            setsigmask={signal.SIGINT},  # until its handler is in place (see _run_child)
            setsigdef=FORWARDED,
        )
    finally:
        if log:
            os.close(log[1])
    while True:
        info = signal.sigwaitinfo(FORWARDED | {signal.SIGCHLD})
        if info.si_signo == signal.SIGCHLD:
            pid, status = os.waitpid(child, os.WNOHANG)
            if pid == child:
                break
        elif info.si_code <= 0:  # sent by a program (kill), not by the terminal: pass it on
            os.kill(child, info.si_signo)
    code = os.waitstatus_to_exitcode(status)
    if code >= 0 or -code not in CRASH_SIGNALS | {signal.SIGKILL, signal.SIGINT}:
        if log:
            os.unlink(log[0])
        return code if code >= 0 else 128 - code
    name = signal.Signals(-code).name
    if -code == signal.SIGINT:
        print(INTERRUPTED, file=sys.stderr)
        message = None
    elif -code == signal.SIGKILL:
        message = (
            f"Error: ragchat was killed (SIGKILL) while running '{command}', most likely for"
            " using too much memory; nothing already ingested is lost."
        )
    else:
        where = f"details in {log[0]}" if log else "no crash log could be written"
        message = (
            f"Error: ragchat crashed inside a native library ({name}) while running '{command}';"
            f" nothing already ingested is lost; {where}; please report it."
        )
    if message:
        print(message, file=sys.stderr)
    if log and os.path.getsize(log[0]) == 0:
        os.unlink(log[0])
    return 128 - code
