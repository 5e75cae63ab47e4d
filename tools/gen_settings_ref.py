"""Generate docs/reference/settings.md from the code, so the settings page cannot drift.

Everything on the page is read from tether itself: the arguments and their defaults from
``Pool.__init__`` and from the ``PoolConfig`` that ``config_for`` builds; the ranges from the
validators ``pool/_config.py`` runs (``_ARGUMENTS``); the meanings from ``PoolConfig``'s
attribute docstrings and ``ARGUMENT_DOCS``; the connection-string keys by experiment: each
key of ``tether.dsn`` is set in a connection string and the pool setting it changes is
the one it names.

    python tools/gen_settings_ref.py           # rewrite the page
    python tools/gen_settings_ref.py --check   # exit 1 if the committed page is stale
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from tether import Pool, RetryBudget, parse  # noqa: E402
from tether._validate import MAX_WAIT_S  # noqa: E402
from tether.dsn import ConnectionSpec  # noqa: E402
from tether.dsn._common import RANGES, Where  # noqa: E402
from tether.dsn._keywords import KEYWORDS  # noqa: E402
from tether.dsn._settings import ALIASES, SETTINGS  # noqa: E402
from tether.errors import ConfigError  # noqa: E402
from tether.pool import _config  # noqa: E402
from tether.pool._outage import reconnect_budget  # noqa: E402
from tether.vocab._drivers import DRIVERS  # noqa: E402

PAGE = ROOT / "docs" / "reference" / "settings.md"
PLAIN = "postgresql://app@db.example.com:5432/app"
AZURE = "mssql://app@shop.database.windows.net:1433/app"


def pool_arguments() -> dict[str, inspect.Parameter]:
    parameters = inspect.signature(Pool.__init__).parameters
    return {name: p for name, p in parameters.items() if name not in ("self", "dsn")}


def flat(config: object, prefix: str = "") -> dict[str, Any]:
    """A PoolConfig as ``{"min_size": 1, "connect_retry.count": 1, ...}``."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(config):  # type: ignore[arg-type]
        value = getattr(config, f.name)
        if f.name == "connect_retry":
            values.update(flat(value, prefix="connect_retry."))
        else:
            values[prefix + f.name] = value
    return values


def config(dsn: str, **given: Any) -> dict[str, Any]:
    arguments = pool_arguments()
    settings = {name: arguments[name].default for name in _config.SETTING_NAMES}
    return flat(_config.config_for(parse(dsn), **{**settings, **given}))


def changed(base: dict[str, Any], other: dict[str, Any]) -> set[str]:
    return {key for key in base if base[key] != other[key]}


def trial_value(name: str) -> Any:
    """A value for setting ``name`` that no default has and every validator accepts."""
    if name in ("blocking_period", "pool_blocking_period"):
        return "always"
    if name == "reset":
        return "always"
    if name == "reconnect_min_delay":
        return 0.5  # at most reconnect_max_delay
    return 7


def fields_of_argument(name: str) -> set[str]:
    """The PoolConfig fields a Pool argument sets (none for those PoolConfig lacks)."""
    objects = {"connect_retry": "connect_retry.policy", "keepalive": "keepalive"}  # no trial value
    if name in objects:
        return {objects[name]}
    if name not in _config.SETTING_NAMES:
        return set()
    base = config(PLAIN)
    return changed(base, config(PLAIN, **{name: trial_value(name)}))


def string_keys() -> dict[str, list[str]]:
    """PoolConfig field -> the connection-string keys that set it (URL, then ADO)."""
    base_pg, base_sql = config(PLAIN), config("mssql://app@sql.example.com:1433/app")
    keys: dict[str, list[str]] = {}
    for setting in SETTINGS:
        value = trial_value(setting)
        try:
            sql = config(f"mssql://app@sql.example.com:1433/app?{setting}={value}")
        except Exception:  # a setting for the connection, not the pool (encrypt, pooling...)
            continue
        fields = changed(base_sql, sql) & changed(base_pg, config(f"{PLAIN}?{setting}={value}"))
        url = [setting, *sorted(a for a, target in ALIASES.items() if target == setting)]
        ado = sorted({k.name for k in KEYWORDS.values() if k.target == setting})
        ado += sorted({s for k in KEYWORDS.values() if k.target == setting for s in k.synonyms})
        for field_name in fields:
            keys.setdefault(field_name, []).extend([f"`?{u}=`" for u in url] + [f"`{a}=`" for a in ado])
    return keys


