"""`--executor ray` on a local two-node Ray cluster started by the tests (Ray's own test utility).

Every Ray test shares one cluster (module scope: starting one costs ~6 s here). Each node declares
two CPUs and one timing slot, so two groups run at once, one per node, and a node never times two.
The usage tests at the top start nothing.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from perfbench.execute.ray.driver import SLOT
from perfbench.execute.runner import LocalExecutor, run_sweep
from perfbench.plan.run_plan import RunRequest, plan_run
from perfbench.plan.sweep import ConfigError
from perfbench.results.rundir import RunDir
from perfbench.scenario.loading import load_scenario

# A scenario that imports a sibling module and reads a data file (both must travel with the
# task), with a point of every status: ok (1), failed (2), worker killed (3), hung (4), and
# skipped (fp16 on a CPU).
HELPER = "def hidden():\n    return 32\n"
SCENARIO = """
import os
import time
from pathlib import Path

import torch
from torch import nn

from helper_layers import hidden

SCALE = float((Path(__file__).parent / "scale.txt").read_text())
SWEEP = {"batch_size": [1, 2, 3, 4], "amp": ["off", "fp16"], "threads": [1]}


def build_model():
    return nn.Sequential(nn.Linear(16, hidden()), nn.ReLU(), nn.Linear(hidden(), 4))


def make_batch(batch_size):
    return torch.randn(batch_size, 16) * SCALE


def forward(model, batch):
    n = batch.shape[0]
    if n == 2:
        raise ValueError("batch of two is not supported")
    if n in DIE_AT:
        os._exit(3)
    if n in HANG_AT:
        time.sleep(120)
    return model(batch)
"""


def write_scenario(
    folder: Path, die_at: tuple = (3,), hang_at: tuple = (4,), **sweep: list
) -> Path:
    """The scenario above in `folder`, with its sibling module and data file; `sweep` replaces
    its SWEEP."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "helper_layers.py").write_text(HELPER)
    (folder / "scale.txt").write_text("0.5\n")
    source = SCENARIO.replace("DIE_AT", repr(die_at)).replace("HANG_AT", repr(hang_at))
    if sweep:
        source += f"\nSWEEP = { ({'threads': [1], **sweep})!r}\n"
    path = folder / "scenario.py"
    path.write_text(source)
    return path


def plan_for(path: Path, **request: object):
    defaults = {"budget_s": 0.05, "settings": ("min_reps=3", "warmup_s=0.01")}
    return plan_run(load_scenario(path), RunRequest(**{**defaults, **request}))


# --- usage: nothing starts -------------------------------------------------------------------


def test_ray_not_installed_is_a_usage_error_saying_how_to_install(tmp_path, monkeypatch, capsys):
    from perfbench.cli.main import main

    path = write_scenario(tmp_path / "sc")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[ray\]'"):
        plan_for(path, executor="ray")
    assert main(["run", str(path), "--executor", "ray", "--out", str(tmp_path / "run")]) == 2
    assert "pip install -e '.[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before any folder was made


def test_ray_flags_are_checked_and_never_in_rerun_commands(tmp_path):
    path = write_scenario(tmp_path / "sc")
    with pytest.raises(ConfigError, match="--ray-address only applies with --executor ray"):
        plan_for(path, ray_address="auto")
    with pytest.raises(ConfigError, match="--flamegraph"):
        plan_for(path, executor="ray", flamegraph=True)
    plan = plan_for(path, executor="ray", ray_address="auto")
    assert plan.executor == "ray" and plan.ray_address == "auto"
    # a point reruns on one machine: the command is the local one
    assert all("--executor" not in p.command for p in plan.points)
    assert all("--ray-address" not in p.command for p in plan.points)


# --- on a two-node cluster -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes on this machine, two CPUs and one timing slot each: by CPUs alone a node
    would run two of our 1-thread groups at once, so only the slot keeps timing exclusive. 100 MB
    object store each (the machine's memory is shared with other work)."""
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 2, "resources": {SLOT: 1}, "object_store_memory": 100 * 2**20}
    c = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    c.add_node(**node)
    yield c
    c.shutdown()


def ray_run(cluster, plan, out: Path):
    from perfbench.execute.ray.executor import RayExecutor

    executor = RayExecutor(cluster.address).start(plan, out)
    run = RunDir.create(out)
    counts = run_sweep(load_scenario(Path(plan.scenario_path)), plan, run, executor=executor)
    return run, counts


def by_point(run: RunDir) -> dict:
    rows = run.read_rows()
    assert len({r.point_id for r in rows}) == len(rows), "a point was recorded twice"
    return {r.point_id: r for r in rows}


