"""Issue 20's acceptance: a git repository with a scenario, five commits, a sweep at each, and
`perfbench history` flags exactly the slowdown and its recovery; ten null repetitions built from
the same real records flag nothing.

Two step sizes, each its own five-commit repository: the issue's 15% (20 -> 23 layers) and x4
(2 -> 8). On this shared 2-core box under load, eager's median of one unchanged model moved by
25-60% between runs a minute apart, and by up to x10 at a load average of 13 (measured while
writing this test, with seven other sessions running suites and CPU burners): a 15% step is then
below the noise and the detector rightly refuses to call it. So each size's detection half runs
only where the box gave evidence that can show it: no record contended, and one unchanged
version's records within x1.10 (15%) or x2.67 (x4) of each other; otherwise it skips, saying the
measured spread (the null half still runs on those records). Each commit runs `--repeat 2` (two
fresh workers, two records), so no segment rests on a single record. Above a load average of 3
per core nothing is swept at all (both skip, saying the load): at 13-15 on 2 cores one version's
medians spread x33.

The null repetitions reuse the real records of the unchanged commits: records of one model
version are shuffled across pretend commits (the commit labels are the only thing made up), so
the noise the detector must not mistake for a step is the noise this box actually produced.
"""

from __future__ import annotations

import copy
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from perfbench.cli import main as cli
from perfbench.cli.progress import Progress
from perfbench.execute.runner import make_executor, run_sweep
from perfbench.execute.scenario_capture import load_capturing_output
from perfbench.history import findings, record_run, store, trend
from perfbench.history.record import resolve_url
from perfbench.plan.run_plan import plan_run
from perfbench.results.rundir import RunDir

SCENARIO = '''
"""A small MLP whose depth the commits change."""
import torch

DEPTH = {depth}  # {note}
SWEEP = {{"backend": ["eager"], "batch_size": [16], "threads": [1]}}


def build_model():
    layers = []
    for _ in range(DEPTH):
        layers += [torch.nn.Linear(256, 256), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers)


def make_batch(batch_size):
    return torch.randn(batch_size, 256)
'''
# Over this, the same model's median varied x33 between runs (load 13-15 on 2 cores): skip
MAX_LOAD_PER_CORE = 3.0
# Above this run-to-run spread of one unchanged version, load drift looks like a step
NULL_MAX_SPREAD = 1.15


@dataclass(frozen=True)
class Step:
    """Five versions of the scenario's depth: commit 3 adds the work, commit 5 restores it."""

    name: str
    fast: int  # depth before and after
    slow: int  # depth of commits 3 and 4
    least: float  # the flagged slowdown's interval must lie above this ratio
    max_spread: float  # beyond this spread of one unchanged version's records: no evidence

    @property
    def versions(self) -> list[tuple[int, str]]:
        slow = f"slow: {self.slow / self.fast:.2f}x the layers"
        return [(self.fast, "base"), (self.fast, "comment only"), (self.slow, slow),
                (self.slow, "comment"), (self.fast, "restored")]  # fmt: skip


# The 15% (23 layers against 20: every cost of the step scales with the layers), found
# only where one version's records agree within 10%; and x4, which this box's load rarely hides.
STEPS = [Step("15%", 20, 23, 1.05, 1.10), Step("x4", 2, 8, 1.5, 4 / 1.5)]


def _git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(repo),
    }  # fmt: skip
    out = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


pytestmark = pytest.mark.slow  # ten sweeps in fresh workers: ~40 s quiet, minutes loaded


@pytest.fixture(scope="module", params=STEPS, ids=[s.name for s in STEPS])
def history(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, list[str], Path, Step]:
    """The five-commit repository, swept at each commit into one store."""
    step: Step = request.param
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > MAX_LOAD_PER_CORE * cores:
        pytest.skip(f"load average {load:.1f} on {cores} cores: timings here are not evidence")
    root = tmp_path_factory.mktemp("hist")
    repo, db = root / "repo", root / "history.sqlite"
    repo.mkdir()
    _git(repo, "init", "-q")
    commits = []
    for n, (depth, note) in enumerate(step.versions):
        (repo / "scen.py").write_text(SCENARIO.format(depth=depth, note=note), encoding="utf-8")
        _git(repo, "add", "scen.py")
        _git(repo, "commit", "-q", "-m", f"v{n}: {note}")
        commits.append(_git(repo, "rev-parse", "HEAD"))
        _sweep(repo / "scen.py", root / f"run{n}")
        assert record_run(root / f"run{n}", str(db)) == 2
    return str(db), commits, repo, step


