"""The watchdog's ordering promise: a cancel still on its way when its statement ended never
lands on the next statement, which waits for it (at most the cancel's grace).

The driver here is a stand-in whose ``cancel`` blocks until the test lets it go: what is
tested is the watchdog's own ordering, which no real server can hold still long enough to
observe. The cancels themselves are tested against real servers in test_command_timeout*.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest

from tether import CommandTimeout
from tether.dialects import get_dialect
from tether.session._lease import Lease
from tether.session._watchdog import Bounded, arm, disarm


class HeldCancel:
    """A driver whose cancel starts, then waits for ``release``."""

    name = "held"
    cancels = True
    cancel_raises = True
    cancel_holds_connection = True  # as pyodbc's SQLCancel
    module: Any = SimpleNamespace(OperationalError=type("OperationalError", (Exception,), {}))

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def cancel(self, raw: Any, cursor: Any, grace_s: float) -> None:
        self.started.set()
        self.release.wait(10)


def held_lease() -> tuple[HeldCancel, Lease]:
    driver = HeldCancel()
    lease = Lease(None, None, owner=None, dialect=get_dialect("postgresql"), driver=driver)
    lease.grace = 5.0  # the cancel may take this long before a sever would be due
    return driver, lease


def test_the_next_statement_waits_for_a_cancel_in_flight() -> None:
    driver, lease = held_lease()
    arm(lease, 0.05)  # a statement that outlives its 50 ms
    assert driver.started.wait(5), "the watchdog never sent the cancel"
    disarm(lease)  # ... and ends on its own just as the cancel goes out

    armed = threading.Event()
    following = threading.Thread(target=lambda: (arm(lease, 30.0), armed.set()))
    following.start()
    try:
        assert not armed.wait(0.3), "the next statement started with a cancel still in flight"
    finally:
        driver.release.set()
    assert armed.wait(5), "the next statement did not start once the cancel was done"
    following.join(5)
    disarm(lease)
    assert lease.cancelling is None


def test_a_timed_out_statements_error_waits_for_its_cancel_to_leave_the_driver() -> None:
    # The caller may free what the cancel is using (close the connection it discards); pyodbc
    # crashed when its connection was closed under SQLCancel.
    driver, lease = held_lease()
    raised = threading.Event()

    def statement() -> None:
        with pytest.raises(CommandTimeout), Bounded(lease, 0.05):
            assert driver.started.wait(5), "the watchdog never sent the cancel"
            raise OSError("the driver's call ended, cancelled")
        raised.set()

    caller = threading.Thread(target=statement)
    caller.start()
    try:
        assert not raised.wait(0.3), "the error reached the caller with the cancel still in the driver"
    finally:
        driver.release.set()
    assert raised.wait(5), "the error never reached the caller"
    caller.join(5)
