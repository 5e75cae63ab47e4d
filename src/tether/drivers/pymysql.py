"""PyMySQL (``mysql+pymysql://``), the default MySQL and MariaDB driver: pure Python, so its
socket and the server's status flags are in reach.

The transaction status needs no round trip: every OK and EOF packet carries the server's
status flags, and SERVER_STATUS_IN_TRANS is set inside any transaction, an SQL-level
``BEGIN`` or one that autocommit-off began implicitly. PyMySQL keeps the flags of OK packets
(``server_status``) but drops those of the EOF that ends a result set, so a ``SELECT`` that
began a transaction would go unseen: tether opens PyMySQL's connection class through a
subclass that keeps them too (one attribute read per result set).

The session reset is the protocol's COM_RESET_CONNECTION (MySQL 5.7+, MariaDB 10.2+), which
PyMySQL has no call for: it rolls back, drops temporary tables, user variables, prepared
statements, HANDLERs and locks, and puts session variables back to their global values,
autocommit among them. It keeps the current database. tether then sets again, in one
statement, what PyMySQL set at login (``SET NAMES``, autocommit, ``sql_mode``), runs the
``init_command`` if there is one, and ``USE``\\ s the login database when the borrow changed it.
It runs off the caller's path, on the pool's reset workers.

PyMySQL sends one statement per query (tether does not turn on CLIENT_MULTI_STATEMENTS, which
would let an injected ``; DROP ...`` run): a recovered session replays its statements one by
one (``batches = False``).
"""

from __future__ import annotations

import contextlib
import math
import ssl
from typing import TYPE_CHECKING, Any

import pymysql  # type: ignore[import-untyped]  # PyMySQL ships no type information
from pymysql import connections, err
from pymysql.protocol import EOFPacketWrapper  # type: ignore[import-untyped]

from ..errors import ConfigError
from ..vocab import TxStatus
from ._base import Driver

if TYPE_CHECKING:
    from ..dsn import ConnectionSpec

_COM_RESET_CONNECTION = 0x1F  # not in PyMySQL's COMMAND constants
_IN_TRANS = 0x0001  # SERVER_STATUS_IN_TRANS
_ER_UNKNOWN_COM_ERROR = 1047  # a server without COM_RESET_CONNECTION (MySQL < 5.7, MariaDB < 10.2.4)
_USE = "USE of another database"  # dialects.mysql's change for USE

# ssl_mode as MySQL's clients read it; PyMySQL itself has no such option.
_SSL_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
# Option spellings (a URL's query) -> PyMySQL's keyword; every other option is refused.
_PLAIN = {"charset": "charset", "collation": "collation", "sql_mode": "sql_mode",
          "init_command": "init_command", "program_name": "program_name"}
_TIMEOUTS = ("read_timeout", "write_timeout")
_SSL_FILES = {"ssl_ca": "ca", "ssl_capath": "capath", "ssl_cert": "cert", "ssl_key": "key"}
_SSL_OPTIONS = ("ssl_mode", "sslmode", "ssl_cipher", *_SSL_FILES)


class _Result(connections.MySQLResult):  # type: ignore[misc]  # PyMySQL ships no type information
    """PyMySQL's result, keeping the status flags of the EOF that ends a result set."""

    def _check_packet_is_eof(self, packet: Any) -> bool:
        if not packet.is_eof_packet():
            return False
        eof = EOFPacketWrapper(packet)
        self.warning_count = eof.warning_count
        self.has_next = eof.has_next
        self.server_status = eof.server_status
        conn = self.connection  # an unbuffered result ends after _read_query_result returned
        if conn is not None:
            conn.server_status = eof.server_status
        return True


class _Connection(connections.Connection):  # type: ignore[misc]
    """PyMySQL's connection with ``_Result``; and what tether's reset must set again."""

    _tether_database: str | None = None
    _tether_autocommit = False

    def _read_query_result(self, unbuffered: bool = False) -> int:
        # PyMySQL 1.x's own, with _Result for MySQLResult.
        self._result = None
        result = _Result(self)
        if unbuffered:
            result.init_unbuffered_query()
        else:
            result.read()
        self._result = result
        if result.server_status is not None:
            self.server_status = result.server_status
        affected: int = result.affected_rows
        return affected


