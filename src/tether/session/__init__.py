"""The connection proxy: what a borrower holds, and what its session carries."""

from __future__ import annotations

from ._proxy import Connection, Cursor

__all__ = ["Connection", "Cursor"]
