"""Retry: policies, budgets, classifiers and the engine behind ``@tether.retry``,
``tether.attempts()`` and ``pool.transaction``; and the pool's connect-retry policy.

Private: the public names are ``tether``'s (``tether.Retry``, ``tether.retry``,
``tether.classify``...), so ``tether.retry`` is only ever the decorator. Its log records
still come from the ``tether.retry`` logger.
"""

from __future__ import annotations

from ..vocab import Classification, Fault
from ._async_engine import AsyncAttempts, async_attempts
from ._budget import RetryBudget
from ._classify import classify
from ._connect import ConnectFailure, ConnectRetry
from ._engine import Attempt, RetryDetails, RetryState, Runner, attempts, retry
from ._policy import DEFAULT, Retry

__all__ = [
    "DEFAULT",
    "AsyncAttempts",
    "Attempt",
    "Classification",
    "ConnectFailure",
    "ConnectRetry",
    "Fault",
    "Retry",
    "RetryBudget",
    "RetryDetails",
    "RetryState",
    "Runner",
    "async_attempts",
    "attempts",
    "classify",
    "retry",
]
