"""``LoopThread``: a private asyncio loop on a daemon thread, for running the store's coroutines from synchronous
code (the batch worker thread, ``force_flush`` callers, the CLI, the viewer)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["FORK_ORPHANS", "LoopThread"]

T = TypeVar("T")

# Objects a forked child inherited from its parent (loops, engines, pooled connections). They are kept alive,
# never used and never closed: closing them would tear down the parent's sockets.
FORK_ORPHANS: list[object] = []


class LoopThread:
    """A private asyncio loop on a daemon thread, created lazily; ``run`` submits a coroutine and waits."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._waiting: set[concurrent.futures.Future[Any]] = set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def _main() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=_main, name=self._name, daemon=True)
                thread.start()
                ready.wait(5.0)
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """Run ``coro`` on the loop; on timeout cancel it and raise ``TimeoutError``."""
        if self._thread is not None and threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("LoopThread.run called from its own loop thread")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        self._waiting.add(future)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"database operation did not finish within {timeout}s") from None
        finally:
            self._waiting.discard(future)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop; whoever still waits on an operation gets ``CancelledError`` now (a write: counted)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        for future in list(self._waiting):
            future.cancel()
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()

    def forget(self) -> None:
        """Drop the loop without touching it (after ``fork()``: its thread does not exist in the child)."""
        with self._lock:
            if self._loop is not None:
                FORK_ORPHANS.append(self._loop)
            self._loop = self._thread = None
            self._lock = threading.Lock()
