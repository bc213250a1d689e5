"""`eager`: the model as written. Also the baseline every other backend is compared against."""

from __future__ import annotations

from perfbench.backends.base import Backend, Prepared


def _prepare(model, point, example_batch, scenario) -> Prepared:
    return Prepared(model=model)


BACKEND = Backend(name="eager", description="plain PyTorch eager mode", prepare=_prepare)
