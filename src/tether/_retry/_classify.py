"""The default classifier: tether's own errors, then the dialect of the driver that raised.

Dispatch is by the package that defined the exception's class, never by its message:
the dialects hold one commented table each and decide. What nobody understands is FATAL:
retrying an error we cannot explain may apply work twice or hide a bug.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ..dialects._base import unmendable_connect
from ..errors import CommandTimeout, CommitOutcomeUnknown, ConnectError, PoolTimeout, SessionLost
from ..vocab import Classification, Fault
from ..vocab._drivers import dialect_of_package

__all__ = ["classify"]

Classifier = Callable[[BaseException], Classification]

# tether's own errors, before any driver: a ``PoolTimeout`` bound to a driver's class
# (``errors.bind``) is still ours.
_CONNECT_ERRORS = (ConnectError, PoolTimeout)  # no work was sent: safe to run again
_SURFACING_ERRORS = (CommitOutcomeUnknown, SessionLost)  # must reach the application


def classify(exc: BaseException) -> Classification:
    """Say what kind of failure ``exc`` is, for deciding whether to run the work again."""
    if isinstance(exc, _CONNECT_ERRORS):
        return _connect_error(exc)
    if isinstance(exc, _SURFACING_ERRORS):
        return Classification(Fault.FATAL, f"tether: {type(exc).__name__} must surface")
    if isinstance(exc, CommandTimeout):
        # Severed: the request may have run, as when any connection breaks mid-statement.
        # Cancelled: the server stopped it and said so (SqlClient's retry logic counts its
        # timeout, -2, as transient too).
        if exc.severed:
            return Classification(Fault.IN_DOUBT, "tether: CommandTimeout, connection severed")
        return Classification(Fault.TRANSIENT, "tether: CommandTimeout, statement cancelled")
    package = type(exc).__module__.partition(".")[0]
    # The registry lists packages tether has no pool for (MySQLdb, mariadb) too: their
    # errors are still classified.
    dialect = dialect_of_package(package)
    if dialect is None:
        unmendable = unmendable_connect(exc)
        if unmendable:
            return Classification(Fault.FATAL, unmendable)
        if isinstance(exc, OSError):
            # A socket error raised as it is (python-tds does): the request may have
            # gone out, so in doubt, which a transaction before COMMIT may still retry.
            return Classification(Fault.IN_DOUBT, f"socket error: {type(exc).__name__}")
        return Classification(Fault.FATAL, f"unclassified {type(exc).__qualname__} from {package}")
    dialect_classify = _dialect_classifier(dialect)
    if dialect_classify is None:
        return Classification(Fault.FATAL, f"unclassified {type(exc).__qualname__}: no {dialect} classifier")
    return dialect_classify(exc)


def _connect_error(exc: BaseException) -> Classification:
    """No work was sent, so CONNECT; unless the cause is final (a login the server
    refused, SQL Server's 18456, MySQL's 1045), which no retry can mend."""
    cause = exc.__cause__
    if isinstance(exc, ConnectError) and cause is not None and not isinstance(cause, _CONNECT_ERRORS):
        verdict = classify(cause)
        if verdict.fault is Fault.FATAL and not verdict.reason.startswith("unclassified"):
            return Classification(Fault.FATAL, f"tether: ConnectError: {verdict.reason}")
    return Classification(Fault.CONNECT, f"tether: {type(exc).__name__}")


def _dialect_classifier(dialect: str) -> Classifier | None:
    """``tether.dialects.<dialect>.classify``, imported on first use; None if absent."""
    try:
        module = importlib.import_module(f"tether.dialects.{dialect}")
    except ImportError:
        return None
    found: Classifier | None = getattr(module, "classify", None)
    return found
