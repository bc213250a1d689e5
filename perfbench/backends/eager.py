"""`eager`: the model as written. Also the baseline every other backend is compared against."""

from __future__ import annotations

from perfbench.backends.base import Backend, Prepared


def _prepare(model, point, example_batch, scenario) -> Prepared:
    return Prepared(model=model)


# shapes_axis: eager runs the same at shapes=static and dynamic, the baseline of both
BACKEND = Backend(
    name="eager",
    description="plain PyTorch eager mode",
    prepare=_prepare,
    shapes_axis=True,
    reuses_weights=True,
)
