"""`perfbench bisect GOOD BAD -- SCENARIO ...`: prints what perfbench.history.bisect found."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from perfbench.history.bisect import _git, bisect, commit_path, run_measure


def bisect_main(good: str, bad: str, run_args: list[str], ends: int) -> int:
    """The CLI: prints the answer; 0 found, 2 when there is nothing to bisect."""
    repo = Path(_git(Path.cwd(), "rev-parse", "--show-toplevel"))
    args = run_args[1:] if run_args[:1] == ["--"] else run_args
    if not args:
        print("perfbench bisect: give the run arguments after --", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="perfbench-bisect-") as tmp:
        try:
            result = bisect(commit_path(repo, good, bad), run_measure(repo, args, Path(tmp)), ends)
        except ValueError as err:
            print(f"perfbench bisect: {err}", file=sys.stderr)
            return 2
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(Path(tmp) / "worktree")],
                           cwd=repo, capture_output=True, check=False)  # fmt: skip
    word = "confirmed" if result.confirmed else "NOT confirmed by the interleaved reruns"
    print(
        f"first bad commit: {result.first_bad} (last good {result.last_good}); eager time "
        f"x{result.ratio:.3f} (95% CI {result.low:.3f}-{result.high:.3f}) over {ends} interleaved "
        f"reruns of each: {word}; {result.probes} commits probed"
    )
    return 0
