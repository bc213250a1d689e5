"""What makes two records comparable: the machine fingerprint, the scenario's identity, its commit.

A machine fingerprint is a short hash of what decides a timing on that machine: CPU model, core
count, GPU names and driver (from run.json's environment). Two runs on the same hardware with the
same torch and perfbench versions are comparable; a trend never mixes others unless asked
(`--across-machines`), since a different CPU is a step that no commit made.

The scenario is keyed by its path inside its git repository (so two checkouts of one repository,
such as CI clones in different folders, share a history) or by its absolute path outside git; its
source is hashed so an edit outside git still shows. The commit is the one run.json recorded when
the run started; `dirty` is whether the repository had uncommitted changes at recording time
(None where that cannot be known, e.g. for an imported folder).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def machine_fingerprint(env: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(12-hex-digit hash, the facts hashed) from run.json["environment"]."""
    facts = {
        "cpu": env.get("cpu"),
        "cores": env.get("cpu_count"),
        "gpus": [g.get("name") if isinstance(g, dict) else str(g) for g in env.get("gpus") or []],
        "driver": env.get("driver"),
    }
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:12]
    return digest, facts


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@dataclass(frozen=True)
class ScenarioIdentity:
    """Where a scenario lives and which version of it ran."""

    key: str  # path inside its git repository, or absolute path outside git
    repo_root: str | None
    source_hash: str | None
    commit: str | None
    commit_time: int | None
    dirty: bool | None


def scenario_key(path: Path) -> tuple[str, str | None]:
    """(key, repo root): the path relative to its repository's top, else the absolute path."""
    path = path.resolve()
    folder = path.parent if path.parent.is_dir() else None
    root = _git(folder, "rev-parse", "--show-toplevel") if folder else None
    if root:
        try:
            return path.relative_to(Path(root).resolve()).as_posix(), root
        except ValueError:
            pass
    return path.as_posix(), None


def identify(path: Path, commit: str | None, live: bool) -> ScenarioIdentity:
    """The scenario's identity for a run that recorded `commit`. `live`: the run just finished
    here, so the working tree's dirty flag is meaningful; an imported folder has dirty=None."""
    key, root = scenario_key(path)
    source: bytes | None = None
    commit_time = dirty = None
    if root and commit:
        shown = _git(Path(root), "show", "-s", "--format=%ct", commit)
        commit_time = int(shown) if shown and shown.isdigit() else None
        if live and _git(Path(root), "rev-parse", "HEAD") == commit:
            status = _git(Path(root), "status", "--porcelain", "--untracked-files=no")
            dirty = None if status is None else bool(status)
    if path.is_file() and (live or not (root and commit)):
        source = path.read_bytes()
    elif root and commit:
        text = _git(Path(root), "show", f"{commit}:{key}")
        source = text.encode() if text is not None else None
    digest = hashlib.sha256(source).hexdigest()[:16] if source is not None else None
    return ScenarioIdentity(key, root, digest, commit, commit_time, dirty)


def commit_order(repo_root: str | None, commits: set[str]) -> dict[str, int]:
    """Topological position of each known commit in its repository (oldest first); empty where
    the repository is not reachable (callers fall back to commit time, then run time)."""
    if not repo_root or not Path(repo_root).is_dir() or not commits:
        return {}
    listing = _git(Path(repo_root), "rev-list", "--topo-order", "--reverse", "--all")
    if not listing:
        return {}
    order = {sha: i for i, sha in enumerate(listing.split())}
    return {c: order[c] for c in commits if c in order}
