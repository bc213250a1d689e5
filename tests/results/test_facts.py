"""Every key of a row's `extra` that a reader names is spelt once, in perfbench/results/facts.py
(issue 18): the readers (report, advisor, analysis, history, the CLI, the Python API, and execute/
where it reads rows back) write `facts.COMPILES`, never `"compiles"`.

The check walks each reader module's AST for a string literal that is a fact key's value, used
  - as the key of a read: `X.get("k")`, `X.pop("k")`, `X.setdefault("k")`, `X["k"]` (load), or
    `"k" in X`; flagged when X's source text mentions `extra`, or for any X when "k" is no
    results.csv column name (`row.get("contended")` reads the column, not the fact) and X is not
    run.json's `meta` (whose record shares a few spellings: processes, profile);
  - as an item of a tuple, list or set literal (the report's lists of keys it hides or shows),
    unless it is a column name.
A value written into another frame or dict (`bad["traceback"] = ...`) is no read of `extra`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from perfbench.results import facts
from perfbench.results.row import COLUMNS

ROOT = Path(__file__).resolve().parents[2]
READERS = (
    "perfbench/report",
    "perfbench/advisor",
    "perfbench/analysis",
    "perfbench/history",
    "perfbench/cli",
    "perfbench/execute",
    "perfbench/run_result.py",
    "perfbench/api.py",
)
CONSTANTS = {name: value for name, value in vars(facts).items() if name.isupper()}
KEYS = set(CONSTANTS.values())
READ_METHODS = ("get", "pop", "setdefault")


def _reads(node: ast.AST) -> list[tuple[ast.expr | None, ast.Constant]]:
    """(the mapping read, the literal key) pairs `node` makes; None for a collection item."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr in READ_METHODS and node.args and isinstance(node.args[0], ast.Constant):
            return [(node.func.value, node.args[0])]
    elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
        if isinstance(node.slice, ast.Constant):
            return [(node.value, node.slice)]
    elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant):
        if isinstance(node.ops[0], (ast.In, ast.NotIn)):
            return [(node.comparators[0], node.left)]
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [(None, e) for e in node.elts if isinstance(e, ast.Constant)]
    return []


def literal_fact_reads(source: str, filename: str) -> list[str]:
    """`file:line: 'key' (use facts.NAME)` for each fact key typed as a string where it is read."""
    names = {value: name for name, value in CONSTANTS.items()}
    found = []
    for node in ast.walk(ast.parse(source)):
        for target, key in _reads(node):
            if not isinstance(key.value, str) or key.value not in KEYS:
                continue
            text = "" if target is None else ast.get_source_segment(source, target) or ""
            if "extra" in text or (key.value not in COLUMNS and "meta" not in text):
                found.append(
                    f"{filename}:{key.lineno}: {key.value!r} (use facts.{names[key.value]})"
                )
    return sorted(set(found))


def _reader_modules() -> list[Path]:
    out = []
    for entry in READERS:
        path = ROOT / entry
        out += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return out


def test_the_walk_finds_the_readers() -> None:
    assert len(_reader_modules()) > 40


@pytest.mark.parametrize("path", _reader_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_readers_name_fact_keys_by_constant(path: Path) -> None:
    found = literal_fact_reads(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not found, "fact keys typed as strings:\n" + "\n".join(found)


def test_the_check_catches_a_literal_read() -> None:
    source = """
def f(row, r, meta):
    a = row.extra.get("compiles")
    b = r["extra"]["aa_control"]
    c = (r.get("extra") or {}).get("too_noisy")
    d = "estimate" in row.extra
    e = extra_of(r).get("contended")  # a column's spelling, but read from extra
    hidden = ("profile", "gpu")
    ok = row.get("contended"), row["backend"], meta["processes"], out.get("speedup")
    out["traceback"] = "written, not read"
    return a, b, c, d, e, hidden, ok
"""
    found = literal_fact_reads(source, "x.py")
    assert [line.split(":", 2)[1] for line in found] == ["3", "4", "5", "6", "7", "8", "8"]
    assert "x.py:3: 'compiles' (use facts.COMPILES)" in found


def test_every_constant_has_its_own_value() -> None:
    assert CONSTANTS, "facts.py defines no constants"
    assert all(isinstance(v, str) and v for v in CONSTANTS.values())
    repeated = {v for v in CONSTANTS.values() if list(CONSTANTS.values()).count(v) > 1}
    assert not repeated, f"two constants share a key: {sorted(repeated)}"


def test_facts_imports_nothing() -> None:
    tree = ast.parse((ROOT / "perfbench/results/facts.py").read_text(encoding="utf-8"))
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def _used_names() -> set[str]:
    """Every `facts.NAME` in perfbench/, outside facts.py itself."""
    used = set()
    for path in (ROOT / "perfbench").rglob("*.py"):
        if path == ROOT / "perfbench/results/facts.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "facts" and node.attr.isupper():
                    used.add(node.attr)
    return used


def test_no_constant_is_dead() -> None:
    used = _used_names()
    dead = sorted(set(CONSTANTS) - used)
    assert not dead, f"constants in facts.py that nothing writes or reads: {dead}"
    unknown = sorted(used - set(CONSTANTS))
    assert not unknown, f"facts.NAME used but not defined: {unknown}"
