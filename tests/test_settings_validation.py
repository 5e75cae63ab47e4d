"""Every setting is checked where it is written: a wrong type or an impossible value fails
at construction with an error that names the setting and the bad value, never later at a
connect or in the maintenance thread; and every default is accepted."""

from __future__ import annotations

import inspect
import math
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tether
from tether import ConfigError, Keepalive, Retry, RetryBudget
from tether._retry import ConnectRetry
from tether._validate import MAX_WAIT_S
from tether.net import apply_keepalive, read_keepalive
from tether.vocab import Fault

DSN = "postgresql://app@127.0.0.1:1/db"  # nothing listens: no test here connects
INF, NAN = math.inf, math.nan
T, V = TypeError, ValueError  # a wrong type; an impossible value


def bad(values: dict[str, list[tuple[object, type[Exception]]]]) -> list[Any]:
    return [pytest.param(name, value, exc, id=f"{name}={value!r}") for name, cases in values.items()
            for value, exc in cases]


POOL = bad({
    "dsn": [(5, T), (None, T), (b"postgresql://", T)],
    "name": [(3, T)],
    "driver": [(3, T)],
    "min_size": [(2.5, T), ("1", T), (True, T), (-1, V)],
    "max_size": [(2.5, T), (INF, T), (NAN, T), ("10", T), (False, T), (0, V)],
    "timeout": [("3", T), (True, T), (NAN, V), (INF, V), (-1, V), (1e12, V)],
    "max_lifetime": [("x", T), (0, V), (-1.0, V), (NAN, V)],
    "max_idle": [("x", T), (0, V), (NAN, V)],
    "validate_after_idle": [("x", T), (-1, V), (NAN, V)],
    "ping_timeout": [("5", T), (0, V), (INF, V), (NAN, V)],
    "reset_timeout": [(0, V), (INF, V), (NAN, V), ([1], T)],
    "command_timeout": [("30", T), (True, T), (-1, V), (INF, V), (NAN, V)],
    "connect_retry_count": [(2.5, T), ("1", T), (True, T), (-1, V), (256, V)],
    "connect_retry_interval": [("10", T), (-1, V), (61, V), (NAN, V), (INF, V)],
    "login_timeout": [("3", T), (0, V), (-1, V), (NAN, V), (INF, V)],
    "connect_retry": [(5, T), ("exponential", T), (True, T)],
    "blocking_period": [(1, T), ("sometimes", V)],
    "blocking_after": [(1.5, T), (0, V)],
    "reconnect_min_delay": [("x", T), (0, V), (61, V), (NAN, V)],
    "reconnect_max_delay": [("x", T), (601, V), (NAN, V), (INF, V)],
    "keepalive": [(5, T), (True, T), ("on", T), ({"idle_s": 5}, T)],
    "reset": [(1, T), ("never", V)],
    "autocommit": [(1, T), ("yes", T)],
    "maintenance_interval": [("1", T), (0, V), (61, V), (NAN, V)],
    "retry_budget": [(5, T), (0.1, T)],
    "reconnect_budget": [(5, T)],
    "open": [(1, T), ("yes", T)],
})


def check(error: pytest.ExceptionInfo[Exception], name: str, value: object, exc: type[Exception]) -> None:
    """The type the table says, and a message that starts with the name and shows the value."""
    assert isinstance(error.value, exc)
    assert isinstance(error.value, ConfigError)  # a ValueError too, as bad settings always were
    message = str(error.value)
    assert message.startswith(f"{name} must "), message
    assert repr(value)[:40] in message, message


def pool_with(cls: type[Any], name: str, value: object) -> Any:
    if name == "dsn":
        return cls(value, open=False)
    return cls(DSN, **{"open": False, name: value})


@pytest.mark.parametrize("cls", [tether.Pool, tether.AsyncPool], ids=["Pool", "AsyncPool"])
@pytest.mark.parametrize(("name", "value", "exc"), POOL)
def test_pool_arguments(cls: type[Any], name: str, value: object, exc: type[Exception]) -> None:
    with pytest.raises(exc) as error:
        pool_with(cls, name, value)
    check(error, name, value, exc)


CONNECT = [p for p in POOL if p.values[0] not in ("dsn", "name", "open")]  # connect() sets name and open


@pytest.mark.parametrize(("name", "value", "exc"), CONNECT)
@pytest.mark.parametrize("pooling", ["", "?pooling=false"], ids=["pooled", "unpooled"])
def test_connect_settings(pooling: str, name: str, value: object, exc: type[Exception]) -> None:
    """Checked at every call, before any connect, pooled or not."""
    with pytest.raises(exc) as error:
        if name == "driver":
            tether.connect(DSN + pooling, driver=value)  # type: ignore[arg-type]
        else:
            tether.connect(DSN + pooling, **{name: value})
    check(error, name, value, exc)


def test_connect_refuses_what_pool_does_not_take() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_pool'"):
        tether.connect(DSN + "?pooling=false", max_pool=5)
    with pytest.raises(TypeError, match=r"^dsn must be a str or a tether\.ConnectionSpec, not int"):
        tether.connect(5)  # type: ignore[arg-type]


