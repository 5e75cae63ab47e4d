"""A SQL Server stand-in speaking TDS 7.4 on 127.0.0.1, for tether's tests.

Real drivers (python-tds, pymssql, pyodbc with FreeTDS or Microsoft's ODBC driver,
mssql-python) log in to it and run batches against a small T-SQL engine with per-session
state (SET options, isolation level, transactions, temp tables, session context), and the
control API injects what production servers do to them: rejected logins, failed requests,
killed or idle-closed sessions, connections dropped mid-request, slow answers, Azure-style
routing. Session resets (the RESETCONNECTION header bit and sp_reset_connection) behave as
in SQL Server, including leaving the transaction isolation level unchanged.

    with TdsServer(users={"sa": "Secret-pw1"}) as srv:
        conn = pytds.connect(srv.host, port=srv.port, user="sa", password="Secret-pw1")
"""

from ._model import Request, SessionInfo, Stats
from ._server import TdsServer

__all__ = ["Request", "SessionInfo", "Stats", "TdsServer"]
