"""Unit tests for tether.dsn: URL and ADO.NET connection strings."""

from __future__ import annotations

import copy
import pickle
import string
import unicodedata
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tether.drivers import load_async_driver, load_driver
from tether.dsn import KNOWN_DRIVERS, ConnectionSpec, Secret, parse
from tether.dsn._keywords import KEYWORDS
from tether.errors import ConfigError
from tether.vocab._drivers import DIALECTS, DRIVERS, DriverInfo, for_dialect

fuzz = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

AZURE = (
    "Server=tcp:shop.database.windows.net,1433;Database=shop;User ID=app;Password=Pa55w0rd!;"
    "Connect Timeout=15;ConnectRetryCount=3;ConnectRetryInterval=10;Min Pool Size=2;"
    "Max Pool Size=50;Connection Lifetime=300;Pooling=false"
)


def error(dsn: str, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(dsn, **kwargs)  # type: ignore[arg-type]
    return info.value


# --- URLs ---------------------------------------------------------------------------------


def test_url_fields() -> None:
    spec = parse("postgresql://app:s3cr%40t@DB.Example.com:6432/shop?sslmode=require")
    assert spec.dialect == "postgresql"
    assert spec.driver is None
    assert (spec.host, spec.port, spec.database, spec.user) == (
        "db.example.com",
        6432,
        "shop",
        "app",
    )
    assert spec.password is not None and spec.password.reveal() == "s3cr@t"
    assert spec.options == (("sslmode", "require"),)


@pytest.mark.parametrize(
    ("url", "dialect", "port"),
    [
        ("postgresql://h/d", "postgresql", 5432),
        ("postgres://h/d", "postgresql", 5432),
        ("mssql://h/d", "sqlserver", 1433),
        ("sqlserver://h/d", "sqlserver", 1433),
        ("mysql://h/d", "mysql", 3306),
        ("mariadb://h/d", "mysql", 3306),
        ("MySQL://h/d", "mysql", 3306),
    ],
)
def test_url_schemes_and_default_ports(url: str, dialect: str, port: int) -> None:
    spec = parse(url)
    assert (spec.dialect, spec.port) == (dialect, port)


@pytest.mark.parametrize(
    ("scheme", "driver"),
    [
        ("postgresql+psycopg", "psycopg"),
        ("postgresql+asyncpg", "asyncpg"),
        ("mssql+pyodbc", "pyodbc"),
        ("mssql+pymssql", "pymssql"),
        ("mssql+pytds", "pytds"),
        ("mssql+mssql_python", "mssql_python"),
        ("mssql+mssql-python", "mssql_python"),
        ("mysql+pymysql", "pymysql"),
        ("mariadb+PyMySQL", "pymysql"),
    ],
)
def test_url_driver(scheme: str, driver: str) -> None:
    assert parse(f"{scheme}://u@h/d").driver == driver


def test_driver_argument_and_conflicts() -> None:
    assert parse("postgresql://h/d", driver="asyncpg").driver == "asyncpg"
    assert parse("postgresql+asyncpg://h/d", driver="asyncpg").driver == "asyncpg"
    assert parse("Server=h", driver="pytds").driver == "pytds"
    assert error("postgresql+psycopg://h/d", driver="asyncpg").key == "driver"
    err = error("mysql+psycopg://h/d")
    assert err.key == "driver"
    assert "'psycopg'" in str(err) and "pymysql" in str(err)
    assert "mssql_python, pyodbc, pymssql, pytds" in str(error("Server=h", driver="odbc"))


def test_known_drivers_listed_for_every_dialect() -> None:
    assert set(KNOWN_DRIVERS) == {"postgresql", "sqlserver", "mysql"}
    assert KNOWN_DRIVERS["sqlserver"][0] == "mssql_python"


SCHEME_OF = {"postgresql": "postgresql", "sqlserver": "mssql", "mysql": "mysql"}


def test_known_drivers_are_the_registrys_pooled_drivers() -> None:
    registry = {d: tuple(info.name for info in for_dialect(d)) for d in DIALECTS}
    assert registry == KNOWN_DRIVERS
    assert KNOWN_DRIVERS["postgresql"] == ("psycopg", "asyncpg")
    assert KNOWN_DRIVERS["mysql"] == ("pymysql",)


@pytest.mark.parametrize(
    ("spelling", "info"),
    [(spelling, info) for info in DRIVERS if info.pooled for spelling in (info.name, *info.aliases)],
    ids=lambda value: value if isinstance(value, str) else value.name,
)
def test_every_registry_spelling_parses_to_its_canonical_name(spelling: str, info: DriverInfo) -> None:
    scheme = SCHEME_OF[info.dialect]
    for written in (spelling, spelling.upper()):
        assert parse(f"{scheme}+{written}://u@h/d").driver == info.name
        assert parse(f"{scheme}://u@h/d", driver=written).driver == info.name


def test_psycopg2_is_refused_at_parse_naming_each_pool() -> None:
    err = error("postgresql+psycopg2://u@h/d")
    assert err.key == "driver"
    assert str(err) == (
        "unknown driver 'psycopg2' for postgresql; "
        "known: psycopg (tether.Pool, tether.AsyncPool), asyncpg (tether.AsyncPool)"
    )
    assert str(error("postgresql://u@h/d", driver="psycopg2")) == str(err)


@pytest.mark.parametrize("name", ["mysqldb", "mysqlclient", "MySQLdb", "mariadb"])
def test_mysql_drivers_without_a_pool_are_refused_at_parse(name: str) -> None:
    # In the registry for classifying their errors, but no pool can open them.
    for err in (error(f"mysql+{name}://u@h/d"), error("mysql://u@h/d", driver=name)):
        assert err.key == "driver"
        assert str(err) == f"unknown driver {name!r} for mysql; known: pymysql (tether.Pool)"


def test_every_registry_driver_without_a_pool_is_refused() -> None:
    refused = [(info, spelling) for info in DRIVERS if not info.pooled
               for spelling in (info.name, *info.aliases)]  # fmt: skip
    assert refused  # mysqldb, mariadb
    for info, spelling in refused:
        assert error(f"{SCHEME_OF[info.dialect]}+{spelling}://u@h/d").key == "driver"


# (driver, the pool that has no module for it, the pool that has): asyncpg, the SQL Server drivers...
ONE_POOL_ONLY = [
    (info, pool, other) for info in DRIVERS if info.pooled
    for pool, module, other in (("Pool", info.sync_module, "AsyncPool"),
                                ("AsyncPool", info.async_module, "Pool"))
    if module is None
]


@pytest.mark.parametrize(("info", "pool", "other"), ONE_POOL_ONLY, ids=lambda v: getattr(v, "name", v))
def test_a_pool_refuses_a_driver_of_the_other_pool_by_naming_that_pool(
    info: DriverInfo, pool: str, other: str
) -> None:
    # The parser takes every pooled driver; the pool without a module for it must not call
    # it unknown, but send the user to the pool that takes it. Refused before any import.
    load = load_driver if pool == "Pool" else load_async_driver
    with pytest.raises(ConfigError) as caught:
        load(info.dialect, info.name)
    assert caught.value.key == "driver"
    assert f"tether.{other}" in str(caught.value) and "unknown" not in str(caught.value)


def test_a_refusal_names_drivers_sharing_their_pools_once() -> None:
    assert str(error("Server=h", driver="odbc")).endswith(
        "known: mssql_python, pyodbc, pymssql, pytds (all tether.Pool)"
    )


def test_url_percent_decoding() -> None:
    spec = parse("postgresql://us%3Aer:p%2Fw%3F%23%25@h/my%20db")
    assert spec.user == "us:er"
    assert spec.password == Secret("p/w?#%")
    assert spec.database == "my db"


def test_url_password_with_colon_needs_no_escape() -> None:
    assert parse("postgresql://u:a:b@h/d").password == Secret("a:b")


def test_url_without_password_or_host() -> None:
    spec = parse("postgresql:///shop")
    assert (spec.host, spec.user, spec.password, spec.database) == (None, None, None, "shop")
    assert parse("postgresql://u:@h/d").password is None


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("postgresql://[::1]/d", "::1", 5432),
        ("postgresql://[::1]:6543/d", "::1", 6543),
        ("postgresql://[2001:DB8::1]:5433", "2001:db8::1", 5433),
        ("mssql://[fe80::1%25eth0]/d", "fe80::1%eth0", 1433),
    ],
)
def test_url_ipv6(url: str, host: str, port: int) -> None:
    spec = parse(url)
    assert (spec.host, spec.port) == (host, port)


