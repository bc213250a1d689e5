"""Records grouped into trends: per point, per comparable basis, in commit order.

A *point* here is a comparison group (every axis but the backend): its history shows eager's
median and each backend's speedup against eager. Only comparable records share a trend: same
machine fingerprint, torch and perfbench versions, unless `across_machines` (the basis then says
so). The x axis is the scenario repository's commit order (topological, from git, falling back to
commit time), a dirty working tree being its own position after its commit; outside git, each run
is its own position in time order.

A record is *evidence* when its point was ok and nothing was caveated: a contended record (others
took the cores it was timed on) or one judged "too noisy" is shown with its caveat and never
counts toward a step or a gate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from perfbench.history.fingerprint import commit_order

CAVEAT_VERDICTS = ("too noisy",)


@dataclass
class Position:
    """One place on a trend's x axis: a commit (or a run outside git) and its records."""

    label: str
    commit: str | None
    dirty: bool | None
    sort: tuple[Any, ...]
    repo_root: str | None = None
    records: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PointHistory:
    """The trend of one point on one comparable basis."""

    scenario: str
    point_key: str
    basis: str
    positions: list[Position]
    shown: tuple[str, ...] = ()  # the axes its label names (those that differ between points)

    @property
    def axes(self) -> dict[str, Any]:
        return json.loads(self.point_key)

    @property
    def label(self) -> str:
        axes = self.axes
        return " ".join(f"{k}={axes[k]}" for k in (self.shown or axes) if k in axes)

    @property
    def backends(self) -> list[str]:
        seen: dict[str, None] = {}
        for pos in self.positions:
            for rec in pos.records:
                seen.setdefault(rec["backend"], None)
        return sorted(seen, key=lambda b: (b != "eager", b))


def caveat(rec: dict[str, Any]) -> str | None:
    """Why a record is not evidence (None when it is)."""
    if rec.get("status") != "ok":
        return f"status {rec.get('status')}"
    if rec.get("contended"):
        return "contended: " + (rec.get("contention_note") or "others took the cores")
    if rec.get("verdict") in CAVEAT_VERDICTS:
        return f"verdict {rec['verdict']}"
    return None


def metric_value(rec: dict[str, Any]) -> float | None:
    """The trended number of a record: eager's median ms, another backend's speedup."""
    value = rec.get("median_ms") if rec["backend"] == "eager" else rec.get("speedup")
    return value if isinstance(value, float | int) and value > 0 and math.isfinite(value) else None


def evidence(pos: Position, backend: str) -> list[float]:
    """log of the trended number of this position's evidence records for `backend`."""
    out = []
    for rec in pos.records:
        value = metric_value(rec) if rec["backend"] == backend else None
        if value is not None and caveat(rec) is None:
            out.append(math.log(value))
    return out


def _basis(rec: dict[str, Any], across: bool) -> str:
    if across:
        return "across machines and versions (--across-machines): steps may be the machine's"
    return (
        f"machine {rec['machine']} {rec.get('machine_desc') or ''}, torch "
        f"{rec.get('torch_version')}, perfbench {rec.get('perfbench_version')}"
    )


def _position_key(rec: dict[str, Any]) -> str:
    if rec.get("git_commit"):
        return rec["git_commit"] + ("+dirty" if rec.get("git_dirty") else "")
    return f"run {rec.get('started_at')}"


def _positions(recs: Sequence[dict[str, Any]]) -> list[Position]:
    by_key: dict[str, Position] = {}
    for rec in recs:
        key = _position_key(rec)
        if key not in by_key:
            commit = rec.get("git_commit")
            label = (commit[:10] + ("+dirty" if rec.get("git_dirty") else "")) if commit else key
            by_key[key] = Position(label, commit, rec.get("git_dirty"), (), rec.get("repo_root"))
        by_key[key].records.append(rec)
    roots = {p.repo_root for p in by_key.values() if p.repo_root}
    order: dict[str, int] = {}
    for root in roots:
        order.update(commit_order(root, {p.commit for p in by_key.values() if p.commit}))
    for pos in by_key.values():
        first_run = min(str(r.get("started_at") or "") for r in pos.records)
        topo = order.get(pos.commit or "", math.inf)
        commit_time = pos.records[0].get("commit_time")
        commit_time = math.inf if commit_time is None else commit_time
        pos.sort = (topo, commit_time, bool(pos.dirty), first_run)
    return sorted(by_key.values(), key=lambda p: p.sort)


def matches(point_key: str, filters: Iterable[tuple[str, str]]) -> bool:
    """Whether a point's axes match every AXIS=V filter (values compared as text)."""
    axes = json.loads(point_key)
    return all(str(axes.get(a, "")).lower() == v.lower() for a, v in filters)


def build(
    recs: Sequence[dict[str, Any]],
    filters: Iterable[tuple[str, str]] = (),
    across_machines: bool = False,
) -> list[PointHistory]:
    """One PointHistory per (point, comparable basis), points in first-recorded order."""
    filters = list(filters)
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for rec in recs:
        if not matches(rec["point_key"], filters):
            continue
        basis = (
            "*"
            if across_machines
            else f"{rec['machine']}|{rec.get('torch_version')}|{rec.get('perfbench_version')}"
        )
        groups.setdefault((rec["scenario_key"], rec["point_key"], basis), []).append(rec)
    histories = [
        PointHistory(scenario, point, _basis(rs[0], across_machines), _positions(rs))
        for (scenario, point, _), rs in groups.items()
    ]
    all_axes = [h.axes for h in histories]
    varying = tuple(
        k for k in (all_axes[0] if all_axes else {}) if len({str(a.get(k)) for a in all_axes}) > 1
    )
    for history in histories:
        history.shown = varying
    return histories
