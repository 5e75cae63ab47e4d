"""tether's benchmarks: ``python -m bench`` (or ``./dev bench``)."""