def test_url_unix_socket_host_keeps_case() -> None:
    assert parse("postgresql://%2Fvar%2Frun%2FPG/d").host == "/var/run/PG"
    assert parse("postgresql:///d?host=/tmp/Sock").host == "/tmp/Sock"


def test_url_query_settings() -> None:
    spec = parse(
        "sqlserver://h/d?connect_retry_count=3&connect_retry_interval=2.5&login_timeout=20"
        "&min_size=1&max_size=9&max_lifetime=600&pooling=off&pool_blocking_period=never"
        "&encrypt=strict&trust_server_certificate=yes&application_name=shop+api"
    )
    assert spec.connect_retry_count == 3
    assert spec.connect_retry_interval == 2.5
    assert spec.login_timeout == 20.0
    assert (spec.min_pool_size, spec.max_pool_size) == (1, 9)
    assert spec.connection_lifetime == 600.0
    assert spec.pooling is False
    assert spec.pool_blocking_period == "never"
    assert spec.encrypt == "strict"
    assert spec.trust_server_certificate is True
    assert spec.application_name == "shop api"
    assert spec.options == ()


def test_url_setting_aliases() -> None:
    assert parse("postgresql://h/d?connect_timeout=7").login_timeout == 7.0
    spec = parse("postgresql://h/d?min_pool_size=2&max_pool_size=4&connection_lifetime=9")
    assert (spec.min_pool_size, spec.max_pool_size, spec.connection_lifetime) == (2, 4, 9.0)


def test_url_identity_in_query() -> None:
    spec = parse("postgresql:///?host=db&port=5433&user=app&password=pw&dbname=shop")
    assert (spec.host, spec.port, spec.user, spec.database) == ("db", 5433, "app", "shop")
    assert spec.password == Secret("pw")


def test_url_options_kept_lowercase_sorted_and_plus_is_space() -> None:
    spec = parse("postgresql://h/d?SSLMode=verify-full&options=-c%20search_path%3Dshop&a=1&a=2")
    assert spec.options == (
        ("a", "2"),
        ("options", "-c search_path=shop"),
        ("sslmode", "verify-full"),
    )
    odbc = parse("mssql+pyodbc://sa:pw@h/d?driver=ODBC+Driver+18+for+SQL+Server")
    assert odbc.option("driver") == "ODBC Driver 18 for SQL Server"


def test_url_sqlserver_takes_sqlclient_keywords_and_instances() -> None:
    spec = parse(r"mssql://sa:pw@H\SqlExpress/d?ApplicationIntent=readonly&multi_subnet_failover=yes")
    assert (spec.host, spec.instance, spec.port) == ("h", "SQLEXPRESS", None)
    assert spec.option("application_intent") == "ReadOnly"
    assert spec.option("MultiSubnetFailover") == "true"
    assert parse("mssql://h:1500/d?instance=x").instance == "X"
    assert parse("mssql://h/d?TrustServerCertificate=true").trust_server_certificate is True


@pytest.mark.parametrize(
    ("url", "position"),
    [
        ("postgresql://h:port/d", 15),
        ("postgresql://h:0/d", 15),
        ("postgresql://h:65536/d", 15),
        ("postgresql://u:pw@h:-1/d", 20),
        ("mysql://[::1]:x/d", 14),
    ],
)
def test_url_bad_port_names_port_and_position(url: str, position: int) -> None:
    err = error(url)
    assert err.key == "port"
    assert err.position == position
    assert f"position {position}" in str(err)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("postgresql://h1,h2/d", "host"),
        ("postgresql://h1:5432,h2:5432/d", "host"),
        ("postgresql:///d?host=h1,h2", "host"),
        ("postgresql://::1/d", "host"),
        ("postgresql://[::1/d", "host"),
        ("postgresql://[nope]/d", "host"),
        ("postgresql://h/a/b", "database"),
        ("postgresql://h/d?instance=x", "instance"),
        ("oracle://h/d", "scheme"),
        ("postgresql+://h/d", "driver"),
        ("postgresql://h/d?login_timeout=soon", "login_timeout"),
        ("postgresql://h/d?login_timeout=nan", "login_timeout"),
        ("postgresql://h/d?pooling=maybe", "pooling"),
        ("postgresql://h/d?connect_retry_interval=0.5", "connect_retry_interval"),
        ("postgresql://h/d?max_size=0", "max_size"),
        ("postgresql://h/d?min_size=5&max_size=2", "min_pool_size"),
        ("postgresql://h/d?%C3=1", "query"),
    ],
)
def test_url_errors_name_the_key(url: str, key: str) -> None:
    assert error(url).key == key


def test_url_unknown_scheme_lists_accepted_ones() -> None:
    message = str(error("oracle://h/d"))
    for scheme in ("postgresql://", "mssql://", "sqlserver://", "mysql://", "mariadb://"):
        assert scheme in message


def test_url_misspelt_setting_is_refused_with_suggestion() -> None:
    err = error("postgresql://h/d?connect_retry_cont=3")
    assert err.key == "connect_retry_cont"
    assert "Did you mean 'connect_retry_count'?" in str(err)


