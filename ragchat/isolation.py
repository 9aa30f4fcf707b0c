"""Reading documents in a worker process, with a time limit and a memory cap.

A hostile or broken file (a PDF that loops forever, decompresses into gigabytes, or crashes
the parser) can then cost at most ``timeout`` seconds and ``memory_mb`` of memory, and the
ingest goes on without it. The worker is started once and reused; it is replaced after a file
kills it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ragchat.errors import LoadError
from ragchat.loaders import Page, load

DEFAULT_TIMEOUT = 120.0
DEFAULT_MEMORY_MB = 4096


def _load_all(path: Path) -> list[Page]:
    """Every page of ``path`` at once: what the worker sends back must be a list."""
    return list(load(path))


def _limit_memory(memory_mb: int) -> None:
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class SafeLoader:
    """``load(path)`` in a separate process; overruns and crashes become LoadError."""

    def __init__(
        self, timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB
    ) -> None:
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._pool: ProcessPoolExecutor | None = None

    def _worker(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a fresh interpreter, never a fork of a process holding model threads
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_limit_memory,
                initargs=(self.memory_mb,),
            )
        return self._pool

    def load(self, path: Path) -> list[Page]:
        return self.load_with(_load_all, path)

    def load_with(self, reader: Callable[[Path], list[Page]], path: Path) -> list[Page]:
        """``reader(path)`` in the worker (a module-level function, so it can be sent there)."""
        future = self._worker().submit(reader, path)
        try:
            return future.result(timeout=self.timeout)
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

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
