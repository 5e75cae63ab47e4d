"""Errors raised by the WAN emulator.

::

    tether.Error
    └── WanError                       something the emulator could not do
        ├── NotFound (KeyError)        no link or fault by that name
        ├── AlreadyExists              a link or fault by that name exists already
        └── ListenError (OSError)      the listen address could not be bound (in use, bad host)

Bad arguments raise :class:`tether.errors.ConfigError`, a ``ValueError`` whose ``key`` names
the parameter.
"""

from __future__ import annotations

from tether.errors import Error

__all__ = ["AlreadyExists", "ListenError", "NotFound", "WanError"]


class WanError(Error):
    """Root of the WAN emulator's errors."""


class NotFound(WanError, KeyError):
    """No link or fault by that name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class AlreadyExists(WanError):
    """A link or fault by that name exists already."""


class ListenError(WanError, OSError):
    """The listen address could not be bound."""
