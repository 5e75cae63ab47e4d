"""The retry tests' shared vocabulary: errors of each fault, a classifier, a fake clock."""

from __future__ import annotations

from tether._retry._policy import Retry
from tether.vocab import Classification, Fault


class Transient(Exception):
    pass


class Connect(Exception):
    pass


class InDoubt(Exception):
    pass


class Fatal(Exception):
    pass


class Busy(Exception):
    """The server asks for a 10 s wait (Azure 40501)."""


class Interrupt(BaseException):
    pass


_FAULTS: dict[type[BaseException], Fault] = {
    Transient: Fault.TRANSIENT,
    Connect: Fault.CONNECT,
    InDoubt: Fault.IN_DOUBT,
    Fatal: Fault.FATAL,
    ConnectionResetError: Fault.CONNECT,
}


def classify(exc: BaseException) -> Classification:
    if isinstance(exc, Busy):
        return Classification(Fault.TRANSIENT, "service busy", retry_after_s=10.0)
    return Classification(_FAULTS[type(exc)], f"test {type(exc).__name__}")


class FakeTime:
    """Fake monotonic time: advances when the engine waits, or when a test says."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


FIXED = Retry.fixed(attempts=4, delay_s=1.0, jitter=None)
