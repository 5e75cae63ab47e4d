"""PostgreSQL statements read as session effects: what a recovered session can replay.
``pg_read`` reads each statement once for this and for the pool's reset (``_changes_pg``).

Not transactional (``at_once``): PREPARE/DEALLOCATE, LOAD, session advisory locks.

Replayable: SET/RESET of settings, SET SESSION CHARACTERISTICS, PREPARE (re-prepared),
LISTEN, LOAD, and set_config() of constants. Unrecoverable: temporary objects, WITH HOLD
cursors, session advisory locks, SET ROLE / SET SESSION AUTHORIZATION, DO blocks and
procedure calls (they may do anything), dblink connections, and any text the scanner
cannot read. Everything else is PLAIN: no session effect, but not replayable inside a
transaction either (it reads or writes data, or takes a snapshot).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from ..vocab import PLAIN, QUOTED, Effect, Op, Reading, Unscannable, statement_texts
from ._changes_pg import statement_change

Handler = Callable[[str, tuple[str, ...]], tuple[Effect, ...]]

_TEMP = frozenset({"temp", "temporary"})
_TEMP_KINDS = ("table", "view", "sequence")
_TX_WORDS = frozenset({"begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release"})
_EXPLAINABLE = frozenset({"select", "insert", "update", "delete", "merge", "with", "create", "execute",
                          "declare", "values", "table"})
_SET_ALIASES = {("time", "zone"): "timezone", ("names",): "client_encoding", ("schema",): "search_path",
                ("xml", "option"): "xmloption"}
_LOCKS = frozenset({"pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock",
                    "pg_try_advisory_lock_shared"})


_UNSCANNABLE = Reading(
    effects=(Effect(Op.LOST, reason="statement that could not be scanned"),),
    changes=("statement that could not be scanned",),
)


@lru_cache(maxsize=1024)
def pg_read(sql: str) -> Reading:
    """The effects of each statement in ``sql``, in order, and what each leaves for the
    pool's reset: one scan, one walk (cached: texts repeat)."""
    try:
        parsed = statement_texts(sql, dialect="postgresql")
    except Unscannable:
        return _UNSCANNABLE
    out: list[Effect] = []
    changes: list[str] = []
    for text, words in parsed:
        out.extend(_statement(text, words))
        change = statement_change(words)
        if change:
            changes.append(change)
    effects = tuple(out) if any(e.op is not Op.PLAIN for e in out) else PLAIN
    return Reading(effects=effects, changes=tuple(changes))


@lru_cache(maxsize=1024)
def pooled_read(sql: str) -> Reading:
    """``pg_read`` behind transaction pooling: session state is lost, not replayable (it
    stays on a server connection PgBouncer hands to others), and nothing is left for
    tether's reset to undo."""
    reading = pg_read(sql)
    if reading.effects is PLAIN:
        return Reading(effects=PLAIN, changes=())
    effects = tuple(_unpooled(effect) for effect in reading.effects)
    return Reading(effects=effects, changes=())


def _unpooled(effect: Effect) -> Effect:
    if effect.op is not Op.REPLAY:
        return effect
    what = effect.text.split(None, 2)[:2] if effect.text else ["session", "state"]
    return Effect(Op.LOST, effect.key, at_once=effect.at_once,
                  reason=f"{' '.join(what)} (session state does not outlive a transaction under "
                         "PgBouncer's transaction pooling: use SET LOCAL)")


def pg_effects(sql: str) -> tuple[Effect, ...]:
    """The effects alone (``pg_read`` caches them)."""
    return pg_read(sql).effects


def _statement(text: str, words: tuple[str, ...]) -> tuple[Effect, ...]:
    first, rest = words[0], words[1:]
    if first in _TX_WORDS:
        return (_transaction(text, first, rest),)
    if first == "explain" and "analyze" in rest:  # EXPLAIN ANALYZE runs the statement
        start = next((i for i, w in enumerate(rest) if w in _EXPLAINABLE), None)
        return _statement(text, rest[start:]) if start is not None else PLAIN
    handler = _HANDLERS.get(first)
    if handler is not None:
        return handler(text, rest)
    if first in ("select", "with") and "into" in words:
        at = words.index("into")
        if _TEMP & set(words[at + 1 : at + 3]):
            name = _name_after(words, at + 1, skip=_TEMP | {"table", "unlogged"})
            return (_temp("table", name),)
    return _functions(text, words)


def _transaction(text: str, first: str, rest: tuple[str, ...]) -> Effect:
    if "chain" in rest and "no" not in rest:
        return Effect(Op.LOST, reason=f"{first.upper()} AND CHAIN")
    if rest[:1] == ("prepared",):
        return Effect(Op.PLAIN)  # COMMIT/ROLLBACK PREPARED: another transaction's end
    if first in ("begin", "start"):
        return Effect(Op.BEGIN, text=text)
    if first in ("commit", "end"):
        return Effect(Op.COMMIT)
    if first in ("rollback", "abort"):
        return Effect(Op.UNDO_TO) if "to" in rest else Effect(Op.ROLLBACK)
    return Effect(Op.PLAIN)  # SAVEPOINT, RELEASE


