"""The control API's input rules as pure functions: names, path segments, JSON bodies."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.wan._api_input import MAX_DEPTH, decode_json, path_segments
from tether.wan._http_wire import MAX_LINE
from tether.wan._names import check_name, name_problem
from tether.wan._toxics import ApiError

any_text = st.text(st.characters(exclude_categories=()), max_size=300)  # surrogates included


@given(any_text)
def test_every_accepted_name_can_be_addressed_again(name: str) -> None:
    if name_problem(name) is not None:
        with pytest.raises(ValueError, match="name"):
            check_name(name)
        return
    path = f"/proxies/{quote(name, safe='')}/toxics/{quote(name, safe='')}"
    assert path_segments(path) == ("proxies", name, "toxics", name)
    assert len(f"DELETE {path} HTTP/1.1") <= MAX_LINE


@given(
    st.text(st.characters(categories=["Cc"]), min_size=1, max_size=3),
    st.text(st.characters(exclude_characters="/", exclude_categories=["Cs"]), max_size=5),
)  # no lone surrogates around them: those are refused first, as not valid Unicode
def test_control_characters_are_refused_anywhere(controls: str, rest: str) -> None:
    assert "control characters" in (name_problem(rest + controls + rest) or "")


def test_path_segments() -> None:
    assert path_segments("/") == ()
    assert path_segments("/proxies/") == ("proxies",)
    assert path_segments("/proxies/sp%20ace?x=1") == ("proxies", "sp ace")
    assert path_segments("/proxies/a+b") == ("proxies", "a+b")  # '+' is not a space in paths
    assert path_segments("/proxies/a%2Fb") == ("proxies", "a/b")
    assert path_segments("/proxies/\xc3\xa9") == ("proxies", "é")  # raw UTF-8, latin-1 decoded
    for bad in ("/%", "/%zz", "/%e9", "/a%2"):
        with pytest.raises(ApiError):
            path_segments(bad)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(json_values)
def test_json_within_the_limits_decodes_unchanged(value: Any) -> None:
    assert decode_json(json.dumps(value).encode()) == value


@pytest.mark.parametrize("depth", [1, MAX_DEPTH, MAX_DEPTH + 1, 5000])
def test_json_depth_limit(depth: int) -> None:
    body = (b"[" * depth) + (b"]" * depth)
    if depth <= MAX_DEPTH:
        assert decode_json(body) is not None
    else:
        with pytest.raises(ApiError, match="nested deeper"):
            decode_json(body)


def test_empty_body_is_null() -> None:
    assert decode_json(b"") is None
