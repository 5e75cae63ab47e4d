"""SqlClient's connection-string keywords: spellings, synonyms, value types and limits.

From Microsoft.Data.SqlClient's keyword map (the .NET Core flavour): every keyword and
synonym SqlClient accepts is accepted here, with its type and range. The ones tether acts
on become typed ConnectionSpec fields; the rest become options for the driver, under a
snake_case key (``Multiple Active Result Sets`` -> ``multiple_active_result_sets``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._common import (
    ENCRYPT,
    POOL_BLOCKING,
    Converter,
    boolean,
    canonical,
    choice,
    did_you_mean,
    fail,
    integer,
    number,
    quoted,
    text,
)

_ANY_TEXT = text()


@dataclass(frozen=True, slots=True)
class Keyword:
    name: str  # SqlClient's spelling, for messages
    target: str  # a ConnectionSpec field, an option key, or one of the special targets
    convert: Converter = _ANY_TEXT
    synonyms: tuple[str, ...] = ()
    option: bool = False


def _option(name: str, key: str, convert: Converter, *synonyms: str) -> Keyword:
    return Keyword(name, key, convert, synonyms, option=True)


_AUTHENTICATION = canonical(
    "SqlPassword",
    "ActiveDirectoryPassword",
    "ActiveDirectoryIntegrated",
    "ActiveDirectoryInteractive",
    "ActiveDirectoryServicePrincipal",
    "ActiveDirectoryDeviceCodeFlow",
    "ActiveDirectoryManagedIdentity",
    "ActiveDirectoryMSI",
    "ActiveDirectoryDefault",
    "ActiveDirectoryWorkloadIdentity",
)
_TYPE_SYSTEM = canonical("Latest", "SQL Server 2000", "SQL Server 2005", "SQL Server 2008", "SQL Server 2012")

_KEYWORDS = (
    # Identity.
    Keyword("Data Source", "server", synonyms=("Server", "Address", "Addr", "Network Address")),
    Keyword("Initial Catalog", "database", text(128), ("Database",)),
    Keyword("User ID", "user", text(128), ("UID", "User")),
    Keyword("Password", "password", text(128), ("PWD",)),
    # tether settings: typed fields of ConnectionSpec.
    Keyword("Connect Retry Count", "connect_retry_count", integer(), ("ConnectRetryCount",)),
    Keyword(
        "Connect Retry Interval", "connect_retry_interval", number(whole=True),
        ("ConnectRetryInterval",),
    ),
    Keyword(
        "Connect Timeout", "login_timeout", number(whole=True),
        ("Connection Timeout", "ConnectTimeout", "Timeout"),
    ),
    # Seconds a statement may run (0: no limit). tether's pool enforces it, not the driver.
    Keyword("Command Timeout", "command_timeout", number(whole=True), ("CommandTimeout",)),
    Keyword("Min Pool Size", "min_pool_size", integer()),
    Keyword("Max Pool Size", "max_pool_size", integer()),
    Keyword(
        "Load Balance Timeout", "connection_lifetime", number(whole=True), ("Connection Lifetime",)
    ),
    Keyword("Pooling", "pooling", boolean()),
    Keyword(
        "Pool Blocking Period", "pool_blocking_period", choice(POOL_BLOCKING),
        ("PoolBlockingPeriod",),
    ),
    Keyword("Encrypt", "encrypt", choice(ENCRYPT)),
    Keyword(
        "Trust Server Certificate", "trust_server_certificate", boolean(),
        ("TrustServerCertificate",),
    ),
    Keyword("Application Name", "application_name", text(128), ("App",)),
    # Everything else SqlClient knows, kept as options for the driver.
    _option(
        "Application Intent", "application_intent", choice(canonical("ReadWrite", "ReadOnly")),
        "ApplicationIntent",
    ),
    _option(
        "AttachDbFilename", "attach_db_filename", text(260),
        "Extended Properties", "Initial File Name",
    ),
    _option(
        "Attestation Protocol", "attestation_protocol", choice(canonical("AAS", "HGS", "None"))
    ),
    _option("Authentication", "authentication", choice(_AUTHENTICATION)),
    _option(
        "Column Encryption Setting", "column_encryption_setting",
        choice(canonical("Enabled", "Disabled")), "ColumnEncryption",
    ),
    _option("Current Language", "current_language", text(128), "Language"),
    _option("Enclave Attestation Url", "enclave_attestation_url", text()),
    _option("Enlist", "enlist", boolean()),
    _option("Failover Partner", "failover_partner", text(128), "FailoverPartner"),
    _option("Failover Partner SPN", "failover_partner_spn", text(), "FailoverPartnerSPN"),
    _option(
        "Host Name In Certificate", "host_name_in_certificate", text(), "HostNameInCertificate"
    ),
    _option(
        "Integrated Security", "integrated_security", boolean(extra_true=("sspi",)),
        "Trusted_Connection",
    ),
    _option(
        "IP Address Preference", "ip_address_preference",
        choice(canonical("IPv4First", "IPv6First", "UsePlatformDefault")), "IPAddressPreference",
    ),
    _option(
        "Multiple Active Result Sets", "multiple_active_result_sets", boolean(),
        "MultipleActiveResultSets",
    ),
    _option("Multi Subnet Failover", "multi_subnet_failover", boolean(), "MultiSubnetFailover"),
    _option("Packet Size", "packet_size", integer(512, 32768), "PacketSize"),
    _option("Persist Security Info", "persist_security_info", boolean(), "PersistSecurityInfo"),
    _option("Replication", "replication", boolean()),
    _option("Server Certificate", "server_certificate", text(), "ServerCertificate"),
    _option("Server SPN", "server_spn", text(), "ServerSPN"),
    _option(
        "Transaction Binding", "transaction_binding",
        choice(canonical("Implicit Unbind", "Explicit Unbind")),
    ),
    _option("Type System Version", "type_system_version", choice(_TYPE_SYSTEM)),
    _option("User Instance", "user_instance", boolean()),
    _option("Workstation ID", "workstation_id", text(128), "WorkstationID", "WSID"),
    # ODBC's, not SqlClient's, but how ODBC users write their strings: the ODBC driver
    # pyodbc loads ({ODBC Driver 18 for SQL Server}, FreeTDS, or a library's path).
    _option("Driver", "driver", text()),
    # .NET Framework only; accepted when it asks for TCP, which is all tether speaks.
    Keyword("Network Library", "network_library", synonyms=("Network", "Net")),
)  # fmt: skip

KEYWORDS: dict[str, Keyword] = {
    spelling.lower(): keyword for keyword in _KEYWORDS for spelling in (keyword.name, *keyword.synonyms)
}
# Options by their snake_case key, so SQL Server URLs can say ?multi_subnet_failover=yes.
OPTIONS: dict[str, Keyword] = {k.target: k for k in _KEYWORDS if k.option}


def find(name: str) -> Keyword | None:
    """The keyword for an ADO spelling or a snake_case option key, any case."""
    lowered = name.lower()
    return KEYWORDS.get(lowered) or OPTIONS.get(lowered)


def unsupported(key: str, position: int | None, *, hidden: bool = False) -> Exception:
    """``hidden``: the keyword comes after the password and may be the rest of it (a
    password holding ';' or a quote, written unquoted or quoted wrongly), so it is named
    by its position only."""
    if hidden:
        return fail(
            "unknown keyword after the password, not quoted here as it may be part of the "
            "password; a password holding ';' or a quote must be quoted, any quote inside "
            "doubled: Password='a;b''c' (ODBC's {braces} do not quote in SqlClient strings)",
            key="password",
            position=position,
        )
    hint = did_you_mean(key, KEYWORDS)
    if key == "dsn":
        hint = " This looks like an ODBC connection string; tether reads SqlClient (ADO.NET) ones."
    return fail(f"Keyword not supported: {quoted(key)}.{hint}", key=key, position=position)