def _set(text: str, rest: tuple[str, ...]) -> tuple[Effect, ...]:
    if not rest:
        return (Effect(Op.LOST, reason="SET that could not be read"),)
    if rest[0] in ("local", "transaction", "constraints"):
        return (Effect(Op.TX_LOCAL, text=text),)
    if rest[0] == "session":
        rest = rest[1:]
        if rest[:1] == ("characteristics",):
            return (Effect(Op.REPLAY, "setting:#", text),)
    if rest[:1] == ("role",):
        if rest[1:2] == ("none",):
            return (Effect(Op.FOUND, "role"),)
        return (Effect(Op.LOST, "role", reason="SET ROLE"),)
    if rest[:1] == ("authorization",):
        if rest[1:2] == ("default",):  # back to the login user, and no role either
            return (Effect(Op.FOUND, "authorization"), Effect(Op.FOUND, "role"))
        return (Effect(Op.LOST, "authorization", reason="SET SESSION AUTHORIZATION"),)
    return (Effect(Op.REPLAY, f"setting:{_setting_name(text, rest)}", text),)


def _reset(text: str, rest: tuple[str, ...]) -> tuple[Effect, ...]:
    if rest[:1] == ("all",):
        return (Effect(Op.FORGET, "setting:", text),)  # the text: replayed inside a transaction
    if rest[:1] == ("role",):
        return (Effect(Op.FOUND, "role"),)
    if rest[:1] == ("session",):  # RESET SESSION AUTHORIZATION
        return (Effect(Op.FOUND, "authorization"), Effect(Op.FOUND, "role"))
    return (Effect(Op.REPLAY, f"setting:{_setting_name(text, rest)}", text),)


def _setting_name(text: str, rest: tuple[str, ...]) -> str:
    """The setting's name as the server folds it; '#' (never superseded) when unsure.

    Words lose dots (``myapp.user_id``), so the name is read from the text itself."""
    for words, alias in _SET_ALIASES.items():
        if rest[: len(words)] == words:
            return alias
    if not rest or rest[0] == QUOTED:
        return "#"
    tokens = text.lower().replace("=", " = ").split()
    skip = 2 if len(tokens) > 1 and tokens[1] == "session" else 1  # SET [SESSION] name
    token = tokens[skip] if len(tokens) > skip else ""
    end = 0
    while end < len(token) and (token[end].isalnum() or token[end] in "_.$"):
        end += 1
    name = token[:end]
    return name if name and name.split(".")[0] == rest[0] else "#"


def _prepare(text: str, rest: tuple[str, ...]) -> tuple[Effect, ...]:
    if rest[:1] == ("transaction",):
        return (Effect(Op.LOST, reason="PREPARE TRANSACTION"),)
    key = _named("prepared", rest)
    if "as" in rest:  # what EXECUTE will do: a prepared lock would be taken unseen
        inner = rest[rest.index("as") + 1 :]
        if inner and any(e.op is not Op.PLAIN for e in _statement(text, inner)):
            return (Effect(Op.LOST, reason=f"prepared statement {key[9:]} that changes the session"),)
    return (Effect(Op.REPLAY, key, text, at_once=True),)


def _deallocate(text: str, rest: tuple[str, ...]) -> tuple[Effect, ...]:
    rest = rest[1:] if rest[:1] == ("prepare",) else rest
    if rest[:1] == ("all",):
        return (Effect(Op.FORGET, "prepared:", text, at_once=True),)
    key = _named("prepared", rest)
    if key.endswith("#"):  # a quoted name: replay the DEALLOCATE itself, in order
        return (Effect(Op.REPLAY, key, text, at_once=True),)
    return (Effect(Op.FORGET, key, text, at_once=True),)


def _listen(text: str, rest: tuple[str, ...]) -> tuple[Effect, ...]:
    return (Effect(Op.REPLAY, _named("listen", rest), text),)


def _unlisten(text: str, rest: tuple[str, ...]) -> tuple[Effect, ...]:
    if not rest:  # UNLISTEN * (the star is not a word)
        return (Effect(Op.FORGET, "listen:", text),)
    key = _named("listen", rest)
    return (Effect(Op.REPLAY, key, text) if key.endswith("#") else Effect(Op.FORGET, key, text),)


def _discard(text: str, rest: tuple[str, ...]) -> tuple[Effect, ...]:
    if rest[:1] == ("all",):
        return (Effect(Op.DISCARD),)
    if rest[:1] in (("temp",), ("temporary",)):
        return (Effect(Op.FOUND, "temp:"),)
    return PLAIN  # PLANS, SEQUENCES: nothing tether replays


