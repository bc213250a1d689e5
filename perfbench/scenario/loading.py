"""Loading a scenario file, like pytest collecting a test file.

A scenario is one Python file with `build_model()` and `make_batch(batch_size)`, plus optional
names (see docs/design.md); a KernelBench problem file is adapted into that contract (kernelbench.py).
Loading never shows a raw traceback: a syntax error, a missing function, a wrong type or an
exception raised while importing becomes a `ScenarioError` that names the file and line and says
what was wrong.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

REQUIRED = ("build_model", "make_batch")
OPTIONAL_CALLABLES = ("forward", "loss_fn", "build_optimizer", "make_dataset", "FLOPS")


class ScenarioError(Exception):
    """A scenario that cannot be used; the message names the file (and line where known)."""

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{self.path}:{line}" if line else f"{self.path}"
        super().__init__(f"{where}: {message}")


class ModelError(ScenarioError):
    """`build_model()` returned something no point can use (not an nn.Module, not float32). The
    same for every point, so the run stops at the first such row with one error (exit 2) instead
    of failing every point with it."""


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario: the user's callables plus the optional names, defaults filled in."""

    path: Path
    name: str
    build_model: Callable[[], torch.nn.Module]
    make_batch: Callable[[int], Any]
    forward: Callable[[torch.nn.Module, Any], Any]
    loss_fn: Callable[[Any, Any], torch.Tensor] | None
    build_optimizer: Callable[[Any], torch.optim.Optimizer]
    make_dataset: Callable[[], torch.utils.data.Dataset] | None
    sweep: dict[str, list[Any]]
    tolerance: float | None
    flops: Callable[[int], int] | None
    doc: str

    @property
    def can_train(self) -> bool:
        return self.loss_fn is not None


def default_forward(model: torch.nn.Module, batch: Any) -> Any:
    """`model(batch)`, `model(*batch)` or `model(**batch)` depending on the batch's type."""
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


def default_optimizer(params: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=1e-3, momentum=0.9)


def user_frame_line(path: Path, exc: BaseException) -> int | None:
    """The innermost line of `exc`'s traceback that lies in the scenario file, if any."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path.resolve():
            line = frame.lineno
    return line


def describe_exception(path: Path, exc: BaseException) -> str:
    """`file:line: ExcType: message` pointing into the scenario where the traceback passes it."""
    line = user_frame_line(path, exc)
    where = f"{path}:{line}" if line else str(path)
    return f"{where}: {type(exc).__name__}: {exc}"


def _compile_file(path: Path) -> Any:
    """The file's code object; a missing file, a wrong suffix or a syntax error is a ScenarioError."""
    if not path.is_file():
        raise ScenarioError(path, "no such file")
    if path.suffix != ".py":
        raise ScenarioError(path, "a scenario is a Python file ending in .py")
    source = path.read_text(encoding="utf-8")
    try:
        return compile(source, str(path), "exec")
    except SyntaxError as err:
        detail = f"syntax error: {err.msg}"
        if err.text:
            detail += f"\n    {err.text.rstrip()}\n    {' ' * max((err.offset or 1) - 1, 0)}^"
        raise ScenarioError(path, detail, line=err.lineno) from None


def _import_file(path: Path, code: Any) -> Any:
    """Run the code as a module registered in sys.modules; an exception while importing is a
    ScenarioError naming the line, and the half-imported module is removed."""
    folder = str(path.resolve().parent)
    if folder not in sys.path:  # sibling modules import as under `python scenario.py`, on any node
        sys.path.insert(0, folder)
    module_name = f"perfbench_scenario_{path.stem}_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling inside the scenario need this
    try:
        exec(code, module.__dict__)
    except Exception as err:
        sys.modules.pop(module_name, None)
        line = user_frame_line(path, err)
        raise ScenarioError(
            path, f"raised while importing: {type(err).__name__}: {err}", line=line
        ) from None
    return module


