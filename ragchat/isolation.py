"""Reading documents in worker processes, with a time limit and a memory cap.

A hostile or broken file (a PDF that loops forever, decompresses into gigabytes, or crashes
the parser) can then cost at most ``timeout`` seconds and ``memory_mb`` of memory, and the
ingest goes on without it. A ``SafeLoader`` keeps ``workers`` such processes (one per core by
default), each started once, reading one file at a time and reused; a worker that a file
killed is replaced, and only that file fails. A loader doing long honest work (OCR, page after
page) calls ``heartbeat`` after each step: the time limit then counts from the last step, so
a 200-page scan is read while a parser that loops is still stopped after ``timeout`` seconds.

``load_with`` may be called from several threads at once: each call takes a free worker
(ingest.py reads ahead this way, and consumes what was read in file order).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.queues import Queue
from pathlib import Path

from ragchat.config import cores
from ragchat.errors import LoadError
from ragchat.pages import Page

DEFAULT_TIMEOUT = 120.0
DEFAULT_MEMORY_MB = 4096


_beats: Queue[str] | None = None  # in the worker: where heartbeats go
_share = 0  # in the worker: the cores it may keep busy by itself (its pool shares them)


def _start_worker(memory_mb: int, beats: Queue[str], share: int) -> None:
    import resource

    global _beats, _share
    _beats, _share = beats, share
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def cpu_share() -> int:
    """Threads a loader may run at once (OCR's ONNX Runtime): in a worker, its share of the
    cores (a pool of one worker per core: one each); elsewhere, every core."""
    return _share or cores()


def heartbeat(step: str) -> None:
    """Say that the load in this worker moves on (e.g. "OCR page 3 of 40"); a no-op when the
    load runs in the main process."""
    if _beats is not None:
        with contextlib.suppress(Exception):  # a full or closed queue must not fail the load
            _beats.put_nowait(step)


class _Worker:
    """One worker process (started on first use, replaced after a file kills it) and the
    queue its heartbeats come back on; it reads one file at a time."""

    def __init__(self, limits: SafeLoader, share: int) -> None:
        self.limits, self.share = limits, share  # the pool's limits, read at each file
        self._pool: ProcessPoolExecutor | None = None
        self._beats: Queue[str] | None = None

    def _process(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a fresh interpreter, never a fork of a process holding model threads
            context = multiprocessing.get_context("spawn")
            self._beats = context.Queue()
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=context,
                initializer=_start_worker,
                initargs=(self.limits.memory_mb, self._beats, self.share),
            )
        return self._pool

    def _steps(self) -> list[str]:
        steps: list[str] = []
        with contextlib.suppress(queue.Empty, OSError, ValueError):
            while self._beats is not None:
                steps.append(self._beats.get_nowait())
        return steps

    def load(self, reader: Callable[[Path], list[Page]], path: Path) -> list[Page]:
        pool = self._process()
        self._steps()  # left over from a file the worker was killed on
        future = pool.submit(reader, path)
        timeout, memory_mb = self.limits.timeout, self.limits.memory_mb
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    return future.result(timeout=max(min(1.0, deadline - time.monotonic()), 0))
                except FutureTimeout:
                    steps = self._steps()
                    if steps:
                        deadline = time.monotonic() + timeout
                        self.limits.on_step(f"{path.name}: {steps[-1]}")
                    elif time.monotonic() >= deadline:
                        raise
        except FutureTimeout:
            self.kill()
            raise LoadError(f"took longer than {timeout:.0f}s to read") from None
        except MemoryError:
            raise LoadError(f"needed more than {memory_mb} MB of memory to read") from None
        except BrokenProcessPool:
            self.kill()
            raise LoadError(
                f"crashed the reader (over {memory_mb} MB of memory, or a crash in a native library)"
            ) from None

    def kill(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
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


class SafeLoader:
    """Loaders run in ``workers`` separate processes (``load_with``); overruns and crashes
    become LoadError. ``workers`` 0 means one per core."""

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        memory_mb: int = DEFAULT_MEMORY_MB,
        on_step: Callable[[str], None] | None = None,
        workers: int = 1,
    ) -> None:
        self.timeout = timeout  # seconds without a heartbeat
        self.memory_mb = memory_mb
        self.on_step = on_step or (lambda step: None)
        self.workers = workers or cores()
        share = max(1, cores() // self.workers)
        self._all = [_Worker(self, share) for _ in range(self.workers)]
        self._free: queue.LifoQueue[_Worker] = queue.LifoQueue()  # the warmest worker first
        for worker in reversed(self._all):
            self._free.put(worker)
        self._closed = threading.Event()

    def load_with(self, reader: Callable[[Path], list[Page]], path: Path) -> list[Page]:
        """``reader(path)`` in a free worker (a module-level function, so it can be sent there:
        ``loaders.load``, whose module registers every format in the worker too); waits for
        one when all are busy."""
        if self._closed.is_set():
            raise LoadError("the ingest was stopped")
        worker = self._free.get()
        try:
            return worker.load(reader, path)
        finally:
            self._free.put(worker)

    def close(self, wait: bool = True) -> None:
        """Stop the workers: after the files they are reading (``wait``), or at once."""
        self._closed.set()
        for worker in self._all:
            worker.close() if wait else worker.kill()
