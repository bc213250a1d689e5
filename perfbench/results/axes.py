"""Sweep axes, their valid values, and the frozen `Point` that keys one measurement.

Values are validated at the edge (CLI, TOML, scenario SWEEP) so a typo is a usage error that lists
the valid choices, never a silently skipped point.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class Amp(str, enum.Enum):
    """Autocast setting of a point: `off` runs in float32."""

    OFF = "off"
    BF16 = "bf16"
    FP16 = "fp16"


class Mode(str, enum.Enum):
    """`infer` runs the forward under no_grad; `train` runs forward, loss, backward, optimizer step."""

    INFER = "infer"
    TRAIN = "train"


class Device(str, enum.Enum):
    CPU = "cpu"
    CUDA = "cuda"


class MemoryFormat(str, enum.Enum):
    """Layout of the model's 4-D tensors (weights and inputs); eager runs in the same layout."""

    CONTIGUOUS = "contiguous"
    CHANNELS_LAST = "channels_last"


class Shapes(str, enum.Enum):
    """`static`: compile backends specialise on the point's shapes; `dynamic`: they compile with
    symbolic shapes (torch.compile dynamic=True), so the cost of dynamic shapes is measured."""

    STATIC = "static"
    DYNAMIC = "dynamic"


class AxisError(ValueError):
    """A sweep value that is not valid for its axis (a usage error: exit status 2)."""


AXES: tuple[str, ...] = (
    "backend",
    "batch_size",
    "threads",
    "amp",
    "pin_memory",
    "num_workers",
    "mode",
    "device",
    "memory_format",
    "shapes",
)


@dataclass(frozen=True, order=True)
class Point:
    """One point of a sweep: the hashable key of a measurement (like torch.utils.benchmark's TaskSpec)."""

    backend: str = "eager"
    batch_size: int = 32
    threads: int = 1
    amp: Amp = Amp.OFF
    pin_memory: bool = False
    num_workers: int = 0
    mode: Mode = Mode.INFER
    device: Device = Device.CPU
    memory_format: MemoryFormat = MemoryFormat.CONTIGUOUS
    shapes: Shapes = Shapes.STATIC

    def as_dict(self) -> dict[str, object]:
        """Plain values (enums as strings), in axis order, for CSV rows and JSON."""
        return {name: plain(getattr(self, name)) for name in AXES}

    def label(self, sep: str = "_") -> str:
        """Short human-readable name, also used for NVTX ranges and file names (see point_label)."""
        return point_label(self.as_dict(), sep)

    @classmethod
    def from_row(cls, row: Any) -> Point:
        """The point a results row (`perfbench.results.row.Row`, read by attribute: no import, as row.py
        imports this module) measured; every axis must be in the row (an older results.csv
        may lack some: then it names the first one missing)."""
        values = {axis: getattr(row, axis) for axis in AXES}
        missing = [axis for axis, value in values.items() if value is None or value == ""]
        if missing:
            raise AxisError(f"results row {row.point_id} has no value for axis {missing[0]!r}")
        return cls(
            backend=values["backend"],
            batch_size=values["batch_size"],
            threads=values["threads"],
            amp=_parse_enum(Amp, values["amp"]),  # type: ignore[arg-type]
            pin_memory=values["pin_memory"],
            num_workers=values["num_workers"],
            mode=_parse_enum(Mode, values["mode"]),  # type: ignore[arg-type]
            device=_parse_enum(Device, values["device"]),  # type: ignore[arg-type]
            memory_format=_parse_enum(MemoryFormat, values["memory_format"]),  # type: ignore[arg-type]
            shapes=_parse_enum(Shapes, values["shapes"]),  # type: ignore[arg-type]
        )

    def replace(self, **changes: object) -> Point:
        return dataclasses.replace(self, **changes)


def point_label(values: Mapping[str, object], sep: str = "_") -> str:
    """The one short name of a point, from a Point's or a results row's axis values: the axes that
    usually vary first, pin_memory and num_workers only when not default. A value missing from the
    row (an older results.csv) is left out; `sep` is "_" in file names, " " in the report."""
    parts = [_text(values.get("backend")), f"bs{_int_text(values.get('batch_size'))}"]
    parts.append(f"t{_int_text(values.get('threads'))}")
    parts.append(f"amp-{_text(values.get('amp'))}")
    parts += [_text(values.get("mode")), _text(values.get("device"))]
    if values.get("pin_memory") is True:
        parts.append("pin")
    workers = _int_text(values.get("num_workers"))
    if workers not in ("0", ""):
        parts.append(f"w{workers}")
    if _text(values.get("memory_format")) == "channels_last":
        parts.append("cl")
    if _text(values.get("shapes")) == "dynamic":
        parts.append("dyn")
    return sep.join(p for p in parts if p)


def _text(value: object) -> str:
    return "" if value is None else str(plain(value))


def _int_text(value: object) -> str:
    """64, 64.0 and "64" all read "64" (a table column with a gap holds floats)."""
    try:
        return str(int(float(value)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return _text(value)


def plain(value: object) -> object:
    """An axis value as written on the command line and in JSON: enums as their string."""
    return value.value if isinstance(value, enum.Enum) else value


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise AxisError(f"expected a boolean (true/false), got {text!r}")


def _parse_positive_int(text: str, *, allow_zero: bool = False) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise AxisError(f"expected an integer, got {text!r}") from None
    if value < 0 or (value == 0 and not allow_zero):
        raise AxisError(f"expected an integer {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value


def _parse_enum(enum_type: type[enum.Enum], text: object) -> enum.Enum:
    if isinstance(text, enum_type):
        return text
    try:
        return enum_type(str(text).strip().lower())
    except ValueError:
        valid = ", ".join(m.value for m in enum_type)
        raise AxisError(f"{text!r} is not one of: {valid}") from None


_INT_AXES = {"batch_size": False, "threads": False, "num_workers": True}  # True: 0 is valid
_ENUM_AXES: dict[str, type[enum.Enum]] = {
    "amp": Amp,
    "mode": Mode,
    "device": Device,
    "memory_format": MemoryFormat,
    "shapes": Shapes,
}


def parse_axis_value(axis: str, raw: object, valid_backends: tuple[str, ...]) -> object:
    """Turn one raw value (from CLI text, TOML or a scenario's SWEEP) into the axis's typed value."""
    try:
        if axis == "backend":
            name = str(raw).strip()
            if name not in valid_backends:
                raise AxisError(f"{name!r} is not one of: {', '.join(valid_backends)}")
            return name
        if axis in _INT_AXES:
            return _parse_positive_int(raw, allow_zero=_INT_AXES[axis])  # type: ignore[arg-type]
        if axis == "pin_memory":
            return raw if isinstance(raw, bool) else _parse_bool(str(raw))
        if axis in _ENUM_AXES:
            return _parse_enum(_ENUM_AXES[axis], raw)
    except AxisError as err:
        raise AxisError(f"axis {axis!r}: {err}") from None
    raise AxisError(f"unknown axis {axis!r}; valid axes: {', '.join(AXES)}")
