"""``tether demo``'s options, without running it."""

from __future__ import annotations

import pytest

from tether.cli import main


def test_demo_help_names_the_chart_and_plain_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--plain" in text and "--no-chart" in text
    assert "--chart PATH" in text and "in the temporary directory" in text


def test_chart_and_no_chart_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--chart", "x.svg", "--no-chart"]) == 2
    assert "not allowed with" in capsys.readouterr().err


def test_a_chart_in_a_format_matplotlib_cannot_write_is_refused_before_the_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--chart", "demo.txt"]) == 2
    assert "--chart must end in .svg, .png, .pdf" in capsys.readouterr().err