def attribute_docs(owner: type = _config.PoolConfig) -> dict[str, str]:
    """A dataclass's attribute docstrings, by field."""
    tree = ast.parse(Path(inspect.getfile(owner)).read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == owner.__name__)
    docs: dict[str, str] = {}
    for node, after in zip(cls.body, cls.body[1:], strict=False):
        documented = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
        if documented and isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            docs[node.target.id] = " ".join(str(after.value.value).split())  # type: ignore[attr-defined]
    return docs


def meaning(name: str, fields: set[str], docs: dict[str, str]) -> str:
    if name in _config.ARGUMENT_DOCS:
        return _config.ARGUMENT_DOCS[name]
    if name in docs:
        return docs[name]
    raise SystemExit(f"gen_settings_ref: Pool argument {name!r} has no docstring in PoolConfig "
                     "and no entry in ARGUMENT_DOCS (src/tether/pool/_config.py)")  # fmt: skip


def shown(value: Any) -> str:
    if isinstance(value, float):
        if value == math.inf:
            return "`math.inf` (never)"
        return f"{value:g} s"
    if isinstance(value, RetryBudget):
        fields = f"ratio={value.ratio:g}, min_retries_per_s={value.min_retries_per_s:g}, cap={value.cap:g}"
        return f"`RetryBudget({fields})`"
    return f"`{value!r}`"


def default(name: str, fields: set[str], base: dict[str, Any], azure: dict[str, Any]) -> str:
    if name == "retry_budget":
        return shown(RetryBudget())
    if name == "reconnect_budget":
        return shown(reconnect_budget())
    if name == "open":
        return "`Pool`: at once; `AsyncPool`: at its first use"
    if name == "name":
        return "`None` (`pool-N` / `async-pool-N`)"
    if name == "driver":
        return "`None` (the database's default)"
    if not fields:
        return shown(pool_arguments()[name].default)
    (field_name,) = fields
    text = shown(base[field_name])
    if azure[field_name] != base[field_name]:
        text += f" ({shown(azure[field_name])} for Azure SQL)"
    return text


def allowed(name: str) -> str:
    """The rule the validator of argument ``name`` enforces, in words."""
    text = _rule(name)
    if "None" in str(pool_arguments()[name].annotation) and "None" not in text:
        text += ", or `None`"
    return text


def _rule(name: str) -> str:
    rule = _config._ARGUMENTS[name]
    check: Callable[..., Any] = rule.func if isinstance(rule, functools.partial) else rule
    kw = rule.keywords if isinstance(rule, functools.partial) else {}
    kind = check.__name__.lstrip("_")
    if kind == "integer":
        low, high = kw["low"], kw.get("high")
        return f"int ≥ {low}" if high is None else f"int {low}..{high}"
    if kind == "seconds":
        low, high = kw.get("low", 0.0), kw.get("high", MAX_WAIT_S)
        lower = f"> {low:g}" if kw.get("low_open") else f"≥ {low:g}"
        upper = "" if high in (math.inf, MAX_WAIT_S) else f", ≤ {high:g}"
        never = ", or `math.inf`" if kw.get("never") else ""
        return f"seconds {lower}{upper}{never}"
    if kind == "choice":
        return "one of " + ", ".join(f"`{c}`" for c in kw["choices"])
    if kind == "boolean":
        return "`True` or `False`"
    if kind == "instance":
        return f"a `{kw['cls'].__module__.split('.')[0]}.{kw['cls'].__name__}`"
    if kind == "optional_text":
        return "str or `None`"
    if kind == "retry_policy":
        return "a `tether.Retry` or `None`"
    if kind == "reset":
        return "one of " + ", ".join(f"`{c}`" for c in _config.RESETS) + ", or a callable (a hook)"
    if kind == "check_hook":
        return "a callable or `None`"
    if kind == "check_kwargs":
        return "a dict or `None`"
    raise SystemExit(f"gen_settings_ref: no wording for the validator {check.__name__} of {name!r}")


