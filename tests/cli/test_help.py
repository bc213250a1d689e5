"""`perfbench --help` answers without importing torch and lists every backend and axis, from a
static table that must equal the real registry (so the two cannot drift apart)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from perfbench.backends import BACKENDS
from perfbench.cli import catalog
from perfbench.cli.main import main
from perfbench.execute.scenario_capture import DEFAULT_LOAD_TIMEOUT_S
from perfbench.results.axes import AXES


def test_catalog_equals_the_backend_registry() -> None:
    assert catalog.BACKEND_HELP == {name: b.description for name, b in BACKENDS.items()}
    assert list(catalog.BACKEND_HELP) == list(BACKENDS)  # same order as the registry


def test_catalog_equals_the_axes() -> None:
    assert list(catalog.AXES) == list(AXES)


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["check", "--help"]])
def test_help_does_not_import_torch(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from perfbench.cli.main import main\n"
        f"rc = main({argv!r})\n"
        "heavy = sorted(m for m in ('torch', 'pandas', 'jinja2') if m in sys.modules)\n"
        "print('RC', rc, 'HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "RC 0 HEAVY []"


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"]])
def test_help_lists_every_backend_and_axis(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    assert main(argv) == 0
    out = capsys.readouterr().out
    listed = {
        line.split()[0] for line in out.splitlines() if line.startswith("  ") and line.split()
    }
    assert set(BACKENDS) <= listed
    assert set(AXES) <= listed


def test_run_help_documents_the_default_load_limit(capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"limit for importing the scenario (default {DEFAULT_LOAD_TIMEOUT_S:g} s" in out


@pytest.mark.parametrize(
    ("command", "flag"), [("compare", "--fail-above"), ("ceilings", "--refresh")]
)
def test_lazily_built_subcommands_keep_their_arguments(
    command: str, flag: str, capsys: pytest.CaptureFixture
) -> None:
    assert main([command, "--help"]) == 0
    assert flag in capsys.readouterr().out
