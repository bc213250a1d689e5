"""Measure the acceptance numbers of issue 11 for the verdict method, in one process.

Built directly on `perfbench.measure.interleave` (timing) and `perfbench.stats.speedup` / `perfbench.stats.verdict`
(intervals and verdicts), so it runs without the sweep runner. Every group is timed the way a
comparison group is: eager, its A/A control (a second eager module over the same weight tensors,
see `twin`) and the backend(s) under test, interleaved in balanced rounds at the default budget.
All arms of a group run on one set of weights, as the backends under test would.

Experiments (`--only` picks some; all by default):

- `false-calls`: groups where nothing differs: eager against its control, and against a
  test-only "equivalent" backend (the same model traced by `torch.fx.symbolic_trace`: the
  same kernels through fx's generated forward, as the fx backend runs when nothing fires). Target: at most 1 `faster` /
  `slower` call in all over 20 runs.
- `power`: a test-only backend that runs eager and then spins for 10% (or 5%) of the eager
  step. Target: `slower` in >= 9 of 10 runs (10%) and >= 7 of 10 (5%).
- `sensitivity`: scenarios/pointwise_chain.py, torch.compile against eager. Target: `faster` in
  5 of 5 runs.
- `reproducibility`: 5 back-to-back in-process sweeps of the default MLP sweep (compile vs eager
  at batch 8 and 64, control included, Holm across the sweep). Target: no contradictory
  verdicts (`faster` in one sweep, `slower` or `same` in another, for the same setting).

Each run also records the contention probe (others' CPU while it was timed), the interval
half-widths, the lag-1 autocorrelation of the per-round log ratios (the batch-means method
assumes it dies out within a block) and the wall time of the group.

    PYTHONPATH=. python scripts/verdict_audit.py --only false-calls,power --json audit.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from perfbench.measure.caveat import oversubscription
from perfbench.measure.contention import probe
from perfbench.measure.interleave import InterleaveSettings, interleave
from perfbench.measure.workload import seed_everything
from perfbench.scenario.loading import Scenario, load_scenario
from perfbench.stats.speedup import PairedEstimate, log_ratios
from perfbench.stats.verdict import (
    DEFAULT_DELTA,
    Comparison,
    ComparisonInput,
    ControlCheck,
    Verdict,
    check_control,
    format_comparison,
    format_control,
    judge,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the audit's arms, beside it
from audit_arms import Step, build, equivalent_step, infer_step, lag1, spin_step, twin

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class GroupRun:
    """One interleaved group: its control, its estimates, and the conditions it ran under."""

    label: str
    control: ControlCheck
    estimates: dict[str, PairedEstimate]
    control_lag1: float
    rounds: int
    wall_s: float
    timed_s: float
    contended: bool
    others_cores: float
    medians_ms: dict[str, float] = field(default_factory=dict)
    oversubscribed: str = (
        ""  # perfbench.measure.caveat: why the group may make no call, "" if it may
    )


def run_group(
    label: str, arms: dict[str, Step], threads: int, settings: InterleaveSettings
) -> GroupRun:
    """Interleave eager, control and the backends; estimate each against eager."""
    with probe(cores_wanted=threads) as p:
        res = interleave(arms, threads=threads, settings=settings)
    eager = res.times_s["eager"]
    control = check_control(res.estimate("control"))
    backends = [a for a in res.arms if a not in ("eager", "control")]
    assert p.result is not None
    return GroupRun(
        label=label,
        control=control,
        estimates={b: res.estimate(b) for b in backends},
        control_lag1=lag1(log_ratios(eager, res.times_s["control"])),
        rounds=res.rounds,
        wall_s=res.wall_s,
        timed_s=res.timed_s,
        contended=p.result.contended,
        others_cores=p.result.others_cores,
        medians_ms={a: res.measurement(a).median * 1e3 for a in res.arms},
        oversubscribed=oversubscription(p.result.others_cores, p.result.cpus, threads),
    )


def judged(runs: list[GroupRun], delta: float) -> list[Comparison]:
    """Verdicts for all comparisons of these groups, Holm-corrected across them (one sweep)."""
    inputs = [
        ComparisonInput(f"{g.label}:{b}", est, control=g.control)
        for g in runs
        for b, est in g.estimates.items()
    ]
    over = [g.oversubscribed for g in runs for _ in g.estimates]
    return [_load_rule(c, o) for c, o in zip(judge(inputs, delta), over, strict=True)]


def _load_rule(c: Comparison, oversubscribed: str) -> Comparison:
    """The sweep's rule (perfbench.measure.caveat): an oversubscribed group's calls become
    inconclusive; `reason` keeps the call it would have made, for the audit's count."""
    if not oversubscribed or c.verdict not in (Verdict.FASTER, Verdict.SLOWER, Verdict.SAME):
        return c
    why = f"{oversubscribed} (would have been {c.verdict.value})"
    return replace(c, verdict=Verdict.INCONCLUSIVE, reason=why)


