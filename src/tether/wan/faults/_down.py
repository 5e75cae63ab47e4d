"""Down: the service is gone. New connections are refused, existing ones are dropped.

With ``toxicity`` 1 the listening socket is closed, so clients get ``ECONNREFUSED``, and
every open connection is closed (FIN), as Toxiproxy does for a disabled proxy. With a
lower toxicity the listener stays up and each connection, new or open, is dropped with
that probability (accepted then reset, for new ones): a flapping service.
"""

from __future__ import annotations

from dataclasses import dataclass

from tether.wan.faults._base import Fault, register

__all__ = ["Down"]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Down(Fault):
    """Refuse new connections and drop existing ones (per-connection with ``toxicity``)."""

    type_name = "down"
    link_level = True
