"""Faults, one per module, registered under their Toxiproxy type names.

========================  ================  =====================================
class                     type name         Toxiproxy attributes (units)
========================  ================  =====================================
:class:`Latency`          ``latency``       ``latency``, ``jitter`` (ms)
:class:`Bandwidth`        ``bandwidth``     ``rate`` (KB/s, 1 KB = 1000 bytes)
:class:`Slicer`           ``slicer``        ``average_size``, ``size_variation``
                                            (bytes), ``delay`` (µs)
:class:`Reset`            ``reset_peer``    ``timeout`` (ms); ``after_bytes``
:class:`Blackhole`        ``timeout``       ``timeout`` (ms); ``hold``
:class:`SlowClose`        ``slow_close``    ``delay`` (ms)
:class:`LimitData`        ``limit_data``    ``bytes``
:class:`Down`             ``down``          (none)
========================  ================  =====================================
"""

from __future__ import annotations

from tether.wan.faults._bandwidth import Bandwidth
from tether.wan.faults._base import Fault, Stage, fault_types
from tether.wan.faults._blackhole import Blackhole
from tether.wan.faults._down import Down
from tether.wan.faults._latency import Latency
from tether.wan.faults._limit_data import LimitData
from tether.wan.faults._reset import Reset
from tether.wan.faults._slicer import Slicer
from tether.wan.faults._slow_close import SlowClose

__all__ = [
    "Bandwidth",
    "Blackhole",
    "Down",
    "Fault",
    "Latency",
    "LimitData",
    "Reset",
    "Slicer",
    "SlowClose",
    "Stage",
    "fault_types",
]
