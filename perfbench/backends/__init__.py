"""Backend registry: a plain dict from name to `Backend`. A new backend is one module that
defines `BACKEND = Backend(...)`, listed below."""

from __future__ import annotations

from perfbench.backends import (
    aoti,
    compile_freezing,
    compile_variants,
    compiled,
    eager,
    fx_backend,
    int8,
    onnxruntime_backend,
    triton_backend,
)
from perfbench.backends.base import Backend, BackendNotApplicable, Prepared

BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        eager.BACKEND,
        compiled.BACKEND,
        compile_variants.REDUCE_OVERHEAD,
        compile_variants.MAX_AUTOTUNE,
        fx_backend.BACKEND,
        triton_backend.BACKEND,
        int8.BACKEND,
        int8.BACKEND_TORCH_AO,
        compile_freezing.BACKEND,
        onnxruntime_backend.BACKEND,
        aoti.BACKEND,
    )
}


def backend_names() -> tuple[str, ...]:
    return tuple(BACKENDS)


__all__ = ["BACKENDS", "Backend", "BackendNotApplicable", "Prepared", "backend_names"]
