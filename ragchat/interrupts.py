"""Ctrl-C that is never lost.

Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT arrives.
When that is inside a ctypes callback (llama.cpp calls into Python to log while it loads a
model or decodes), ctypes prints the exception as "ignored" and carries on: the interrupt is
lost and the command runs on. So SIGINT also sets a flag here that only handling the
interrupt clears (``handled``): ``check`` raises it again at the next safe point (a model
loaded, a token, a batch), native loops can poll ``requested`` (llama.cpp's abort callback,
the embedding threads), and a KeyboardInterrupt that ctypes would report as ignored is not
printed. Work that stays in native code for long (loading a model) runs ``in_background``,
so the main thread only waits, and Ctrl-C ends the wait at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

T = TypeVar("T")

INTERRUPTED = "Interrupted."  # what a command ends with after Ctrl-C, exit code 130
_requested = False
_installed = False  # this process is a ragchat command, not a test calling one
_stderr: int | None = None  # the real stderr: llama.cpp points fd 2 at /dev/null while it loads


def install() -> None:
    """Take over SIGINT for this process (from its main thread; again is harmless)."""
    if threading.current_thread() is not threading.main_thread():
        return
    global _installed
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return  # ours already, or ignored on purpose (a background job started with nohup)
    global _stderr
    signal.signal(signal.SIGINT, _on_interrupt)
    _installed = True
    _stderr = os.dup(2)
    sys.unraisablehook = _quiet_about_interrupts(sys.unraisablehook)


def _on_interrupt(signum: int, frame: FrameType | None) -> None:
    global _requested
    _requested = True
    raise KeyboardInterrupt


def _quiet_about_interrupts(hook: Any) -> Any:
    def unraisable(info: Any) -> None:
        if isinstance(info.exc_value, KeyboardInterrupt):
            return  # swallowed by ctypes: the flag still has it, ``check`` raises it
        hook(info)

    return unraisable


def in_background(work: Callable[[], T]) -> Future[T]:
    """``work()`` in a thread of its own: wait for it with ``.result()``, which Ctrl-C
    interrupts at once however long ``work`` stays in native code (it carries on; a command
    that exits takes it along)."""
    from concurrent.futures import Future

    future: Future[T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(work())
        except BaseException as exc:  # handed to whoever waits for the result
            future.set_exception(exc)

    threading.Thread(target=run, name="ragchat-background", daemon=True).start()
    return future


def requested() -> bool:
    """Has Ctrl-C been pressed and not yet handled?"""
    return _requested


def check() -> None:
    """Raise the KeyboardInterrupt that native code swallowed, if one did."""
    if _requested:
        raise KeyboardInterrupt


def exit_interrupted(message: str = INTERRUPTED) -> NoReturn:
    """End the command for a Ctrl-C: ``message`` on stderr, exit code 130, at once.

    What had to be undone was undone on the way here (``finally`` blocks: the ingest's last
    batch, the write lock); what is written is committed. So a ragchat process exits without
    the second or so that tearing down its native libraries takes, and a second Ctrl-C (an
    impatient key, or ``kill -INT`` of the whole process group) no longer interrupts that."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _stderr is None:
        print(message, file=sys.stderr, flush=True)
        sys.exit(130)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or a broken pipe
            stream.flush()
    os.write(_stderr, (message + "\n").encode())
    os._exit(130)


def handled() -> None:
    """The interrupt has been dealt with (an answer stopped, a line cleared): forget it."""
    global _requested
    _requested = False
