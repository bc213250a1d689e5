"""`perfbench bisect`: the search and its interleaving with a stand-in measurement (timing is the
acceptance test's job), and the git plumbing on a real repository."""

from __future__ import annotations

import math
import random
import subprocess
from pathlib import Path

import pytest

from perfbench.cli import main as cli
from perfbench.history.bisect import bisect, commit_path

COMMITS = [f"c{i}" for i in range(10)]


def _measure(first_bad: int, calls: list[str], step: float = 2.0):
    rng = random.Random(0)

    def measure(commit: str) -> float:
        calls.append(commit)
        slow = COMMITS.index(commit) >= first_bad
        return math.log(step if slow else 1.0) + rng.gauss(0, 0.02)

    return measure


def test_bisect_finds_the_first_bad_commit_with_interleaved_ends() -> None:
    calls: list[str] = []
    result = bisect(COMMITS, _measure(6, calls), ends=3)
    assert (result.last_good, result.first_bad, result.confirmed) == ("c5", "c6", True)
    assert 1.8 < result.low < result.ratio < result.high < 2.2
    assert calls[:6] == ["c0", "c9"] * 3  # the ends, interleaved
    assert calls[-6:] == ["c5", "c6"] * 3  # the final call, interleaved
    assert result.probes == len(calls) - 12 <= math.ceil(math.log2(len(COMMITS)))


def test_bisect_refuses_ends_that_do_not_differ() -> None:
    with pytest.raises(ValueError, match="nothing to bisect"):
        bisect(COMMITS, _measure(6, [], step=1.0), ends=3)


def test_commit_path_on_a_real_repository(tmp_path: Path, capsys, monkeypatch) -> None:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # fmt: skip
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, env=env, check=True)
    shas = []
    for n in range(4):
        (tmp_path / "s.py").write_text(f"V = {n}\n", encoding="utf-8")
        subprocess.run(["git", "add", "s.py"], cwd=tmp_path, env=env, check=True)
        subprocess.run(["git", "commit", "-qm", f"v{n}"], cwd=tmp_path, env=env, check=True)
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True)
        shas.append(out.stdout.decode().strip())
    assert commit_path(tmp_path, shas[0], shas[3]) == shas
    with pytest.raises(ValueError, match="not a descendant"):
        commit_path(tmp_path, shas[3], shas[0])
    monkeypatch.chdir(tmp_path)
    assert cli.main(["bisect", shas[0], shas[3]]) == 2
    assert "give the run arguments after --" in capsys.readouterr().err
    assert cli.main(["bisect", shas[3], shas[0], "--", "s.py"]) == 2
    assert "not a descendant" in capsys.readouterr().err
