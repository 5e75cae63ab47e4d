"""An asyncio event loop in a daemon thread, driven from synchronous code."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class LoopThread:
    """Runs a fresh event loop in a background thread until :meth:`stop`."""

    def __init__(self, *, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            gather = asyncio.gather(*pending, return_exceptions=True)
            self.loop.run_until_complete(gather)
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def run(self, coro: Coroutine[Any, Any, _T], *, timeout_s: float = 30.0) -> _T:
        """Run ``coro`` in the loop and wait for its result (re-raising its exception)."""
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError("a tether.wan handle was called from its own event loop thread")
        if not self.running:
            coro.close()
            raise RuntimeError("the tether.wan event loop is stopped")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def stop(self) -> None:
        """Stop the loop, cancel what is left, close the loop, join the thread."""
        if self.running:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
