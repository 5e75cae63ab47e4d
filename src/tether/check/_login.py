"""Step ``login``: open one connection with the chosen driver; advice for the error it raises."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from ..drivers import load_driver
from ..errors import ConfigError
from ..vocab._drivers import for_dialect
from ._advice import ADVICE, advise
from ._context import Context, op_timeout
from ._events import Outcome, Status
from ._fallback import direct_connector

__all__ = ["check_login", "error_code"]

log = logging.getLogger(__name__)

# libpq reports a failed login without a SQLSTATE: the server's message (C locale) tells it.
_LIBPQ_MESSAGES = (
    ("password authentication failed", "28P01"),
    ("no pg_hba.conf entry", "pg_hba"),
    ("pg_hba.conf rejects", "pg_hba"),
    ("role \"", "28000"),  # role "x" does not exist
    ("database \"", "3D000"),  # database "x" does not exist
    ("too many clients already", "53300"),
    ("remaining connection slots are reserved", "53300"),
    ("the database system is starting up", "57P03"),
    ("the database system is shutting down", "57P03"),
    ("timeout expired", "timeout"),  # libpq's connect_timeout
)


def error_code(dialect: str, exc: BaseException) -> str | None:
    """The server's error code in ``exc``: an error number as text, or a SQLSTATE (PostgreSQL)."""
    sqlstate = getattr(exc, "sqlstate", None)
    sqlstate = sqlstate if isinstance(sqlstate, str) else None
    if dialect == "postgresql":
        if sqlstate:
            return sqlstate
        text = str(exc)
        return next((code for phrase, code in _LIBPQ_MESSAGES if phrase in text), None)
    # SQL Server and MySQL: the error number says more than the SQLSTATE (PyMySQL has both).
    number = getattr(exc, "number", None)  # pytds, mssql-python
    if number is None and exc.args and isinstance(exc.args[0], int):
        number = exc.args[0]  # pymssql, pymysql: (number, message)
    if number:
        return str(number)
    return _code_from_text(dialect, exc) or sqlstate


# ODBC-style messages carry the native error in parentheses: "Login failed for user 'x'. (18456)".
_NUMBER_IN_TEXT = re.compile(r"\((\d{2,5})\)")
_SQLSERVER_PHRASES = (
    ("semaphore timeout", "121"),
    ("encrypt", "encryption"),
    ("pyopenssl", "encryption"),
    ("tls_ctx", "encryption"),
    ("forcibly closed", "10054"),
    ("reset by peer", "10054"),
    ("timed out", "10060"),
    ("timeout expired", "10060"),
    ("login timeout", "10060"),
)


def _code_from_text(dialect: str, exc: BaseException) -> str | None:
    if dialect != "sqlserver":
        return None
    text = str(exc)
    for number in _NUMBER_IN_TEXT.findall(text):
        if number in ADVICE["sqlserver"]:
            return str(number)
    if isinstance(exc, TimeoutError):
        return "10060"
    if isinstance(exc, ConnectionResetError):
        return "10054"
    lowered = text.lower()
    return next((code for phrase, code in _SQLSERVER_PHRASES if phrase in lowered), None)


def _last_line(exc: BaseException) -> str:
    """The last line of the error's message (a driver's ``(number, message)`` args: the message)."""
    texts = [arg for arg in exc.args if isinstance(arg, str)] if len(exc.args) > 1 else []
    text = max(texts, key=len) if texts else str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _no_driver(dialect: str, exc: ConfigError) -> Outcome:
    """The login not tried: the check is incomplete (never "all good"), and how to fix it:
    the drivers the check can log in with (tether's registry), and the database's extra,
    which installs the recommended ones."""
    command = f"pip install 'tether[{dialect}]'"
    packages = [info.package.split("[")[0] for info in for_dialect(dialect, mode="sync")]
    package = ", ".join(packages[:-1]) + f" or {packages[-1]}" if len(packages) > 1 else "".join(packages)
    advice = (f"install a {dialect} driver ({package}) to test the login: {command}",)
    data = {"incomplete": True, "missing": package, "install": command, "error": str(exc)}
    return Outcome(Status.SKIP, f"login NOT tested: no {dialect} driver is installed ({package}); "
                   f"run: {command}", advice, data)


