"""Synthetic history records for the statistics' and the page's unit tests (the acceptance test
uses real runs). `records` builds the rows a store would hold for one point over commits."""

from __future__ import annotations

import json
import math
import random
from typing import Any

POINT = json.dumps({"batch_size": 8, "threads": 1}, sort_keys=True)


def rec(commit: int, backend: str, value: float, **extra: Any) -> dict[str, Any]:
    """One stored record of `backend` at pretend commit number `commit`."""
    eager = backend == "eager"
    out = {
        "scenario_key": "s.py", "point_key": extra.pop("point_key", POINT), "machine": "m1",
        "machine_desc": "{}", "torch_version": "2.13", "perfbench_version": "0.1",
        "git_commit": f"c{commit:02d}" + "a" * 38, "git_dirty": False, "commit_time": commit,
        "started_at": f"2026-01-01T00:00:{commit:02d}", "repo_root": None, "run_path": "/tmp/r",
        "backend": backend, "status": "ok", "noise": 0.02, "contended": None,
        "contention_note": None, "verdict": None if eager else "faster", "command": None,
        "median_ms": value if eager else 1.0,
        "median_ci_low_ms": value * 0.99 if eager else None,
        "median_ci_high_ms": value * 1.01 if eager else None,
        "speedup": None if eager else value,
        "speedup_ci_low": None if eager else value * 0.97,
        "speedup_ci_high": None if eager else value * 1.03,
    }  # fmt: skip
    out.update(extra)
    return out


def records(levels: list[float], per: int, sd: float, seed: int, backend: str = "eager") -> list:
    """`per` records at each commit, lognormal noise `sd` around each commit's level."""
    rng = random.Random(seed)
    return [
        rec(c, backend, level * math.exp(rng.gauss(0, sd)))
        for c, level in enumerate(levels)
        for _ in range(per)
    ]
