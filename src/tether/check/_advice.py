"""What to do about a login error, by database and error code: one commented table each."""

from __future__ import annotations

__all__ = ["ADVICE", "TCP_ADVICE", "advise", "tcp_advice"]

# PostgreSQL SQLSTATEs; "pg_hba" is ours: 28000 whose message says no pg_hba.conf entry;
# "timeout" too: libpq's connect_timeout expired, which has no SQLSTATE.
_POSTGRESQL = {
    "28P01": "wrong password for this user (or the user does not exist): check the user name and password",
    "28000": "the server refuses this user: check the user name and the server's pg_hba.conf",
    "pg_hba": "no pg_hba.conf entry matches this client: add a line for this user, database and client "
              "address (and 'hostssl' rules need sslmode=require), then reload the server",
    "3D000": "the database does not exist: check its name (it is case-sensitive when quoted)",
    "53300": "too many connections: the server's max_connections is reached; close idle connections or "
             "use a pool (a server-side pooler such as PgBouncer for many clients)",
    "57P03": "the server is starting up, shutting down or in recovery: retry in a moment",
    "timeout": "the login timed out: something accepted the connection but the server did not answer in "
               "time (a blackholing firewall or load balancer, a hung or overloaded server); on a slow link "
               "raise connect_timeout",
}

# SQL Server / Azure SQL error numbers.
_SQLSERVER = {
    "18456": "login failed: wrong user name or password, or the login has no access to the database "
             "(the server log's state number says which)",
    "40615": "the Azure SQL firewall blocks this client's IP address: add a server or database firewall "
             "rule for it",
    "40532": "the login names a server that this gateway does not know: with SQL authentication in Azure "
             "SQL, write the user as user@server or check the server name",
    "4060": "cannot open the database: it does not exist or this login has no user in it (or it is "
            "still starting: retry)",
    "911": "the database does not exist: check its name",
    "10060": "the connection timed out: a firewall blocks port 1433 (or 11000-11999 for Azure SQL "
             "redirect), or the server name is wrong",
    "121": "the network dropped the connection during the login (semaphore timeout): check VPNs, proxies "
           "and unstable links",
    "40613": "the Azure SQL database is not available right now (failover or reconfiguration): transient, "
             "retry with backoff",
    # Ours and the socket's: a reset during the login, and the two sides disagreeing on encryption.
    "10054": "the server or something in between reset the connection during the login: a firewall or "
             "proxy that drops TDS, a TLS failure on the server side, or a server that was shutting down",
    "18452": "the login is from an untrusted domain: Windows authentication does not work from here; use a "
             "SQL login or Microsoft Entra authentication",
    "18470": "the login is disabled: ALTER LOGIN ... ENABLE",
    "18486": "the login is locked out after too many failed attempts: ALTER LOGIN ... WITH PASSWORD = ... "
             "UNLOCK",
    "encryption": "the driver and the server disagree on encryption: the server requires it and the driver "
                  "does not offer it (pytds needs pyOpenSSL and cafile=), or the driver requires it and the "
                  "server has no certificate; see the TLS step",
}

# MySQL / MariaDB error numbers.
_MYSQL = {
    "1045": "access denied: wrong user name or password, or the user is not allowed from this host",
    "1049": "unknown database: check its name",
    "1040": "too many connections: the server's max_connections is reached",
    "1044": "the user has no privileges on this database: GRANT them, or connect to another database",
    "1130": "the server does not accept this user from this client's host: create the user for this host "
            "(user@'%' or the client's address)",
    "1251": "the client does not support the server's authentication plugin (caching_sha2_password needs "
            "TLS or RSA keys with PyMySQL: install cryptography)",
    "2003": "cannot connect: nothing listens on the port, or a firewall drops the connection",
    "2013": "the connection was lost during the login: a proxy, a firewall, or a server under load "
            "(connect_timeout on the server)",
    "2026": "the TLS connection failed: check the server's certificate and the client's ssl settings",
    "3159": "the server requires TLS (require_secure_transport=ON): connect with ssl_mode=REQUIRED or better",
}

ADVICE: dict[str, dict[str, str]] = {"postgresql": _POSTGRESQL, "sqlserver": _SQLSERVER, "mysql": _MYSQL}


def advise(dialect: str, code: str | None) -> str | None:
    """The advice for ``code`` from ``dialect``'s table, or None."""
    return ADVICE.get(dialect, {}).get(code or "")


# TCP connects refused or timing out, by database: the settings that decide where each server
# listens and whom it lets in. "refused": something answered that nothing listens there (the
# server is down, on another port, or bound to another interface). "timed out": nothing
# answered, so a firewall drops the packets, or the route is broken.
TCP_ADVICE: dict[str, dict[str, str]] = {
    "postgresql": {
        "refused": "nothing listens on port {port}: check the server runs, the port, and that it listens on "
                   "this interface (postgresql.conf: listen_addresses and port, then a restart); "
                   "pg_hba.conf must also have a 'host' line for this client's address",
        "timed out": "connects to port {port} time out: a firewall or security group drops them, or the "
                     "route is broken; open TCP port {port} to this client, and check postgresql.conf's "
                     "listen_addresses (not 'localhost' only) and pg_hba.conf's 'host' lines",
    },
    "sqlserver": {
        "refused": "nothing listens on port {port}: check the SQL Server service runs and TCP/IP is enabled "
                   "(SQL Server Configuration Manager: Protocols, TCP/IP, IP Addresses, TCP Port, 1433 by "
                   "default; a named instance uses a dynamic port unless one is set); a firewall that "
                   "rejects connects instead of dropping them looks the same: allow inbound TCP port {port}",
        "timed out": "connects to port {port} time out: a firewall or security group drops them, or the "
                     "route is broken; allow inbound TCP port {port} in Windows Firewall and any security "
                     "group (SQL Server's default port is 1433), and check TCP/IP is enabled in SQL Server "
                     "Configuration Manager; Azure SQL: allow this client's IP in the server firewall "
                     "(and ports 11000-11999 for the redirect policy)",
    },
    "mysql": {
        "refused": "nothing listens on port {port}: check the server runs, the port, and that it listens on "
                   "this interface (my.cnf: bind-address and port; skip-networking must be off)",
        "timed out": "connects to port {port} time out: a firewall or security group drops them, or the "
                     "route is broken; open TCP port {port} to this client, and check my.cnf's bind-address "
                     "(not 127.0.0.1 only) and that skip-networking is off",
    },
}


def tcp_advice(dialect: str, problem: str, port: int) -> str | None:
    """The advice for TCP connects to ``port`` that are ``refused`` or ``timed out``, for ``dialect``."""
    text = TCP_ADVICE.get(dialect, {}).get(problem)
    return None if text is None else text.format(port=port)
