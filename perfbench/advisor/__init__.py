"""The advisor: small rules over a run folder's data, each turning a measured condition into one
sentence, its evidence (numbers and where they come from) and the command to try next.

    from perfbench.advisor import advise, format_findings
    print(format_findings(advise(run_dir)))

Rules (one function each, `RunData -> list[Finding]`; modules group a few):
- answer: first, the answer to the sweep's question: the fastest backend with its speedup,
  interval, verdict and settings, from callable verdicts only; or that nothing clearly won.
- precision: low precision slower than float32 on a CPU (names a missing AVX512-BF16/AMX/VNNI, or
  says the hardware is there and which ops grew); fp16/bf16 on a GPU that gains nothing.
- compile_limit: dynamo's recompile limit hit (the timed code was partly eager), file:line, fix.
- compile_rules: a backend that changed nothing; graph breaks with file:line; recompilations;
  compile's break-even (cold start / time saved per step) and whether inductor's cache was warm.
- scaling: a large fixed per-step cost (step nearly flat across batch sizes), called overhead-
  or memory-bound from the bytes a step moves and the copy ceiling (bound); thread scaling
  efficiency; threads above the physical cores.
- resources: input-bound points (data wait); peak memory against eager.
- diff_rules: where a slower backend's extra time went, from the op-level diff.

Every rule compares through `data.compare`, which counts a difference only outside the noise (the
verdict work's confidence interval when results.csv has it, else both points' IQR), so no rule
fires on evidence inside the noise floor. Findings are computed when the report is built (they can
always be rebuilt from the folder), never stored as results.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from perfbench.advisor import (
    answer,
    compile_limit,
    compile_rules,
    diff_rules,
    precision,
    resources,
    scaling,
)
from perfbench.advisor.data import RunData
from perfbench.advisor.finding import Finding, format_findings, ranked
from perfbench.profiling.run_diffs import OpDiff

Rule = Callable[[RunData], list[Finding]]

RULES: tuple[Rule, ...] = (
    answer.fastest,
    precision.low_precision_cpu,
    precision.low_precision_gpu,
    compile_rules.no_change,
    compile_rules.graph_breaks,
    compile_limit.recompile_limit,
    compile_rules.recompiles,
    compile_rules.break_even,
    scaling.overhead_bound,
    scaling.thread_scaling,
    resources.input_bound,
    resources.memory_peak,
    diff_rules.slower_ops,
)


def advise(run_dir: Path | RunData, comparisons: list[OpDiff] | None = None) -> list[Finding]:
    """Every rule's findings for a run folder, most valuable first. A rule that raises is a bug in
    the rule, not in the run: it becomes a finding that says so, and the other rules still run."""
    data = run_dir if isinstance(run_dir, RunData) else RunData.load(Path(run_dir), comparisons)
    found: list[Finding] = []
    for rule in RULES:
        try:
            found += rule(data)
        except Exception as err:
            found.append(
                Finding(
                    rule.__name__,
                    f"advisor rule {rule.__name__} failed: {type(err).__name__}: {err}",
                    (),
                    "",
                    3,
                )
            )
    return ranked(found)


__all__ = ["RULES", "Finding", "RunData", "advise", "format_findings"]