def _declare(text: str, rest: tuple[str, ...]) -> tuple[Effect, ...]:
    name = rest[0] if rest else QUOTED
    if "hold" in rest and "without" not in rest:
        shown = "" if name == QUOTED else f" {name}"
        return (Effect(Op.LOST, f"cursor:{name}", reason=f"WITH HOLD cursor{shown}"),)
    return PLAIN  # a cursor inside the transaction


def _close(text: str, rest: tuple[str, ...]) -> tuple[Effect, ...]:
    if rest[:1] == ("all",):
        return (Effect(Op.FOUND, "cursor:"),)
    return (Effect(Op.FOUND, f"cursor:{rest[0]}" if rest else "cursor:"),)


def _create(text: str, rest: tuple[str, ...]) -> tuple[Effect, ...]:
    head = rest[:4]
    if not (_TEMP & set(head) or "pg_temp" in rest):
        return PLAIN
    if "commit" in rest and "drop" in rest[rest.index("commit") :]:
        return PLAIN  # ON COMMIT DROP: gone when its transaction ends
    kind = next((k for k in _TEMP_KINDS if k in head), "object")
    at = rest.index(kind) + 1 if kind in rest else 0
    name = _name_after(rest, at, skip={"if", "not", "exists", "pg_temp"})
    return (_temp(kind, name),)


def _drop(text: str, rest: tuple[str, ...]) -> tuple[Effect, ...]:
    """DROP TABLE a, pg_temp.b finds the temporary a and b; public.c finds nothing."""
    if not rest or rest[0] not in _TEMP_KINDS:
        return PLAIN
    kind = rest[0]
    found: list[Effect] = [Effect(Op.PLAIN)]
    for name in _dropped_names(text, kind):
        schema, _, bare = name.rpartition(".")
        if not schema or schema.startswith("pg_temp"):
            found.append(Effect(Op.FOUND, f"temp:{kind}:{bare}"))
    return tuple(found)


def _dropped_names(text: str, kind: str) -> list[str]:
    """The names after ``DROP <kind> [IF EXISTS]``, read from the text (words lose dots)."""
    lowered = text.lower()
    at = lowered.find(kind) + len(kind)
    tail = lowered[at:].replace("if exists", " ")
    names = []
    for part in tail.split(","):
        words = part.split()
        if words and not words[0].startswith('"'):
            names.append(words[0])
    return names


def _temp(kind: str, name: str) -> Effect:
    if name == QUOTED:
        return Effect(Op.LOST, f"temp:{kind}:#", reason=f"temporary {kind}")
    return Effect(Op.LOST, f"temp:{kind}:{name}", reason=f"temporary {kind} {name}")


def _lost(reason: str) -> Handler:
    return lambda text, rest: (Effect(Op.LOST, reason=reason),)


def _functions(text: str, words: tuple[str, ...]) -> tuple[Effect, ...]:
    """A SELECT is not always harmless: some functions change the session."""
    for word in words:
        if word == "set_config":
            # set_config(name, value, is_local) of constants or parameters replays as it
            # is; one fed from a query might read something else the second time.
            bare = [w for w in words if w != "pg_catalog"]
            if bare[0] == "select" and "from" not in bare and len(bare) <= 5:
                local = words[-1] == "true"
                return (Effect(Op.TX_LOCAL if local else Op.REPLAY, "setting:#", text),)
            return (Effect(Op.LOST, reason="set_config() from a query"),)
        # Session locks and dblink connections outlive a rolled-back transaction.
        if word in _LOCKS:
            return (Effect(Op.LOST, "lock:#", reason="session advisory lock", at_once=True),)
        if word == "pg_advisory_unlock_all":
            return (Effect(Op.FOUND, "lock:", at_once=True),)
        if word == "dblink_connect":
            return (Effect(Op.LOST, reason="dblink connection", at_once=True),)
    return PLAIN


def _named(family: str, rest: tuple[str, ...]) -> str:
    name = rest[0] if rest else QUOTED
    return f"{family}:#" if name == QUOTED else f"{family}:{name}"


def _name_after(words: tuple[str, ...], at: int, *, skip: set[str] | frozenset[str]) -> str:
    for word in words[at:]:
        if word not in skip:
            return word
    return QUOTED


_HANDLERS: dict[str, Handler] = {
    "set": _set,
    "reset": _reset,
    "prepare": _prepare,
    "deallocate": _deallocate,
    "listen": _listen,
    "unlisten": _unlisten,
    "discard": _discard,
    "declare": _declare,
    "close": _close,
    "create": _create,
    "drop": _drop,
    "load": lambda text, rest: (Effect(Op.REPLAY, "load:#", text, at_once=True),),
    "show": lambda text, rest: (Effect(Op.TX_LOCAL, text=text),),
    "do": _lost("DO block (it may change the session)"),
    "call": _lost("procedure call (it may change the session or end the transaction)"),
}
