"""Kernel tests run on the Triton CPU interpreter when there is no GPU.

TRITON_INTERPRET must be set before `triton.jit` decorates the kernels, so it is set here, before
any perfbench_kernels module is imported by the tests of this folder.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest

try:
    import triton  # noqa: F401
except Exception as err:  # any import failure means the kernels cannot run here
    pytest.skip(
        f"tests/kernels need triton ({type(err).__name__}: {err}); pip install -e '.[dev]'",
        allow_module_level=True,
    )


@pytest.fixture(autouse=True, scope="module")
def _kernel_default_device():
    """Tensors the tests create land where the kernels run (module scope: hypothesis-safe)."""
    from tests.kernels.common import DEVICE

    with torch.device(DEVICE):
        yield