def describe(g: GroupRun, comparisons: list[Comparison], delta: float) -> str:
    lines = [
        f"  {g.label}: {g.rounds} rounds, wall {g.wall_s:.1f} s (timed {g.timed_s:.1f} s), "
        f"others {g.others_cores:.2f} cores{' CONTENDED' if g.contended else ''}, "
        f"medians {', '.join(f'{k} {v:.2f} ms' for k, v in g.medians_ms.items())}",
        f"    {format_control(g.control)} (±{g.control.estimate.half_width():.1%}, "
        f"lag-1 autocorrelation {g.control_lag1:+.2f})",
    ]
    for c in comparisons:
        over = f"; {c.reason}" if "would have been" in c.reason else ""  # _load_rule
        lines.append(
            f"    {format_comparison(c, delta)}{over} (±{c.estimate.half_width(c.level):.1%})"
        )  # type: ignore[union-attr]
    return "\n".join(lines)


def summary(groups: list[GroupRun], comparisons: list[Comparison]) -> dict[str, Any]:
    """Counts and spreads over the runs of one experiment."""
    hw = [c.estimate.half_width(c.level) for c in comparisons if c.estimate is not None]
    ctl_hw = [g.control.estimate.half_width() for g in groups]
    return {
        "runs": len(groups),
        "verdicts": dict(Counter(c.verdict.value for c in comparisons if c.verdict is not None)),
        "verdicts_uncontended": dict(
            Counter(
                c.verdict.value
                for g, c in zip(groups, comparisons, strict=False)
                if c.verdict is not None and not g.contended and len(groups) == len(comparisons)
            )
        ),
        "control_calls": sum(
            g.control.low > 1 + DEFAULT_DELTA or g.control.high < 1 / (1 + DEFAULT_DELTA)
            for g in groups
        ),
        "too_noisy_groups": sum(not g.control.ok for g in groups),
        "contended_groups": sum(g.contended for g in groups),
        "oversubscribed_groups": sum(bool(g.oversubscribed) for g in groups),
        "calls_taken_by_load_rule": dict(
            Counter(
                c.reason.rsplit("would have been ", 1)[-1].rstrip(")")
                for c in comparisons
                if "would have been" in c.reason
            )
        ),
        "half_width_median": statistics.median(hw) if hw else None,
        "half_width_max": max(hw) if hw else None,
        "control_half_width_median": statistics.median(ctl_hw),
        "control_lag1_mean": statistics.fmean(g.control_lag1 for g in groups),
        "group_wall_s_median": statistics.median(g.wall_s for g in groups),
        "others_cores_median": statistics.median(g.others_cores for g in groups),
    }


