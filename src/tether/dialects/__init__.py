"""tether.dialects."""