def _sweep(scenario: Path, out: Path) -> None:
    """`perfbench run` without its HTML report (10 s of this loaded box per run, and not what
    this test is about; test_store.py records through the real command)."""
    argv = ["run", str(scenario), "--budget", "0.2", "--repeat", "2", "--no-control", "-q"]
    argv += ["--setting", "warmup_s=0.05"]
    args = cli.build_parser("run").parse_args([*argv, "--out", str(out)])
    loaded = load_capturing_output(args.scenario, None)
    plan = plan_run(loaded.scenario, cli.run_request(args, argv))
    counts = run_sweep(
        loaded.scenario, plan, RunDir.create(out), Progress(True), make_executor(plan, out)
    )
    assert counts["ok"] == 2, counts


def _histories(db: str) -> list[trend.PointHistory]:
    engine = store.open_store(resolve_url(db))
    recs = store.load(engine, ["scen.py"])
    engine.dispose()
    return trend.build(recs)


def _same_version_spread(point: trend.PointHistory, step: Step) -> float:
    """max/min of eager's median within each unchanged version's records (worst version)."""
    worst = 1.0
    for depth in (step.fast, step.slow):
        values = [
            r["median_ms"]
            for pos, (d, _) in zip(point.positions, step.versions, strict=True)
            if d == depth
            for r in pos.records
        ]
        worst = max(worst, max(values) / min(values))
    return worst


def test_history_flags_exactly_the_slowdown_and_its_recovery(history, capsys) -> None:
    db, commits, repo, step = history
    (point,) = _histories(db)
    contended = sum(1 for pos in point.positions for r in pos.records if r.get("contended"))
    if contended:  # such records are never evidence (trend.evidence): nothing to find a step with
        pytest.skip(f"box too loaded: {contended} of the records were measured contended")
    spread = _same_version_spread(point, step)
    if spread > step.max_spread:
        pytest.skip(
            f"box too loaded for a {step.name} step: one unchanged version's records spread"
            f" x{spread:.2f}"
        )
    steps = findings.find_steps(point)
    assert [(s.before.commit, s.after.commit, s.regression) for s in steps] == [
        (commits[1], commits[2], True),
        (commits[3], commits[4], False),
    ], [s.describe() for s in steps]
    slow, fast = steps
    assert slow.low > step.least and fast.high < 1 / step.least  # the step and back, intervals
    assert any("worktree add" in c and commits[1] in c for c in slow.commands)
    capsys.readouterr()
    assert cli.main(["history", str(repo / "scen.py"), "--history", db]) == 0
    out = capsys.readouterr().out
    assert out.count("STEP ") == 2 and "REGRESSION" in out and commits[2][:10] in out


def test_no_step_in_ten_null_repetitions_of_real_records(history) -> None:
    db, _, _, step = history
    (point,) = _histories(db)
    spread = _same_version_spread(point, step)
    if spread > NULL_MAX_SPREAD:
        # the detector's unit is the record, and a run's `--repeat` records share its load: one
        # run that drifted as a whole, shuffled to one side, is a step it cannot tell from a real
        # one (known limitation, README: History). Measured here: x1.36 within one version.
        pytest.skip(f"box too loaded: one unchanged version's records spread x{spread:.2f}")
    recs = [r for pos in point.positions for r in pos.records]
    by_version: dict[int, list[dict]] = {step.fast: [], step.slow: []}
    for pos, (depth, _) in zip(point.positions, step.versions, strict=True):
        by_version[depth] += pos.records
    rng = random.Random(20)
    for rep in range(10):
        for depth, pool in by_version.items():
            shuffled = copy.deepcopy(pool)
            rng.shuffle(shuffled)
            for k, rec in enumerate(shuffled):  # pretend commits of two records each
                rec.update(git_commit=f"null{rep}-{depth}-{k // 2}", commit_time=k // 2)
                rec["repo_root"] = None
            (null,) = trend.build(shuffled)
            assert len(null.positions) == len(pool) // 2
            steps = findings.find_steps(null)
            assert steps == [], f"rep {rep}: {[s.describe() for s in steps]}"
    assert len(recs) == 10