def load_scenario(path: str | Path) -> Scenario:
    """Import the scenario file and check the contract. Raises `ScenarioError` on any problem."""
    path = Path(path)
    module = _import_file(path, _compile_file(path))
    ns = module.__dict__
    from perfbench.scenario.kernelbench import (
        KernelBenchError,
        adapt_kernelbench,
        looks_like_kernelbench,
    )

    if looks_like_kernelbench(ns):  # Model + get_inputs + get_init_inputs + batch_size
        try:
            ns = adapt_kernelbench(path, ns)
        except KernelBenchError as err:
            raise ScenarioError(path, str(err)) from None
    missing = [name for name in REQUIRED if name not in ns]
    if missing:
        raise ScenarioError(
            path,
            f"missing required function(s): {', '.join(missing)} "
            "(a scenario defines build_model() and make_batch(batch_size))",
        )
    for name in REQUIRED + OPTIONAL_CALLABLES:
        if name in ns and not callable(ns[name]):
            raise ScenarioError(path, f"{name} must be a function, got {type(ns[name]).__name__}")

    sweep = ns.get("SWEEP", {})
    if not isinstance(sweep, dict) or not all(isinstance(k, str) for k in sweep):
        raise ScenarioError(path, f"SWEEP must be a dict of axis name -> list, got {sweep!r:.200}")
    sweep = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in sweep.items()}

    tolerance = ns.get("TOLERANCE")
    if tolerance is not None and (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, (int, float))
        or not math.isfinite(tolerance)
        or tolerance <= 0
    ):
        raise ScenarioError(path, f"TOLERANCE must be a positive number, got {tolerance!r}")

    doc = (ns.get("__doc__") or "").strip()
    return Scenario(
        path=path,
        name=path.stem,
        build_model=ns["build_model"],
        make_batch=ns["make_batch"],
        forward=ns.get("forward", default_forward),
        loss_fn=ns.get("loss_fn"),
        build_optimizer=ns.get("build_optimizer", default_optimizer),
        make_dataset=ns.get("make_dataset"),
        sweep=sweep,
        tolerance=float(tolerance) if tolerance is not None else None,
        flops=ns.get("FLOPS"),
        doc=doc,
    )


def describe_value(value: Any) -> str:
    """A short description of a value for error messages (type, and shape for tensors)."""
    if isinstance(value, torch.Tensor):
        return f"Tensor(shape={tuple(value.shape)}, dtype={value.dtype})"
    if isinstance(value, Mapping):
        return "dict{" + ", ".join(f"{k!r}: {describe_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(describe_value(v) for v in value)
        return f"{type(value).__name__}[{inner}]"
    text = repr(value)
    return f"{type(value).__name__} {text[:80]}"


def check_batch(scenario: Scenario, batch: Any, batch_size: int) -> None:
    """Refuse a batch that is not a Tensor, tuple/list or dict of Tensors, naming what it was."""

    def fail(why: str) -> None:
        raise ScenarioError(
            scenario.path,
            f"make_batch({batch_size}) {why}; it returned {describe_value(batch)}. "
            "Return a Tensor, a tuple/list of Tensors or a dict of Tensors.",
        )

    if isinstance(batch, torch.Tensor):
        items = [batch]
    elif isinstance(batch, (tuple, list)):
        items = list(batch)
    elif isinstance(batch, Mapping):
        items = list(batch.values())
    else:
        fail("did not return tensors")
        return
    if not items:
        fail("returned an empty container")
    for item in items:
        if not isinstance(item, torch.Tensor):
            fail("returned a container holding something other than a Tensor")
        if item.device.type != "cpu":
            fail(f"returned a tensor on {item.device}; batches are built on the CPU")


def probe_scenario(scenario: Scenario, batch_size: int = 2) -> None:
    """Call make_batch once at load time so a wrong return type is a load error, not N failures."""
    try:
        batch = scenario.make_batch(batch_size)
    except Exception as err:
        raise ScenarioError(
            scenario.path,
            f"make_batch({batch_size}) raised {type(err).__name__}: {err}",
            line=user_frame_line(scenario.path, err),
        ) from None
    check_batch(scenario, batch, batch_size)
