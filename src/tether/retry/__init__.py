"""tether.retry."""
