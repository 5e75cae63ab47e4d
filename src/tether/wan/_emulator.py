"""The emulator: many links in one background event loop, plus the HTTP control API."""

from __future__ import annotations

import logging
import random
from types import TracebackType

from tether.wan._link import Link
from tether.wan._link_state import Address, format_address, parse_address
from tether.wan._loop import LoopThread
from tether.wan._registry import LinkSpec, Registry

__all__ = ["DEFAULT_API_PORT", "Emulator"]

log = logging.getLogger(__name__)

DEFAULT_API_PORT = 8474  # Toxiproxy's


class Emulator:
    """Links by name, driven from Python and (unless ``api_port=None``) over HTTP.

    The control API speaks Toxiproxy's HTTP API on ``api_host:api_port`` (127.0.0.1:8474 by
    default; port 0 picks a free one, see :attr:`api_address`). It only listens beyond
    loopback if ``api_host`` says so.
    """

    def __init__(
        self,
        *,
        api_host: str = "127.0.0.1",
        api_port: int | None = DEFAULT_API_PORT,
        seed: int | None = None,
    ) -> None:
        self._thread = LoopThread(name="tether.wan")
        self._registry = Registry(random.Random(seed))
        self._api_address: Address | None = None
        self._api: object = None
        if api_port is not None:
            try:
                self._start_api(api_host, api_port)
            except BaseException:
                self._thread.stop()
                raise

    def _start_api(self, host: str, port: int) -> None:
        from tether.wan._http import ApiServer

        api = ApiServer(self._registry)
        self._api_address = self._thread.run(api.start(host, port))
        self._api = api
        log.info("tether.wan control API on http://%s", format_address(self._api_address))

    def __repr__(self) -> str:
        api = format_address(self._api_address) if self._api_address else "no API"
        state = "running" if self._thread.running else "closed"
        return f"<Emulator [{api}, {len(self._registry.links)} links, {state}]>"

    @property
    def api_address(self) -> Address | None:
        """``(host, port)`` of the HTTP API, or None when it is off."""
        return self._api_address

    @property
    def api_url(self) -> str | None:
        if self._api_address is None:
            return None
        return f"http://{format_address(self._api_address)}"

    def create(
        self,
        *,
        upstream: Address | str,
        listen: Address | str = ("127.0.0.1", 0),
        name: str | None = None,
        enabled: bool = True,
    ) -> Link:
        """Create a link and start listening (unless ``enabled=False``)."""
        up = parse_address(upstream, key="upstream")
        at = parse_address(listen, key="listen")

        async def create() -> str:
            spec = LinkSpec(name or self._registry.new_name(), at, up, enabled)
            return (await self._registry.create(spec)).name

        return Link._bind(self, self._thread.run(create()))

    def link(self, name: str) -> Link:
        """The link called ``name``; :class:`NotFound` if there is none."""

        async def get() -> str:
            return self._registry.get(name).name

        return Link._bind(self, self._thread.run(get()))

    def links(self) -> list[Link]:
        """Every link of this emulator."""
        async def names() -> list[str]:
            return list(self._registry.links)

        return [Link._bind(self, n) for n in self._thread.run(names())]

    def remove(self, name: str) -> None:
        """Remove a link, closing its connections; :class:`NotFound` if there is none."""
        self._thread.run(self._registry.remove(name))

    def reset(self) -> None:
        """Enable every link and remove every fault (Toxiproxy's ``POST /reset``)."""
        self._thread.run(self._registry.reset())

    def close(self) -> None:
        """Close every link and the API, and stop the loop thread. Idempotent."""
        if not self._thread.running:
            return
        try:
            self._thread.run(self._registry.close())
            if self._api is not None:
                from tether.wan._http import ApiServer

                assert isinstance(self._api, ApiServer)
                self._thread.run(self._api.stop())
        finally:
            self._thread.stop()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
