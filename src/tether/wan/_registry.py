"""The set of links of one emulator, as the event loop sees it (Toxiproxy's collection)."""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from tether.errors import ConfigError
from tether.wan._errors import AlreadyExists, NotFound
from tether.wan._link_state import Address, LinkState
from tether.wan._names import check_name

__all__ = ["LinkSpec", "Registry"]


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """What a link should be: used to create, update and populate."""

    name: str
    listen: Address
    upstream: Address
    enabled: bool = True

    def __post_init__(self) -> None:
        check_name(self.name)
        _check_host("listen", self.listen[0])
        _check_host("upstream", self.upstream[0])
        if self.upstream[1] == 0:  # port 0 means "any" only when listening
            raise ConfigError("upstream port must be 1..65535, got 0", key="upstream")


# What getaddrinfo accepts without failing in its idna step (empty or over-long labels)
# or on a NUL byte: ASCII host names and IPv4/IPv6 literals (with a %zone), labels of
# 1..63 characters, a trailing dot allowed. Non-ASCII names must be given in punycode.
_HOST_CHARS = re.compile(r"[A-Za-z0-9._:%-]*")
_MAX_HOST = 253


def _check_host(key: str, host: str) -> None:
    if not host:  # parse_address fills in 127.0.0.1; a tuple's "" means every interface
        return
    labels = host.removesuffix(".").split(".")
    if (
        len(host) > _MAX_HOST
        or not _HOST_CHARS.fullmatch(host)
        or not all(0 < len(label) <= 63 for label in labels)
    ):
        shown = host if len(host) <= 80 else host[:77] + "..."
        message = (
            f"{key} host must be an IP address or an ASCII host name "
            f"(letters, digits, '.', '-', '_'; labels of 1 to 63), got {shown!r}"
        )
        raise ConfigError(message, key=key)


class Registry:
    """Links by name. Runs in the loop thread only."""

    def __init__(self, rng: random.Random) -> None:
        self.links: dict[str, LinkState] = {}
        self._rng = rng
        self._counter = itertools.count(1)
        self._lock = asyncio.Lock()

    def new_name(self) -> str:
        while True:
            name = f"link-{next(self._counter)}"
            if name not in self.links:
                return name

    def get(self, name: str) -> LinkState:
        try:
            return self.links[name]
        except KeyError:
            raise NotFound(f"no link named {name!r}") from None

    async def create(self, spec: LinkSpec) -> LinkState:
        async with self._lock:
            return await self._create(spec)

    async def _create(self, spec: LinkSpec) -> LinkState:
        if spec.name in self.links:
            raise AlreadyExists(f"link {spec.name!r} already exists")
        state = LinkState(name=spec.name, listen=spec.listen, upstream=spec.upstream, rng=self._rng)
        if spec.enabled:
            await state.enable()  # raises ListenError, leaving nothing behind
        self.links[spec.name] = state
        return state

    async def update(self, name: str, spec: LinkSpec) -> LinkState:
        """Change listen/upstream (restarting the link) and enabled, as Toxiproxy does."""
        async with self._lock:
            state = self.get(name)
            if (spec.listen, spec.upstream) != (state.listen, state.upstream):
                was = (state.listen, state.upstream, state.enabled)
                await state.disable()
                state.listen, state.upstream = spec.listen, spec.upstream
                if spec.enabled:
                    try:
                        await state.enable()
                    except Exception:
                        state.listen, state.upstream = was[0], was[1]
                        if was[2]:
                            await state.enable()
                        raise
                return state
            if spec.enabled != state.enabled:
                await (state.enable() if spec.enabled else state.disable())
            return state

    async def remove(self, name: str) -> None:
        async with self._lock:
            state = self.get(name)
            del self.links[name]
            await state.close()

    async def reset(self) -> None:
        """Enable every link and remove every fault (Toxiproxy's ``POST /reset``)."""
        async with self._lock:
            for state in self.links.values():
                await state.clear_faults()
                if not state.enabled:
                    await state.enable()

    async def populate(self, specs: Sequence[LinkSpec]) -> list[LinkState]:
        """Create or replace links; those with the same listen and upstream are kept."""
        counts = collections.Counter(s.name for s in specs)
        dupes = sorted(n for n, count in counts.items() if count > 1)
        if dupes:
            raise ConfigError(f"duplicate proxy name {dupes[0]!r}", key="name")
        async with self._lock:
            result = []
            for spec in specs:
                old = self.links.get(spec.name)
                if old is not None and (old.listen, old.upstream) == (spec.listen, spec.upstream):
                    result.append(old)
                    continue
                if old is not None and _port_matches(old, spec):
                    result.append(old)
                    continue
                if old is not None:
                    del self.links[spec.name]
                    await old.close()
                result.append(await self._create(spec))
            return result

    async def close(self) -> None:
        async with self._lock:
            states = list(self.links.values())
            self.links.clear()
            for state in states:
                await state.close()


def _port_matches(old: LinkState, spec: LinkSpec) -> bool:
    """``listen`` given with port 0 matches a link already listening on its chosen port."""
    return spec.upstream == old.upstream and spec.listen[1] == 0 and spec.listen[0] == old.listen[0]
