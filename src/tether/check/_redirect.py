"""Step ``redirect``: Azure SQL's connection policy (proxy or redirect). Not implemented yet.

Detecting it needs the routing token of a TDS login response; until the TDS client
exists, the step says so and names the ports that redirect needs.
"""

from __future__ import annotations

from ._context import Context
from ._events import Outcome, Status
from ._name import REDIRECT_PORTS

__all__ = ["check_redirect"]


def check_redirect(ctx: Context, deadline: float) -> Outcome:
    kind = ctx.data("name", "azure")
    if ctx.spec.dialect != "sqlserver" or not kind or "SQL" not in kind:
        return Outcome(Status.SKIP, "not an Azure SQL endpoint: no connection policy to test")
    low, high = REDIRECT_PORTS
    return Outcome(Status.SKIP, f"not implemented for sqlserver yet: the proxy/redirect policy of {kind} "
                   f"is not detected; with redirect, ports {low}-{high} must be open too",
                   data={"redirect_ports": [low, high]})
