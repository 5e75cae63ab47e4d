"""Run the steps in order, each in its own thread, cut at its budget, under one deadline."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from ..dsn import ConnectionSpec, parse
from ..dsn._common import DEFAULT_PORTS
from ..errors import ConfigError
from ._context import Context, Options, Resolver, Step
from ._events import Event, Outcome, Report, Status
from ._steps import STEPS

__all__ = ["iter_check", "run_check", "target"]

log = logging.getLogger(__name__)

_GRACE_S = 0.5  # on top of a step's budget before the runner calls it hung


def target(spec_or_dsn: ConnectionSpec | str) -> ConnectionSpec:
    """The spec to check; ``ConfigError`` for a bad string or a host the checker cannot test."""
    spec = parse(spec_or_dsn) if isinstance(spec_or_dsn, str) else spec_or_dsn
    if spec.host is not None and spec.host.startswith("/"):
        raise ConfigError("the checker tests TCP connections: host is a Unix socket directory", key="host")
    return spec


def _options(attempts: int, timeout_s: float, deadline_s: float, resolvers: Sequence[Resolver] | None,
             hosts_file: str, resolv_conf: str) -> Options:
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts!r}")
    if timeout_s <= 0 or deadline_s <= 0:
        raise ValueError("timeout_s and deadline_s must be positive seconds")
    found = None if resolvers is None else tuple((host, int(port)) for host, port in resolvers)
    return Options(attempts=attempts, timeout_s=timeout_s, resolvers=found, hosts_file=hosts_file,
                   resolv_conf=resolv_conf)


def iter_check(
    spec_or_dsn: ConnectionSpec | str,
    *,
    attempts: int = 5,
    timeout_s: float = 5.0,
    deadline_s: float = 120.0,
    resolvers: Sequence[Resolver] | None = None,
    hosts_file: str = "/etc/hosts",
    resolv_conf: str = "/etc/resolv.conf",
    on_start: Callable[[str, str, float], object] | None = None,
) -> Iterator[Event]:
    """Yield each step's :class:`Event` as it finishes. See :func:`run_check`."""
    spec = target(spec_or_dsn)
    options = _options(attempts, timeout_s, deadline_s, resolvers, hosts_file, resolv_conf)
    ctx = Context(spec, spec.host or "localhost", spec.port or DEFAULT_PORTS[spec.dialect], options)
    deadline = time.monotonic() + deadline_s
    log.debug("checking %s (%d attempts, %.1f s per operation)", spec.redacted(), attempts, timeout_s)
    for step in STEPS:
        if on_start is not None and time.monotonic() < deadline:
            on_start(step.name, step.doing(ctx), min(step.budget_s(ctx), deadline - time.monotonic()))
        event = _run_step(step, ctx, deadline, deadline_s)
        if event.status is not Status.SKIP or event.step not in ctx.results:
            ctx.results[step.name] = Outcome(event.status, event.detail, event.advice, event.data)
        log.debug("step %s: %s: %s", event.step, event.status.value, event.detail)
        yield event


def run_check(
    spec_or_dsn: ConnectionSpec | str,
    *,
    attempts: int = 5,
    timeout_s: float = 5.0,
    deadline_s: float = 120.0,
    resolvers: Sequence[Resolver] | None = None,
    hosts_file: str = "/etc/hosts",
    resolv_conf: str = "/etc/resolv.conf",
    on_event: Callable[[Event], object] | None = None,
    on_start: Callable[[str, str, float], object] | None = None,
) -> Report:
    """Check the connection to ``spec_or_dsn`` step by step; ``on_event`` sees each event live.

    ``on_start(step, doing, budget_s)`` is called as each step starts, with what it is about
    to do ("connecting to db:5432 ...") and the seconds it may take at most.

    ``timeout_s`` bounds each network operation (a connect, a DNS query, a handshake, the
    login); each step has a budget derived from it and is reported as hung past it; the
    whole check ends by ``deadline_s``, later steps being skipped. ``resolvers`` are
    ``(address, port)`` pairs to query directly, instead of those of ``resolv_conf``.
    Raises ``ConfigError`` for a bad connection string, ``ValueError`` for bad options.
    """
    spec = target(spec_or_dsn)
    began = time.monotonic()
    events = []
    for event in iter_check(spec, attempts=attempts, timeout_s=timeout_s, deadline_s=deadline_s,
                            resolvers=resolvers, hosts_file=hosts_file, resolv_conf=resolv_conf,
                            on_start=on_start):
        events.append(event)
        if on_event is not None:
            on_event(event)
    host, port = spec.host or "localhost", spec.port or DEFAULT_PORTS[spec.dialect]
    return Report(spec.redacted(), spec.dialect, host, port, tuple(events), time.monotonic() - began)


def _run_step(step: Step, ctx: Context, deadline: float, deadline_s: float) -> Event:
    began = time.monotonic()
    remaining = deadline - began
    if remaining <= 0:
        outcome = Outcome(Status.SKIP, f"not run: the check's deadline of {deadline_s:g} s passed",
                          (f"run the check again with a longer --deadline than {deadline_s:g} s",),
                          {"incomplete": True})
        return _event(step, outcome, ctx, 0.0)
    budget = min(step.budget_s(ctx), remaining)
    box: list[Outcome] = []

    def work() -> None:
        try:
            box.append(step.run(ctx, began + budget))
        except Exception as exc:  # a step's bug must not end the check
            log.exception("step %s failed unexpectedly", step.name)
            box.append(Outcome(Status.FAIL, f"the check itself failed: {type(exc).__name__}: {exc}"))

    thread = threading.Thread(target=work, name=f"tether-check-{step.name}", daemon=True)
    thread.start()
    thread.join(budget + _GRACE_S)
    if not box:
        log.warning("step %s hung past %.1f s; abandoned", step.name, budget)
        box.append(Outcome(Status.FAIL, f"no result within {budget:.1f} s: the step hung and was cut",
                           (step.hang_advice,), {"hung": True, "budget_s": budget}))
    return _event(step, box[0], ctx, time.monotonic() - began)


def _event(step: Step, outcome: Outcome, ctx: Context, duration_s: float) -> Event:
    # No scrubbing here: the steps never put the password into their text (the target is shown
    # as ``spec.redacted()``, rebuilt from the parsed spec, the password never copied in).
    # Replacing the password wherever it occurs would mangle other words that contain it.
    return Event(step.name, outcome.status, outcome.detail, duration_s, outcome.advice, outcome.data)
