"""A griffe extension: the Sphinx roles tether's docstrings use, rendered as code.

The docstrings are written for reading in an editor, with ``:class:`~tether.ConfigError```
and the like; Markdown would show those roles literally. Each becomes inline code of the
name (the last dotted part when the name starts with ``~``, as Sphinx shows it).
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const):`(~?)([^`]+)`")


def _as_code(match: re.Match[str]) -> str:
    short, name = match.group(1), match.group(2)
    return f"`{name.rsplit('.', 1)[-1] if short else name}`"


def plain_roles(text: str) -> str:
    return _ROLE.sub(_as_code, text)


class SphinxRoles(Extension):
    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)