def test_url_unknown_query_keys_are_driver_options() -> None:
    assert (
        parse("postgresql://h/d?target_session_attrs=read-write").option("target_session_attrs")
        == "read-write"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@ss@host/d",
        "postgresql://u:p/ss@host/d",
        "postgresql://u:p?ss@host/d",
        "postgresql://u:p#ss@host/d",
        "postgresql://u:p%C3ss@host/d",
    ],
)
def test_malformed_url_error_hides_the_password(url: str) -> None:
    err = error(url)
    password = url.split("u:", 1)[1].split("@host", 1)[0]
    assert password not in str(err)
    assert "postgresql://u:***@host/d" in str(err) or "'password'" in str(err)
    assert err.position is not None


# --- ADO.NET strings ----------------------------------------------------------------------


def test_ado_azure_example() -> None:
    spec = parse(AZURE)
    assert spec.dialect == "sqlserver"
    assert (spec.host, spec.port, spec.instance) == ("shop.database.windows.net", 1433, None)
    assert (spec.database, spec.user) == ("shop", "app")
    assert spec.password == Secret("Pa55w0rd!")
    assert spec.login_timeout == 15.0
    assert (spec.connect_retry_count, spec.connect_retry_interval) == (3, 10.0)
    assert (spec.min_pool_size, spec.max_pool_size) == (2, 50)
    assert spec.connection_lifetime == 300.0
    assert spec.pooling is False
    assert spec.is_azure


# Each SqlClient spelling, the value written, the ConnectionSpec attribute, the value there.
SYNONYMS = [
    ("Server", "h", "host", "h"),
    ("Data Source", "h", "host", "h"),
    ("Address", "h", "host", "h"),
    ("Addr", "h", "host", "h"),
    ("Network Address", "h", "host", "h"),
    ("Database", "d", "database", "d"),
    ("Initial Catalog", "d", "database", "d"),
    ("User ID", "u", "user", "u"),
    ("UID", "u", "user", "u"),
    ("User", "u", "user", "u"),
    ("Password", "p", "password", Secret("p")),
    ("PWD", "p", "password", Secret("p")),
    ("Connect Timeout", "5", "login_timeout", 5.0),
    ("Connection Timeout", "5", "login_timeout", 5.0),
    ("ConnectTimeout", "5", "login_timeout", 5.0),
    ("Timeout", "5", "login_timeout", 5.0),
    ("ConnectRetryCount", "4", "connect_retry_count", 4),
    ("Connect Retry Count", "4", "connect_retry_count", 4),
    ("ConnectRetryInterval", "7", "connect_retry_interval", 7.0),
    ("Connect Retry Interval", "7", "connect_retry_interval", 7.0),
    ("Min Pool Size", "3", "min_pool_size", 3),
    ("Max Pool Size", "30", "max_pool_size", 30),
    ("Connection Lifetime", "60", "connection_lifetime", 60.0),
    ("Load Balance Timeout", "60", "connection_lifetime", 60.0),
    ("Command Timeout", "30", "command_timeout", 30.0),
    ("CommandTimeout", "0", "command_timeout", 0.0),
    ("Pooling", "no", "pooling", False),
    ("Pool Blocking Period", "NeverBlock", "pool_blocking_period", "never"),
    ("PoolBlockingPeriod", "AlwaysBlock", "pool_blocking_period", "always"),
    ("Encrypt", "yes", "encrypt", "mandatory"),
    ("TrustServerCertificate", "true", "trust_server_certificate", True),
    ("Trust Server Certificate", "true", "trust_server_certificate", True),
    ("Application Name", "shop", "application_name", "shop"),
    ("App", "shop", "application_name", "shop"),
]


@pytest.mark.parametrize(("keyword", "value", "attribute", "expected"), SYNONYMS)
def test_ado_synonyms_for_fields(keyword: str, value: str, attribute: str, expected: object) -> None:
    base = "" if attribute == "host" else "Server=h;"
    for spelling in (keyword, keyword.upper(), keyword.lower()):
        spec = parse(f"{base}{spelling}={value}")
        assert getattr(spec, attribute) == expected


OPTION_SYNONYMS = [
    ("Workstation ID", "box", "workstation_id", "box"),
    ("WorkstationID", "box", "workstation_id", "box"),
    ("WSID", "box", "workstation_id", "box"),
    ("MultipleActiveResultSets", "True", "multiple_active_result_sets", "true"),
    ("Multiple Active Result Sets", "yes", "multiple_active_result_sets", "true"),
    ("MultiSubnetFailover", "no", "multi_subnet_failover", "false"),
    ("Multi Subnet Failover", "false", "multi_subnet_failover", "false"),
    ("ApplicationIntent", "ReadOnly", "application_intent", "ReadOnly"),
    ("Application Intent", "readwrite", "application_intent", "ReadWrite"),
    ("Integrated Security", "SSPI", "integrated_security", "true"),
    ("Trusted_Connection", "yes", "integrated_security", "true"),
    ("Persist Security Info", "false", "persist_security_info", "false"),
    ("PersistSecurityInfo", "true", "persist_security_info", "true"),
    ("Packet Size", "4096", "packet_size", "4096"),
    ("PacketSize", "4096", "packet_size", "4096"),
    ("Failover Partner", "mirror", "failover_partner", "mirror"),
    ("FailoverPartner", "mirror", "failover_partner", "mirror"),
    ("Host Name In Certificate", "*.x.net", "host_name_in_certificate", "*.x.net"),
    ("HostNameInCertificate", "*.x.net", "host_name_in_certificate", "*.x.net"),
    ("Authentication", "Active Directory Default", "authentication", "ActiveDirectoryDefault"),
    ("Authentication", "sqlpassword", "authentication", "SqlPassword"),
    ("Current Language", "us_english", "current_language", "us_english"),
    ("Language", "us_english", "current_language", "us_english"),
    ("Column Encryption Setting", "enabled", "column_encryption_setting", "Enabled"),
    ("ColumnEncryption", "Disabled", "column_encryption_setting", "Disabled"),
    ("IP Address Preference", "ipv6first", "ip_address_preference", "IPv6First"),
    ("IPAddressPreference", "UsePlatformDefault", "ip_address_preference", "UsePlatformDefault"),
    ("Server SPN", "MSSQLSvc/h", "server_spn", "MSSQLSvc/h"),
    ("ServerSPN", "MSSQLSvc/h", "server_spn", "MSSQLSvc/h"),
    ("Server Certificate", "/c.pem", "server_certificate", "/c.pem"),
    ("Failover Partner SPN", "s", "failover_partner_spn", "s"),
    ("Enlist", "false", "enlist", "false"),
    ("Replication", "no", "replication", "false"),
    ("User Instance", "no", "user_instance", "false"),
    ("Type System Version", "SQL Server 2012", "type_system_version", "SQL Server 2012"),
    ("Transaction Binding", "explicit unbind", "transaction_binding", "Explicit Unbind"),
    ("Attestation Protocol", "hgs", "attestation_protocol", "HGS"),
    ("Enclave Attestation Url", "https://a", "enclave_attestation_url", "https://a"),
    ("AttachDbFilename", "x.mdf", "attach_db_filename", "x.mdf"),
    ("Extended Properties", "x.mdf", "attach_db_filename", "x.mdf"),
    ("Initial File Name", "x.mdf", "attach_db_filename", "x.mdf"),
]


