"""The spawn rule, checked before a run starts: a script that runs a sweep at its top level must
do so under `if __name__ == "__main__":`.

perfbench measures in a worker process started with multiprocessing's "spawn" method (forking
after torch has started threads is unsafe). A spawned process imports the parent's main script
again (as `__mp_main__`) before it runs anything; a sweep started at that script's top level,
unguarded, starts again inside the worker's import, multiprocessing refuses to start a process
from there, and the worker exits with status 1 before it measures anything: the parent could only
say "the worker process died (exit code 1)" for every group. Python documents the rule under
"Safe importing of main module" (multiprocessing, "The spawn and forkserver start methods").

`require_main_guard()` finds the statement of the main script that is running (its frame at
module level) and raises `MainGuardError` naming that line and the fix when it is not inside an
`if __name__ == "__main__":` block. In the spawned worker itself (the re-import) it ends the
process at once with `REIMPORT_EXIT` before any folder is made, which the worker's parent names.
Interactive sessions (a notebook, `python -c`, a REPL) have no main file and are never refused.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import sys
from pathlib import Path
from types import FrameType

REIMPORT_EXIT = 86  # a worker that found itself re-importing an unguarded main script

FIX = (
    "perfbench measures in a worker process started with multiprocessing's 'spawn' method, "
    "which imports your main script again first; code at its top level runs again there. Put "
    'the call under `if __name__ == "__main__":` (Python\'s multiprocessing docs, "Safe '
    'importing of main module")'
)


class MainGuardError(RuntimeError):
    """A sweep was started at the top level of a script without a `__main__` guard."""


def require_main_guard(what: str = "perfbench") -> None:
    """Raise `MainGuardError` when called from the unguarded top level of the main script;
    inside a spawned worker's re-import of that script, end the process with `REIMPORT_EXIT`."""
    if _inheriting():
        os.write(2, f"perfbench: not starting {what} again inside its worker: {FIX}\n".encode())
        os._exit(REIMPORT_EXIT)  # the parent's message names the rule (worker._death_detail)
    where = unguarded_call_site()
    if where is not None:
        raise MainGuardError(f"{where}: {what} is called at the top level of the script. {FIX}")


def _inheriting() -> bool:
    """True while a spawned process imports its parent's main script (multiprocessing's own
    test for "started before the bootstrapping phase finished")."""
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def unguarded_call_site() -> str | None:
    """ "file:line" of the main script's running top-level statement when it is not under an
    `if __name__ == "__main__":` guard; None when guarded, interactive, or not found."""
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if main is None or not main_file or not str(main_file).endswith(".py"):
        return None
    frame = _module_frame(vars(main))
    if frame is None:  # the main script finished its top level (an atexit hook, a thread)
        return None
    path = Path(frame.f_code.co_filename)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, ValueError):
        return None  # cannot tell: let it run (the worker's re-import check still catches it)
    line = frame.f_lineno
    return None if _guarded(tree, line) else f"{path}:{line}"


def _module_frame(main_globals: dict[str, object]) -> FrameType | None:
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_globals is main_globals and frame.f_code.co_name == "<module>":
            return frame
        frame = frame.f_back
    return None


def _guarded(tree: ast.Module, line: int) -> bool:
    """Whether `line` lies in the body of an `if __name__ == "__main__":` block."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_test(node.test) and node.body:
            if node.body[0].lineno <= line <= (node.body[-1].end_lineno or line):
                return True
    return False


def _is_main_test(test: ast.expr) -> bool:
    """`__name__ == "__main__"`, either way round."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    texts = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and texts == ["__main__"]