def check_login(ctx: Context, deadline: float) -> Outcome:
    spec = ctx.spec.with_(host=ctx.host, port=ctx.port)
    driver: Any
    try:
        driver = load_driver(spec.dialect, spec.driver)
    except ConfigError as exc:
        driver = direct_connector(spec.dialect, spec.driver)
        if driver is None:
            return _no_driver(spec.dialect, exc)
    if not ctx.addresses() or not ctx.data("tcp", "min_s"):
        return Outcome(Status.SKIP, "no address accepted a TCP connection")
    began = time.monotonic()
    try:
        raw = driver.connect(spec, timeout_s=op_timeout(ctx, deadline), autocommit=True)
    except Exception as exc:  # the driver's own errors, whatever they are
        return _failed(ctx, exc, time.monotonic() - began)
    login_s = time.monotonic() - began
    try:
        server = _server_kind(spec.dialect, raw)
    finally:
        driver.close(raw)
    odbc = getattr(raw, "odbc_driver", None)  # pyodbc: which ODBC driver it loaded
    data = {"driver": driver.name, "login_s": login_s, "user": spec.user, "database": spec.database,
            "odbc_driver": odbc.name if odbc is not None else None, **server}
    via = f" via {odbc.label}" if odbc is not None else ""
    said = f"; the server is {server['server']}" if server.get("server") else ""
    return Outcome(Status.OK, f"logged in with {driver.name}{via} as {spec.user} to {spec.database} "
                   f"in {login_s * 1000:.1f} ms{said}", data=data)


def _server_kind(dialect: str, raw: Any) -> dict[str, Any]:
    """What the server says it is, where the login's own answer misleads: Babelfish for
    PostgreSQL answers PRELOGIN as SQL Server 12.0 (2014, or Azure SQL); its @@VERSION
    names it. One query on the open session; a failure leaves it unsaid."""
    if dialect != "sqlserver":
        return {}
    from ..dialects.sqlserver import is_babelfish

    try:
        cursor = raw.cursor()
        try:
            cursor.execute("SELECT @@VERSION")
            row = cursor.fetchone()
        finally:
            cursor.close()
    except Exception as exc:  # the driver's own errors, whatever they are
        log.debug("could not read @@VERSION after the login: %s", exc)
        return {}
    version = str(row[0]) if row and row[0] is not None else ""
    first_line = version.splitlines()[0].strip() if version.strip() else ""
    if is_babelfish(version):
        return {"server": first_line.split(" - ")[0], "babelfish": True, "server_version_text": first_line}
    return {"babelfish": False, "server_version_text": first_line}


def _server_error(dialect: str, exc: BaseException) -> BaseException | None:
    """The error behind ``exc`` that carries the server's own number, if any.

    python-tds retries some login errors (40613, 4060, 40615...) until its login timeout, then
    raises a bare TimeoutError *from* the last one: the server's answer is in the chain.
    """
    seen: set[int] = set()
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        code = error_code(dialect, cause)
        if code is not None and code in ADVICE.get(dialect, {}) and not code.startswith("10"):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def _failed(ctx: Context, exc: BaseException, spent_s: float) -> Outcome:
    dialect = ctx.spec.dialect
    shown = _last_line(exc)
    code = error_code(dialect, exc)
    behind = None
    if code is None or code not in ADVICE.get(dialect, {}) or code.startswith("10"):
        behind = _server_error(dialect, exc)
    if behind is not None:
        shown = f"{shown}; the server said: {_last_line(behind)}"
        code = error_code(dialect, behind)
    log.debug("login to %s failed: %s", ctx.spec.redacted(), shown)
    advice = advise(dialect, code)
    if advice is None:
        advice = "the login failed for a reason without specific advice: read the error above"
    data = {"error": shown, "code": code, "error_type": type(exc).__name__, "spent_s": spent_s}
    return Outcome(Status.FAIL, f"{shown} [{code or 'no code'}]", (advice,), data)
