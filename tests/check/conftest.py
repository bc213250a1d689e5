"""`scenario_from`: the healthy scenario of common.py with lines spliced in, written and loaded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from perfbench.scenario.loading import load_scenario
from tests.check.common import HEALTHY


@pytest.fixture
def scenario_from(tmp_path: Path) -> Callable[..., object]:
    """Write HEALTHY with the given lines spliced in, and load it."""

    def make(init: str = "", forward: str = "", extra: str = "", name: str = "s.py") -> object:
        source = HEALTHY.replace("# EXTRA_INIT", init).replace("# EXTRA_FORWARD", forward)
        path = tmp_path / name
        path.write_text(source + extra, encoding="utf-8")
        return load_scenario(path)

    return make