@pytest.mark.parametrize(("keyword", "value", "option", "expected"), OPTION_SYNONYMS)
def test_ado_synonyms_for_options(keyword: str, value: str, option: str, expected: str) -> None:
    spec = parse(f"Server=h;{keyword}={value}")
    assert spec.options == ((option, expected),)
    assert spec.option(keyword) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", "mandatory"),
        ("Yes", "mandatory"),
        ("Mandatory", "mandatory"),
        ("false", "optional"),
        ("NO", "optional"),
        ("optional", "optional"),
        ("Strict", "strict"),
    ],
)
def test_ado_encrypt_values(value: str, expected: str) -> None:
    assert parse(f"Server=h;Encrypt={value}").encrypt == expected


@pytest.mark.parametrize(
    ("dsn", "value"),
    [
        ("Server=h;App='a;b'", "a;b"),
        ('Server=h;App="a;b"', "a;b"),
        ("Server=h;App='it''s'", "it's"),
        ('Server=h;App="say ""hi"""', 'say "hi"'),
        ('Server=h;App="it\'s"', "it's"),
        ("Server=h;App='say \"hi\"'", 'say "hi"'),
        ("Server=h;App='  padded  '", "  padded  "),
        ("Server=h;App=  trimmed  ", "trimmed"),
        ("Server=h;App=in'side", "in'side"),
        ("Server=h;App=a=b", "a=b"),
        ("Server=h;App = 'q' ;", "q"),
        ("Server=h;;;App=x;;", "x"),
        ("  Server = h ; App = first ; APP = second ", "second"),
        ("Server=h;Application Name=first;Application Name=second", "second"),  # the last one wins
        ("Server=h;App=x;App=", None),
    ],
)
def test_ado_quoting_and_whitespace(dsn: str, value: str | None) -> None:
    assert parse(dsn).application_name == value


@pytest.mark.parametrize(
    ("dsn", "position"),
    [
        ("Server=h;App='open", 13),
        ('Server=h;App="open', 13),
        ("Server=h;App='a'b", 16),
        ("Server=h;App=ends'", 13),
        ("Server=h;App", 9),
        ("Server=h;=x", 9),
        ("Server=h;App=a\x01b", 14),
    ],
)
def test_ado_syntax_errors_give_the_position(dsn: str, position: int) -> None:
    err = error(dsn)
    assert err.position == position
    assert f"position {position}" in str(err)


def test_ado_doubled_equals_is_a_literal_equals_in_the_keyword() -> None:
    err = error("Server=h;a==b=c")
    assert err.key == "a=b"


def test_ado_unknown_keyword() -> None:
    err = error("Server=h;xyz=1")
    assert str(err).startswith("Keyword not supported: 'xyz'")
    assert err.key == "xyz"
    assert err.position == 9
    close = error("Server=h;ConectRetryCount=1")
    assert "Did you mean 'connectretrycount'?" in str(close)
    assert "ODBC" in str(error("DSN=mine;Server=h"))
    # ODBC's Driver= is accepted: the ODBC driver pyodbc loads (test_sqlserver_odbc_choice.py)
    assert parse("Driver={ODBC Driver 18 for SQL Server};Server=h").option("driver") is not None


@pytest.mark.parametrize(
    ("server", "host", "port", "instance"),
    [
        ("tcp:db.example.com,1433", "db.example.com", 1433, None),
        ("TCP:db,1500", "db", 1500, None),
        ("db , 1500", "db", 1500, None),
        ("db", "db", 1433, None),
        (r"db\SQLEXPRESS", "db", None, "SQLEXPRESS"),
        (r"db\inst,1600", "db", 1600, "INST"),
        ("(local)", "localhost", 1433, None),
        (".", "localhost", 1433, None),
        (r".\SQLEXPRESS", "localhost", None, "SQLEXPRESS"),
        ("[::1],1433", "::1", 1433, None),
        ("[::1]", "::1", 1433, None),
        ("tcp:[2001:db8::5],1444", "2001:db8::5", 1444, None),
        ("10.0.0.5,1433", "10.0.0.5", 1433, None),
    ],
)
def test_ado_server_forms(server: str, host: str, port: int | None, instance: str | None) -> None:
    spec = parse(f"Server={server};Database=d")
    assert (spec.host, spec.port, spec.instance) == (host, port, instance)


@pytest.mark.parametrize(
    ("server", "words"),
    [
        (r"np:\\h\pipe\sql\query", "named pipes"),
        ("lpc:h", "shared memory"),
        ("admin:h", "admin"),
        (r"(localdb)\MSSQLLocalDB", "LocalDB"),
    ],
)
def test_ado_non_tcp_protocols_are_refused(server: str, words: str) -> None:
    err = error(f"Server={server}")
    assert err.key == "server"
    assert words in str(err) and "TCP" in str(err)


@pytest.mark.parametrize(
    ("dsn", "key"),
    [
        ("Server=h,0", "port"),
        ("Server=h,99999", "port"),
        ("Server=h,abc", "port"),
        ("Server=h:1433", "server"),
        ("Server=h1,h2,1433", "server"),
        ("Server=h\\", "server"),
        ("Server=,1433", "server"),
        ("Database=d", "server"),
        ("Server=h;Network Library=dbnmpntw", "network library"),
        (
            "Server=h;Integrated Security=true;Authentication=ActiveDirectoryDefault",
            "authentication",
        ),
    ],
)
def test_ado_server_errors(dsn: str, key: str) -> None:
    assert error(dsn).key == key


def test_ado_bad_port_points_at_the_port() -> None:
    err = error("Database=d;Server=tcp:h,99999")
    assert (err.key, err.position) == ("port", 24)


def test_spec_refuses_unknown_or_unnormalized_drivers() -> None:
    with pytest.raises(ConfigError):
        ConnectionSpec(dialect="sqlserver", driver="mssql-python")
    with pytest.raises(ConfigError):
        ConnectionSpec(dialect="oracle")


def test_ado_network_library_tcp_is_accepted() -> None:
    assert parse("Server=h;Network Library=DBMSSOCN").host == "h"


