"""The spawn rule (perfbench.execute.main_guard): a script that starts a run at its unguarded top level is
refused before anything runs, naming its line and the fix, where it used to fail every group as
"the worker process died (exit code 1)". Real scripts, run in a subprocess as a user runs them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import TINY_MLP

ROOT = Path(__file__).resolve().parents[2]


def run_script(path: Path, source: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=path.parent,
    )


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.py"
    path.write_text(textwrap.dedent(TINY_MLP), encoding="utf-8")
    return path


def test_api_call_without_main_guard_names_the_rule_and_the_fix(tmp_path, scenario) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "bench.py"
    proc = run_script(
        script,
        f"""
        import perfbench

        r = perfbench.run({str(scenario)!r}, out="run", progress=False)
        print("ran", r)
        """,
    )
    assert proc.returncode == 1 and "ran" not in proc.stdout
    assert "perfbench.execute.main_guard.MainGuardError" in proc.stderr
    assert f"{script}:3: perfbench.run() is called at the top level of the script" in proc.stderr
    assert "'spawn'" in proc.stderr and 'if __name__ == "__main__":' in proc.stderr
    assert "exit code 1" not in proc.stderr
    assert not (tmp_path / "run").exists()  # refused before any folder was made


def test_cli_main_without_main_guard_exits_2_with_the_fix(tmp_path, scenario) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "bench_cli.py"
    proc = run_script(
        script,
        f"""
        import sys
        from perfbench.cli.main import main

        def go():
            return main(["run", {str(scenario)!r}, "--out", "run", "-q"])

        code = go()
        print("exit", code)
        """,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "exit 2"
    assert f"perfbench: error: {script}:7: perfbench run is called at the top level" in proc.stderr
    assert 'if __name__ == "__main__":' in proc.stderr
    assert not (tmp_path / "run").exists()


def test_guarded_calls_and_interactive_code_pass(tmp_path: Path) -> None:
    """Guarded (either spelling, nested in a function called from the guard) is not refused;
    `python -c` has no main file to re-import and is not refused either."""
    proc = run_script(
        tmp_path / "guarded.py",
        """
        from perfbench.execute.main_guard import unguarded_call_site

        def main():
            return unguarded_call_site()

        top = main()
        if __name__ == "__main__":
            print("guarded:", main())
        if "__main__" == __name__:
            print("reversed:", main())
        print("unguarded:", top)
        """,
    )
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["guarded: None", "reversed: None"], proc.stderr
    assert lines[2] == f"unguarded: {tmp_path / 'guarded.py'}:6"
    code = (
        "from perfbench.execute.main_guard import unguarded_call_site; print(unguarded_call_site())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"


def test_a_worker_that_re_imports_an_unguarded_script_is_named(tmp_path: Path) -> None:
    """The last line of defence, for a script the parent's check cannot read: the spawned worker
    stops at once in its re-import, and the parent's message names the rule, not just code 1."""
    proc = run_script(
        tmp_path / "sneaky.py",
        """
        from perfbench.execute.main_guard import require_main_guard

        if __name__ == "__mp_main__":  # only in the spawned worker's re-import of this script
            require_main_guard()

        if __name__ == "__main__":
            from perfbench.execute.worker import Worker

            w = Worker()
            w.start()
            w._proc.join(60)
            print(w._death_detail())
        """,
    )
    assert "re-imported the main script" in proc.stdout, proc.stderr
    assert "exit code 86" in proc.stdout and 'if __name__ == "__main__":' in proc.stdout
    assert "not starting perfbench again inside its worker" in proc.stderr
