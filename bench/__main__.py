"""``python -m bench [--quick]``: the pool benchmark against the peers, in one run."""

from __future__ import annotations

import sys

from bench.pool_bench import main

sys.exit(main(sys.argv[1:]))
