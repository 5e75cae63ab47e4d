"""The old home of the SqlClient keyword table, now ``tether.dsn._keywords``.

Kept only because ``drivers/_mssql_options.py`` still imports ``OPTIONS`` from here and
``drivers/`` is being rewritten on another branch; delete this module once that import
reads ``from ..dsn._keywords import OPTIONS``.
"""

from __future__ import annotations

from .dsn._keywords import KEYWORDS, OPTIONS

__all__ = ["KEYWORDS", "OPTIONS"]
