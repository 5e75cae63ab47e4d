"""tether.wan: a WAN emulator. Bad networks on demand, on one machine.

::

    from tether.wan import Link, Latency, Reset

    with Link(upstream=("127.0.0.1", 5432)) as link:
        link.add(Latency(delay_s=0.015), direction="both")   # 30 ms round trip
        host, port = link.listen_address                     # connect the app here
        link.reset_all()                                     # RST every open connection
        with link.blackhole():                               # a silent stall...
            ...                                              # ...lifted on exit

:class:`Emulator` holds many links and serves Toxiproxy's HTTP API (port 8474), so
Toxiproxy clients drive it unchanged. See ``docs/wan.md``.
"""

from __future__ import annotations

import logging

from tether.wan._emulator import DEFAULT_API_PORT, Emulator
from tether.wan._errors import AlreadyExists, ListenError, NotFound, WanError
from tether.wan._link import Applied, Link
from tether.wan._link_state import FaultEntry, LinkStats
from tether.wan._netns import NetNamespace, netns_unavailable
from tether.wan.faults import (
    Bandwidth,
    Blackhole,
    Down,
    Fault,
    Latency,
    LimitData,
    Reset,
    Slicer,
    SlowClose,
    fault_types,
)

__all__ = [
    "DEFAULT_API_PORT",
    "AlreadyExists",
    "Applied",
    "Bandwidth",
    "Blackhole",
    "Down",
    "Emulator",
    "Fault",
    "FaultEntry",
    "Latency",
    "LimitData",
    "Link",
    "LinkStats",
    "ListenError",
    "NetNamespace",
    "NotFound",
    "Reset",
    "Slicer",
    "SlowClose",
    "WanError",
    "fault_types",
    "netns_unavailable",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
