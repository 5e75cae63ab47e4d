"""psycopg 3 (``postgresql+psycopg://``), the default PostgreSQL driver."""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import pq

from ..dialects import TxStatus

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec

# Indexed by libpq's PQtransactionStatus (an int): IDLE, ACTIVE, INTRANS, INERROR, UNKNOWN.
_STATUS = (
    TxStatus.IDLE,
    TxStatus.ACTIVE,
    TxStatus.IN_TRANSACTION,
    TxStatus.IN_ERROR,
    TxStatus.BROKEN,
)
_CONNECTION_BAD = int(pq.ConnStatus.BAD)


class Psycopg:
    name = "psycopg"
    dialect = "postgresql"
    module = psycopg

    def connect(self, spec: ConnectionSpec, *, timeout_s: float, autocommit: bool | None) -> Any:
        kwargs: dict[str, Any] = dict(spec.options)
        kwargs.update(host=spec.host, port=spec.port, dbname=spec.database, user=spec.user)
        if spec.password is not None:
            kwargs["password"] = spec.password.reveal()
        if spec.application_name:
            kwargs["application_name"] = spec.application_name
        # libpq counts whole seconds and treats anything below 2 as 2.
        kwargs["connect_timeout"] = max(2, math.ceil(timeout_s))
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        return psycopg.Connection.connect(autocommit=bool(autocommit), **kwargs)

    def socket_fd(self, raw: Any) -> int | None:
        fd: int = raw.pgconn.socket
        return fd

    def tx_status(self, raw: Any) -> TxStatus:
        pgconn = raw.pgconn  # on the return path: read libpq's state, no properties
        if pgconn.status == _CONNECTION_BAD:
            return TxStatus.BROKEN
        return _STATUS[pgconn.transaction_status]

    def execute(self, raw: Any, sql: str) -> None:
        # Outside a transaction: a ping must not open one, and DISCARD ALL cannot run in one.
        if raw.autocommit:
            raw.execute(sql)
            return
        raw.autocommit = True
        try:
            raw.execute(sql)
        finally:
            if not raw.closed:
                raw.autocommit = False

    def forget_session(self, raw: Any) -> None:
        # DISCARD ALL deallocates psycopg's auto-prepared statements, but psycopg clears
        # its cache only the first time it sees that text (later runs hit the cache
        # before the command status is looked at), and then "_pg3_N does not exist".
        manager = getattr(raw, "_prepared", None)
        for cache in ("_names", "_counts"):
            entries = getattr(manager, cache, None)
            if entries is not None:
                entries.clear()

    def close(self, raw: Any) -> None:
        with contextlib.suppress(psycopg.Error):
            raw.close()


driver = Psycopg()
