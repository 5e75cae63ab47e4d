"""Step ``name``: what the server name says (Azure endpoints, ports, addresses)."""

from __future__ import annotations

import ipaddress

from ._context import Context
from ._events import Outcome, Status

__all__ = ["check_name"]

MI_PUBLIC_PORT = 3342
REDIRECT_PORTS = (11000, 11999)

# (suffix, what it is); the first match wins, so longer suffixes come first.
_AZURE_KINDS = (
    ("-ondemand.sql.azuresynapse.net", "Azure Synapse serverless SQL pool"),
    (".sql.azuresynapse.net", "Azure Synapse dedicated SQL pool"),
    (".datawarehouse.fabric.microsoft.com", "Microsoft Fabric warehouse"),
    (".database.fabric.microsoft.com", "Microsoft Fabric SQL database"),
    (".database.windows.net", "Azure SQL Database"),
    (".database.usgovcloudapi.net", "Azure SQL Database (US Government)"),
    (".database.chinacloudapi.cn", "Azure SQL Database (China)"),
    (".database.cloudapi.de", "Azure SQL Database (Germany)"),
    (".postgres.database.azure.com", "Azure Database for PostgreSQL"),
    (".mysql.database.azure.com", "Azure Database for MySQL"),
)


def azure_kind(host: str) -> str | None:
    """What Azure service ``host`` names, or None."""
    for suffix, kind in _AZURE_KINDS:
        if host.endswith(suffix):
            if ".public." in host and suffix == ".database.windows.net":
                return "Azure SQL Managed Instance (public endpoint)"
            return kind
    return None


def _address_kind(host: str) -> str | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if address.is_loopback:
        return "a loopback address"
    return "a private address" if address.is_private else "a public address"


def check_name(ctx: Context, deadline: float) -> Outcome:
    host, port = ctx.host, ctx.port
    data: dict[str, object] = {"host": host, "port": port, "dialect": ctx.spec.dialect}
    address = _address_kind(host)
    data["is_address"] = address is not None
    if address is not None:
        return Outcome(Status.OK, f"{host} is {address}, port {port}", data=data)
    kind = azure_kind(host)
    data["azure"] = kind
    if kind is None:
        return Outcome(Status.OK, f"{host}, port {port} (not a known cloud endpoint name)", data=data)
    advice = _azure_advice(kind, port)
    status = Status.WARN if advice else Status.OK
    return Outcome(status, f"{host} is {kind}, port {port}", advice=advice, data=data)


def _azure_advice(kind: str, port: int) -> tuple[str, ...]:
    if "Managed Instance" in kind and port != MI_PUBLIC_PORT:
        return (f"a Managed Instance public endpoint listens on port {MI_PUBLIC_PORT}, not {port}",)
    if "Managed Instance" not in kind and port == MI_PUBLIC_PORT:
        return (f"port {MI_PUBLIC_PORT} is for Managed Instance public endpoints "
                "(<mi>.public.<zone>.database.windows.net)",)
    if kind.startswith(("Azure SQL", "Azure Synapse", "Microsoft Fabric")) and port != 1433:
        return (f"{kind} listens on port 1433, not {port}",)
    return ()