@pytest.mark.parametrize(
    ("pair", "key"),
    [
        ("ConnectRetryCount=-1", "connectretrycount"),
        ("ConnectRetryCount=256", "connectretrycount"),
        ("Connect Retry Count=many", "connect retry count"),
        ("ConnectRetryInterval=0", "connectretryinterval"),
        ("ConnectRetryInterval=61", "connectretryinterval"),
        ("ConnectRetryInterval=1.5", "connectretryinterval"),
        ("Connect Timeout=-1", "connect timeout"),
        ("Timeout=1_0", "timeout"),
        ("Max Pool Size=0", "max pool size"),
        ("Min Pool Size=-1", "min pool size"),
        ("Load Balance Timeout=-5", "load balance timeout"),
        ("Packet Size=511", "packet size"),
        ("Packet Size=32769", "packet size"),
        ("Command Timeout=-1", "command timeout"),
        ("Pooling=maybe", "pooling"),
        ("Encrypt=sometimes", "encrypt"),
        ("Pool Blocking Period=often", "pool blocking period"),
        ("ApplicationIntent=ReadMostly", "applicationintent"),
        ("Authentication=Magic", "authentication"),
        ("App=" + "x" * 129, "app"),
        ("Min Pool Size=5;Max Pool Size=4", "min_pool_size"),
    ],
)
def test_ado_range_and_value_validation(pair: str, key: str) -> None:
    err = error(f"Server=h;{pair}")
    assert err.key == key


def test_ado_value_errors_say_what_is_expected() -> None:
    message = str(error("Server=h;ConnectRetryCount=256"))
    assert "from 0 to 255" in message and "256" in message
    assert "true/yes/false/no" in str(error("Server=h;Pooling=1"))


def test_ado_limits_accept_their_bounds() -> None:
    spec = parse("Server=h;ConnectRetryCount=0;ConnectRetryInterval=60;Connect Timeout=0")
    assert (spec.connect_retry_count, spec.connect_retry_interval, spec.login_timeout) == (0, 60, 0)
    assert parse("Server=h;ConnectRetryCount=+255").connect_retry_count == 255


@pytest.mark.parametrize("text", ["", "   ", "hello", "localhost:5432", "jdbc:sqlserver://h;x=y"])
def test_other_shapes_are_refused_with_the_accepted_ones(text: str) -> None:
    message = str(error(text))
    assert "postgresql://" in message and "Server=tcp:" in message


def test_non_string_dsn() -> None:
    assert isinstance(error(b"Server=h"), ConfigError)  # type: ignore[arg-type]


# --- normalization and pool keys ----------------------------------------------------------

SAME_ADO = [
    "Server=tcp:DB.example.com,1433;Database=shop;User ID=app;Password=pw;Max Pool Size=10",
    "server=db.example.com;database=shop;uid=app;pwd=pw;max pool size=10",
    "  Max Pool Size = 10 ;; PWD='pw'; User=app; Initial Catalog=\"shop\"; Data Source=DB.EXAMPLE.COM ",
    "Addr=db.example.com,1433;Database=other;Database=shop;UID=app;Password=pw;Max Pool Size=10;",
]


def test_equivalent_ado_strings_share_a_pool_key() -> None:
    specs = [parse(s) for s in SAME_ADO]
    assert len({s.pool_key for s in specs}) == 1
    assert len(set(specs)) == 1


SAME_URL = [
    "postgresql://app:pw@db.example.com/shop?sslmode=require&login_timeout=5",
    "postgres://app:pw@DB.Example.COM:5432/shop?login_timeout=5.0&SSLMODE=require",
    "postgresql://app:p%77@db.example.com:5432/shop?connect_timeout=5&sslmode=require",
]


def test_equivalent_urls_share_a_pool_key() -> None:
    assert len({parse(s).pool_key for s in SAME_URL}) == 1


def test_url_and_ado_for_the_same_server_share_a_pool_key() -> None:
    url = parse("mssql://app:pw@db/shop?connect_retry_count=2&multiple_active_result_sets=true")
    ado = parse(
        "Server=db;Database=shop;UID=app;PWD=pw;ConnectRetryCount=2;MARS=yes".replace(
            "MARS", "MultipleActiveResultSets"
        )
    )
    assert url.pool_key == ado.pool_key


@pytest.mark.parametrize(
    "other",
    [
        "postgresql://app2:pw@db/shop",
        "postgresql://app:pw2@db/shop",
        "postgresql://app@db/shop",
        "postgresql://app:pw@db/shop2",
        "postgresql://app:pw@db2/shop",
        "postgresql://app:pw@db:5433/shop",
        "postgresql://app:pw@db/shop?sslmode=require",
        "postgresql://app:pw@db/shop?max_size=3",
        "postgresql+asyncpg://app:pw@db/shop",
        "mysql://app:pw@db/shop",
    ],
)
def test_different_identity_gives_a_different_pool_key(other: str) -> None:
    assert parse("postgresql://app:pw@db/shop").pool_key != parse(other).pool_key


def test_pool_key_holds_no_plaintext_secret() -> None:
    spec = parse("postgresql://app:hunter2hunter2@db/shop?sslpassword=keyphrase99")
    assert "hunter2hunter2" not in repr(spec.pool_key)
    assert "keyphrase99" not in repr(spec.pool_key)
    assert spec.pool_key != parse("postgresql://app:hunter2hunter2@db/shop?sslpassword=x").pool_key


# --- redaction ----------------------------------------------------------------------------


def test_repr_str_and_redacted_hide_the_password() -> None:
    spec = parse(AZURE)
    for text in (repr(spec), str(spec), spec.redacted(), repr(spec.password), str(spec.password)):
        assert "Pa55w0rd!" not in text
    assert spec.redacted().startswith("sqlserver://app:***@shop.database.windows.net:1433/shop?")
    assert repr(spec) == f"<ConnectionSpec {spec.redacted()}>"
    assert repr(Secret("x")) == "Secret('***')" and str(Secret("x")) == "***"


def test_redacted_hides_secret_options() -> None:
    spec = parse("postgresql://u@h/d?sslpassword=keyphrase&sslmode=verify-full")
    assert "keyphrase" not in spec.redacted()
    assert "sslpassword=***" in spec.redacted()
    assert spec.option("sslpassword") == "keyphrase"


@pytest.mark.parametrize(
    "dsn",
    [
        AZURE,
        r"Server=.\SQLEXPRESS;Database=d;Integrated Security=true;App=a b&c",
        "postgresql+psycopg://us%40er:pw@[::1]:6543/my%2Fdb?options=-c%20x%3D1&pooling=0",
        "postgresql://%2Ftmp%2Fsock/d",
        "mysql+pymysql://root@localhost/test?charset=utf8mb4&connect_retry_interval=1.5",
    ],
)
def test_redacted_parses_back_to_the_same_spec(dsn: str) -> None:
    spec = parse(dsn)
    again = parse(spec.redacted())
    assert again.with_(password=spec.password) == spec


