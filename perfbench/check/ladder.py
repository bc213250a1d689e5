"""`perfbench check`: a fast sanity ladder that makes silent ML errors loud before compute is spent.

Six rungs, each reporting pass / fail / n/a with the values it measured:

1. batch and output shapes and dtypes are stable across two batch sizes; eval mode is really eval
2. a classification loss at initialisation is near ln(number of classes)
3. one fixed batch can be overfit (loss falls >= 90%); parameters that never get a gradient
4. a checkpoint (model + optimizer + RNG) round trip resumes the next step exactly
5. two runs from the same seed are bitwise identical
6. the chosen backends (default eager and compile) agree with eager float32 within tolerance

A failure of rung 1 or 6 means timings would be meaningless (`CheckReport.blocks_timing`); the
harness refuses to time such a scenario under `perfbench run --check`. Library code never prints:
`run_check` returns a `CheckReport` whose `format_text` is the table; the CLI (`perfbench/cli/check.py`)
prints it.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from perfbench.backends import BACKENDS
from perfbench.backends.base import BackendNotApplicable
from perfbench.check.context import Ctx, RungResult, build, timed
from perfbench.check.rungs import rung_init_loss, rung_shapes_and_mode
from perfbench.check.training import rung_checkpoint, rung_determinism, rung_overfit
from perfbench.measure.correctness import MismatchError, tolerance_for
from perfbench.measure.workload import prepare_checked, skip_reason
from perfbench.results.axes import Amp, Point
from perfbench.scenario.loading import Scenario, ScenarioError, describe_exception, user_frame_line

RUNG_NAMES = {
    1: "shapes, dtypes, train/eval mode",
    2: "loss at init ~ ln(classes)",
    3: "overfit one batch",
    4: "checkpoint round trip",
    5: "determinism (same seed twice)",
    6: "backends agree with eager fp32",
}
BLOCKING_RUNGS = (1, 6)


@dataclass
class CheckReport:
    """The ladder's outcome for one scenario: one `RungResult` per rung, in order."""

    scenario: str
    seed: int
    backends: list[str]
    rungs: list[RungResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No rung failed (n/a counts as fine)."""
        return all(r.status != "fail" for r in self.rungs)

    @property
    def blocks_timing(self) -> bool:
        """Rung 1 or 6 failed: shapes or correctness are wrong, so no timing of it can count."""
        return any(r.status == "fail" for r in self.rungs if r.number in BLOCKING_RUNGS)

    def rung(self, number: int) -> RungResult:
        return next(r for r in self.rungs if r.number == number)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: values are made plain (tensors and odd objects become strings)."""
        out = asdict(self)
        out["ok"] = self.ok
        out["blocks_timing"] = self.blocks_timing
        return json.loads(json.dumps(out, default=str))

    def format_text(self, width: int = 100, quiet: bool = False) -> str:
        """A terminal table: number, rung, status, then the detail wrapped under it. `quiet`: only
        the failed rungs, one line each, and the result line."""
        if quiet:
            failed = [
                f"rung {r.number} {r.name}: FAIL: {r.detail}"
                for r in self.rungs
                if r.status == "fail"
            ]
            return "\n".join([*failed, self.format_text(width).splitlines()[-1]])
        lines = [f"perfbench check {self.scenario}  (seed {self.seed}, {self.seconds:.1f} s)"]
        lines.append(f" #  {'rung':<32} {'status':<6} {'time':>6}")
        for r in self.rungs:
            lines.append(f" {r.number}  {r.name:<32} {r.status.upper():<6} {r.seconds:>5.1f}s")
            for chunk in textwrap.wrap(r.detail, width=width - 7) or [""]:
                lines.append(f"       {chunk}")
        failed = [r.number for r in self.rungs if r.status == "fail"]
        if not failed:
            lines.append("result: no rung failed")
        else:
            verdict = f"result: rung(s) {', '.join(map(str, failed))} failed"
            if self.blocks_timing:
                verdict += " -- blocks timing: `perfbench run --check` refuses to time it"
            lines.append(verdict)
        return "\n".join(lines)


RUNGS: tuple[Callable[[Ctx], RungResult], ...] = (
    rung_shapes_and_mode,
    rung_init_loss,
    rung_overfit,
    rung_checkpoint,
    rung_determinism,
)


def run_check(
    scenario: Scenario,
    backends: Sequence[str] = ("eager", "compile"),
    seed: int = 0,
    *,
    batch_size: int = 4,
    overfit_steps: int = 150,
    determinism_steps: int = 3,
) -> CheckReport:
    """Run all six rungs. A rung that raises fails with the message pointing into the scenario;
    a contract violation (build_model not returning a float32 nn.Module) raises `ScenarioError`."""
    ctx = Ctx(
        scenario=scenario,
        seed=seed,
        batch_size=batch_size,
        overfit_steps=overfit_steps,
        determinism_steps=determinism_steps,
        backends=tuple(backends),
    )
    try:  # a load-level problem stops here, before six identical failures
        build(ctx)
    except ScenarioError:
        raise
    except Exception as err:
        raise ScenarioError(
            scenario.path,
            f"build_model() raised {type(err).__name__}: {err}",
            line=user_frame_line(scenario.path, err),
        ) from None
    report = CheckReport(scenario=str(scenario.path), seed=seed, backends=list(backends))
    start = time.perf_counter()
    threads = torch.get_num_threads()
    for number, rung in enumerate((*RUNGS, rung_backends), start=1):
        rung_start = time.perf_counter()
        try:
            result = rung(ctx)
        except ScenarioError:
            raise
        except Exception as err:
            result = RungResult(
                number,
                RUNG_NAMES[number],
                "fail",
                f"raised {describe_exception(scenario.path, err)}",
            )
            result.seconds = round(time.perf_counter() - rung_start, 3)
        finally:
            torch.set_num_threads(threads)  # a scenario or backend that changes it cannot leak
        report.rungs.append(result)
    report.seconds = time.perf_counter() - start
    return report


@timed
def rung_backends(ctx: Ctx) -> RungResult:
    """Every backend's output matches eager float32 on the same batch, in eval mode, no autocast:
    checked by `workload.prepare_checked`, the path every point of a sweep takes before timing."""
    name = "backends agree with eager fp32"
    per_backend = {backend: _one_backend(ctx, backend) for backend in ctx.backends}
    statuses = {r["status"] for r in per_backend.values()}
    status = "fail" if "fail" in statuses else "pass" if "pass" in statuses else "n/a"
    detail = "; ".join(f"{n}: {r['detail']}" for n, r in per_backend.items()) or "no backends given"
    tolerance = tolerance_for(Amp.OFF, ctx.scenario.tolerance)
    values = {"tolerance": tolerance, "batch_size": ctx.batch_size, "backends": per_backend}
    return RungResult(6, name, status, detail, values)


def _one_backend(ctx: Ctx, name: str) -> dict[str, Any]:
    """One backend through the sweep's prepare-and-check, at the ladder's batch size and the
    process's thread count; a fresh model each time, so an in-place rewrite touches nothing else."""
    if name not in BACKENDS:
        return {"status": "fail", "detail": f"unknown backend; known: {', '.join(BACKENDS)}"}
    backend = BACKENDS[name]
    threads = torch.get_num_threads()
    point = Point(backend=name, batch_size=ctx.batch_size, threads=threads, amp=Amp.OFF)
    reason = skip_reason(point, ctx.scenario)
    if reason is not None:
        return {"status": "n/a", "detail": f"skipped: {reason}"}
    try:
        checked = prepare_checked(ctx.scenario, point, seed=ctx.seed)
    except ScenarioError:
        raise
    except BackendNotApplicable as err:
        return {"status": "n/a", "detail": f"skipped: {err}"}
    except MismatchError as err:
        return {"status": "fail", "detail": str(err)}
    except Exception as err:
        return {"status": "fail", "detail": describe_exception(ctx.scenario.path, err)}
    finally:
        backend.teardown()
    prepared, check = checked.prepared, checked.check
    return {
        "status": "pass",
        "detail": f"rel err {check.rel_err:.2g} <= {check.tolerance:.2g}",
        "rel_err": check.rel_err,
        "prepare_and_first_call_s": round(checked.prepare_s + checked.first_call_s, 3),
        "changes": prepared.changes,
        "changes_what": prepared.changes_what,
        "info": {k: str(v) for k, v in prepared.info.items()},
    }
