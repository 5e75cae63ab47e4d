"""A griffe extension: the reStructuredText bits of tether's docstrings, made Markdown.

The docstrings are written for reading in an editor, with ``:class:`~tether.ConfigError```
and the like; Markdown would show those roles literally. Each becomes inline code of the
name (the last dotted part when the name starts with ``~``, as Sphinx shows it). A literal
block's ``::`` goes (the indented block below is a Markdown code block already), and
``text::`` becomes ``text:``.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

_LONE_COLONS = re.compile(r"^[ \t]*::[ \t]*\n", re.MULTILINE)
_TRAILING_COLONS = re.compile(r"(\S)::[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const):`(~?)([^`]+)`")


def _as_code(match: re.Match[str]) -> str:
    short, name = match.group(1), match.group(2)
    return f"`{name.rsplit('.', 1)[-1] if short else name}`"


def plain_roles(text: str) -> str:
    text = _TRAILING_COLONS.sub(r"\1:", _LONE_COLONS.sub("", text))
    return _ROLE.sub(_as_code, text)


class SphinxRoles(Extension):
    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)
