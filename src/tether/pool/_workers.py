"""A few daemon threads for background work (resets), started on demand.

``concurrent.futures`` would join its threads at interpreter exit, where a reset stuck
on a dead link could hold the process for its whole TCP timeout; these are daemons,
and they leave after a few idle seconds, so an idle pool holds no spare threads.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
_IDLE_EXIT_S = 5.0


class Workers:
    def __init__(self, name: str, *, max_threads: int):
        self._name = name
        self._max = max_threads
        self._tasks: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]]] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._pending = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            self._pending += 1
            start = self._pending > self._idle and self._threads < self._max
            if start:
                self._threads += 1
        self._tasks.put((fn, args))
        if start:
            name = f"tether-{self._name}-worker"
            threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            try:
                fn, args = self._tasks.get(timeout=_IDLE_EXIT_S)
            except queue.Empty:
                with self._lock:
                    self._idle -= 1
                    if self._pending == 0:
                        self._threads -= 1
                        return
                continue
            with self._lock:
                self._idle -= 1
                self._pending -= 1
            try:
                fn(*args)
            except Exception:
                log.exception("background task %r failed", fn)
