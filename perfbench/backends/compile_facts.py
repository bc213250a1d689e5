"""What torch.compile did at run time, recorded into the backend's `info` as it happens:
how many graphs dynamo compiled, how many of those were recompilations, and whether inductor's
caches hit (a warm cache turns a 20 s compile into 1 s, which changes compile's break-even).

Dynamo calls the end-of-compile callbacks after every frame it compiles (graph breaks give one
frame each, `0/0`, `1/0`; a recompilation of frame 0 is `0/1`), and again for a lazily compiled
backward. The cache counters are process-wide and cumulative (`torch._dynamo.reset()` does not
clear them), so each callback stores the difference from the moment `track_compiles` was called.
`torch._dynamo.reset()` removes the callback, which scopes it to one point: the harness resets
dynamo after every compile point. Where several compiled models share one process without a reset
between them, each one's `info` counts the others' compiles too.
"""

from __future__ import annotations

from typing import Any

import torch

from perfbench.results import facts

# counters["aot_autograd"] and counters["inductor"] keys that say whether a compile hit a cache
CACHE_KEYS = {
    "inductor": ("fxgraph_cache_hit", "fxgraph_cache_miss", "fxgraph_cache_bypass"),
    "aot_autograd": ("autograd_cache_hit", "autograd_cache_miss", "autograd_cache_bypass"),
}
MAX_IDS = 20


def cache_counts() -> dict[str, int]:
    """The current values of the cache counters in CACHE_KEYS (0 where never incremented)."""
    from torch._dynamo.utils import counters

    return {key: int(counters[group][key]) for group, keys in CACHE_KEYS.items() for key in keys}


def attempt(compile_id: str) -> int:
    """The recompilation attempt of a dynamo compile id: `0/0` -> 0, `[1/2]` -> 2."""
    tail = str(compile_id).strip("[]").rsplit("/", 1)[-1]
    digits = "".join(ch for ch in tail if ch.isdigit())
    return int(digits) if digits else 0


def recompiles(ids: list[str]) -> int:
    """Compiles of a frame this tracker had already seen compiled, counted per frame as its
    distinct attempts less one. Not `attempt > 0`: in a comparison group several compiled models
    share the frame, so a second model's first compile is `0/1` without any guard failing
    (a lazily compiled backward repeats its forward's id and is no recompile either)."""
    attempts: dict[str, set[int]] = {}
    for c in ids:
        attempts.setdefault(str(c).strip("[]").rsplit("/", 1)[0], set()).add(attempt(c))
    return sum(len(a) - 1 for a in attempts.values())


def cache_state(delta: dict[str, int]) -> str:
    """`hit` (every lookup hit a cache), `miss` (inductor compiled at least one graph anew),
    `bypass` (a graph could not be cached) or `none` (no lookup: nothing compiled yet)."""
    if delta.get("fxgraph_cache_bypass") or delta.get("autograd_cache_bypass"):
        return "bypass"
    if delta.get("fxgraph_cache_miss"):
        return "miss"
    if delta.get("fxgraph_cache_hit") or delta.get("autograd_cache_hit"):
        return "hit"
    return "none"


def track_compiles(info: dict[str, Any]) -> None:
    """Keep `info["compiles"]`, `["recompiles"]`, `["compile_ids"]` and `["inductor_cache"]`
    (state + counter differences) up to date after every dynamo compile from now on."""
    start = cache_counts()
    ids: list[str] = []

    def on_compile_end(args: Any) -> None:
        ids.append(str(getattr(args, "compile_id", "?")))
        now = cache_counts()
        delta = {k: now[k] - start[k] for k in now if now[k] - start[k]}
        info[facts.COMPILES] = len(ids)
        info[facts.RECOMPILES] = recompiles(ids)
        info[facts.COMPILE_IDS] = ids[:MAX_IDS]
        info[facts.INDUCTOR_CACHE] = {"state": cache_state(delta), **delta}

    torch._dynamo.callback.callback_handler.register_end_callback(on_compile_end)