class PyMySQL(Driver):
    name = "pymysql"
    dialect = "mysql"
    module = pymysql
    exact_tx_status = True  # SERVER_STATUS_IN_TRANS: SQL-level BEGIN and implicit ones alike
    batches = False  # one statement per query: see the module's docstring
    cancels = True
    cancel_raises = False  # a killed SLEEP() returns 1, as if done

    def cancel(self, raw: Any, cursor: Any, timeout_s: float) -> None:
        """MySQL's way: ``KILL QUERY`` with the session's id, from a second connection
        with the same login and TLS context."""
        tls = raw.ctx if isinstance(raw._sock, ssl.SSLSocket) else None  # as the session does
        killer = pymysql.connect(
            host=raw.host, port=raw.port, user=raw.user, password=raw.password, ssl=tls,
            connect_timeout=timeout_s, read_timeout=timeout_s, write_timeout=timeout_s,
        )
        try:
            killer.query(f"KILL QUERY {int(raw.thread_id())}")
        finally:
            self.close(killer)

    def connect(self, spec: ConnectionSpec, *, timeout_s: float, autocommit: bool | None,
                      extra: dict[str, Any] | None = None) -> Any:
        kwargs = {**connect_kwargs(spec, timeout_s), **(extra or {})}
        read_timeout, write_timeout = kwargs.get("read_timeout"), kwargs.get("write_timeout")
        # connect_timeout covers the TCP connect only: the handshake and login reads get
        # the rest of the deadline too, then the connection's own timeouts apply.
        kwargs["read_timeout"] = kwargs["write_timeout"] = timeout_s
        raw = _Connection(autocommit=bool(autocommit), **kwargs)
        raw._read_timeout, raw._write_timeout = read_timeout, write_timeout
        raw._tether_database = spec.database
        raw._tether_autocommit = bool(autocommit)
        return raw

    def socket_fd(self, raw: Any) -> int | None:
        sock = raw._sock  # a TLS socket's fileno() is the TCP socket's
        return None if sock is None else int(sock.fileno())

    def tx_status(self, raw: Any) -> TxStatus:
        if raw._sock is None:  # PyMySQL closes it on any I/O error, and on close()
            return TxStatus.BROKEN
        result = raw._result
        if result is not None and (result.unbuffered_active or result.has_next):
            return TxStatus.ACTIVE  # rows or result sets not read yet
        return TxStatus.IN_TRANSACTION if raw.server_status & _IN_TRANS else TxStatus.IDLE

    def autocommit(self, raw: Any) -> bool:
        return bool(raw.get_autocommit())  # SERVER_STATUS_AUTOCOMMIT of the last OK or EOF

    def ping(self, raw: Any, sql: str, *, timeout_s: float) -> bool:
        """``sql`` with a deadline: PyMySQL's socket timeouts, for this round trip only. A
        ping that times out closes the connection (PyMySQL does on any socket error)."""
        if raw._sock is None:
            return False
        saved = raw._read_timeout, raw._write_timeout
        raw._read_timeout = raw._write_timeout = timeout_s
        try:
            self.execute(raw, sql)
            return True
        except (pymysql.Error, OSError):
            return False
        finally:
            # PyMySQL sets the socket's timeout again when these differ from the last it set.
            raw._read_timeout, raw._write_timeout = saved

    def execute(self, raw: Any, sql: str) -> None:
        raw.query(sql)  # buffered: the rows are read and dropped with the result

    def reset(self, raw: Any, changes: tuple[str, ...]) -> bool:
        try:
            raw._execute_command(_COM_RESET_CONNECTION, b"")
            raw._read_ok_packet()
        except err.MySQLError as exc:
            if exc.args and exc.args[0] == _ER_UNKNOWN_COM_ERROR:
                return False  # no reset on this server: the pool opens a new connection
            raise
        # Session variables are the server's globals again: what PyMySQL set at login, again.
        names = f"SET NAMES {raw.charset}" + (f" COLLATE {raw.collation}" if raw.collation else "")
        settings = [names, f"autocommit = {int(raw._tether_autocommit)}"]
        if raw.sql_mode is not None:
            settings.append(f"sql_mode = {raw.escape(raw.sql_mode)}")
        raw.query(", ".join(settings))
        raw.autocommit_mode = raw._tether_autocommit
        if raw.init_command is not None:
            raw.query(raw.init_command)
        if _USE in changes or any("could not be" in change for change in changes):
            # COM_RESET_CONNECTION keeps the current database (MySQL and MariaDB alike).
            database = raw._tether_database
            if not database:
                return False  # no database to go back to: none can be unselected
            raw.query("USE `" + database.replace("`", "``") + "`")
        return True

    def close(self, raw: Any) -> None:
        with contextlib.suppress(pymysql.Error, OSError):
            if raw._closed:
                raw._force_close()
            else:
                raw.close()


