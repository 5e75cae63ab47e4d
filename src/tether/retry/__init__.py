"""Retry: connect retry now; transient-fault policies build on it."""

from __future__ import annotations

from ._connect import ConnectFailure, ConnectRetry, connect_with_retry

__all__ = ["ConnectFailure", "ConnectRetry", "connect_with_retry"]
