"""Per-session state (SET options, transaction, temp tables) and the shared catalog.

A session is touched only by its own thread, except reads from the control API and
``sys.dm_exec_sessions``; statements run under ``Catalog.lock`` so shared tables stay sane.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import _tokens as tk
from ._packets import Value
from ._personality import SQLSERVER, Personality


class SqlError(Exception):
    """An error SQL Server would report with an ERROR token (the session stays open)."""

    def __init__(self, number: int, severity: int, text: str, state: int = 1) -> None:
        super().__init__(text)
        self.number = number
        self.severity = severity
        self.text = text
        self.state = state
        self.aborts_batch = False  # THROW, deadlocks: stop the batch, not just the statement


class Attention(Exception):
    """The client sent an attention (cancel) while the request was running."""


class SessionGone(Exception):
    """The session was killed or the server is stopping: close without answering."""


def syntax_error(near: str) -> SqlError:
    return SqlError(102, 15, f"Incorrect syntax near '{near}'.")


class Host(Protocol):
    """What the engine needs from the connection that runs it."""

    @property
    def spid(self) -> int: ...

    @property
    def client_port(self) -> int: ...

    @property
    def encrypted(self) -> bool: ...

    def wait(self, seconds: float) -> None: ...  # raises Attention or SessionGone

    def kill_other(self, spid: int) -> bool: ...

    def all_sessions(self) -> list[Session]: ...


@dataclass
class Table:
    name: str
    columns: list[tuple[str, tk.SqlType]]
    rows: list[list[Value]] = field(default_factory=list)
    identity: int | None = None  # index of the IDENTITY column
    next_identity: int = 1

    def index(self, column: str) -> int:
        for i, (name, _) in enumerate(self.columns):
            if name.lower() == column.lower():
                return i
        raise SqlError(207, 16, f"Invalid column name '{column}'.")


class Catalog:
    """Tables every session sees: permanent ones per database, and ## global temp tables."""

    def __init__(self, databases: tuple[str, ...], properties: dict[str, Value] | None = None,
                 version: str | None = None, personality: Personality = SQLSERVER) -> None:
        self.lock = threading.Lock()
        self.personality = personality  # which server's behaviour, where they differ
        self.databases = databases
        self.tables: dict[tuple[str, str], Table] = {}
        # SERVERPROPERTY() overrides (lower-case names) and @@VERSION, e.g. to look like Azure SQL.
        self.properties = {k.lower(): v for k, v in (properties or {}).items()}
        self.version = version

    def database(self, name: str) -> str | None:
        for db in self.databases:
            if db.lower() == name.lower():
                return db
        return None


# ON/OFF options and their @@OPTIONS bits (1 << n); 0 = settable but not in @@OPTIONS.
OPTION_BITS = {
    "DISABLE_DEF_CNST_CHK": 1, "IMPLICIT_TRANSACTIONS": 2, "CURSOR_CLOSE_ON_COMMIT": 4,
    "ANSI_WARNINGS": 8, "ANSI_PADDING": 16, "ANSI_NULLS": 32, "ARITHABORT": 64, "ARITHIGNORE": 128,
    "QUOTED_IDENTIFIER": 256, "NOCOUNT": 512, "ANSI_NULL_DFLT_ON": 1024, "ANSI_NULL_DFLT_OFF": 2048,
    "CONCAT_NULL_YIELDS_NULL": 4096, "NUMERIC_ROUNDABORT": 8192, "XACT_ABORT": 16384,
    "FMTONLY": 0, "NOEXEC": 0, "PARSEONLY": 0, "FORCEPLAN": 0, "NO_BROWSETABLE": 0,
    "REMOTE_PROC_TRANSACTIONS": 0, "SHOWPLAN_ALL": 0, "SHOWPLAN_TEXT": 0, "SHOWPLAN_XML": 0,
}
# What a fresh SQL Server session has on (the usual 5496 of ODBC/OLE DB clients, minus NOCOUNT).
DEFAULT_ON = frozenset({"ANSI_WARNINGS", "ANSI_PADDING", "ANSI_NULLS", "ARITHABORT", "QUOTED_IDENTIFIER",
                        "ANSI_NULL_DFLT_ON", "CONCAT_NULL_YIELDS_NULL"})
# Languages SET LANGUAGE accepts, with the DATEFIRST each implies.
LANGUAGES = {"us_english": 7, "english": 7, "british": 1, "deutsch": 1, "français": 1, "italiano": 1,
             "español": 1, "nederlands": 1, "polski": 1, "português": 7, "svenska": 1}

@dataclass
class Options:
    on: set[str] = field(default_factory=lambda: set(DEFAULT_ON))
    datefirst: int = 7
    language: str = "us_english"
    lock_timeout: int = -1
    textsize: int = 2147483647
    dateformat: str = "mdy"
    deadlock_priority: str = "NORMAL"
    rowcount: int = 0

    def bits(self) -> int:
        return sum(OPTION_BITS[name] for name in self.on if name in OPTION_BITS)