def test_the_examples_of_the_report() -> None:
    with pytest.raises(TypeError, match=r"^keepalive must be a tether\.Keepalive, not int \(5\)$"):
        tether.Pool(DSN, open=False, keepalive=5)  # type: ignore[arg-type]
    hint = r"^connect_retry must be a tether\.Retry or None .*connect_retry_count"
    with pytest.raises(TypeError, match=hint):
        tether.Pool(DSN, open=False, connect_retry=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^max_size must be an int, not float \(2\.5\)$"):
        tether.Pool(DSN, open=False, max_size=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^max_size must be >= 1, not 0$"):
        tether.Pool(DSN, open=False, max_size=0)
    with pytest.raises(ValueError, match=r"^max_size must be >= min_size \(5\), not 2$"):
        tether.Pool(DSN, open=False, min_size=5, max_size=2)


KEEPALIVE = bad({
    "enabled": [(1, T), ("yes", T)],
    "idle_s": [("30", T), (True, T), (0, V), (0.5, V), (32768, V), (NAN, V), (INF, V)],
    "interval_s": [("1", T), (0, V), (32768, V), (NAN, V), (INF, V)],
    "count": [(2.5, T), ("5", T), (True, T), (0, V), (128, V)],
    "user_timeout_s": [("30", T), (-1, V), (NAN, V), (INF, V), (1e7, V)],
})


@pytest.mark.parametrize(("name", "value", "exc"), KEEPALIVE)
def test_keepalive_fields(name: str, value: object, exc: type[Exception]) -> None:
    with pytest.raises(exc) as error:
        Keepalive(**{name: value})  # type: ignore[arg-type]
    check(error, name, value, exc)


@pytest.fixture
def tcp_socket() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        with client, accepted:
            yield client


@pytest.mark.parametrize(
    "keepalive",
    [Keepalive(idle_s=32767, interval_s=32767, count=127, user_timeout_s=MAX_WAIT_S),
     Keepalive(idle_s=1, interval_s=1, count=1, user_timeout_s=0)],
    ids=["largest", "smallest"],
)
def test_the_keepalive_bounds_are_what_the_kernel_takes(tcp_socket: socket.socket, keepalive: Keepalive
                                                        ) -> None:
    """The largest and smallest accepted values go onto a real socket without an error."""
    apply_keepalive(tcp_socket.fileno(), keepalive)
    options = read_keepalive(tcp_socket.fileno())
    assert options["TCP_KEEPIDLE"] == round(keepalive.idle_s)
    assert options["TCP_KEEPCNT"] == keepalive.count
    assert options.get("TCP_USER_TIMEOUT", 0) == round((keepalive.user_timeout_s or 0) * 1000)


RETRY_FIELDS = bad({
    "attempts": [(2.5, T), ("3", T), (True, T), (0, V), (61, V)],
    "delta_s": [("1", T), (True, T), (-1, V), (NAN, V), (INF, V)],
    "min_s": [("0", T), (-0.1, V), (NAN, V), (INF, V)],
    "max_s": [("30", T), (NAN, V), (INF, V), (1e12, V)],
    "jitter": [(1, T), ("equal", V)],
    "deadline_s": [("5", T), (0, V), (-3, V), (NAN, V), (INF, V)],
    "retry_on": [("connect", T), ({"connect"}, T), (5, T), ([Fault.CONNECT, "x"], T)],
    "idempotent": [(1, T), ("yes", T)],
})
FACTORIES: dict[str, Callable[..., Retry]] = {
    "exponential": Retry.exponential,
    "incremental": Retry.incremental,
    "fixed": lambda **kw: Retry.fixed(**{"attempts": 3, "delay_s": 1.0, **kw}),
}
SPELLED = {("fixed", "delta_s"): "delay_s"}  # fixed's one gap is delay_s


@pytest.mark.parametrize("factory", list(FACTORIES))
@pytest.mark.parametrize(("name", "value", "exc"), RETRY_FIELDS)
def test_retry_factories(factory: str, name: str, value: object, exc: type[Exception]) -> None:
    name = SPELLED.get((factory, name), name)
    with pytest.raises(exc) as error:
        FACTORIES[factory](**{name: value})
    check(error, name, value, exc)


@pytest.mark.parametrize(
    ("kwargs", "name", "exc"),
    [({"strategy": "linear"}, "strategy", V), ({"strategy": 1}, "strategy", T),
     ({"history": ("CONNECT",)}, "history", T), ({"last_delay_s": NAN}, "last_delay_s", V),
     ({"retry_on": frozenset({"connect"})}, "retry_on", T), ({"min_s": 5.0, "max_s": 1.0}, "max_s", V),
     ({"strategy": "none", "attempts": 2}, "attempts", V)],
)
def test_retry_constructor(kwargs: dict[str, Any], name: str, exc: type[Exception]) -> None:
    with pytest.raises(exc, match=f"^{name} must"):
        Retry(**kwargs)


@pytest.mark.parametrize(("value", "exc"), [("x", T), (-1, V), (NAN, V), (INF, V)])
def test_retry_fixed_delay(value: object, exc: type[Exception]) -> None:
    with pytest.raises(exc, match=r"^delay_s must"):
        Retry.fixed(attempts=2, delay_s=value)  # type: ignore[arg-type]


def test_retry_shorthands() -> None:
    with pytest.raises(TypeError, match=r"^retry must be .* not str"):
        Retry.from_value("3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^retry must be .* not float"):
        Retry.from_value(2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^attempts must be 1\.\.60, not 0"):
        Retry.from_value(0)


BUDGET = bad({
    "ratio": [("0.1", T), (True, T), (-0.1, V), (NAN, V), (INF, V)],
    "min_retries_per_s": [("10", T), (-1, V), (NAN, V), (INF, V)],
    "cap": [("100", T), (0.5, V), (NAN, V), (INF, V)],
})


@pytest.mark.parametrize(("name", "value", "exc"), BUDGET)
def test_retry_budget(name: str, value: object, exc: type[Exception]) -> None:
    with pytest.raises(exc) as error:
        RetryBudget(**{name: value})  # type: ignore[arg-type]
    check(error, name, value, exc)


CONNECT_RETRY = [  # field, its value, the pool argument the message names, the error
    ("count", 2.5, "connect_retry_count", T), ("count", -1, "connect_retry_count", V),
    ("count", 256, "connect_retry_count", V), ("interval_s", "10", "connect_retry_interval", T),
    ("interval_s", 61, "connect_retry_interval", V), ("interval_s", NAN, "connect_retry_interval", V),
    ("login_timeout_s", 0, "login_timeout", V), ("login_timeout_s", INF, "login_timeout", V),
    ("login_timeout_s", NAN, "login_timeout", V), ("policy", 5, "connect_retry", T),
    ("immediate", -1, "immediate", V), ("immediate", 1.5, "immediate", T),
]


@pytest.mark.parametrize(("field", "value", "name", "exc"), CONNECT_RETRY)
def test_connect_retry(field: str, value: object, name: str, exc: type[Exception]) -> None:
    with pytest.raises(exc) as error:
        ConnectRetry(**{field: value})  # type: ignore[arg-type]
    check(error, name, value, exc)


# -- what is accepted ----------------------------------------------------------------------------


def defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    """Every keyword argument that has a default, given that default explicitly."""
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.kind is p.KEYWORD_ONLY and p.default is not p.empty}


@pytest.mark.parametrize("cls", [tether.Pool, tether.AsyncPool], ids=["Pool", "AsyncPool"])
def test_every_pool_default_is_accepted(cls: type[Any]) -> None:
    pool = cls(DSN, **{**defaults(cls), "open": False})
    assert pool.config.max_size == 10 and pool.config.connect_retry.login_timeout_s == 15.0
    assert cls(DSN, open=False).config == pool.config


def test_a_pool_opens_with_the_connect_retry_defaults_of_connect_retry_itself() -> None:
    # Written once (ConnectRetry's fields); a plain, non-Azure string adds nothing to them.
    assert tether.Pool(DSN, open=False).config.connect_retry == ConnectRetry()
    assert tether.AsyncPool(DSN, open=False).config.connect_retry == ConnectRetry()


def test_never_where_never_is_documented() -> None:
    pool = tether.Pool(DSN, open=False, max_lifetime=INF, max_idle=INF, validate_after_idle=INF)
    config = pool.config
    assert (config.max_lifetime, config.max_idle, config.validate_after_idle) == (INF, INF, INF)
    assert tether.Pool(DSN, open=False, validate_after_idle=None).config.validate_after_idle is None


def test_the_largest_and_smallest_are_accepted() -> None:
    pool = tether.Pool(DSN, open=False, min_size=0, max_size=1, timeout=0, login_timeout=MAX_WAIT_S,
                       connect_retry_count=255, connect_retry_interval=60, reconnect_min_delay=60,
                       reconnect_max_delay=600, maintenance_interval=60, ping_timeout=MAX_WAIT_S)
    assert pool.config.connect_retry.count == 255
    none = tether.Pool(DSN, open=False, connect_retry_count=0, connect_retry_interval=0)
    assert none.config.connect_retry.count == 0


@pytest.mark.parametrize(
    "make",
    [Keepalive, Keepalive.off, RetryBudget, ConnectRetry, Retry.exponential, Retry.incremental, Retry.none,
     lambda: Retry.fixed(attempts=3, delay_s=1.0), lambda: Retry.from_value(None),
     lambda: Retry.from_value(3), lambda: Retry.from_value(False)],
    ids=["Keepalive", "Keepalive.off", "RetryBudget", "ConnectRetry", "exponential", "incremental", "none",
         "fixed", "from_value(None)", "from_value(3)", "from_value(False)"],
)
def test_every_other_default_is_accepted(make: Callable[[], object]) -> None:
    value = make()
    assert value is not None
    for fn in (Keepalive, RetryBudget, Retry.exponential, Retry.incremental):
        fn(**defaults(fn))  # the defaults given explicitly
