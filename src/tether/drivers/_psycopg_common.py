"""What psycopg 3's two drivers share (``psycopg_async`` and the ``psycopg`` generated from it):
libpq's connection keywords and transaction status, its reported settings, the
prepared-statement fix, and what a connection object carries over to a new one."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from psycopg import pq

from ..vocab import TxStatus

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec

# Indexed by libpq's PQtransactionStatus (an int): IDLE, ACTIVE, INTRANS, INERROR, UNKNOWN.
STATUS = (
    TxStatus.IDLE,
    TxStatus.ACTIVE,
    TxStatus.IN_TRANSACTION,
    TxStatus.IN_ERROR,
    TxStatus.BROKEN,
)
CONNECTION_BAD = int(pq.ConnStatus.BAD)


def forget_session(raw: Any) -> None:
    """After DISCARD ALL: psycopg's prepared-statement cache names statements that are gone.

    psycopg clears its cache only the first time it sees DISCARD ALL's text (later runs
    hit the cache before the command status is looked at), and then "_pg3_N does not
    exist"."""
    manager = getattr(raw, "_prepared", None)
    for cache in ("_names", "_counts"):
        entries = getattr(manager, cache, None)
        if entries is not None:
            entries.clear()


def connect_kwargs(spec: ConnectionSpec, timeout_s: float) -> dict[str, Any]:
    """libpq's keywords for ``spec`` (shared with the async driver)."""
    kwargs: dict[str, Any] = dict(spec.options)
    kwargs.update(host=spec.host, port=spec.port, dbname=spec.database, user=spec.user)
    if spec.password is not None:
        kwargs["password"] = spec.password.reveal()
    if spec.application_name:
        kwargs["application_name"] = spec.application_name
    # libpq counts whole seconds and treats anything below 2 as 2.
    kwargs["connect_timeout"] = max(2, math.ceil(timeout_s))
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if "prepare_threshold" in kwargs:
        kwargs["prepare_threshold"] = _prepare_threshold(kwargs["prepare_threshold"])
    if spec.transaction_pooled:
        kwargs["prepare_threshold"] = None  # a prepared statement stays on a server connection
    return kwargs


def _prepare_threshold(value: str) -> int | None:
    """psycopg's ``prepare_threshold`` (a connection attribute, not a libpq keyword) from a
    connection string's text, which the parser checked: a count, or ``none``."""
    text = value.strip().lower()
    return None if text in ("none", "null") else int(text)


# Settings the server reports in ParameterStatus (GUC_REPORT), which libpq keeps: the
# old session's last values stay readable after it died. Server facts (server_version,
# in_hot_standby) are left out: a failover may change them legitimately.
_REPORTED = (b"application_name", b"client_encoding", b"DateStyle", b"IntervalStyle", b"TimeZone",
             b"standard_conforming_strings", b"is_superuser", b"session_authorization",
             b"search_path", b"default_transaction_read_only")


def reported_settings(raw: Any) -> dict[str, str | None]:
    """What the server last reported of the settings it reports (no round trip)."""
    pgconn = raw.pgconn
    out: dict[str, str | None] = {}
    for name in _REPORTED:
        value = pgconn.parameter_status(name)
        out[name.decode()] = None if value is None else value.decode("utf-8", "replace")
    return out


def carry_over(old: Any, new: Any) -> None:
    """Copy the connection object's own configuration from ``old`` to ``new`` (sync and async)."""
    from psycopg.adapt import AdaptersMap

    new._adapters = AdaptersMap(old.adapters)
    new.row_factory = old.row_factory
    new.cursor_factory = old.cursor_factory
    new.prepare_threshold = old.prepare_threshold
    for handler in list(getattr(old, "_notice_handlers", ())):
        new.add_notice_handler(handler)
    for handler in list(getattr(old, "_notify_handlers", ())):
        new.add_notify_handler(handler)