class Reply:
    """Collects one response's tokens; DONE tokens get their MORE bit when rendered."""

    def __init__(self, server_name: str) -> None:
        self.server_name = server_name
        self.parts: list[bytes | list[int]] = []  # bytes, or [token, status, rowcount, curcmd]
        self.in_proc = False  # inside an RPC: statements end with DONEINPROC

    def add(self, data: bytes) -> None:
        self.parts.append(data)

    def done(self, status: int = 0, rowcount: int = 0, token: int | None = None, curcmd: int = 0) -> None:
        self.parts.append([token or (0xFF if self.in_proc else 0xFD), status, rowcount, curcmd])

    def info(self, number: int, text: str, state: int = 1) -> None:
        self.add(tk.message(number, state, 0, text, self.server_name))

    def error(self, exc: SqlError, proc: str = "") -> None:
        self.add(tk.message(exc.number, exc.state, exc.severity, exc.text, self.server_name, proc))

    def render(self, before_final: bytes = b"") -> bytes:
        """The tokens; ``before_final`` goes right before the final DONE (SESSIONSTATE must)."""
        if not self.parts or not isinstance(self.parts[-1], list):
            self.done()
        last = max(i for i, p in enumerate(self.parts) if isinstance(p, list))
        out = bytearray()
        for i, part in enumerate(self.parts):
            if i == last:
                out += before_final
            if isinstance(part, list):
                token, status, count, curcmd = part
                out += tk.done(status | (tk.DONE_MORE if i != last else 0), count, curcmd, token)
            else:
                out += part
        return bytes(out)


