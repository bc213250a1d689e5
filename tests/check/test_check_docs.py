"""What the README and `perfbench check --help` say rung 6 checks is what it checks.

The README used to say rung 6 checks "every backend" while the default is `eager,compile`.
The default is read from the parser itself, so the text cannot drift from the code.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from perfbench.check.ladder import run_check
from perfbench.check.rungs import Ctx
from perfbench.cli.main import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def _check_parser_default() -> str:
    parser = build_parser()
    sub = next(a for a in parser._subparsers._actions if a.dest == "command")  # type: ignore[union-attr]
    check = sub.choices["check"]
    return next(a for a in check._actions if a.dest == "backends").default


def _rung6_text() -> str:
    text = " ".join(README.read_text(encoding="utf-8").split())
    found = re.search(r"\(6\)(.*?)\n?Axes:", text)
    assert found, "README: the `perfbench check` paragraph with rung (6) is missing"
    return found.group(1)


def test_library_and_cli_defaults_agree() -> None:
    default = _check_parser_default()
    assert tuple(default.split(",")) == Ctx.__dataclass_fields__["backends"].default
    assert tuple(inspect.signature(run_check).parameters["backends"].default) == tuple(
        default.split(",")
    )


def test_readme_says_which_backends_rung6_checks() -> None:
    rung6 = _rung6_text()
    assert "every backend agrees" not in rung6
    assert f"`{_check_parser_default()}`" in rung6
    assert "--backends" in rung6 and "run --check" in rung6


def test_check_help_states_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["check", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "rung 6" in help_text
    assert f"default: {_check_parser_default()}" in help_text
