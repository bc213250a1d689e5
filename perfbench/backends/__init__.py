"""Backend registry: a plain dict from name to `Backend`. A new backend is one module that
defines `BACKEND = Backend(...)`, listed below."""

from __future__ import annotations

from perfbench.backends import compiled, eager
from perfbench.backends.base import Backend, Prepared

BACKENDS: dict[str, Backend] = {b.name: b for b in (eager.BACKEND, compiled.BACKEND)}


def backend_names() -> tuple[str, ...]:
    return tuple(BACKENDS)


__all__ = ["BACKENDS", "Backend", "Prepared", "backend_names"]
