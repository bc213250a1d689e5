"""Sweep axes, their valid values, and the frozen `Point` that keys one measurement.

Values are validated at the edge (CLI, TOML, scenario SWEEP) so a typo is a usage error that lists
the valid choices, never a silently skipped point.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass


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

    def label(self) -> str:
        """Short human-readable name, also used for NVTX ranges and file names."""
        d = self.as_dict()
        parts = [f"{d['backend']}", f"bs{d['batch_size']}", f"t{d['threads']}", f"amp-{d['amp']}"]
        parts += [f"{d['mode']}", f"{d['device']}"]
        if self.pin_memory:
            parts.append("pin")
        if self.num_workers:
            parts.append(f"w{self.num_workers}")
        if self.memory_format is not MemoryFormat.CONTIGUOUS:
            parts.append("cl")
        if self.shapes is not Shapes.STATIC:
            parts.append("dyn")
        return "_".join(parts)

    def replace(self, **changes: object) -> Point:
        return dataclasses.replace(self, **changes)


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


def parse_axis_value(axis: str, raw: object, valid_backends: tuple[str, ...]) -> object:
    """Turn one raw value (from CLI text, TOML or a scenario's SWEEP) into the axis's typed value."""
    try:
        if axis == "backend":
            name = str(raw).strip()
            if name not in valid_backends:
                raise AxisError(f"{name!r} is not one of: {', '.join(valid_backends)}")
            return name
        if axis == "batch_size":
            return _parse_positive_int(raw)  # type: ignore[arg-type]
        if axis == "threads":
            return _parse_positive_int(raw)  # type: ignore[arg-type]
        if axis == "num_workers":
            return _parse_positive_int(raw, allow_zero=True)  # type: ignore[arg-type]
        if axis == "pin_memory":
            return raw if isinstance(raw, bool) else _parse_bool(str(raw))
        if axis == "amp":
            return _parse_enum(Amp, raw)
        if axis == "mode":
            return _parse_enum(Mode, raw)
        if axis == "device":
            return _parse_enum(Device, raw)
        if axis == "memory_format":
            return _parse_enum(MemoryFormat, raw)
        if axis == "shapes":
            return _parse_enum(Shapes, raw)
    except AxisError as err:
        raise AxisError(f"axis {axis!r}: {err}") from None
    raise AxisError(f"unknown axis {axis!r}; valid axes: {', '.join(AXES)}")
