"""Settings checked once, at the boundary: each error names the setting and the bad value.

Every public constructor (``Pool``, ``AsyncPool``, ``tether.connect``, ``Keepalive``,
``Retry``, ``RetryBudget``, ``ConnectRetry``) checks its arguments with these, so a wrong
type or an impossible value fails where it was written, never later in a background
thread. The messages read ``max_size must be >= 1, not 0``. A value of the wrong type
raises :class:`SettingTypeError`, which is a ``TypeError`` and also a ``ConfigError``
(a ``ValueError``, as every bad setting raised before types were checked); an impossible
value raises :class:`~tether.ConfigError`.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import TypeVar

from .errors import ConfigError, SettingTypeError

__all__ = [
    "MAX_WAIT_S",
    "SettingTypeError",
    "boolean",
    "choice",
    "instance",
    "integer",
    "number",
    "optional_text",
    "seconds",
]

# The longest finite wait tether accepts: poll(2) takes its timeout as a C int of
# milliseconds (2**31 - 1 ms, about 24.8 days), and a deadline is waited on with it.
MAX_WAIT_S = (2**31 - 1) / 1000
T = TypeVar("T")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def type_error(name: str, expected: str, value: object) -> SettingTypeError:
    """``name must be <expected>, not <type> (<value>)``."""
    found = f"{type(value).__name__} ({_shown(value)})"
    return SettingTypeError(f"{name} must be {expected}, not {found}", key=name)


def value_error(name: str, rule: str, value: object) -> ConfigError:
    """``name must be <rule>, not <value>``: the form of every range error."""
    return ConfigError(f"{name} {rule}, not {_shown(value)}", key=name)


def integer(name: str, value: object, *, low: int, high: int | None = None) -> int:
    """An ``int`` (not a bool, not a float) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error(name, "an int", value)
    if value < low or (high is not None and value > high):
        rule = f"must be >= {low}" if high is None else f"must be {low}..{high}"
        raise value_error(name, rule, value)
    return value


def number(name: str, value: object, *, low: float, high: float = math.inf, unit: str = "") -> float:
    """A finite real number (int or float, not a bool) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise type_error(name, "a number" + _unit(unit), value)
    if math.isnan(value) or not math.isfinite(value) or not low <= value <= high:
        rule = f"must be a finite number{_unit(unit)} {_span(low, high, low_open=False)}"
        raise value_error(name, rule, value)
    return float(value)


def seconds(
    name: str,
    value: object,
    *,
    low: float = 0.0,
    low_open: bool = False,
    high: float = MAX_WAIT_S,
    never: bool = False,
) -> float:
    """A duration in seconds: a real number (not a bool), never NaN, in ``[low, high]``
    (``(low, high]`` with ``low_open``); ``math.inf`` only where it means "never"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise type_error(name, "a number of seconds", value)
    if never and value == math.inf:
        return math.inf
    too_low = value <= low if low_open else value < low
    if math.isnan(value) or too_low or value > high:
        rule = _span(low, high, low_open=low_open) + " seconds"
        rule = f"must be {rule}" + (" or math.inf (never)" if never else "")
        raise value_error(name, rule, value)
    return float(value)


def boolean(name: str, value: object) -> bool:
    """``True`` or ``False``: a truthy int is likely a misplaced argument."""
    if not isinstance(value, bool):
        raise type_error(name, "a bool", value)
    return value


def choice(name: str, value: object, choices: Collection[str]) -> str:
    """One of ``choices`` (a string)."""
    if not isinstance(value, str):
        raise type_error(name, f"a str, one of {', '.join(choices)}", value)
    if value not in choices:
        raise value_error(name, f"must be one of {', '.join(choices)}", value)
    return value


def optional_text(name: str, value: object) -> str | None:
    """A string or None."""
    if value is not None and not isinstance(value, str):
        raise type_error(name, "a str or None", value)
    return value


def instance(name: str, value: object, cls: type[T], label: str) -> T:
    """An instance of ``cls``: ``keepalive must be a tether.Keepalive, not int (5)``."""
    if not isinstance(value, cls):
        raise type_error(name, label, value)
    return value


def _unit(unit: str) -> str:
    return f" of {unit}" if unit else ""


def _span(low: float, high: float, *, low_open: bool) -> str:
    bound = f"> {low:.12g}" if low_open else f">= {low:.12g}"
    if high == math.inf:
        return bound
    return f"in {'(' if low_open else '['}{low:.12g}, {high:.12g}]"
