"""compile_facts: compile ids, recompilations and inductor cache hits recorded as they happen."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from perfbench.backends.compile_facts import attempt, cache_state, track_compiles


@given(st.integers(0, 50), st.integers(0, 50), st.booleans())
def test_attempt_reads_the_recompile_number(frame: int, n: int, brackets: bool) -> None:
    cid = f"{frame}/{n}"
    assert attempt(f"[{cid}]" if brackets else cid) == n


def test_cache_state() -> None:
    assert cache_state({}) == "none"
    assert cache_state({"fxgraph_cache_hit": 2, "autograd_cache_hit": 2}) == "hit"
    assert cache_state({"autograd_cache_hit": 1}) == "hit"  # AOT cache hit skips inductor's
    assert cache_state({"fxgraph_cache_hit": 1, "fxgraph_cache_miss": 1}) == "miss"
    assert cache_state({"fxgraph_cache_bypass": 1}) == "bypass"


@pytest.mark.slow
def test_miss_then_hit_then_recompile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh cache folder: the first compile misses, the same compile after a reset hits, and a
    new batch size recompiles frame 0 (`0/1`). A bare Linear has no C++ kernel, so this is fast."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    model = nn.Linear(8, 8).eval()
    infos = []
    for _ in range(2):
        torch._dynamo.reset()
        info: dict = {}
        track_compiles(info)
        with torch.no_grad():
            torch.compile(model)(torch.randn(4, 8))
        infos.append(info)
    assert infos[0]["compiles"] == 1 and infos[0]["recompiles"] == 0
    assert infos[0]["inductor_cache"]["state"] == "miss"
    assert infos[1]["inductor_cache"]["state"] == "hit"
    torch._dynamo.reset()
    info = {}
    track_compiles(info)
    compiled = torch.compile(model)
    with torch.no_grad():
        compiled(torch.randn(4, 8))
        compiled(torch.randn(5, 8))
    assert info["compiles"] == 2 and info["recompiles"] == 1
    assert info["compile_ids"] == ["0/0", "0/1"]
    torch._dynamo.reset()
    with torch.no_grad():  # reset removed the callback: nothing more is counted into info
        torch.compile(model)(torch.randn(4, 8))
    assert info["compiles"] == 2