class Session:
    """One logged-in session's state, as SQL Server keeps it."""

    def __init__(self, host: Host, catalog: Catalog, user: str, database: str, app: str,
                 hostname: str, personality: Personality = SQLSERVER) -> None:
        self.host = host
        self.personality = personality
        self.chained = False  # the client asked for transaction mode through the TM requests
        self.tx_read = False  # the open transaction has read something (Babelfish's isolation rule)
        self.catalog = catalog
        self.user = user
        self.app = app
        self.hostname = hostname
        self.database = database
        self.opts = Options()
        self.isolation = 2
        self.trancount = 0
        self.descriptor = 0  # the current transaction descriptor (0 = none)
        self._next_descriptor = host.spid << 32
        self.undo: list[Callable[[], None]] = []
        self.savepoints: dict[str, int] = {}  # SAVE TRAN name -> how much of ``undo`` it keeps
        self.tran_name: str | None = None  # BEGIN TRAN <name> of the outermost transaction
        self.identity_insert: str | None = None  # the one table with SET IDENTITY_INSERT ON
        self.temp_tables: dict[str, Table] = {}
        self.global_tables: set[tuple[str, str]] = set()  # ## tables created here
        self.context: dict[str, Value] = {}  # sp_set_session_context
        self.readonly_context: set[str] = set()
        self.applocks: list[tuple[str, str]] = []  # (resource, owner 'transaction'|'session')
        self.prepared: dict[int, tuple[list[str], str]] = {}
        self.rowcount = 0
        self._login_state: tuple[str, Options] = (database, copy.deepcopy(self.opts))

    @property
    def spid(self) -> int:
        return self.host.spid

    def login_done(self) -> None:
        """Remember the state a reset returns to (everything the login set up)."""
        self._login_state = (self.database, copy.deepcopy(self.opts))

    # --- transactions -------------------------------------------------------------------

    def begin(self, reply: Reply, name: str | None = None) -> None:
        self.trancount += 1
        if self.trancount == 1:
            self.tran_name = name  # a named ROLLBACK names the outermost transaction (or a savepoint)
            self.tx_read = False
            self._next_descriptor += 1
            self.descriptor = self._next_descriptor
            reply.add(tk.env_begin_tran(self.descriptor))

    def commit(self, reply: Reply) -> None:
        if self.trancount == 0:
            raise SqlError(3902, 16, "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.")
        self.trancount -= 1
        if self.trancount == 0:
            reply.add(tk.env_end_tran(tk.ENV_COMMIT_TRAN, self.descriptor))
            self._end_transaction()
            self.eager_begin(reply)

    def rollback(self, reply: Reply | None) -> bool:
        """Undo every write of the open transaction; False when there was none."""
        if self.trancount == 0:
            return False
        for undo in reversed(self.undo):
            undo()
        if reply is not None:
            reply.add(tk.env_end_tran(tk.ENV_ROLLBACK_TRAN, self.descriptor))
        self.trancount = 0
        self._end_transaction()
        if reply is not None:
            self.eager_begin(reply)
        return True

    def save(self, name: str) -> None:
        """SAVE TRANSACTION name (a second save of the same name moves it, as in SQL Server)."""
        self.savepoints[name.lower()] = len(self.undo)

    def rollback_to(self, name: str) -> bool:
        """ROLLBACK TRANSACTION <savepoint>: undo the writes after it; @@TRANCOUNT is unchanged
        and the savepoint stays (SQL Server's ROLLBACK TRANSACTION: "rolls back to the
        savepoint ... does not decrement @@TRANCOUNT"). False when no savepoint has that name."""
        mark = self.savepoints.get(name.lower())
        if self.trancount == 0 or mark is None:
            return False
        while len(self.undo) > mark:
            self.undo.pop()()
        self.savepoints = {k: v for k, v in self.savepoints.items() if v <= mark}
        return True

    def _end_transaction(self) -> None:
        self.undo.clear()
        self.savepoints.clear()
        self.descriptor = 0
        self.applocks = [lock for lock in self.applocks if lock[1] != "transaction"]

    def implicit_begin(self, reply: Reply) -> None:
        """IMPLICIT_TRANSACTIONS ON: a data statement opens a transaction when none is open."""
        self.note_read()
        if "IMPLICIT_TRANSACTIONS" in self.opts.on and self.trancount == 0:
            self.begin(reply)

    def eager_begin(self, reply: Reply) -> None:
        """Babelfish (``eager_implicit_transactions``): in transaction mode a transaction is
        begun as soon as none is open (at login, after every commit and rollback), not at
        the first statement that needs one."""
        in_transaction_mode = self.chained or "IMPLICIT_TRANSACTIONS" in self.opts.on
        if self.personality.eager_implicit_transactions and in_transaction_mode and self.trancount == 0:
            self.begin(reply)

    def note_read(self) -> None:
        if self.trancount:
            self.tx_read = True

    def set_isolation(self, level: int) -> None:
        if not self.personality.isolation_after_read and self.trancount and self.tx_read:
            raise SqlError(33557097, 16, "SET TRANSACTION ISOLATION LEVEL must be called before any query "
                           "(set escape hatch 'escape_hatch_set_transaction_isolation_level' to ignore)")
        self.isolation = level

    def journal(self, undo: Callable[[], None]) -> None:
        if self.trancount:
            self.undo.append(undo)

    # --- reset (sp_reset_connection / RESETCONNECTION) ----------------------------------

    def reset(self, reply: Reply | None, keep_transaction: bool) -> None:
        """What SQL Server's reset does: temp tables, options, database, context, locks.

        Deliberately *not* the transaction isolation level: SQL Server leaves it as it was,
        and tether's tests depend on this server reproducing that hole.
        """
        if not keep_transaction:
            self.chained = False  # the reset ends transaction mode: no eager begin here
            self.opts.on.discard("IMPLICIT_TRANSACTIONS")
            self.rollback(reply)
        self.temp_tables.clear()
        self.identity_insert = None  # a SET option: the reset restores the login's
        self.context.clear()
        self.readonly_context.clear()
        self.prepared.clear()
        self.applocks = [lock for lock in self.applocks if lock[1] == "transaction" and keep_transaction]
        database, opts = self._login_state
        self.opts = copy.deepcopy(opts)
        if reply is not None and self.database != database:
            reply.add(tk.env_text(tk.ENV_DATABASE, database, self.database))
        self.database = database

    def end(self) -> None:
        """The connection closed: undo the open transaction, drop ## tables this session made."""
        self.rollback(None)
        for key in self.global_tables:
            self.catalog.tables.pop(key, None)
        self.global_tables.clear()

    # --- tables -------------------------------------------------------------------------

    def _key(self, name: str) -> tuple[str, str]:
        parts = [p for p in name.split(".")]
        db = parts[0] if len(parts) >= 3 and parts[0] else self.database
        return (db.lower(), parts[-1].lower())

    def find_table(self, name: str) -> Table:
        short = name.split(".")[-1]
        if short.startswith("##"):
            table = self.catalog.tables.get(("tempdb", short.lower()))
        elif short.startswith("#"):
            table = self.temp_tables.get(short.lower())
        else:
            table = self.catalog.tables.get(self._key(name))
        if table is None:
            raise SqlError(208, 16, f"Invalid object name '{name}'.")
        return table

    def table_exists(self, name: str) -> bool:
        try:
            self.find_table(name)
        except SqlError:
            return False
        return True

    def _store(self, name: str) -> tuple[dict[Any, Table], Any]:
        """Where a table lives: ##global in the catalog's tempdb, #temp in the session."""
        short = name.split(".")[-1]
        if short.startswith("##"):
            return self.catalog.tables, ("tempdb", short.lower())
        if short.startswith("#"):
            return self.temp_tables, short.lower()
        return self.catalog.tables, self._key(name)

    def create_table(self, name: str, columns: list[tuple[str, tk.SqlType]]) -> None:
        short = name.split(".")[-1]
        if self.table_exists(name):
            raise SqlError(2714, 16, f"There is already an object named '{short}' in the database.")
        store, key = self._store(name)
        store[key] = Table(short, columns)
        if short.startswith("##"):
            self.global_tables.add(key)
        self.journal(lambda: store.__delitem__(key))

    def drop_table(self, name: str) -> None:
        table = self.find_table(name)
        store, key = self._store(name)
        del store[key]
        self.journal(lambda: store.__setitem__(key, table))
