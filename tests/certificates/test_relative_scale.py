"""Certificates relative to the data scale with no absolute floor; b optional."""

from __future__ import annotations

import numpy as np
import pytest

from fairmt_opt import certify_simplex_qp, solve_simplex_qp


@pytest.mark.parametrize("s", [1e-300, 1e-150, 1e-9, 1.0, 1e9, 1e150, 1e300])
def test_vertex_rejected_and_optimum_certified_at_every_scale(s: float) -> None:
    K = s * np.diag([2.0, 1.0])
    assert not certify_simplex_qp(K, np.array([1.0, 0.0])).ok
    assert certify_simplex_qp(K, np.array([1 / 3, 2 / 3])).ok
    # a point 1e-6 relatively suboptimal (f(x) - f* = 1.5 d^2 s with d = 1e-3) is rejected
    assert not certify_simplex_qp(K, np.array([1 / 3 + 1e-3, 2 / 3 - 1e-3]), rtol=1e-9).ok
    res = solve_simplex_qp(K)
    np.testing.assert_allclose(res.x, [1 / 3, 2 / 3], rtol=1e-12)


def test_b_optional_forms_agree() -> None:
    K, x = np.diag([2.0, 1.0]), np.array([0.5, 0.5])
    a, b, c = certify_simplex_qp(K, x), certify_simplex_qp(K, None, x), certify_simplex_qp(K, x=x)
    assert a == b == c
    with pytest.raises(TypeError, match="takes"):
        certify_simplex_qp(K)


def test_non_finite_gap_never_certifies() -> None:
    K = np.diag([1e308, 1e308])
    assert not certify_simplex_qp(K, np.array([1.0, 1.0])).ok
