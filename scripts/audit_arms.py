"""The arms `verdict_audit.py` times: eager, its twin (the A/A control over the same weights),
an equivalent path (fx symbolic_trace), and a spin that adds a fixed fraction of the step."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from perfbench.measure.workload import seed_everything
from perfbench.scenario.loading import Scenario

Step = Callable[[], Any]


def build(scenario: Scenario, seed: int = 0) -> torch.nn.Module:
    seed_everything(seed)
    return scenario.build_model().eval()


def twin(scenario: Scenario, model: torch.nn.Module) -> torch.nn.Module:
    """A second module object over the *same* parameter tensors (the A/A control).

    Why not a separately built copy: on this machine two copies of the same MLP weights, built
    one after the other, ran up to 15% apart at batch 8 (interleaved, quiet: CI 0.84-0.87 for
    the later copy against the first), while a twin sharing the first one's tensors read 1.00
    (1.006-1.026). Where the weights landed in memory is not what a control, or a backend
    comparison, should measure; every arm here runs on the group's one set of weights.
    """
    other = build(scenario)
    other.load_state_dict(model.state_dict(), assign=True)
    return other.eval()


def infer_step(scenario: Scenario, model: Any, batch: Any) -> Step:
    def step() -> Any:
        with torch.no_grad():
            return scenario.forward(model, batch)

    return step


def equivalent_step(scenario: Scenario, model: torch.nn.Module, batch: Any) -> Step:
    """The same model through `torch.fx.symbolic_trace`: the same ops and weights, run by fx's
    generated forward (what the fx backend runs when none of its rewrites fire)."""
    return infer_step(scenario, torch.fx.symbolic_trace(model), batch)


def spin_step(step: Step, fraction: float) -> Step:
    """The eager step followed by a busy-wait of `fraction` of that very call's duration: a
    backend exactly (1 + fraction) times slower than eager at every moment. A spin of fixed
    length sized from a pilot is not: a pilot taken while a neighbour ran made a "5%" spin 16% of
    a quiet step in the first audit of this script."""

    def slower() -> Any:
        start = time.perf_counter()
        out = step()
        end = time.perf_counter()
        stop = end + fraction * (end - start)
        while time.perf_counter() < stop:
            pass
        return out

    return slower


def lag1(values: list[float]) -> float:
    """Lag-1 autocorrelation (NaN for fewer than 3 values or no variance)."""
    if len(values) < 3:
        return float("nan")
    mean = statistics.fmean(values)
    dev = [v - mean for v in values]
    var = sum(d * d for d in dev)
    return sum(a * b for a, b in itertools.pairwise(dev)) / var if var else float("nan")
