"""Pareto fronts, hypervolumes and leaders on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fairmt_opt.studies._pareto import (
    attainment,
    hypervolume,
    leaders,
    pareto_front,
    reference_point,
)


def test_front_drops_dominated_points() -> None:
    # (fairness, utility): (0.3, 0.7) is beaten by (0.2, 0.8) on both axes
    f = [0.1, 0.2, 0.3, 0.4]
    u = [0.6, 0.8, 0.7, 0.9]
    assert pareto_front(f, u).tolist() == [True, True, False, True]


def test_front_ties() -> None:
    # equal fairness: only the higher utility stays; equal utility: only the fairer stays
    assert pareto_front([0.2, 0.2], [0.5, 0.7]).tolist() == [False, True]
    assert pareto_front([0.1, 0.3], [0.7, 0.7]).tolist() == [True, False]
    # identical points: neither dominates the other
    assert pareto_front([0.2, 0.2, 0.5], [0.7, 0.7, 0.6]).tolist() == [True, True, False]


def test_front_single_and_empty() -> None:
    assert pareto_front([0.3], [0.1]).tolist() == [True]
    assert pareto_front([], []).tolist() == []


def test_front_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    f = rng.integers(0, 6, 60) / 10  # many ties on purpose
    u = rng.integers(0, 6, 60) / 10
    mask = pareto_front(f, u)
    for i in range(60):
        dominated = any(f[j] <= f[i] and u[j] >= u[i] and (f[j], u[j]) != (f[i], u[i])
                        for j in range(60))
        assert mask[i] == (not dominated)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        pareto_front([0.1, 0.2], [0.5])
    with pytest.raises(ValueError, match="finite"):
        pareto_front([0.1, math.nan], [0.5, 0.6])
    with pytest.raises(ValueError, match="reference must be two finite numbers"):
        hypervolume([0.1], [0.5], (0.2,))
    with pytest.raises(ValueError, match="reference must be two finite numbers"):
        hypervolume([0.1], [0.5], (math.inf, 0.0))
    with pytest.raises(ValueError, match="at least one point"):
        reference_point([], [])
    with pytest.raises(ValueError, match="tol must be"):
        leaders({"a": ([0.1], [0.5])}, tol=-1.0)


def test_hypervolume_by_hand() -> None:
    ref = (0.5, 0.5)
    # one point: the rectangle [0.1, 0.5] x [0.5, 0.9] = 0.4 * 0.4
    assert hypervolume([0.1], [0.9], ref) == pytest.approx(0.16)
    # staircase (0.1, 0.6), (0.3, 0.8): 0.2 * 0.1 + 0.2 * 0.3 = 0.08
    assert hypervolume([0.1, 0.3], [0.6, 0.8], ref) == pytest.approx(0.08)
    # a dominated point adds nothing, a duplicate adds nothing, order does not matter
    assert hypervolume([0.3, 0.4, 0.1, 0.3], [0.8, 0.7, 0.6, 0.8], ref) == pytest.approx(0.08)


def test_hypervolume_reference_handling() -> None:
    # points on or beyond the reference contribute nothing
    assert hypervolume([0.5, 0.2], [0.9, 0.5], (0.5, 0.5)) == 0.0
    assert hypervolume([0.6], [0.9], (0.5, 0.5)) == 0.0
    assert hypervolume([], [], (0.5, 0.5)) == 0.0
    # a point beyond the reference in one axis does not count, the others still do
    assert hypervolume([0.1, 0.7], [0.6, 0.95], (0.5, 0.5)) == pytest.approx(0.04)
    # moving the reference out grows the area by the added strips
    assert hypervolume([0.1], [0.9], (0.6, 0.4)) == pytest.approx(0.25)


def test_reference_point_is_the_nadir() -> None:
    f, u = [0.1, 0.4, 0.2], [0.7, 0.9, 0.5]
    assert reference_point(f, u) == (0.4, 0.5)
    # with the nadir as reference, the nadir point itself has zero area
    assert hypervolume([0.4], [0.5], reference_point(f, u)) == 0.0


def test_attainment_steps() -> None:
    a = attainment([0.0, 0.1, 0.15, 0.3, 1.0], [0.3, 0.1, 0.2], [0.9, 0.5, 0.7])
    assert a.tolist() == [-math.inf, 0.5, 0.5, 0.9, 0.9]


def test_leaders_where_fronts_cross() -> None:
    fronts = {"a": ([0.1, 0.4], [0.5, 0.9]), "b": ([0.2, 0.3], [0.7, 0.8])}
    assert leaders(fronts) == [(0.1, 0.2, ("a",)), (0.2, 0.4, ("b",)), (0.4, math.inf, ("a",))]
    # a tolerance turns near-equal utilities into ties
    tied = leaders({"a": ([0.1], [0.80]), "b": ([0.1], [0.795])}, tol=0.01)
    assert tied == [(0.1, math.inf, ("a", "b"))]
    assert leaders({}) == []