def connect_kwargs(spec: ConnectionSpec, timeout_s: float) -> dict[str, Any]:
    """PyMySQL's keywords for ``spec``; an option PyMySQL would not honour is refused."""
    if spec.encrypt is not None or spec.trust_server_certificate is not None:
        raise ConfigError("Encrypt and TrustServerCertificate are SQL Server's: for MySQL, use "
                          "ssl_mode=REQUIRED, VERIFY_CA or VERIFY_IDENTITY", key="encrypt")
    if spec.host is not None and spec.host.startswith("/"):
        raise ConfigError("a Unix socket is not supported by tether's PyMySQL driver: tether "
                          "probes and keeps alive a TCP socket", key="host")
    kwargs: dict[str, Any] = {
        "host": spec.host or "localhost",
        "port": spec.port or 3306,
        "user": spec.user or "",
        "password": spec.password.reveal() if spec.password is not None else "",
        "database": spec.database,
        "connect_timeout": max(timeout_s, 0.001),
    }
    if spec.application_name:
        kwargs["program_name"] = spec.application_name
    for key, value in spec.options:
        name = key.replace("-", "_")
        if name in _PLAIN:
            kwargs[_PLAIN[name]] = value
        elif name in _TIMEOUTS:
            kwargs[name] = _seconds(name, value)
        elif name not in _SSL_OPTIONS:
            known = ", ".join(sorted({*_PLAIN, *_TIMEOUTS, *_SSL_OPTIONS} - {"sslmode"}))
            raise ConfigError(f"option {key!r} is not one tether's PyMySQL driver passes on; known: {known}",
                              key=key)
    kwargs.update(tls_kwargs(spec))
    return kwargs


def tls_kwargs(spec: ConnectionSpec) -> dict[str, Any]:
    """``ssl_mode`` as MySQL's own clients read it, never weaker.

    Unset or PREFERRED: PyMySQL's default, TLS when the server offers it, unverified (as
    MySQL's PREFERRED); a CA given without a mode means VERIFY_CA. REQUIRED: TLS or no
    connection; verified against ``ssl_ca`` when one is given. VERIFY_CA: the certificate
    must verify (``ssl_ca``, or the system's trust store). VERIFY_IDENTITY: and name the host.
    """
    raw_mode = spec.option("ssl_mode") or spec.option("ssl-mode") or spec.option("sslmode")
    mode = (raw_mode or "").upper().replace("-", "_")
    if mode and mode not in _SSL_MODES:
        choices = ", ".join(_SSL_MODES)
        raise ConfigError(f"ssl_mode must be one of {choices}, not {raw_mode!r}", key="ssl_mode")
    files = {name: spec.option(option) or spec.option(option.replace("_", "-"))
             for option, name in _SSL_FILES.items()}
    cipher = spec.option("ssl_cipher") or spec.option("ssl-cipher")
    if mode == "DISABLED":
        given = [k for k, v in files.items() if v] + (["cipher"] if cipher else [])
        if given:
            raise ConfigError(f"ssl_mode=DISABLED with ssl_{given[0]}: which one is meant?", key="ssl_mode")
        return {"ssl_disabled": True}
    has_ca = bool(files["ca"] or files["capath"])
    if not mode or mode == "PREFERRED":
        if has_ca:
            mode = "VERIFY_CA"  # a CA is there to be checked against
        elif not (files["cert"] or cipher):
            return {}  # PyMySQL's default: TLS if offered, unverified
        else:
            mode = "REQUIRED"
    verify = mode in ("VERIFY_CA", "VERIFY_IDENTITY") or has_ca
    context = ssl.create_default_context(cafile=files["ca"], capath=files["capath"])
    context.check_hostname = mode == "VERIFY_IDENTITY"
    if not verify:
        context.verify_mode = ssl.CERT_NONE
    if files["cert"]:
        context.load_cert_chain(files["cert"], files["key"])
    elif files["key"]:
        raise ConfigError("ssl_key without ssl_cert", key="ssl_key")
    if cipher:
        context.set_ciphers(cipher)
    return {"ssl": context}  # an SSLContext: PyMySQL requires TLS with it as it is


def _seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}", key=name)
    return seconds


driver = PyMySQL()