def rows() -> Iterator[str]:
    base, azure, docs, keys = config(PLAIN), config(AZURE), attribute_docs(), string_keys()
    for name in pool_arguments():
        fields = fields_of_argument(name)
        in_string = ", ".join(k for f in sorted(fields) for k in keys.get(f, []))
        cells = (f"`{name}`", default(name, fields, base, azure), allowed(name), in_string,
                 meaning(name, fields, docs))  # fmt: skip
        yield "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def string_ranges() -> Iterator[str]:
    for name, (low, high) in RANGES.items():
        keys = [name, *sorted(a for a, target in ALIASES.items() if target == name)]
        span = f"{low:g}..{high:g}" if high is not None else f"≥ {low:g}"
        yield f"| {', '.join(f'`{k}`' for k in keys)} | {span} |"


def accepted_text(setting: str) -> str:
    """What the parser accepts for ``setting``, in its own words: the message it gives for
    a value it cannot take."""
    try:
        SETTINGS[setting]("\x00", Where(setting))
    except ConfigError as exc:
        message = str(exc).split(": ", 1)[-1]
        return message.removeprefix("expected ").rsplit(", not ", 1)[0]
    return "text"


def other_setting_rows() -> Iterator[str]:
    """Connection-string settings that are not pool settings (they set no PoolConfig field)."""
    pool_settings = {s for fields in string_keys().values() for s in fields}
    docs = attribute_docs(ConnectionSpec)
    for setting in SETTINGS:
        url = [setting, *sorted(a for a, target in ALIASES.items() if target == setting)]
        ado = sorted({k.name for k in KEYWORDS.values() if k.target == setting})
        ado += sorted({s for k in KEYWORDS.values() if k.target == setting for s in k.synonyms})
        keys = [f"`?{u}=`" for u in url] + [f"`{a}=`" for a in ado]
        if any(key in pool_settings for key in keys):
            continue
        meaning_text = docs.get(setting)
        if meaning_text is None:
            raise SystemExit(f"gen_settings_ref: ConnectionSpec.{setting} has no attribute docstring")
        yield f"| {', '.join(keys)} | {accepted_text(setting)} | {meaning_text} |"


def driver_rows() -> Iterator[str]:
    for info in DRIVERS:
        names = ", ".join(f"`{n}`" for n in (info.name, *info.aliases))
        fronts = (("`Pool`", info.sync_module), ("`AsyncPool`", info.async_module))
        used_by = " and ".join(front for front, module in fronts if module) or "errors classified only"
        yield f"| {names} | {info.dialect} | `{info.package}` | {used_by} | `{info.install}` |"


def page() -> str:
    return "\n".join([
        "# Settings",
        "",
        "<!-- Generated by tools/gen_settings_ref.py from src/tether; do not edit. -->",
        "",
        "Every argument of `tether.Pool` and `tether.AsyncPool` (they take the same ones). A setting",
        "given to the pool wins over the same setting in the connection string, which wins over",
        "the default. Each is checked where it is given, by type and by range: a wrong type raises",
        "`tether.SettingTypeError` (a `TypeError`), an impossible value `tether.ConfigError`",
        "(a `ValueError`); both name the setting. Times are in seconds. `None`, where accepted,",
        "means the connection string's value, else the default shown, unless the meaning says",
        "otherwise. In a connection string, `?key=value` works in a URL of any database, and",
        "`Keyword=value` in SQL Server's ADO strings (`Server=tcp:...;Database=...;...`).",
        "",
        "| setting | default | accepted | in a connection string | meaning |",
        "|---|---|---|---|---|",
        *rows(),
        "",
        "## Other connection-string settings",
        "",
        "Settings of the connection, not of the pool. The accepted values are the parser's own words.",
        "",
        "| keys | accepted | meaning |",
        "|---|---|---|",
        *other_setting_rows(),
        "",
        "## Drivers",
        "",
        "A URL's `+driver` suffix (`postgresql+asyncpg://`) or the `driver=` argument names one;",
        "without either, the first installed of a database's drivers, in this order, is used.",
        "",
        "| driver | database | package | used by | install |",
        "|---|---|---|---|---|",
        *driver_rows(),
        "",
        "## Ranges in connection strings",
        "",
        "A connection string's value is checked when it is parsed (`tether.ConfigError` naming the",
        "key and its position), against these ranges; SqlClient's keywords with whole seconds.",
        "",
        "| key | range |",
        "|---|---|",
        *string_ranges(),
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed page is stale")
    args = parser.parse_args(argv)
    text = page()
    if args.check:
        if PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE.relative_to(ROOT)} is stale: run python tools/gen_settings_ref.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