def test_secret_equality_and_refusal_to_pickle() -> None:
    assert Secret("a") == Secret("a") and hash(Secret("a")) == hash(Secret("a"))
    assert Secret("a") != Secret("b")
    with pytest.raises(TypeError):
        pickle.dumps(Secret("a"))
    with pytest.raises(TypeError):
        pickle.dumps(parse("postgresql://u:pw@h/d"))
    with pytest.raises(AttributeError):
        Secret("a")._value = "b"
    spec = parse("postgresql://u:pw@h/d")
    assert copy.deepcopy(spec) == spec and copy.copy(spec) == spec


def test_error_for_a_bad_setting_does_not_show_the_password() -> None:
    err = error("postgresql://app:hunter2@h/d?login_timeout=soon")
    assert "hunter2" not in str(err)
    assert "postgresql://app:***@h/d?login_timeout=soon" in str(err)
    err = error("postgresql://h/d?password=hunter2&port=x")
    assert "hunter2" not in str(err)


# The findings, and their neighbours: each string holds the password "S3cretPass",
# written wrongly; no piece of it may reach the message. Positions, not text, say where.
_LEAKS = [
    "postgresql://app@db:5432/shop?password=S3cr@etPass",  # '@' in a query value
    "postgresql://app@db:5432/shop?pass%77ord=S3cr@etPass",  # a percent-encoded key name
    "postgresql://app@db:5432/shop?%70assword=S3cretPass&port=x",
    "postgresql://app@db/shop?pass%77ord=S3cretPass&login_timeout=soon",
    "postgresql://app@db/shop?pass%FFword=S3cretPass&port=x",  # a key that does not decode
    "postgresql://app@db/shop?password=S3cr&etPass",  # a raw '&': the rest has no '='
    "postgresql://app@db/shop?password=S3cr&login_timeout=etPass",  # ...or reads as a setting
    "postgresql://app@db/shop?password=S3cr&max_lifetme=etPass",
    "postgresql://app@db/shop?sslpassword=S3cr&min_size=etPass",
    "postgresql://app:S3cr/etPass@db/shop",
    "postgresql://app:S3cr#etPass@db/shop",
    "postgresql://app:S3cr@etPass@db/shop?sslmode=require",
    "postgresql://app:S3cretPass",  # no '@host': the password reads as a port
    "postgresql://app:S3cr/etPass",
    "Server=db;Password={S3cr;etPass}};Database=shop",  # ODBC's braces: 'b}}c};database'
    "Server=db;Password=S3cr;etPass=1",  # an unquoted ';'
    "Server=db;Password='S3cr';etPass;'",  # an undoubled quote
    "Server=db;Password='S3cr';etPass=1'",
    "Server=db;PWD=S3cr;Encrypt=etPass",  # the rest reads as a keyword with a bad value
    "Server=db;Password=S3cr;Connect Timeout=etPass",
    "Server=db;Password=S3cr;Connect Timeout=-3",
    "Server=db;Password=S3cr;Network Library=etPass",
    "Server=db;Password=S3cr;Server=np:etPass",
]


@pytest.mark.parametrize("dsn", _LEAKS)
def test_no_piece_of_a_badly_written_password_reaches_the_message(dsn: str) -> None:
    err = error(dsn)
    for piece in ("S3cr", "etPass", "tPas", "-3"):
        assert piece not in str(err) and piece not in repr(err) and piece not in str(err.key)
    assert err.position is not None
    assert "S3cr" not in repr(err.__cause__)


def test_a_parameter_after_a_secret_is_named_by_the_setting_only() -> None:
    err = error("postgresql://h/d?password=x&login_timeout=S3cr")
    assert err.key == "login_timeout" and "'login_timeout'" in str(err)
    assert "not the value given (not quoted" in str(err)
    err = error("postgresql://h/d?password=x&max_lifetme=5")
    assert err.key == "a parameter after the password" and "max_lifetme" not in str(err)
    assert "Did you mean" not in str(err)  # the name may be the password's: no echo of it
    err = error("Server=h;Password=x;ConnectRetryCount=999")
    assert err.key == "connect retry count" and "999" not in str(err)


def test_before_a_password_errors_still_quote_what_was_written() -> None:
    assert "'soon'" in str(error("postgresql://h/d?login_timeout=soon&password=x"))
    assert "'maybe'" in str(error("Server=h;Encrypt=maybe;Password=x"))
    assert "Keyword not supported: 'bogus'" in str(error("Server=h;Bogus=1;Password=x"))


def test_url_error_masks_the_query_from_a_secret_on() -> None:
    message = str(error("postgresql://app@db/shop?sslmode=require&password=S3cr&x=1&port=x"))
    assert message.endswith(" in postgresql://app@db/shop?sslmode=require&password=***")
    message = str(error("postgresql://app@db:5432/shop?password=S3cr@etPass"))
    assert message.endswith(" in postgresql://app@db:***")  # both readings of the '@'


def test_url_query_parameter_needs_an_equals_sign() -> None:
    err = error("postgresql://h/d?sslmode")
    assert (err.key, err.position) == ("query", 17)
    assert "'sslmode' has no '=value'" in str(err)
    assert parse("postgresql://h/d?sslmode=").options == (("sslmode", ""),)
    assert parse("postgresql://h/d?&&sslmode=require&").option("sslmode") == "require"


def test_more_than_a_thousand_pairs_are_refused() -> None:
    assert parse("postgresql://h/d?" + "&".join(["a=1"] * 1000)).option("a") == "1"
    assert "more than 1000 query parameters" in str(error("postgresql://h/d?" + "a=1&" * 1001))
    assert parse("Server=h;" + "App=x;" * 999).application_name == "x"
    err = error("Server=h;" + "App=x;" * 1000)
    assert "more than 1000 keyword=value pairs" in str(err) and err.position == 9 + 6 * 999


_SURROGATES = [
    "postgresql://u\udc80@h/d\ud800?x=\udfff",
    "postgresql://u%ED%B2%80@h/d%ED%A0%80?application_name=%ED%BF%BF",
    "mssql://h/d?CurrentLanguage=\ud800",
    "Server=h;User ID='\ud800';Database=\udbff;App=\udc00;Password=\ud800x",
]


@pytest.mark.parametrize("dsn", _SURROGATES)
def test_a_spec_holding_lone_surrogates_prints_and_round_trips(dsn: str) -> None:
    spec = parse(dsn)
    for text in (repr(spec), str(spec), spec.redacted()):
        text.encode("utf-8")  # percent-encoded, as surrogatepass writes them: no UnicodeEncodeError
        assert text.isprintable()
    assert parse(spec.redacted()).with_(password=spec.password) == spec


