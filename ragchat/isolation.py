"""Reading documents in a worker process, with a time limit and a memory cap.

A hostile or broken file (a PDF that loops forever, decompresses into gigabytes, or crashes
the parser) can then cost at most ``timeout`` seconds and ``memory_mb`` of memory, and the
ingest goes on without it. The worker is started once and reused; it is replaced after a file
kills it. A loader doing long honest work (OCR, page after page) calls ``heartbeat`` after each
step: the time limit then counts from the last step, so a 200-page scan is read while a
parser that loops is still stopped after ``timeout`` seconds.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.queues import Queue
from pathlib import Path

from ragchat.errors import LoadError
from ragchat.pages import Page

DEFAULT_TIMEOUT = 120.0
DEFAULT_MEMORY_MB = 4096


_beats: Queue[str] | None = None  # in the worker: where heartbeats go


def _start_worker(memory_mb: int, beats: Queue[str]) -> None:
    import resource

    global _beats
    _beats = beats
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def heartbeat(step: str) -> None:
    """Say that the load in this worker moves on (e.g. "OCR page 3 of 40"); a no-op when the
    load runs in the main process."""
    if _beats is not None:
        with contextlib.suppress(Exception):  # a full or closed queue must not fail the load
            _beats.put_nowait(step)


class SafeLoader:
    """A loader run in a separate process (``load_with``); overruns and crashes become
    LoadError."""

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        memory_mb: int = DEFAULT_MEMORY_MB,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        self.timeout = timeout  # seconds without a heartbeat
        self.memory_mb = memory_mb
        self.on_step = on_step or (lambda step: None)
        self._pool: ProcessPoolExecutor | None = None
        self._beats: Queue[str] | None = None

    def _worker(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a fresh interpreter, never a fork of a process holding model threads
            context = multiprocessing.get_context("spawn")
            self._beats = context.Queue()
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=context,
                initializer=_start_worker,
                initargs=(self.memory_mb, self._beats),
            )
        return self._pool

    def _steps(self) -> list[str]:
        steps: list[str] = []
        with contextlib.suppress(queue.Empty, OSError, ValueError):
            while self._beats is not None:
                steps.append(self._beats.get_nowait())
        return steps

    def load_with(self, reader: Callable[[Path], list[Page]], path: Path) -> list[Page]:
        """``reader(path)`` in the worker (a module-level function, so it can be sent there:
        ``loaders.load``, whose module registers every format in the worker too)."""
        pool = self._worker()
        self._steps()  # left over from a file the worker was killed on
        future = pool.submit(reader, path)
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                try:
                    return future.result(timeout=max(min(1.0, deadline - time.monotonic()), 0))
                except FutureTimeout:
                    steps = self._steps()
                    if steps:
                        deadline = time.monotonic() + self.timeout
                        self.on_step(f"{path.name}: {steps[-1]}")
                    elif time.monotonic() >= deadline:
                        raise
        except FutureTimeout:
            self._kill()
            raise LoadError(f"took longer than {self.timeout:.0f}s to read") from None
        except MemoryError:
            raise LoadError(f"needed more than {self.memory_mb} MB of memory to read") from None
        except BrokenProcessPool:
            self._kill()
            raise LoadError(
                f"crashed the reader (over {self.memory_mb} MB of memory, or a crash in a native library)"
            ) from None

    def _kill(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()  # a looping parser never returns: nothing gentler works
        pool.shutdown(wait=False, cancel_futures=True)
        if self._beats is not None:  # the killed worker may have held its lock: a new one
            self._beats.close()
            self._beats = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._beats is not None:
            self._beats.close()
            self._beats = None