@dataclass
class Audit:
    scenario: Scenario
    batch_sizes: list[int]
    threads: int
    settings: InterleaveSettings
    delta: float
    out: Callable[[str], None] = print
    records: dict[str, Any] = field(default_factory=dict)

    quiet_wait_s: float = 0.0

    def wait_for_quiet(self) -> None:
        """Up to quiet_wait_s: wait until others used < 0.3 cores over 3 s (an audit aid, to
        measure power on a quiet machine when the machine is shared; not part of the method)."""
        deadline = time.monotonic() + self.quiet_wait_s
        while time.monotonic() < deadline:
            with probe(cores_wanted=self.threads) as p:
                time.sleep(3.0)
            if p.result is not None and p.result.others_cores < 0.3:
                return

    def batch(self, scenario: Scenario, batch_size: int) -> Any:
        seed_everything(1)
        return scenario.make_batch(batch_size)

    def repeat(self, name: str, runs: int, make_arms: Callable[[int], dict[str, Step]]) -> None:
        """`runs` groups of the arms `make_arms(batch_size)` builds, one verdict family each."""
        for bs in self.batch_sizes:
            groups, comps = [], []
            self.out(f"{name} bs{bs}: {runs} runs")
            for r in range(runs):
                self.wait_for_quiet()
                g = run_group(f"{name}-bs{bs}-run{r}", make_arms(bs), self.threads, self.settings)
                judged_run = judged([g], self.delta)
                groups.append(g)
                comps.extend(judged_run)
                self.out(describe(g, judged_run, self.delta))
            self.records[f"{name}/bs{bs}"] = {
                **summary(groups, comps),
                "per_run": [
                    {"group": g.label, "control": format_control(g.control), **g.medians_ms}
                    for g in groups
                ],
                "lines": [format_comparison(c, self.delta) for c in comps],
            }
            self.out(f"{name} bs{bs}: {json.dumps(summary(groups, comps))}")

    def false_calls(self, runs: int) -> None:
        sc = self.scenario

        def arms(bs: int) -> dict[str, Step]:
            batch, model = self.batch(sc, bs), build(sc)
            return {
                "eager": infer_step(sc, model, batch),
                "control": infer_step(sc, twin(sc, model), batch),
                "equivalent": equivalent_step(sc, model, batch),
            }

        self.repeat("false-calls", runs, arms)

    def power(self, runs: int, fraction: float) -> None:
        sc = self.scenario

        def arms(bs: int) -> dict[str, Step]:
            batch, model = self.batch(sc, bs), build(sc)
            return {
                "eager": infer_step(sc, model, batch),
                "control": infer_step(sc, twin(sc, model), batch),
                "spin": spin_step(infer_step(sc, model, batch), fraction),
            }

        self.repeat(f"power-{fraction:.0%}", runs, arms)

    def sensitivity(self, runs: int, chain: Scenario, batch_size: int) -> None:
        """torch.compile against eager on the pointwise chain: compiled once, timed `runs` times."""
        batch = self.batch(chain, batch_size)
        model = build(chain)
        compiled = torch.compile(model, dynamic=False)
        start = time.perf_counter()
        infer_step(chain, compiled, batch)()
        self.out(f"sensitivity: compile + first call {time.perf_counter() - start:.1f} s")

        def arms(bs: int) -> dict[str, Step]:
            return {
                "eager": infer_step(chain, model, batch),
                "control": infer_step(chain, twin(chain, model), batch),
                "compile": infer_step(chain, compiled, batch),
            }

        saved, self.batch_sizes = self.batch_sizes, [batch_size]
        try:
            self.repeat("sensitivity", runs, arms)
        finally:
            self.batch_sizes = saved

    def reproducibility(self, sweeps: int) -> None:
        """`sweeps` back-to-back sweeps (all batch sizes, Holm across each sweep)."""
        sc = self.scenario
        batches = {bs: self.batch(sc, bs) for bs in self.batch_sizes}
        models = {bs: build(sc) for bs in self.batch_sizes}
        compiled = {bs: torch.compile(models[bs], dynamic=False) for bs in self.batch_sizes}
        for bs in self.batch_sizes:
            infer_step(sc, compiled[bs], batches[bs])()  # compile outside the timed sweeps
        seen: dict[str, list[str]] = {}
        walls = []
        for s in range(sweeps):
            self.wait_for_quiet()
            start = time.perf_counter()
            groups = []
            for bs in self.batch_sizes:
                arms = {
                    "eager": infer_step(sc, models[bs], batches[bs]),
                    "control": infer_step(sc, twin(sc, models[bs]), batches[bs]),
                    "compile": infer_step(sc, compiled[bs], batches[bs]),
                }
                groups.append(run_group(f"sweep{s}-bs{bs}", arms, self.threads, self.settings))
            walls.append(time.perf_counter() - start)
            comps = judged(groups, self.delta)
            for g, c in zip(groups, comps, strict=True):
                self.out(describe(g, [c], self.delta))
                seen.setdefault(c.backend.split("-", 1)[1], []).append(
                    c.verdict.value if c.verdict else "failed"
                )
        contradictions = {
            k: v for k, v in seen.items() if "faster" in v and ({"slower", "same"} & set(v))
        }
        contradictions.update(
            {k: v for k, v in seen.items() if "slower" in v and ({"faster", "same"} & set(v))}
        )
        self.records["reproducibility"] = {
            "verdicts": seen,
            "contradictions": contradictions,
            "sweep_timing_wall_s": walls,
        }
        self.out(f"reproducibility: {json.dumps(self.records['reproducibility'])}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default=str(ROOT / "scenarios" / "mlp.py"))
    p.add_argument("--batch", default="8,64", help="batch sizes, comma-separated")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--budget", type=float, default=InterleaveSettings().budget_s)
    p.add_argument("--delta", type=float, default=DEFAULT_DELTA)
    p.add_argument("--null-runs", type=int, default=20)
    p.add_argument("--power-runs", type=int, default=10)
    p.add_argument("--sensitivity-runs", type=int, default=5)
    p.add_argument("--sweeps", type=int, default=5)
    p.add_argument(
        "--only",
        default="false-calls,power,sensitivity,reproducibility",
        help="comma-separated experiments",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="before each group, wait up to this many seconds for other processes to go quiet",
    )
    p.add_argument("--json", type=Path, help="write every record here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = set(args.only.split(","))
    unknown = only - {"false-calls", "power", "sensitivity", "reproducibility"}
    if unknown:
        sys.exit(f"verdict_audit: unknown experiment(s) {sorted(unknown)}")
    audit = Audit(
        scenario=load_scenario(args.scenario),
        batch_sizes=[int(b) for b in args.batch.split(",")],
        threads=args.threads,
        settings=InterleaveSettings(budget_s=args.budget),
        delta=args.delta,
        quiet_wait_s=args.quiet_wait,
    )
    start = time.perf_counter()
    if "false-calls" in only:
        audit.false_calls(args.null_runs)
    if "power" in only:
        audit.power(args.power_runs, 0.10)
        audit.power(args.power_runs, 0.05)
    if "sensitivity" in only:
        chain = load_scenario(ROOT / "scenarios" / "pointwise_chain.py")
        audit.sensitivity(args.sensitivity_runs, chain, chain.sweep["batch_size"][0])
    if "reproducibility" in only:
        audit.reproducibility(args.sweeps)
    audit.records["total_wall_s"] = time.perf_counter() - start
    audit.records["settings"] = {
        **asdict(audit.settings),
        "threads": args.threads,
        "delta": args.delta,
    }
    if args.json:
        args.json.write_text(json.dumps(audit.records, indent=1, default=str))
    print(f"audit done in {audit.records['total_wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