def test_messages_escape_lone_surrogates_and_controls() -> None:
    for dsn in ("postgresql://h\ud800:x/d", "Server=h;B\ud800gus=1", "postgresql://h/d\x1b[31m?port=x"):
        message = str(error(dsn))
        assert message.isprintable() and message.encode("utf-8")


# --- command_timeout ----------------------------------------------------------------------


def test_command_timeout_from_urls_and_ado_strings() -> None:
    assert parse("postgresql://h/d").command_timeout is None
    assert parse("postgresql://h/d?command_timeout=2.5").command_timeout == 2.5
    assert parse("mysql://h/d?command_timeout=0").command_timeout == 0.0
    assert parse("mssql://h/d?CommandTimeout=30").command_timeout == 30.0
    assert parse("Server=h;Command Timeout=30").command_timeout == 30.0
    assert parse("Server=h;commandtimeout=0").command_timeout == 0.0  # SqlClient's "no limit"
    assert parse("Server=h;Command Timeout=").command_timeout is None  # empty: the default
    assert parse("postgresql://h/d", command_timeout=7).command_timeout == 7.0
    assert parse("postgresql://h/d?command_timeout=5", command_timeout=None).command_timeout is None
    assert parse("Server=h;Command Timeout=30").with_(command_timeout=1.5).command_timeout == 1.5


def test_command_timeout_is_not_a_driver_option() -> None:
    for dsn in ("postgresql://h/d?command_timeout=5", "Server=h;Command Timeout=5", "mssql://h/d?CommandTimeout=5"):
        spec = parse(dsn)
        assert spec.options == () and spec.option("command_timeout") is None


@pytest.mark.parametrize(
    ("dsn", "key"),
    [
        ("postgresql://h/d?command_timeout=-1", "command_timeout"),
        ("postgresql://h/d?command_timeout=inf", "command_timeout"),
        ("postgresql://h/d?command_timeout=nan", "command_timeout"),
        ("postgresql://h/d?command_timeout=1e999", "command_timeout"),
        ("postgresql://h/d?command_timeout=soon", "command_timeout"),
        ("Server=h;Command Timeout=-1", "command timeout"),
        ("Server=h;CommandTimeout=1.5", "commandtimeout"),  # SqlClient: whole seconds
        ("Server=h;CommandTimeout=later", "commandtimeout"),
    ],
)
def test_command_timeout_is_validated(dsn: str, key: str) -> None:
    err = error(dsn)
    assert err.key == key and repr(key) in str(err)


@pytest.mark.parametrize("value", [-1, float("inf"), float("nan"), True, "5"])
def test_command_timeout_on_a_spec_is_validated(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse("postgresql://h/d").with_(command_timeout=value)
    assert info.value.key == "command_timeout"


def test_command_timeout_round_trips_through_redacted() -> None:
    for dsn in ("postgresql://h/d?command_timeout=2.5", "Server=h;Command Timeout=0"):
        spec = parse(dsn)
        assert "command_timeout=" in spec.redacted()
        assert parse(spec.redacted()) == spec


# --- overrides, with_, helpers ------------------------------------------------------------


def test_overrides() -> None:
    spec = parse("postgresql://h/d?sslmode=disable", login_timeout=5, sslmode="require", pooling=False)
    assert spec.login_timeout == 5.0
    assert spec.pooling is False
    assert spec.option("sslmode") == "require"
    assert parse("postgresql://h/d?sslmode=disable", sslmode=None).options == ()
    assert parse("postgresql://h/d?max_size=4", max_size=None).max_pool_size is None
    assert parse("Server=h;Encrypt=no", encrypt=True).encrypt == "mandatory"
    assert parse("postgresql://u@h/d", password=Secret("s")).password == Secret("s")
    assert parse("postgresql://u@h/d", password="s").password == Secret("s")
    assert parse("Server=h", MultipleActiveResultSets=True).option("mars") is None
    assert parse("Server=h", MultipleActiveResultSets=True).option("multiple_active_result_sets")


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"connect_retry_count": 300}, "connect_retry_count"),
        ({"connect_retry_count": 2.5}, "connect_retry_count"),
        ({"login_timeout": float("inf")}, "login_timeout"),
        ({"login_timeout": -1}, "login_timeout"),
        ({"port": 70000}, "port"),
        ({"login_timeout": [5]}, "login_timeout"),
        ({"max_lifetme": 5}, "max_lifetme"),
    ],
)
def test_overrides_are_validated(overrides: dict[str, object], key: str) -> None:
    assert error("postgresql://h/d", **overrides).key == key


def test_with_replaces_and_validates() -> None:
    spec = parse("postgresql://h/d")
    assert spec.with_(database="e").database == "e"
    assert spec.with_(host="OTHER").host == "other"
    assert spec.database == "d"
    with pytest.raises(ConfigError) as info:
        spec.with_(max_pool_size=0)
    assert info.value.key == "max_pool_size"
    with pytest.raises(ConfigError):
        spec.with_(encrypt="sometimes")
    with pytest.raises(ConfigError):
        spec.with_(instance="X")


def test_spec_can_be_built_directly() -> None:
    spec = ConnectionSpec(dialect="postgresql", host="H", port=5432, options=(("B", "1"), ("a", "2")))
    assert spec.host == "h"
    assert spec.options == (("a", "2"), ("b", "1"))
    assert spec == parse("postgresql://h/?b=1&a=2")


@pytest.mark.parametrize(
    ("host", "azure"),
    [
        ("x.database.windows.net", True),
        ("x.database.usgovcloudapi.net", True),
        ("x.database.chinacloudapi.cn", True),
        ("x.database.cloudapi.de", True),
        ("x.database.fabric.microsoft.com", True),
        ("x.sql.azuresynapse.net", True),
        ("X.DATABASE.WINDOWS.NET", True),
        ("database.windows.net.evil.com", False),
        ("db.example.com", False),
    ],
)
def test_is_azure(host: str, azure: bool) -> None:
    assert parse(f"Server=tcp:{host},1433").is_azure is azure


def test_option_default() -> None:
    spec = parse("postgresql://h/d")
    assert spec.option("sslmode") is None
    assert spec.option("sslmode", "prefer") == "prefer"


# --- property tests -----------------------------------------------------------------------


@fuzz
@given(
    st.one_of(
        st.text(),
        st.builds(lambda t: "postgresql://" + t, st.text()),
        st.builds(lambda t: "mssql://" + t, st.text()),
        st.builds(lambda t: "Server=h;" + t, st.text()),
        st.builds(lambda t: "Server=" + t, st.text()),
        st.builds(
            lambda t: "postgresql://u:p@h/d?" + t,
            st.text(alphabet=string.printable),
        ),
    )
)
def test_any_text_raises_only_config_error(text: str) -> None:
    try:
        spec = parse(text)
    except ConfigError:
        return
    assert isinstance(repr(spec), str)
    assert hash(spec.pool_key) == hash(spec.pool_key)


