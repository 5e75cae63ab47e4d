"""What kind of failure an error is, for deciding whether to run the work again.

urllib3's connect-versus-read split, applied to SQL: an error either never reached the
server (safe to retry anything), may have run there (retry only what is idempotent, or
resolve the outcome first), is the server asking for a retry (deadlock, failover,
throttling), or is final.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Fault(enum.Enum):
    CONNECT = "connect"  # the request never reached the server: safe to retry
    IN_DOUBT = "in doubt"  # sent, and may have run: retried only for idempotent work
    TRANSIENT = "transient"  # the server asks for a retry (deadlock, failover, throttling)
    FATAL = "fatal"  # retrying cannot help (syntax, permissions, constraints, login)


@dataclass(frozen=True, slots=True)
class Classification:
    """A classifier's verdict: the fault, why, and any wait the server asked for."""

    fault: Fault
    reason: str
    retry_after_s: float | None = None
