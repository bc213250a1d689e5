"""The package layout holds (issue 18): no import cycle anywhere, every package imports only
packages below it, nothing outside `perfbench/cli/` parses arguments or prints, and
`perfbench --help` imports no torch.

The import graph is built from the AST of every module under perfbench/ and kernels/ (installed
as perfbench_kernels): every `import` and `from ... import`, at any depth (a lazy import inside a
function still ties the two modules together) and under `if TYPE_CHECKING:` too (a type-only
import is still a dependency of the design).

Layer order, lowest first (a package may import its own modules and any package listed before
it, never one after it):

    stats < results < scenario < backends < profiling < measure < plan < check < execute
          < {advisor, report} < analysis < history < launch < pytest_plugin < cli
          < run_result < api

`launch` (perfbench/launch.py) is the one run path that `perfbench run` and `perfbench.run()`
share, so it sits below the CLI; `run_result` and `api` (the bodies of the public Python API,
whose face is perfbench/__init__.py) sit above it: `perfbench.run(progress=True)` shows the
command line's progress lines (perfbench.cli.progress).

advisor and report share a layer: the report shows the advisor's findings (report/why.py) and
the advisor reads the report's tables (report/data.py); the two may import each other (their
modules still form no cycle). Moving report/data.py's run-folder readers down into results/
would split them; that is left for later.

`stats` (pure statistics) and `results` (Point, Row, RunDir) are the floor: they import nothing
else in perfbench, so anything (the measuring worker, a notebook, the report) can use them.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAME_LAYER = {"report": "advisor"}  # report is ranked as advisor (module docstring)
LAYERS = (
    "stats",
    "results",
    "scenario",
    "backends",
    "profiling",
    "measure",
    "plan",
    "check",
    "execute",
    "advisor",
    "analysis",
    "history",
    "launch",
    "pytest_plugin",
    "cli",
    "run_result",
    "api",
)


def _modules() -> dict[str, Path]:
    out = {}
    for folder, top in (("perfbench", "perfbench"), ("kernels", "perfbench_kernels")):
        for path in (ROOT / folder).rglob("*.py"):
            parts = [top, *path.relative_to(ROOT / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The perfbench modules `name` imports (a `from pkg import mod` counts as mod)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package[: len(package) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        for target in targets:
            while target and target not in MODULES:  # perfbench.x.y.Name -> perfbench.x.y
                target = target.rpartition(".")[0]
            if target and target != name and target not in name.split(".")[:1]:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that reach each other (strongly connected, more than one)."""
    reach = {node: _reach(graph, node) for node in graph}
    groups = {
        tuple(sorted({node} | {o for o in reach[node] if node in reach[o]}))
        for node in graph
        if node in reach[node]
    }
    return sorted(list(g) for g in groups if len(g) > 1)


def test_the_graph_sees_the_package() -> None:
    assert len(MODULES) > 80
    assert "perfbench.results.axes" in GRAPH["perfbench.results.row"]  # a known edge is found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    cycles = _cycles(GRAPH)
    detail = [
        f"{c}: " + "; ".join(f"{m} -> {sorted(GRAPH[m] & set(c))}" for m in c) for c in cycles
    ]
    assert not cycles, "import cycles:\n" + "\n".join(detail)


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "perfbench" or len(parts) < 2:
        return None  # perfbench/__init__.py (the public API may import anything) and kernels
    return SAME_LAYER.get(parts[1], parts[1])


def test_every_package_has_a_layer() -> None:
    packages = {_layer(m) for m in MODULES} - {None}
    assert packages <= set(LAYERS), f"add {sorted(packages - set(LAYERS))} to LAYERS"


def test_packages_import_only_packages_below_them() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        layer = _layer(module)
        if layer is None:
            continue
        for target in targets:
            other = _layer(target)
            if other is not None and LAYERS.index(other) > LAYERS.index(layer):
                wrong.append(f"{MODULES[module].relative_to(ROOT)} ({layer}) imports {target}")
    assert not wrong, "imports above the importer's layer:\n" + "\n".join(sorted(wrong))


@pytest.mark.parametrize("floor", ["stats", "results"])
def test_the_floor_imports_nothing_above_it(floor: str) -> None:
    allowed = set(LAYERS[: LAYERS.index(floor) + 1])
    wrong = [
        f"{m} imports {t}"
        for m, targets in GRAPH.items()
        if _layer(m) == floor
        for t in targets
        if _layer(t) not in allowed
    ]
    assert not wrong, wrong


def _argparse_and_print(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name == "argparse" for a in node.names):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: import argparse")
        if isinstance(node, ast.ImportFrom) and node.module == "argparse":
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from argparse import")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "print"
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: print()")
    return found


def test_the_checker_sees_print_and_argparse(tmp_path: Path) -> None:
    probe = ROOT / "perfbench" / "cli" / "main.py"
    assert any("argparse" in f for f in _argparse_and_print(probe))


def test_only_the_cli_parses_arguments_or_prints() -> None:
    cli = ROOT / "perfbench" / "cli"
    found = [
        hit
        for path in sorted((ROOT / "perfbench").rglob("*.py"))
        if cli not in path.parents
        for hit in _argparse_and_print(path)
    ]
    assert not found, "argparse or print outside perfbench/cli/:\n" + "\n".join(found)


def test_help_imports_no_torch() -> None:
    """`perfbench --help` stays fast: a robust proxy for its time on a loaded machine is what it
    imports (torch alone takes seconds to import); the module count is printed for the record."""
    code = (
        "import sys, contextlib, io\n"
        "from perfbench.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
        "heavy = sorted(m for m in ('torch', 'pandas', 'numpy', 'matplotlib', 'ray') "
        "if m in sys.modules)\n"
        "print(len(sys.modules), ','.join(heavy))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    assert len(out) == 1, f"--help imported {out[1]} (and {out[0]} modules in all)"
