"""The thread-safe handle on a link: what tests and applications hold."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from tether.errors import ConfigError
from tether.wan._errors import NotFound
from tether.wan._items import Action
from tether.wan._link_state import (
    DIRECTIONS,
    Address,
    Direction,
    FaultEntry,
    LinkState,
    LinkStats,
)
from tether.wan._names import check_name
from tether.wan.faults import Blackhole, Down, Fault

if TYPE_CHECKING:
    from tether.wan._emulator import Emulator

__all__ = ["Applied", "Link"]

_T = TypeVar("_T")
Directions = Literal["upstream", "downstream", "both"]


class Link:
    """A named TCP proxy in front of ``upstream``, with faults per direction.

    ``Link(upstream=...)`` starts a private emulator (its own loop thread, no HTTP API) and
    listens at once; ``close()`` or leaving the ``with`` block stops it. Links made by
    :meth:`Emulator.create` share that emulator and are removed from it by ``close()``.
    """

    def __init__(
        self,
        *,
        upstream: Address | str,
        listen: Address | str = ("127.0.0.1", 0),
        name: str | None = None,
        enabled: bool = True,
        seed: int | None = None,
    ) -> None:
        from tether.wan._emulator import Emulator

        emulator = Emulator(api_port=None, seed=seed)
        try:
            created = emulator.create(upstream=upstream, listen=listen, name=name, enabled=enabled)
        except BaseException:
            emulator.close()
            raise
        self._emulator = emulator
        self._name = created.name
        self._owns_emulator = True

    @classmethod
    def _bind(cls, emulator: Emulator, name: str) -> Link:
        link = cls.__new__(cls)
        link._emulator = emulator
        link._name = name
        link._owns_emulator = False
        return link

    def _call(self, fn: Callable[[LinkState], Coroutine[Any, Any, _T]]) -> _T:
        async def run() -> _T:
            return await fn(self._emulator._registry.get(self._name))

        return self._emulator._thread.run(run())

    def _read(self, fn: Callable[[LinkState], _T]) -> _T:
        async def run(state: LinkState) -> _T:
            return fn(state)

        return self._call(run)

    # -- what it is ----------------------------------------------------------------------

    def __repr__(self) -> str:
        try:
            return self._read(repr)
        except (NotFound, RuntimeError):
            return f"<Link {self._name!r} [removed]>"

    @property
    def name(self) -> str:
        return self._name

    @property
    def listen_address(self) -> Address:
        """Where clients connect: ``(host, port)``, with the port chosen if 0 was asked."""
        return self._read(lambda s: s.listen)

    @property
    def upstream(self) -> Address:
        return self._read(lambda s: s.upstream)

    @property
    def enabled(self) -> bool:
        return self._read(lambda s: s.enabled)

    @property
    def connection_count(self) -> int:
        """Connections open through the link right now."""
        return self._read(lambda s: len(s.connections))

    def stats(self) -> LinkStats:
        """Connections, bytes forwarded and bytes buffered, right now."""
        return self._read(lambda s: s.stats())

    def faults(self) -> list[FaultEntry]:
        """The installed faults, in chain order."""
        return self._read(lambda s: list(s.faults.values()))

    # -- faults --------------------------------------------------------------------------

    def add(self, fault: Fault, *, direction: Directions = "downstream", name: str | None = None) -> Applied:
        """Install ``fault`` on one direction (or ``"both"``); returns a handle to lift it.

        The default name is Toxiproxy's ``<type>_<direction>``; a given one follows the
        control API's rules (:class:`ConfigError` otherwise: no ``/``, no control characters,
        ...). ``upstream`` is client → server, ``downstream`` server → client.
        """
        if not isinstance(fault, Fault):
            raise ConfigError(f"fault must be a tether.wan fault, got {fault!r}", key="fault")
        dirs = _directions(direction)
        if name is not None and len(dirs) > 1:
            raise ConfigError("name cannot be given with direction='both'", key="name")
        if name:
            check_name(name)  # one the control API can address, as for links
        entries = [FaultEntry(name or f"{fault.type_name}_{d}", d, fault) for d in dirs]

        async def add(state: LinkState) -> None:
            done: list[str] = []
            try:
                for entry in entries:
                    await state.add_fault(entry)
                    done.append(entry.name)
            except BaseException:
                for added in done:
                    await state.remove_fault(added)
                raise

        self._call(add)
        return Applied(self, [e.name for e in entries])

    def update(self, name: str, fault: Fault) -> None:
        """Replace the setting of the fault ``name``, keeping its place and direction."""

        async def update(state: LinkState) -> None:
            if name not in state.faults:
                raise NotFound(f"no fault {name!r} on link {state.name!r}")
            await state.update_fault(FaultEntry(name, state.faults[name].direction, fault))

        self._call(update)

    def remove(self, name: str) -> None:
        """Remove the fault ``name``; :class:`NotFound` if there is none."""
        self._call(lambda s: s.remove_fault(name))

    def clear(self) -> None:
        """Remove every fault and enable the link (Toxiproxy's reset, for this link)."""

        async def clear(state: LinkState) -> None:
            await state.clear_faults()
            await state.enable()

        self._call(clear)

    def blackhole(
        self, *, timeout_s: float = 0.0, hold: bool = False, direction: Directions = "both"
    ) -> Applied:
        """Stop forwarding without closing (both directions by default). See :class:`Blackhole`."""
        return self.add(Blackhole(timeout_s=timeout_s, hold=hold), direction=direction)

    def down(self) -> Applied:
        """Refuse new connections and drop open ones until the handle is lifted."""
        return self.add(Down(), direction="downstream", name="down")

    # -- the link itself -----------------------------------------------------------------

    def disable(self) -> None:
        """Stop listening and close every connection (Toxiproxy's ``enabled: false``)."""
        self._call(lambda s: s.disable())

    def enable(self) -> None:
        """Listen again; :class:`ListenError` if the address was taken meanwhile."""
        self._call(lambda s: s.enable())

    def reset_all(self) -> int:
        """Send a TCP RST on every open connection (both sides), now; returns how many."""
        return self._read(lambda s: s.drop_all(Action.RESET))

    def close_all(self) -> int:
        """Close every open connection gracefully (FIN), now; returns how many."""
        return self._read(lambda s: s.drop_all(Action.CLOSE))

    def wait_connections(self, count: int, *, timeout_s: float = 5.0) -> None:
        """Wait until exactly ``count`` connections are open; TimeoutError otherwise."""

        self._call(lambda s: s.wait_connections(count, timeout_s=timeout_s))

    def close(self) -> None:
        """Remove the link (and stop its private emulator, if it has one). Idempotent."""
        if self._owns_emulator:
            self._emulator.close()
            return
        if not self._emulator._thread.running:
            return
        with contextlib.suppress(NotFound):
            self._emulator.remove(self._name)

    def __enter__(self) -> Link:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Applied:
    """Faults just installed on a link; ``lift()`` (or leaving ``with``) removes them."""

    def __init__(self, link: Link, names: list[str]) -> None:
        self.link = link
        self.names = tuple(names)

    def __repr__(self) -> str:
        return f"<Applied {list(self.names)} on {self.link.name!r}>"

    def lift(self) -> None:
        """Remove the faults; those already removed are skipped."""
        for name in self.names:
            with contextlib.suppress(NotFound):
                self.link.remove(name)

    def __enter__(self) -> Applied:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.lift()


def _directions(direction: str) -> tuple[Direction, ...]:
    if direction == "both":
        return DIRECTIONS
    if direction in DIRECTIONS:
        return (direction,)
    raise ConfigError(
        f"direction must be 'upstream', 'downstream' or 'both', got {direction!r}",
        key="direction",
    )
