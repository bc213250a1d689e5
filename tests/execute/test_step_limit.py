"""#19 item 5: no point runs unbounded. Without --timeout a default limit scales with the step
(and a floor covers builds and compiles); a heartbeat tells what a long phase does; threads the
scenario starts in the measuring process are named as such in the contention flag."""

from __future__ import annotations

import json
import re
import threading
import time

import pandas as pd

from perfbench.execute.heartbeat import Heartbeat
from perfbench.measure.contention import judge_contention, snapshot
from perfbench.measure.group import Activity
from perfbench.measure.step_limit import STEP_MIN_S, current_limit
from perfbench.measure.timing import TimingSettings
from tests.cli.test_cli_run import perfbench


def test_the_default_limit_scales_with_the_slowest_step():
    timing = TimingSettings()
    assert current_limit(7.0, timing, True, 1.0)[0] == 7.0  # --timeout wins
    assert current_limit(None, None, True, 1.0)[0] is None  # nothing asked: no limit
    phase, why = current_limit(None, timing, False, 1.0)
    assert phase == timing.timeout_floor_s and "--setting timeout_floor_s" in why
    assert current_limit(None, timing, True, 0.0)[0] == timing.timeout_floor_s  # no step timed yet
    assert current_limit(None, timing, True, 0.01)[0] == STEP_MIN_S
    slow, why = current_limit(None, timing, True, 3.0)
    assert slow == 150.0 and "50x the slowest step so far" in why


def test_activity_measures_the_slowest_step_between_steps_only():
    act = Activity()
    act.begin(1, "preparing x")
    time.sleep(0.05)  # a phase: not a step
    act.begin(1)
    assert act.step_facts() == (True, 0.0)
    time.sleep(0.03)
    act.begin(2)  # arms alternate: the step of point 1 was ~30 ms
    is_step, slowest = act.step_facts()
    assert is_step and 0.025 <= slowest < 0.05
    act.begin(2, "recording")
    assert act.step_facts()[0] is False
    act.idle()
    assert act.step_facts() == (False, 0.0)


def test_heartbeat_says_what_runs_and_for_how_long():
    now = [0.0]
    said: list[str] = []
    beat = Heartbeat(said.append, every=10, clock=lambda: now[0])
    beat.tick(5, 60, True)  # no phase yet
    beat.phase("timing 3 arms: 30 rounds")
    now[0] = 9.0
    beat.tick(9, 60, True)
    assert said == []
    now[0] = 12.0
    beat.tick(12, 60.0, True)
    assert said == ["still timing 3 arms: 30 rounds: 12 s so far; one step has run 12 s of its 60 s limit"]  # fmt: skip
    now[0] = 15.0
    beat.tick(1, 60, True)  # not again before another 10 s
    assert len(said) == 1


def test_the_scenarios_own_threads_are_named_not_other_processes():
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    start = snapshot()
    worker = threading.Thread(target=spin, name="scenario-prefetcher")
    worker.start()
    try:
        time.sleep(1.0)
        end = snapshot()  # while it lives: a thread that ended is no longer in /proc
    finally:
        stop.set()
        worker.join()
    c = judge_contention(start, end, cores_wanted=1)
    why = [r for r in c.reasons if "own threads" in r]
    assert c.contended and why and "scenario-prefetcher" in why[0]
    assert c.as_dict()["own_threads_cores"] > 0.25
    assert not any("scenario-prefetcher" in r for r in c.reasons if "other processes" in r)


# bs4: from the 30th call a thread holds the GIL (a regex that backtracks for ages) and the
# measuring thread never runs again; bs2 is measured first and must be kept
STARVES = """
import re, threading
import torch
from torch import nn

SWEEP = {"backend": ["eager"], "batch_size": [2, 4], "threads": [1]}
calls = 0

def build_model():
    return nn.Linear(8, 2)

def make_batch(batch_size):
    return torch.randn(batch_size, 8)

def forward(model, batch):
    global calls
    if batch.shape[0] == 4:
        calls += 1
        if calls == 30:
            starve = lambda: re.match(r"(a+)+$", "a" * 60 + "b")
            threading.Thread(target=starve, name="starver", daemon=True).start()
    return model(batch)
"""


def test_a_gil_starving_thread_is_stopped_by_the_default_limit(write_scenario, tmp_path):
    out = tmp_path / "run"
    # a 12 s floor: the heartbeat (every ~10 s) speaks once before the limit stops the step
    flags = ("--budget", "0.05", "--setting", "timeout_floor_s=12")
    proc = perfbench("run", str(write_scenario(STARVES)), "--out", str(out), *flags)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    df = pd.read_csv(out / "results.csv", keep_default_na=False)
    status = dict(zip(df.batch_size, df.status, strict=True))
    assert status == {2: "ok", 4: "timeout"}  # the earlier row is kept
    error = df.error[df.batch_size == 4].iloc[0]
    assert re.search(r"exceeded the default step limit of 12 s \(50x the slowest step", error)
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert re.search(
        r"\.\.\. still .*: 1\d s so far; one step has run \d+ s of its 12 s limit", proc.stdout
    )
    assert settings["timeout_floor_s"] == 12 and settings["timeout_factor"] == 50
    command = df.command[df.batch_size == 4].iloc[0]
    assert "--setting timeout_floor_s=12" in command and "--setting timeout_factor=50" in command
