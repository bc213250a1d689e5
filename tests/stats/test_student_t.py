"""Student's t without SciPy: published table values, symmetry, and the quantile inverting the CDF."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfbench.stats.student_t import incomplete_beta, t_cdf, t_ppf, t_sf

# Two-sided 95% and 99% critical values (any statistics textbook table), and df=1 closed forms.
TABLE = [
    (0.975, 1, 12.706205),
    (0.975, 4, 2.776445),
    (0.975, 9, 2.262157),
    (0.975, 29, 2.045230),
    (0.995, 9, 3.249836),
    (0.995, 120, 2.617421),
]


@pytest.mark.parametrize(("p", "df", "expected"), TABLE)
def test_quantile_matches_the_table(p: float, df: int, expected: float) -> None:
    assert t_ppf(p, df) == pytest.approx(expected, abs=2e-6)


def test_cauchy_closed_form() -> None:
    """df = 1 is the Cauchy distribution: CDF 1/2 + atan(t)/pi."""
    for t in (-50.0, -1.0, 0.3, 7.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)


def test_incomplete_beta_edges_and_a_known_value() -> None:
    assert incomplete_beta(2.0, 3.0, 0.0) == 0.0 and incomplete_beta(2.0, 3.0, 1.0) == 1.0
    # I_x(1, b) = 1 - (1 - x)^b
    assert incomplete_beta(1.0, 3.0, 0.4) == pytest.approx(1 - 0.6**3, abs=1e-12)
    with pytest.raises(ValueError, match="x must lie in"):
        incomplete_beta(1.0, 1.0, 1.5)


@given(st.floats(-40, 40), st.integers(1, 200))
def test_cdf_is_symmetric_and_sf_complements_it(t: float, df: int) -> None:
    assert t_cdf(t, df) + t_cdf(-t, df) == pytest.approx(1.0, abs=1e-12)
    assert t_sf(t, df) == pytest.approx(1.0 - t_cdf(t, df), abs=1e-12)


@given(st.floats(0.001, 0.999), st.integers(1, 200))
def test_quantile_inverts_the_cdf(p: float, df: int) -> None:
    assert t_cdf(t_ppf(p, df), df) == pytest.approx(p, abs=1e-9)


@given(st.floats(0.5, 0.9999), st.integers(1, 60))
def test_quantiles_shrink_towards_the_normal_with_df(p: float, df: int) -> None:
    assert t_ppf(p, df) >= t_ppf(p, df + 1) - 1e-6  # near p = 0.5 the bisection is good to ~1e-8


def test_scipy_agrees_where_installed() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in (2, 9, 33):
        for p in (0.6, 0.975, 0.99875):
            assert t_ppf(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-8)
