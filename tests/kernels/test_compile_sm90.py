"""Every kernel compiles to an sm_90 cubin (the interpreter tests cannot show that)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import triton


def _ptxas() -> Path:
    return Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"


@pytest.mark.slow
@pytest.mark.skipif(not _ptxas().exists(), reason="this triton build ships no NVIDIA ptxas")
def test_all_kernels_compile_for_h100():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    script = Path(__file__).with_name("_compile_sm90.py")
    root = Path(__file__).parents[2]
    proc = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
