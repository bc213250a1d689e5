"""Every design-document reference in the repository points at a file that exists.

Docstrings and kernels/BENCHMARKS.md used to cite a "DESIGN.md" that was never in the repository;
the design page is docs/design.md. A reference to a `docs/...` path must name an existing file,
an upper-case design-document name must have a file behind it, and "docs/design.md rule N" must
name one of the page's numbered measurement rules.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("perfbench", "kernels", "scenarios", "tests", "scripts", "docs")
SUFFIXES = {".py", ".md", ".toml", ".sh", ".j2", ".txt", ".cfg"}
SELF = Path(__file__).resolve()

DOCS_PATH = re.compile(r"(?<![\w/.])docs/[\w./-]*\w")
# the upper-case name alone, as in "see DESIGN.md", "DESIGN rule 7", "DESIGN's H100 numbers"
UPPER_DESIGN = re.compile(r"\bDESIGN(?:\.md)?\b")
RULE_REF = re.compile(r"docs/design\.md,? rules? (\d+)")


def _files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "pyproject.toml"]
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in SUFFIXES and "__pycache__" not in path.parts and path != SELF:
                files.append(path)
    return [f for f in files if f.is_file()]


def _hits(pattern: re.Pattern[str]) -> list[tuple[Path, int, re.Match[str]]]:
    out = []
    for path in _files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            out += [(path, number, m) for m in pattern.finditer(line)]
    return out


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_docs_paths_exist() -> None:
    missing = [
        f"{_where(p, n)}: {m.group(0)}"
        for p, n, m in _hits(DOCS_PATH)
        if not (ROOT / m.group(0).rstrip(".")).exists()
    ]
    assert not missing, f"references to files not in the repository: {missing}"


def test_no_reference_to_a_missing_design_file() -> None:
    if (ROOT / "DESIGN.md").exists():
        return
    stale = [f"{_where(p, n)}: {m.group(0)}" for p, n, m in _hits(UPPER_DESIGN)]
    assert not stale, f"DESIGN.md is not in the repository (the page is docs/design.md): {stale}"


def test_rule_numbers_exist_in_the_design_page() -> None:
    page = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    rules = {int(n) for n in re.findall(r"^(\d+)\. ", page, flags=re.MULTILINE)}
    assert rules >= {1, 7}, "the design page lists its measurement rules as '1. ...'"
    bad = [
        f"{_where(p, n)}: rule {m.group(1)}"
        for p, n, m in _hits(RULE_REF)
        if int(m.group(1)) not in rules
    ]
    assert not bad, f"rules the design page does not have: {bad}"
