"""tether.net."""
