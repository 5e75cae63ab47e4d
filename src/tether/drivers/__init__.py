"""tether.drivers."""
