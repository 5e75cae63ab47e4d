"""tether.pool."""
