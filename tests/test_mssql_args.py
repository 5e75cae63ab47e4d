"""SQL Server connection strings in each driver's terms (pure: no driver, no server).

tests/test_dsn.py covers parsing; these cover what the drivers are given: the ODBC
string for Microsoft's driver, FreeTDS and mssql-python, the keyword arguments of pymssql
and python-tds, ODBC quoting, and the refusals (a keyword a driver cannot honour, a
driver option that would override the connection string, TLS that would be weakened).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.drivers import _mssql_reset as restore
from tether.drivers._mssql_args import odbc_pairs, odbc_quote, odbc_string, pymssql_kwargs, pytds_kwargs
from tether.drivers._mssql_options import (
    FREETDS,
    LABELS,
    MSODBCSQL,
    MSSQL_PYTHON,
    OPTIONS,
    PYMSSQL,
    PYTDS,
    map_options,
)
from tether.drivers._odbc_driver import odbc_driver
from tether.dsn import parse
from tether.dsn._keywords import OPTIONS as SQLCLIENT_OPTIONS
from tether.errors import ConfigError

FLAVOURS = (MSODBCSQL, FREETDS, MSSQL_PYTHON, PYMSSQL, PYTDS)
ADO = "Server=tcp:db.example.com,1433;Database=shop;User ID=app;Password=Pa55;Encrypt=false"


def parse_odbc(text: str) -> dict[str, str]:
    """An ODBC connection string back into pairs: ``{...}`` values with ``}}`` escapes."""
    pairs: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        eq = text.index("=", pos)
        key = text[pos:eq]
        pos = eq + 1
        if text.startswith("{", pos):
            chars, pos = [], pos + 1
            while True:
                if text.startswith("}}", pos):
                    chars.append("}")
                    pos += 2
                elif text[pos] == "}":
                    pos += 1
                    break
                else:
                    chars.append(text[pos])
                    pos += 1
            value = "".join(chars)
        else:
            end = text.index(";", pos)
            value, pos = text[pos:end], end
        assert text[pos] == ";"
        pos += 1
        pairs[key] = value
    return pairs


def odbc(dsn: str, flavour: str = MSODBCSQL) -> dict[str, str]:
    return parse_odbc(odbc_string(odbc_pairs(parse(dsn), flavour)))


def refused(make: Any, *words: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        make()
    for word in words:
        assert word in str(info.value)
    return info.value


# --- ODBC strings ------------------------------------------------------------------------------


def test_ado_string_for_microsofts_driver() -> None:
    found = odbc(ADO + ";Application Name=web;TrustServerCertificate=true;ApplicationIntent=ReadOnly")
    assert found == {
        "Server": "tcp:db.example.com,1433",
        "Database": "shop",
        "UID": "app",
        "PWD": "Pa55",
        "APP": "web",
        "Encrypt": "no",
        "TrustServerCertificate": "yes",
        "ConnectRetryCount": "0",  # tether retries and recovers; the driver must not swap sockets
        "ApplicationIntent": "ReadOnly",
    }


def test_url_and_ado_give_the_same_odbc_string() -> None:
    url = "mssql://app:Pa55@db.example.com:1433/shop?encrypt=false&application_intent=ReadOnly"
    assert odbc(url) == odbc(ADO + ";ApplicationIntent=ReadOnly")


def test_freetds_gets_host_port_and_tds_version_apart() -> None:
    found = odbc(ADO, FREETDS)
    assert found["Server"] == "db.example.com" and found["Port"] == "1433"
    assert found["TDS_Version"] == "7.4" and found["Encryption"] == "request"
    assert "ConnectRetryCount" not in found
    assert odbc(ADO.replace("Encrypt=false", "") + "", FREETDS).keys() >= {"Server", "Port"}
    assert odbc("mssql://h/db?tds_version=7.3", FREETDS)["TDS_Version"] == "7.3"


def test_named_instance_without_port() -> None:
    assert odbc(r"Server=db\SQLEXPRESS;Encrypt=false")["Server"] == r"tcp:db\SQLEXPRESS"
    assert odbc(r"Server=db\SQLEXPRESS;Encrypt=false", FREETDS)["Server"] == r"db\SQLEXPRESS"
    assert odbc(r"Server=db\SQLEXPRESS,1500;Encrypt=false")["Server"] == "tcp:db,1500"  # the port wins


@pytest.mark.parametrize(
    ("encrypt", "trust", "microsoft", "freetds"),
    [
        ("Encrypt=true", "", {"Encrypt": "yes"}, None),  # FreeTDS cannot validate: refused
        ("Encrypt=true", ";TrustServerCertificate=true", {"Encrypt": "yes", "TrustServerCertificate": "yes"},
         {"Encryption": "require"}),
        ("Encrypt=false", "", {"Encrypt": "no"}, {"Encryption": "request"}),
        ("Encrypt=strict", "", {"Encrypt": "strict"}, None),
        ("", "", {}, {}),
    ],
)  # fmt: skip
def test_tls_settings(
    encrypt: str, trust: str, microsoft: dict[str, str], freetds: dict[str, str] | None
) -> None:
    dsn = f"Server=db.example.com;{encrypt}{trust}"
    tls_keys = ("Encrypt", "TrustServerCertificate", "Encryption", "CAFile")
    found = odbc(dsn)
    assert {k: v for k, v in found.items() if k in tls_keys} == microsoft
    if freetds is None:
        refused(lambda: odbc(dsn, FREETDS), "'Encrypt'", "FreeTDS")
        return
    found = odbc(dsn, FREETDS)
    assert {k: v for k, v in found.items() if k in tls_keys} == freetds


def test_azure_endpoints_encrypt_by_default() -> None:
    azure = "Server=tcp:shop.database.windows.net,1433;Database=shop"
    assert odbc(azure)["Encrypt"] == "yes"
    refused(lambda: odbc(azure, FREETDS), "'Encrypt'", "validate")  # validated TLS, or nothing
    assert odbc(azure + ";TrustServerCertificate=true", FREETDS)["Encryption"] == "require"
    assert "Encrypt" not in odbc("Server=db.example.com")  # elsewhere: the driver's own default


def test_mssql_python_string_leaves_driver_and_app_to_it() -> None:
    # mssql-python refuses Driver and APP in its string; the driver module hands it the
    # application name apart (tests/test_sqlserver_drivers.py sees it arrive).
    found = odbc(ADO + ";Application Name=web", MSSQL_PYTHON)
    assert "Driver" not in found and "APP" not in found


# --- quoting -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", "plain"),
        ("tcp:host,1433", "tcp:host,1433"),
        ("a;b", "{a;b}"),
        ("p}w", "{p}}w}"),
        ("{x}", "{{x}}}"),
        ("a=b", "{a=b}"),
        (" lead", "{ lead}"),
        ("trail ", "{trail }"),
        ("", "{}"),
        ("it's \"q\"", "{it's \"q\"}"),
    ],
)
def test_odbc_quote(value: str, quoted: str) -> None:
    assert odbc_quote(value) == quoted


def test_odbc_quote_refuses_nul() -> None:
    refused(lambda: odbc_quote("a\x00b"), "NUL")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")))
def test_any_password_round_trips_through_odbc_quoting(password: str) -> None:
    text = odbc_string([("UID", "app"), ("PWD", password), ("Database", "shop")])
    assert parse_odbc(text) == {"UID": "app", "PWD": password, "Database": "shop"}


# --- pymssql and python-tds ---------------------------------------------------------------------


def test_pymssql_kwargs() -> None:
    dsn = ADO + ";Application Name=web;ApplicationIntent=ReadOnly;Command Timeout=30"
    kwargs = pymssql_kwargs(parse(dsn), timeout_s=4.2)
    assert kwargs == {
        "server": "db.example.com",
        "port": "1433",
        "database": "shop",
        "user": "app",
        "password": "Pa55",
        "appname": "web",
        "encryption": "request",
        "login_timeout": 5,  # whole seconds, rounded up
        "read_only": True,
    }
    assert pymssql_kwargs(parse(r"Server=db\INST;Encrypt=false"), 1.0)["server"] == r"db\INST"


def test_pytds_kwargs() -> None:
    dsn = ADO + ";Application Name=web;MultipleActiveResultSets=true;Packet Size=8192"
    kwargs = pytds_kwargs(parse(dsn), timeout_s=4.2)
    assert kwargs == {
        "dsn": "db.example.com",
        "port": 1433,
        "database": "shop",
        "user": "app",
        "password": "Pa55",
        "appname": "web",
        "login_timeout": 4.2,
        "disable_connect_retry": True,  # tether's connect retry, not python-tds's own loop
        "use_mars": True,
        "blocksize": 8192,
    }


def test_pymssql_cannot_validate_certificates_so_refuses_to_pretend() -> None:
    refused(lambda: pymssql_kwargs(parse("Server=h;Encrypt=true"), 1.0), "'Encrypt'", "pymssql",
            "TrustServerCertificate=true", "validate")  # fmt: skip
    trusting = pymssql_kwargs(parse("Server=h;Encrypt=true;TrustServerCertificate=true"), 1.0)
    assert trusting["encryption"] == "require"
    refused(lambda: pymssql_kwargs(parse("Server=h;Encrypt=strict"), 1.0), "strict")


def test_pytds_encryption_needs_pyopenssl() -> None:
    spec = parse("Server=h;Encrypt=true")
    if importlib.util.find_spec("OpenSSL") is None:
        refused(lambda: pytds_kwargs(spec, 1.0), "python-tds", "pip install pyOpenSSL")
    else:
        kwargs = pytds_kwargs(spec, 1.0)
        assert kwargs["cafile"] and kwargs["validate_host"] is True
    refused(lambda: pytds_kwargs(parse("Server=h;Encrypt=strict"), 1.0), "strict", "python-tds")


def test_driver_options_from_urls() -> None:
    assert pymssql_kwargs(parse("mssql://h/db?charset=UTF-8&encrypt=false"), 1.0)["charset"] == "UTF-8"
    assert odbc("mssql://h/db?ClientCharset=UTF-8&encrypt=false", FREETDS)["clientcharset"] == "UTF-8"
    refused(lambda: pytds_kwargs(parse("mssql://h/db?bogus=1"), 1.0), "'bogus'", "python-tds")
    refused(lambda: pymssql_kwargs(parse("mssql://h/db?bogus=1"), 1.0), "'bogus'", "pymssql")


@pytest.mark.parametrize("key", ["CAFile", "DSN", "FileDSN", "Servername"])  # Encryption: taken for encrypt
def test_driver_options_cannot_override_the_connection_string(key: str) -> None:
    # ODBC spellings that are not SqlClient keywords reach the driver layer as written;
    # those that name the server, the login or TLS must not override the string's own.
    spec = parse(f"mssql://app:pw@h/db?{key}=off&encrypt=true&trust_server_certificate=true")
    for flavour in (MSODBCSQL, FREETDS, MSSQL_PYTHON):
        error = refused(lambda flavour=flavour: odbc_pairs(spec, flavour), repr(key.lower()), "conflicts")
        assert error.key == key.lower()


# --- every SqlClient option: honoured or refused, never dropped ------------------------------------

# A value other than SqlClient's default, for each option.
SAMPLES = {
    "application_intent": "ReadOnly", "attach_db_filename": "/data/x.mdf", "attestation_protocol": "HGS",
    "authentication": "ActiveDirectoryPassword", "column_encryption_setting": "Enabled",
    "current_language": "british", "enclave_attestation_url": "https://a",
    "enlist": "true", "failover_partner": "other", "failover_partner_spn": "spn",
    "host_name_in_certificate": "x.example.com", "integrated_security": "true",
    "ip_address_preference": "IPv6First", "multiple_active_result_sets": "true",
    "multi_subnet_failover": "true", "packet_size": "8192", "replication": "true",
    "server_certificate": "/c.pem", "server_spn": "MSSQLSvc/h", "transaction_binding": "Explicit Unbind",
    "type_system_version": "SQL Server 2012", "user_instance": "true", "workstation_id": "ws1",
    "persist_security_info": "true",
}  # fmt: skip


def test_every_sqlclient_option_has_a_sample() -> None:
    # Driver= is ODBC's, read by tether to choose pyodbc's ODBC driver (test_sqlserver_odbc_choice.py)
    assert set(SAMPLES) | {"driver"} == set(SQLCLIENT_OPTIONS)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("option", sorted(SAMPLES))
def test_option_is_honoured_or_refused_by_name(option: str, flavour: str) -> None:
    keyword = SQLCLIENT_OPTIONS[option]
    spec = parse(f"Server=h;{keyword.name}={SAMPLES[option]}")
    try:
        mapped, _ = map_options(spec, flavour)
    except ConfigError as exc:
        assert keyword.name in str(exc) and LABELS[flavour] in str(exc)
        assert exc.key == keyword.name
        return
    # Honoured: something reaches the driver, except Persist Security Info, which tether
    # honours by never showing a password at all.
    assert mapped or option == "persist_security_info"
    assert flavour in OPTIONS[option]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_default_values_are_accepted_everywhere(flavour: str) -> None:
    defaults = ("Enlist=false;Replication=false;User Instance=false;Type System Version=Latest;"
                "Transaction Binding=Implicit Unbind;MultiSubnetFailover=false;Integrated Security=false;"
                "Authentication=SqlPassword;Column Encryption Setting=Disabled")  # fmt: skip
    mapped, _ = map_options(parse(f"Server=h;{defaults}"), flavour)
    assert mapped == []


# --- which ODBC driver ------------------------------------------------------------------------------


def test_odbc_driver_named_in_the_string_wins() -> None:
    spec = parse("mssql://h/db?driver=/opt/lib/libtdsodbc.so")
    assert (odbc_driver(spec, []).flavour, odbc_driver(spec, []).name) == (FREETDS, "/opt/lib/libtdsodbc.so")
    spec = parse("mssql://h/db?odbc_driver={ODBC Driver 18 for SQL Server}")
    assert odbc_driver(spec, []).flavour == MSODBCSQL
    refused(lambda: odbc_driver(parse("mssql://h/db?driver=Oracle"), []), "unknown ODBC driver")


def test_odbc_driver_prefers_microsofts() -> None:
    spec = parse("mssql://h/db")
    registered = ["FreeTDS", "ODBC Driver 18 for SQL Server"]
    assert odbc_driver(spec, registered).name == "ODBC Driver 18 for SQL Server"


# --- the SQL a reset sends ---------------------------------------------------------------------------


def test_reset_plan_with_a_server_reset_sends_only_what_it_leaves() -> None:
    def sql(*changes: str) -> tuple[str, ...] | None:
        found = restore.plan(changes, server_reset=True, login_database="shop", login_settings=None)
        return None if found is None else found.sql

    assert sql("temporary table or procedure", "SET of a session option") == ()  # the flag alone
    assert sql("isolation level") == (restore.ISOLATION_SQL,)
    assert sql("USE of another database") == ("USE [shop]",)
    assert sql("application role") is None
    assert sql() == (restore.ROLLBACK_SQL, restore.ISOLATION_SQL, "USE [shop]")  # reset="always"


def test_reset_plan_by_sql_alone() -> None:
    def sql(*changes: str, settings: str | None = "SET X") -> tuple[str, ...] | None:
        found = restore.plan(changes, server_reset=False, login_database="a]b", login_settings=settings)
        return None if found is None else found.sql

    assert sql("SET of a session option") == ("SET X",)
    assert sql("SET of a session option", settings=None) is None  # nothing captured at login
    assert sql("USE of another database") == ("USE [a]]b]",)
    for lost in ("temporary table or procedure", "cursor", "application lock", "EXECUTE AS impersonation",
                 "statement that could not be scanned"):  # fmt: skip
        assert sql(lost) is None


def test_settings_sql_restores_options_in_a_safe_order() -> None:
    text = restore.settings_sql(5496 & ~1024 | 2048, 7, "us_english", -1, 2147483647)
    parts = text.split("; ")
    assert parts[0] == "SET LANGUAGE [us_english]"  # first: it resets DATEFIRST and DATEFORMAT
    assert parts.index("SET ANSI_NULL_DFLT_ON OFF") < parts.index("SET ANSI_NULL_DFLT_OFF ON")
    assert "SET NOCOUNT OFF" in parts and "SET QUOTED_IDENTIFIER ON" in parts
    assert restore.settings_sql(0, 1, "it]s", 0, 0).startswith("SET LANGUAGE [it]]s]")


def test_settings_sql_leaves_out_what_was_not_captured() -> None:
    text = restore.settings_sql(None, 3, None, -1, None)
    assert "LANGUAGE" not in text and "TEXTSIZE" not in text and "ANSI_NULLS" not in text
    assert text.startswith("SET DATEFIRST 3; SET LOCK_TIMEOUT -1; SET ROWCOUNT 0")
