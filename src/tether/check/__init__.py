"""tether.check."""