@pytest.mark.slow
def test_ray_sweep_matches_local_row_for_row(cluster, tmp_path):
    path = write_scenario(tmp_path / "sc")
    plan = plan_for(path, executor="ray", timeout_s=8.0)
    ray_rows = by_point(ray_run(cluster, plan, tmp_path / "ray")[0])
    local = RunDir.create(tmp_path / "local")
    run_sweep(load_scenario(path), plan, local, executor=LocalExecutor(plan.worker_env))
    local_rows = by_point(local)

    assert sorted(ray_rows) == sorted(local_rows) == [p.point_id for p in plan.points]
    for pid, row in ray_rows.items():
        twin = local_rows[pid]
        assert (row.status, row.group_id) == (twin.status, twin.group_id), pid
        if row.status == "ok":  # correctness: both checked against eager float32, both passed
            assert row.rel_err is not None and row.rel_err <= row.tolerance
            assert twin.rel_err is not None and twin.rel_err <= twin.tolerance
    status = {(r.batch_size, r.amp): r.status for r in ray_rows.values()}
    assert status == {
        **{(b, "fp16"): "skipped" for b in (1, 2, 3, 4)},
        (1, "off"): "ok",
        (2, "off"): "failed",
        (3, "off"): "failed",
        (4, "off"): "timeout",
    }
    errors = {r.batch_size: r.error for r in ray_rows.values() if r.amp == "off"}
    assert f"{path}:" in errors[2] and "ValueError: batch of two" in errors[2]  # user's file
    assert "died while measuring this point, twice (retried once)" in errors[3]
    assert "exceeded --timeout 8 s" in errors[4] and "never retried" in errors[4]
    killed = next(r for r in ray_rows.values() if r.batch_size == 3 and r.amp == "off")
    deaths = errors[3].split("; then ")
    assert len(deaths) == 2 and all("WorkerCrashedError" in d for d in deaths)
    assert deaths[0].split(":")[0] != deaths[1].split(":")[0], "retried on the same node"
    assert killed.extra["worker"]["attempt"] == 2
    hung = next(r for r in ray_rows.values() if r.batch_size == 4 and r.amp == "off")
    assert hung.extra["worker"]["attempt"] == 1  # a timeout is never retried

    ran = [r for r in ray_rows.values() if r.status != "skipped"]
    facts = [r.extra["worker"] for r in ran]
    assert all(r.host == f["host"] for r, f in zip(ran, facts, strict=True))
    assert all(f["working_dir"] != str(path.parent) for f in facts)  # measured from Ray's copy
    assert {f["torch"] for f in facts} == {__import__("torch").__version__}
    assert all(f["cpu_affinity"] == f["cpu_affinity"][:1] for f in facts)  # pinned to 1 core
    assert len({f["node_id"] for f in facts}) >= 2, "the sweep used one node only"
    assert sum(f["first_group_on_node"] for f in facts) >= 2  # first group on each node
    assert_no_overlap_per_node(facts)
    meta = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert meta["state"] == "complete" and meta["executor"]["name"] == "ray"
    assert len(meta["executor"]["nodes"]) >= 2


def assert_no_overlap_per_node(facts: list[dict]) -> None:
    """Each task's span (start to its last row, or to when the driver stopped it) on a node is
    disjoint from every other task's span on that node: one timed group per node at a time."""
    spans: dict[tuple[str, float], float] = {}
    for f in facts:
        key = (f["node_id"], f["started_at"])
        end = f.get("row_at") or f.get("stopped_at")
        spans[key] = max(spans.get(key, 0.0), end)
    per_node: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (node, start), end in spans.items():
        per_node[node].append((start, end))
    for node, intervals in per_node.items():
        intervals.sort()
        for (_, end), (start, _) in itertools.pairwise(intervals):
            assert end <= start, f"two groups timed at once on node {node[:8]}"


@pytest.mark.slow
def test_a_worker_with_other_versions_is_refused(cluster, tmp_path, monkeypatch):
    import perfbench.execute.ray.driver

    path = write_scenario(tmp_path / "sc", batch_size=[1])
    plan = plan_for(path, executor="ray")
    driver = {"torch": "0.0.0-driver", "perfbench": "9.9"}
    monkeypatch.setattr(perfbench.execute.ray.driver, "versions", lambda: driver)
    run, counts = ray_run(cluster, plan, tmp_path / "ray")
    (row,) = run.read_rows()
    assert counts == {"failed": 1}
    assert "refused the Ray worker" in row.error
    assert "but 0.0.0-driver on the driver" in row.error and "same torch and perfbench" in row.error


@pytest.mark.slow
def test_without_timing_slots_groups_run_one_at_a_time_with_a_warning(
    cluster, tmp_path, monkeypatch
):
    import perfbench.execute.ray.executor

    # the cluster's nodes declare perfbench_timing_slot; ask for a slot nobody declares
    monkeypatch.setattr(perfbench.execute.ray.executor, "SLOT", "perfbench_slot_nobody_declares")
    path = write_scenario(tmp_path / "sc", die_at=(), hang_at=(), batch_size=[1, 3, 4])
    run, counts = ray_run(cluster, plan_for(path, executor="ray"), tmp_path / "ray")
    assert counts == {"ok": 3}
    meta = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert "one group at a time" in meta["executor"]["timing"]
    assert "declares the perfbench_slot_nobody_declares resource" in meta["executor"]["warnings"][0]
    facts = [r.extra["worker"] for r in run.read_rows()]
    assert_no_overlap_per_node([{**f, "node_id": "the whole cluster"} for f in facts])


