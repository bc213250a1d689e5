"""Fixtures for the report tests: a realistic run folder made without measuring anything."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from make_run import make_run

from perfbench.results.rundir import RunDir


@pytest.fixture
def fake_run(tmp_path: Path) -> RunDir:
    """A finished run with every status, hostile scenario text, traces and a flame graph."""
    return make_run(tmp_path / "run")
