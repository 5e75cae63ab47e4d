"""A SQL Server stand-in speaking TDS 7.4 (and TDS 8.0 strict) on 127.0.0.1, for tether's tests.

Real drivers (python-tds, pymssql, pyodbc with FreeTDS or Microsoft's ODBC driver 18,
mssql-python) log in to it and run batches and RPCs against a small T-SQL engine with
per-session state (SET options, isolation level, transactions, temp tables, session
context, app locks) and a shared catalog. Session resets (the RESETCONNECTION header bit
and sp_reset_connection) behave as in SQL Server, including leaving the transaction
isolation level unchanged.

    with TdsServer(users={"sa": "Secret-pw1"}, databases=("master", "tempdb", "shop")) as srv:
        conn = pytds.connect(srv.host, port=srv.port, user="sa", password="Secret-pw1")

Control API (thread-safe, every wait bounded): ``reject_logins(n, error)``,
``fail_batches(n, error, severity=None)`` (1205 also rolls the transaction back),
``kill(spid)``, ``close_idle()``, ``close_busy(n)``, ``delay(seconds)``,
``route_to(host, port, n=None)``, ``sessions()``/``session(spid)`` -> :class:`SessionInfo`,
``stats`` -> :class:`Stats`, ``requests(spid=None)`` -> :class:`Request` (what the drivers
sent), ``drop_tables()``, ``clear()``. ``tls=(certfile, keyfile)`` enables encryption:
full (client ENCRYPT_ON/REQ), login-only (client ENCRYPT_OFF) or TDS 8.0 strict (TLS first),
TLS 1.2 inside PRELOGIN as SQL Server does for TDS 7.x. ``session_recovery=True`` acknowledges
the session-recovery feature, so ODBC 18 and mssql-python reconnect a killed idle session by
themselves (unless it has temp tables), as against SQL Server; off by default, like Babelfish.

Modules: ``_packets`` (framing, PRELOGIN, LOGIN7, RPC, TM parsing), ``_tokens`` (response
tokens), ``_wire`` (packets over a socket, TLS), ``_connection`` (one client), ``_server``
(accept loop, control API), ``_engine`` (one request), ``_session`` (session state, catalog),
``_lex``/``_expr``/``_builtins``/``_statements``/``_dml``/``_insert_forms``/``_procs`` (the T-SQL
subset), ``_recovery`` (session recovery), ``_model`` (the value types).
Anything outside the subset is error 102 (or 2812 for an unknown procedure).
"""

from ._model import Request, SessionInfo, Stats
from ._personality import BABELFISH, BABELFISH_AS_2022, SQLSERVER, Personality
from ._server import TdsServer

__all__ = [
    "BABELFISH", "BABELFISH_AS_2022", "SQLSERVER", "Personality",
    "Request", "SessionInfo", "Stats", "TdsServer",
]
