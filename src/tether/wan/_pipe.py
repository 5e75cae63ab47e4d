"""One direction of one proxied connection: bytes read on one side, passed through the
fault stages, written to the other side.

With no active fault and nothing queued, bytes are written straight from ``data_received``
(the fast path: no task switch, no copy). Otherwise they are stamped and queued, and a pump
task runs them through the stages and writes each item once its ``ready_at`` has passed.

Backpressure: reading from the source is paused while the destination's write buffer is
above its high-water mark or while the queue holds more than :data:`QUEUE_HIGH` bytes, so a
slow reader never makes the emulator buffer without bound.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from tether.wan._items import Chunk, Eof, Item, Kill
from tether.wan.faults._base import Fault, Stage

if TYPE_CHECKING:
    from tether.wan._connection import Connection

__all__ = ["QUEUE_HIGH", "QUEUE_LOW", "Pipe"]

log = logging.getLogger(__name__)

QUEUE_HIGH = 1 << 20  # pause reading the source above this many queued bytes
QUEUE_LOW = 1 << 18  # and resume below this
Direction = Literal["upstream", "downstream"]


class Pipe:
    """Source transport → stages → destination transport, for one direction."""

    def __init__(self, conn: Connection, direction: Direction, rng: random.Random) -> None:
        self.direction: Direction = direction
        self.src: asyncio.Transport | None = None
        self.dst: asyncio.Transport | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.eof_done = False
        self._conn = conn
        self._rng = rng
        self._loop = asyncio.get_running_loop()
        self._queue: deque[Item] = deque()
        self._queued_bytes = 0
        self._busy = False
        self._stages: dict[str, tuple[Fault, Stage | None]] = {}
        self._chain: list[Stage] = []
        self._timers: dict[str, list[asyncio.TimerHandle]] = {}
        self._paused: set[str] = set()
        self._writable = asyncio.Event()
        self._writable.set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- faults --------------------------------------------------------------------------

    def set_faults(self, faults: Iterable[tuple[str, Fault]]) -> None:
        """Make the chain match ``faults`` (in order); keep the state of unchanged ones."""
        wanted = dict(faults)
        for name in [n for n in self._stages if wanted.get(n) is not self._stages[n][0]]:
            del self._stages[name]
            for timer in self._timers.pop(name, []):
                timer.cancel()
        now = self._loop.time()
        stages: dict[str, tuple[Fault, Stage | None]] = {}
        for name, fault in wanted.items():
            if name in self._stages:
                stages[name] = self._stages[name]
                continue
            stage = fault.new_stage(self._rng) if self._rng.random() < fault.toxicity else None
            stages[name] = (fault, stage)
            if stage is not None:
                self._timers[name] = [self._schedule(k) for k in stage.start(now)]
        self._stages = stages
        self._chain = [s for _, s in stages.values() if s is not None]
        if self._queue or self._chain:
            self._ensure_pump()
        self._wake.set()

    def _schedule(self, kill: Kill) -> asyncio.TimerHandle:
        return self._loop.call_at(kill.ready_at, self._conn.kill, kill.action, self.direction)

    def _holding(self) -> bool:
        # No destination yet: the client's first bytes came before the upstream connected
        # (Python < 3.11.3 ignores the pause_reading() in connection_made); they wait here
        # until set_faults(), after the upstream connects, wakes the pump.
        return self.dst is None or any(stage.holds for stage in self._chain)

    # -- input (from the source protocol) ------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if self.dst is not None and not self._chain and not self._queue and not self._busy:
            self.dst.write(data)
            self.bytes_out += len(data)
            return
        now = self._loop.time()
        self._queue.append(Chunk(data, now, now))
        self._queued_bytes += len(data)
        if self._queued_bytes > QUEUE_HIGH:
            self._pause("queue")
        self._ensure_pump()
        self._wake.set()

    def feed_eof(self) -> None:
        if self.dst is not None and not self._chain and not self._queue and not self._busy:
            self._write_eof()
            return
        self._queue.append(Eof(self._loop.time()))
        self._ensure_pump()
        self._wake.set()

    # -- backpressure --------------------------------------------------------------------

    def dst_paused(self) -> None:
        self._writable.clear()
        self._pause("dst")

    def dst_resumed(self) -> None:
        self._writable.set()
        self._resume("dst")

    def _pause(self, reason: str) -> None:
        if not self._paused and self.src is not None and not self.src.is_closing():
            self.src.pause_reading()
        self._paused.add(reason)

    def _resume(self, reason: str) -> None:
        if reason not in self._paused:
            return
        self._paused.discard(reason)
        if not self._paused and self.src is not None and not self.src.is_closing():
            self.src.resume_reading()

    @property
    def buffered(self) -> int:
        """Bytes held by the emulator for this direction (queue plus write buffer)."""
        size = self.dst.get_write_buffer_size() if self.dst is not None else 0
        return self._queued_bytes + size

    # -- the pump ------------------------------------------------------------------------

    def _ensure_pump(self) -> None:
        if self._task is None:
            name = f"tether.wan pump {self.direction}"
            self._task = self._loop.create_task(self._pump(), name=name)

    def stop(self) -> None:
        """Cancel the pump and the scheduled actions; the connection is going away."""
        for timers in self._timers.values():
            for timer in timers:
                timer.cancel()
        self._timers.clear()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _pump(self) -> None:
        while True:
            while not self._queue or self._holding():
                self._wake.clear()
                await self._wake.wait()
            item = self._queue.popleft()
            if isinstance(item, Chunk):
                self._queued_bytes -= len(item.data)
                if self._queued_bytes <= QUEUE_LOW:
                    self._resume("queue")
            self._busy = True
            try:
                for out in self._run_stages(item):
                    if not await self._emit(out):
                        return
            finally:
                self._busy = False

    def _run_stages(self, item: Item) -> list[Item]:
        now = self._loop.time()
        items = [item]
        for stage in self._chain:
            items = [out for it in items for out in stage.process(it, now)]
        return items

    async def _emit(self, item: Item) -> bool:
        delay = item.ready_at - self._loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if isinstance(item, Kill):
            self._conn.kill(item.action, self.direction)
            return False
        if isinstance(item, Eof):
            self._write_eof()
            return True
        if not self._writable.is_set():
            await self._writable.wait()
        assert self.dst is not None
        if self.dst.is_closing():
            return False
        self.dst.write(item.data)
        self.bytes_out += len(item.data)
        return True

    def _write_eof(self) -> None:
        self.eof_done = True
        if self.dst is not None and not self.dst.is_closing() and self.dst.can_write_eof():
            self.dst.write_eof()
        self._conn.check_done()
