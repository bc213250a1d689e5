"""Steps in a noisy trend: where the level moved by more than the noise allows, and by how much.

The model is asv's (`asv.step_detect`): a trend is piecewise constant plus noise of one constant
amplitude. asv fits the segments by minimising the L1 misfit plus a penalty per step that grows
with the noise estimate and log(n), so a step must pay for itself against the noise and against
the number of places a step could have been put. We keep that shape with a test whose error rate
we can state, on the log of the values (so sizes are ratios):

1. Search (circular binary segmentation): every split of a range into left/right, and every
   middle stretch against the rest (a slowdown that a later commit restores is one stretch), is
   scored by the t statistic of the difference of log means with the noise pooled over the
   records on both sides. The best candidate is accepted only when it clears a Bonferroni-
   corrected two-sided level alpha/m, m the candidates searched: the price of looking at every
   position (asv's log(n) penalty plays this part). Accepted ranges are searched again.
2. Validate: with the segments found, each boundary is tested between its two neighbouring
   segments at 95%, the noise pooled over all segments (constant amplitude), and kept only when
   the interval excludes no change AND the shift is larger than `min_rel` (the caller passes the
   records' own spread). The weakest failing boundary is dropped and the rest re-tested.

Every candidate needs at least two evidence records on each side: no step ever rests on a
single record. Positions are blocks of records (one commit's repetitions); a step sits between
blocks. No torch here, no database: lists of floats in, `Shift`s out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from perfbench.stats.student_t import t_ppf

ALPHA = 0.05  # the intervals: 95%
SEARCH_ALPHA = 0.01  # family-wise level of the search over positions (see module doc)
MIN_SIDE = 2  # evidence records needed on each side of a step
MAX_PAIRS_RANGE = 60  # positions up to which middle stretches are searched too


@dataclass(frozen=True)
class Shift:
    """A step before block `index`: after/before ratio of geometric means with its interval."""

    index: int
    ratio: float
    low: float
    high: float
    n_before: int
    n_after: int
    t: float


def _flat(blocks: Sequence[Sequence[float]], lo: int, hi: int) -> list[float]:
    return [v for b in blocks[lo:hi] for v in b]


def _sse(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values)


def _t(inside: list[float], outside: list[float], sse: float, df: int) -> tuple[float, float]:
    """(t, standard error) of mean(inside) - mean(outside), pooled noise sse/df."""
    diff = sum(inside) / len(inside) - sum(outside) / len(outside)
    se = math.sqrt(sse / df * (1 / len(inside) + 1 / len(outside))) if df > 0 else math.inf
    if se == 0:
        return (math.inf if diff else 0.0), 0.0
    return abs(diff) / se, se


def _candidates(blocks: Sequence[Sequence[float]], lo: int, hi: int) -> list[tuple[int, ...]]:
    """Every split k (left [lo,k), right [k,hi)) and middle (i, j) of a range."""
    cands: list[tuple[int, ...]] = [(k,) for k in range(lo + 1, hi)]
    if hi - lo <= MAX_PAIRS_RANGE:  # O(n^2) middles; longer ranges split first
        cands += [(i, j) for i in range(lo + 1, hi) for j in range(i + 1, hi)]
    return cands


def _score(blocks: Sequence[Sequence[float]], lo: int, hi: int, cand: tuple[int, ...]) -> float:
    if len(cand) == 1:
        inside, outside = _flat(blocks, lo, cand[0]), _flat(blocks, cand[0], hi)
    else:
        inside = _flat(blocks, cand[0], cand[1])
        outside = _flat(blocks, lo, cand[0]) + _flat(blocks, cand[1], hi)
    if len(inside) < MIN_SIDE or len(outside) < MIN_SIDE:
        return -1.0
    df = len(inside) + len(outside) - 2
    return _t(inside, outside, _sse(inside) + _sse(outside), df)[0]


def _search(blocks: Sequence[Sequence[float]], lo: int, hi: int, found: set[int]) -> None:
    scored = [(_score(blocks, lo, hi, c), c) for c in _candidates(blocks, lo, hi)]
    scored = [(t, c) for t, c in scored if t >= 0]
    if not scored:
        return
    best_t, best = max(scored)
    df = len(_flat(blocks, lo, hi)) - 2
    if df < 1 or best_t <= t_ppf(1 - SEARCH_ALPHA / (2 * len(scored)), df):
        return
    found.update(best)
    edges = [lo, *best, hi]
    for a, b in itertools.pairwise(edges):
        _search(blocks, a, b, found)


def _validate(blocks: Sequence[Sequence[float]], bounds: list[int], min_rel: float) -> list[Shift]:
    while True:
        edges = [0, *bounds, len(blocks)]
        segs = [_flat(blocks, a, b) for a, b in itertools.pairwise(edges)]
        df = sum(len(s) for s in segs) - len(segs)
        sse = sum(_sse(s) for s in segs)
        shifts, weakest = [], None
        for n, bound in enumerate(bounds):
            before, after = segs[n], segs[n + 1]
            ok = len(before) >= MIN_SIDE and len(after) >= MIN_SIDE and df > 0
            t, se = _t(after, before, sse, df) if ok else (0.0, math.inf)
            diff = sum(after) / len(after) - sum(before) / len(before) if ok else 0.0
            half = t_ppf(1 - ALPHA / 2, df) * se if ok else math.inf
            clears = ok and abs(diff) > half and abs(math.exp(abs(diff)) - 1) > min_rel
            if not clears and (weakest is None or t < weakest[0]):
                weakest = (t, bound)
            ratio = math.exp(diff)
            low, high = math.exp(diff - half), (math.exp(diff + half) if ok else math.inf)
            shifts.append(Shift(bound, ratio, low, high, len(before), len(after), t))
        if weakest is None:
            return shifts
        bounds = [b for b in bounds if b != weakest[1]]


def find_shifts(blocks: Sequence[Sequence[float]], min_rel: float) -> list[Shift]:
    """The steps of a trend of blocks of log values, in order. `min_rel`: the smallest relative
    shift that counts (the records' own spread, or more)."""
    found: set[int] = set()
    _search(blocks, 0, len(blocks), found)
    return _validate(blocks, sorted(found), min_rel)


def compare_last(
    blocks: Sequence[Sequence[float]], recent: int = 10
) -> tuple[float, float, float, int, int] | None:
    """The newest block against the recent history before it (at most `recent` records, and
    only since the last step found there): (ratio, low, high) of the geometric means at 95%,
    with both counts; None when either side lacks the evidence (newest: 1 record is allowed
    when the history has 2+, the noise then coming from the history alone)."""
    *past, newest = blocks
    shifts = find_shifts(past, 0.0) if len(past) > 1 else []
    start = shifts[-1].index if shifts else 0
    base = _flat(past, start, len(past))[-recent:]
    if len(base) < MIN_SIDE or not newest:
        return None
    new = list(newest)
    df = len(base) + len(new) - 2 if len(new) > 1 else len(base) - 1
    sse = _sse(base) + _sse(new)
    _, se = _t(new, base, sse, df)
    diff = sum(new) / len(new) - sum(base) / len(base)
    half = t_ppf(1 - ALPHA / 2, df) * se
    return math.exp(diff), math.exp(diff - half), math.exp(diff + half), len(base), len(new)
