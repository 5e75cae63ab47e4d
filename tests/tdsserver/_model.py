"""The control API's value types, and the fault settings the connections read."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SessionInfo:
    spid: int
    client_port: int
    user: str
    database: str
    app: str
    isolation_level: int
    tran_count: int
    transaction_descriptor: int  # what ENVCHANGE gave the client for the open transaction (0: none)
    temp_tables: tuple[str, ...]
    applocks: tuple[str, ...]  # sp_getapplock resources held
    context: tuple[tuple[str, object], ...]  # sp_set_session_context keys and values
    busy: bool
    closing: bool  # killed or closed, still cleaning up
    recovered: bool  # logged in by session recovery (a driver's ConnectRetryCount reconnect)
    encrypted: bool  # TLS for everything (the client asked ENCRYPT_ON/REQ and the server has tls=)
    login_encrypted: bool  # LOGIN7 went through TLS (also true for login-only encryption)
    requests: int
    packets_in: int
    packets_out: int
    resets: int  # RESETCONNECTION flags seen plus sp_reset_connection calls


@dataclass
class Stats:
    connections: int = 0  # TCP connections accepted
    logins: int = 0  # successful logins
    rejected_logins: int = 0  # reject_logins faults, bad passwords, unknown databases
    routed: int = 0  # logins answered with a routing ENVCHANGE
    recovered_logins: int = 0  # logins that restored a session (session_recovery=True)
    requests: int = 0  # SQL batches, RPC messages, transaction-manager requests
    failed_requests: int = 0  # fail_batches faults delivered
    attentions: int = 0
    packets_in: int = 0
    packets_out: int = 0
    resets: int = 0
    reset_flags: int = 0  # requests whose header carried RESETCONNECTION(SKIPTRAN)
    reset_rpcs: int = 0  # sp_reset_connection calls
    kills: int = 0  # kill() and T-SQL KILL
    idle_closes: int = 0
    busy_closes: int = 0


@dataclass(frozen=True)
class Request:
    """One request as received, kept (the last few hundred) to see what drivers send."""

    spid: int
    kind: str  # prelogin, login, batch, rpc, tm, attention
    text: str
    status: int  # packet header status of the first packet
    descriptor: int = 0  # the transaction descriptor from the request's ALL_HEADERS


@dataclass
class _Faults:
    reject: list[int] = field(default_factory=lambda: [0, 0])  # remaining, error
    fail: list[int] = field(default_factory=lambda: [0, 0])
    fail_severity: int | None = None
    fail_close: bool = False  # close the connection after the error, as severity >= 20 does
    fail_matching: str = ""  # only requests whose text contains this count (another session's ping must not)
    close_busy: int = 0
    delay: float = 0.0
    route: tuple[str, int] | None = None
    route_left: int | None = None  # None: every login while route is set
