"""What the advisor says: one `Finding` per thing worth knowing, with its evidence and the command
that tests it. Kept apart from the rules so the report and the CLI only need this module."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

# priority: 0 the answer to the sweep's question (advisor/answer.py), 1 a measured loss to act on
# now, 2 worth trying, 3 for information
PRIORITY_NAMES = {0: "answer", 1: "act", 2: "try", 3: "note"}


@dataclass(frozen=True)
class Finding:
    """One finding. `sentence` states it; `evidence` holds the numbers and where each came from
    (results.csv columns, run.json facts, a diff CSV); `command` is what to run next to test it.
    `value` orders findings of one priority: the milliseconds per step (or seconds of cold start)
    at stake, larger first."""

    rule: str
    sentence: str
    evidence: tuple[str, ...]
    command: str
    priority: int = 2
    value: float = 0.0
    points: tuple[str, ...] = field(default_factory=tuple)
    # findings of one rule with the same non-empty group (e.g. the backend) are one finding told
    # at its most valuable point, the other points listed in its evidence
    group: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "evidence": list(self.evidence), "points": list(self.points)}


def ranked(findings: Iterable[Finding]) -> list[Finding]:
    """Most valuable first: by priority, then by value at stake; similar findings merged."""
    return sorted(merge_similar(findings), key=lambda f: (f.priority, -f.value, f.rule))


def merge_similar(findings: Iterable[Finding], max_listed: int = 6) -> list[Finding]:
    """One finding per (rule, group): the most valuable (highest priority, then value) speaks,
    and the points where the others fired are added to its evidence."""
    out: list[Finding] = []
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        if f.group:
            groups.setdefault((f.rule, f.group), []).append(f)
        else:
            out.append(f)
    for similar in groups.values():
        similar.sort(key=lambda f: (f.priority, -f.value))
        head, rest = similar[0], similar[1:]
        if not rest:
            out.append(head)
            continue
        others = [p for f in rest for p in f.points if p not in head.points]
        others = list(dict.fromkeys(others))
        listed = "; ".join(others[:max_listed]) + (" ..." if len(others) > max_listed else "")
        note = f"the same finding at {len(rest)} more setting(s): {listed}"
        out.append(replace(head, evidence=(*head.evidence, note), points=(*head.points, *others)))
    return out


def format_findings(findings: list[Finding], limit: int | None = None) -> str:
    """Plain text for the terminal at the end of a run: a numbered line per finding, its evidence
    indented below it, then the command to try. Empty string when there is nothing to say."""
    if not findings:
        return ""
    shown = findings if limit is None else findings[:limit]
    lines = [f"findings ({len(findings)}, most valuable first):"]
    for i, f in enumerate(shown, 1):
        lines.append(f"{i:>2}. [{PRIORITY_NAMES.get(f.priority, f.priority)}] {f.sentence}")
        lines += [f"      - {e}" for e in f.evidence]
        if f.command:
            lines.append(f"      try: {f.command}")
    if len(shown) < len(findings):
        lines.append(f"    ... {len(findings) - len(shown)} more in the report")
    return "\n".join(lines)
