"""tether.check: the connectivity checker, step by step, as events a program can read.

``run_check("postgresql://app@db.example.com/shop")`` returns a :class:`Report`: one
:class:`Event` per step (``name``, ``local``, ``dns``, ``tcp``, ``tls``, ``login``,
``redirect``, ``latency``), each with a :class:`Status`, a one-line detail, advice, and
data for JSON. ``tls`` speaks each database's own upgrade (PostgreSQL's SSLRequest, SQL
Server's PRELOGIN and TLS inside TDS or TDS 8.0's TLS first, MySQL's SSLRequest);
``redirect`` reads SQL Server's routing (Azure SQL's redirect policy) from a login of its
own and checks the redirected host's DNS and TCP.
``iter_check`` yields the same events as they happen (``on_start=`` sees each step begin).
A report is ``incomplete``, never ``ok``, when a step that matters could not run (the login
without a driver, a step cut by the deadline). No output contains the password: the target
is shown as ``ConnectionSpec.redacted()``, and no text is searched for the password.
The ``tether check`` command (``tether.check._cli.main``) renders them.
"""

from __future__ import annotations

from ._advice import ADVICE, advise
from ._events import Event, Report, Status
from ._runner import iter_check, run_check

__all__ = ["ADVICE", "Event", "Report", "Status", "advise", "iter_check", "run_check"]
