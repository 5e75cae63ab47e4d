"""How every benchmark ends: its table printed, its results written as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def publish(table: str, results: Any, out: str) -> int:
    """Print ``table``, write ``results`` to ``out`` (its folder made); the exit code."""
    print(table)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {path}")
    return 0