@pytest.mark.slow
def test_artefacts_written_on_a_worker_land_in_the_run_folder(cluster, tmp_path):
    path = write_scenario(tmp_path / "sc", die_at=(), hang_at=(), batch_size=[1])
    run, counts = ray_run(cluster, plan_for(path, executor="ray", profile=True), tmp_path / "ray")
    assert counts == {"ok": 1}
    (row,) = run.read_rows()
    trace = row.extra["profile"]["trace"]  # relative to the run folder, as in a local run
    assert (run.path / trace).is_file() and (run.path / trace).stat().st_size > 0
    from perfbench.report.page import render_report

    assert f'href="{trace}"' in render_report(run)  # the report links it


@pytest.mark.slow
def test_ctrl_c_cancels_outstanding_tasks_and_keeps_rows(cluster, tmp_path):
    import ray

    # batch 1 and 2 end at once; 3 and 4 hang, one on each node, until the driver is stopped
    path = write_scenario(tmp_path / "sc", die_at=(), hang_at=(3, 4), batch_size=[1, 2, 3, 4])
    out = tmp_path / "run"
    driver = subprocess.Popen(
        [
            *(sys.executable, "-m", "perfbench.cli.main", "run", str(path), "--executor", "ray"),
            *("--ray-address", cluster.address, "--out", str(out), "--budget", "0.05"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _data_rows(out) < 2:
            time.sleep(0.2)
        assert _data_rows(out) >= 2, "no rows before the interrupt"
        time.sleep(1.0)  # the hanging groups are running now
        driver.send_signal(signal.SIGINT)
        stdout, stderr = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, stderr[-2000:]
    meta = json.loads((out / "run.json").read_text())
    assert meta["state"] == "interrupted"
    rows = RunDir(out).read_rows()
    assert {r.batch_size: r.status for r in rows} == {1: "ok", 2: "failed"}  # kept, fsynced
    assert "interrupted: kept 2 of 4 points" in stdout
    ray.init(address=cluster.address, log_to_driver=False)
    try:  # the cancelled tasks gave their timing slots back
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and ray.available_resources().get(SLOT, 0) < 2:
            time.sleep(0.5)
        assert ray.available_resources().get(SLOT, 0) == 2
    finally:
        ray.shutdown()


def _data_rows(out: Path) -> int:
    csv = out / "results.csv"
    return max(len(csv.read_text().splitlines()) - 1, 0) if csv.exists() else 0


# --- placement and refusal, without a cluster ------------------------------------------------


def _node(node_id: str, cpus: float, slot: float = 1, gpus: float = 0, alive: bool = True) -> dict:
    resources = {"CPU": cpus, SLOT: slot, "GPU": gpus}
    return {
        "NodeID": node_id,
        "Alive": alive,
        "NodeManagerHostname": node_id,
        "Resources": resources,
    }


def test_a_group_no_node_can_take_fails_at_once_instead_of_waiting_forever():
    from perfbench.execute.ray.driver import _unplaceable

    nodes = [_node("a", 2), _node("b", 8, slot=0), _node("c", 16, alive=False)]
    assert _unplaceable(nodes, 2, False, slot=True) is None
    why = _unplaceable(nodes, 4, False, slot=True)
    assert why and "4 CPU(s) and one perfbench_timing_slot" in why and "b: CPU=8" in why
    assert "c:" not in why  # dead nodes are not offered
    assert _unplaceable(nodes, 4, False, slot=False) is None  # serial mode: no slot needed
    assert "a GPU" in (_unplaceable(nodes, 1, True, slot=True) or "")


def test_a_retry_goes_to_another_node_that_fits():
    from perfbench.execute.ray.driver import _other_node

    nodes = [_node("a", 2), _node("b", 1), _node("c", 2, alive=False), _node("d", 2)]
    assert _other_node(nodes, "a", 2, False, True) == "d"  # b too small, c dead
    assert _other_node(nodes[:2], "a", 2, False, True) is None  # none: Ray places it anywhere


def test_version_refusal_names_what_differs():
    from perfbench.execute.ray.task import version_refusal, versions

    mine = versions()
    here = {"host": "gpu7", "node_id": "abcdef123456", **mine}
    assert version_refusal(mine, here) is None
    why = version_refusal({**mine, "torch": "9.9"}, here)
    assert why and "host gpu7 (node abcdef12)" in why
    assert f"torch {mine['torch']} here but 9.9 on the driver" in why
    assert f"perfbench {mine['perfbench']}" not in why  # only what differs is named


def test_an_address_where_nothing_listens_is_a_usage_error_at_once(tmp_path, capsys):
    from perfbench.cli.main import main

    path = write_scenario(tmp_path / "sc")
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    args = ["run", str(path), "--executor", "ray", "--ray-address", f"127.0.0.1:{port}"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 2
    assert time.monotonic() - started < 30  # ray.init alone retries for minutes
    assert f"nothing answers at --ray-address 127.0.0.1:{port}" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    assert main([*args[:-1], "not-an-address", "--out", str(tmp_path / "run")]) == 2
    assert "must be auto or HOST:PORT" in capsys.readouterr().err