def _ado_value(draw: st.DrawFn, value: str) -> str:
    """Quote ``value`` when SqlClient requires it, and at random when it does not."""
    needs = (
        value != value.strip()
        or ";" in value
        or value[0] in "'\"="  # a leading '=' would read as '==', an escaped '=' in the key
        or value[-1] in "'\""
        or any(unicodedata.category(c) == "Cc" for c in value)
    )
    if not needs and not draw(st.booleans()):
        return value
    mark = draw(st.sampled_from("'\""))
    return mark + value.replace(mark, mark * 2) + mark


def _ado_key(draw: st.DrawFn, spellings: list[str]) -> str:
    spelling = draw(st.sampled_from(spellings))
    cased = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in spelling)
    return draw(st.sampled_from(["", " ", "  "])) + cased + draw(st.sampled_from(["", " "]))


_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
    min_size=1,
    max_size=30,
).filter(lambda v: v.strip() != "")
_HOST = st.from_regex(r"[a-z][a-z0-9-]{0,12}(\.[a-z]{2,5}){0,2}", fullmatch=True)


@st.composite
def ado_strings(draw: st.DrawFn) -> tuple[str, ConnectionSpec]:
    host, port = draw(_HOST), draw(st.integers(1, 65535))
    database, user, password = draw(_TEXT), draw(_TEXT), draw(_TEXT)
    retries, interval = draw(st.integers(0, 255)), draw(st.integers(1, 60))
    low = draw(st.integers(0, 50))
    high = draw(st.integers(max(low, 1), 200))
    pooling = draw(st.booleans())
    pairs = [
        (["Server", "Data Source", "Address", "Addr", "Network Address"], f"tcp:{host},{port}"),
        (["Database", "Initial Catalog"], database),
        (["User ID", "UID", "User"], user),
        (["Password", "PWD"], password),
        (["ConnectRetryCount", "Connect Retry Count"], str(retries)),
        (["ConnectRetryInterval", "Connect Retry Interval"], str(interval)),
        (["Min Pool Size"], str(low)),
        (["Max Pool Size"], str(high)),
        (["Pooling"], draw(st.sampled_from(["true", "yes"] if pooling else ["false", "no"]))),
    ]
    segments = [f"{_ado_key(draw, keys)}={_ado_value(draw, value)}" for keys, value in pairs]
    order = draw(st.permutations(segments))
    separators = [draw(st.sampled_from([";", "; ", ";;", " ;"])) for _ in order]
    text = "".join(s + sep for s, sep in zip(order, separators, strict=True))
    expected = ConnectionSpec(
        dialect="sqlserver", host=host, port=port, database=database, user=user,
        password=Secret(password), connect_retry_count=retries,
        connect_retry_interval=float(interval), min_pool_size=low, max_pool_size=high,
        pooling=pooling,
    )  # fmt: skip
    return text, expected


@fuzz
@given(ado_strings())
def test_generated_ado_strings_parse_to_the_expected_spec(case: tuple[str, ConnectionSpec]) -> None:
    text, expected = case
    spec = parse(text)
    assert spec == expected
    assert spec.pool_key == expected.pool_key


# Every password holds a non-ASCII character: tether's own text is ASCII, so a password can
# only show up in a repr or a message by being copied there from the input.
_PASSWORD = st.builds(
    lambda head, mark, tail: head + mark + tail,
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.characters(min_codepoint=0xA1, codec="utf-8"),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
).filter(lambda p: len(p) >= 8 and p.strip() == p)


def _assert_hidden(password: str, spec: ConnectionSpec) -> None:
    for text in (repr(spec), str(spec), spec.redacted(), repr(spec.pool_key)):
        assert password not in text


@fuzz
@given(_PASSWORD, st.booleans())
def test_password_never_shown_for_urls(password: str, encode: bool) -> None:
    template = "postgresql://app:{}@db.example.com:5432/shop?sslmode=require"
    written = quote(password, safe="") if encode else password
    try:
        spec = parse(template.format(written))
    except ConfigError as exc:
        assert not encode  # a percent-encoded password always parses
        assert password not in str(exc)
        return
    _assert_hidden(password, spec)
    if encode:
        assert spec.password == Secret(password)


_MISTAKES = ["", "Conect Timeout=1", "ConnectRetryCount=999", "Encrypt=maybe", "Server=np:x",
             "Packet Size=1", "Max Pool Size=0"]  # fmt: skip


@fuzz
@given(_PASSWORD, st.sampled_from(_MISTAKES), st.sampled_from("'\""))
def test_password_never_shown_for_ado(password: str, mistake: str, mark: str) -> None:
    assume("\x00" not in password)
    quoted = mark + password.replace(mark, mark * 2) + mark
    text = f"Server=tcp:db,1433;User ID=app;Password={quoted};{mistake}"
    try:
        spec = parse(text)
    except ConfigError as exc:
        assert mistake
        assert password not in str(exc)
        return
    assert not mistake
    assert spec.password == Secret(password)
    _assert_hidden(password, spec)


@fuzz
@given(st.from_regex(r"[A-Za-z][A-Za-z0-9_ ]{0,20}[A-Za-z0-9_]", fullmatch=True))
def test_unknown_keywords_are_named(keyword: str) -> None:
    assume(keyword.lower() not in KEYWORDS and keyword.lower() not in ("driver", "dsn"))
    with pytest.raises(ConfigError) as info:
        parse(f"Server=h; {keyword} =1")
    assert info.value.key == keyword.lower()
    assert info.value.position == 10
    assert str(info.value).startswith(f"Keyword not supported: '{keyword.lower()}'.")


@pytest.mark.parametrize(
    ("text", "first", "second"),
    [
        ("Server=db;User ID=v4lue-A;UID=v4lue-B", "user id", "uid"),
        ("Server=db;Initial Catalog=v4lue-A;Database=v4lue-B", "initial catalog", "database"),
        ("Data Source=v4lue-A;Server=v4lue-B", "data source", "server"),
        ("Server=db;Password=v4lue-A;PWD=v4lue-B", "password", "pwd"),
    ],
)
def test_ado_conflicting_synonyms_are_named(text: str, first: str, second: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    message = str(caught.value)
    assert repr(first) in message and repr(second) in message
    assert "v4lue" not in message  # values stay out: one may be a password


def test_ado_synonyms_agreeing_or_one_keyword_repeated_are_fine() -> None:
    assert parse("Server=db;User ID=a;UID=a").user == "a"
    assert parse("Server=db;Database=a;Database=b").database == "b"  # SqlClient: the last wins
