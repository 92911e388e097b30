"""Qini and AUUC with tied scores: one curve point per distinct score, so no figure depends on
the order of the rows; checked against scikit-uplift (the reference implementation) on random
arrays with ties, and by hand where it is not installed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adpilot.targeting.metrics import (
    NORMALISATION,
    auuc,
    qini_auc_score,
    qini_coefficient,
    qini_curve,
    uplift_auc_score,
    uplift_curve,
)

Y, T, S = np.array([1, 0, 0, 1]), np.array([1, 1, 0, 0]), np.zeros(4)


def test_all_tied_scores_are_random_targeting_in_either_row_order():
    """The issue's example: 0.1875 / −0.03125 (Qini) and ±0.094 (AUUC) before; all tied scores
    rank nobody ahead of anybody, so every figure is 0 whichever way the rows come."""
    for order in (slice(None), slice(None, None, -1)):
        y, t = Y[order], T[order]
        assert qini_coefficient(y, S, t) == 0.0
        assert auuc(y, S, t) == 0.0
        assert qini_auc_score(y, S, t) == 0.0
        assert uplift_auc_score(y, S, t) == 0.0
        x, q = qini_curve(y, S, t)
        assert x.tolist() == [0, 4] and q.tolist() == [0, 0]


def test_by_hand_two_tie_groups():
    """Scores (2, 2, 1, 1): the first point takes both rows scored 2 together."""
    y, t, s = np.array([1, 0, 1, 0]), np.array([1, 0, 0, 1]), np.array([2, 2, 1, 1])
    x, q = qini_curve(y, s, t)
    # after the first group: 1 treated (1 responder), 1 control (0) → q = 1 − 0·1/1 = 1;
    # everyone: Y_t = 1, Y_c = 1, N_t = N_c = 2 → q = 0
    assert x.tolist() == [0, 2, 4] and q.tolist() == [0, 1, 0]
    # area over the random line (0,0)→(4,0): triangle 4·1/2 = 2; ÷ n² = 2/16
    assert qini_coefficient(y, s, t) == pytest.approx(2 / 16)
    x, u = uplift_curve(y, s, t)
    assert u.tolist() == [0, (1 - 0) * 2, (0.5 - 0.5) * 4]


def test_normalisation_is_stated_for_every_figure():
    assert set(NORMALISATION) == {"qini", "auuc", "qini_auc_score", "uplift_auc_score"}
    assert "n²" in NORMALISATION["qini"] and "perfect" in NORMALISATION["qini_auc_score"]
    for fn in (qini_coefficient, auuc, qini_auc_score, uplift_auc_score):
        assert "÷" in fn.__doc__


def _random_with_ties(seed: int, n: int = 300):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 2, n), rng.integers(0, 2, n),
            rng.integers(0, 6, n) / 5.0)  # six distinct scores: many ties


@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_scikit_uplift_on_random_arrays_with_ties(seed):
    sklift = pytest.importorskip("sklift.metrics")
    y, t, s = _random_with_ties(seed)
    with warnings.catch_warnings():  # sklift calls a deprecated scikit-learn helper
        warnings.simplefilter("ignore", FutureWarning)
        ref_q, ref_u = sklift.qini_curve(y, s, t), sklift.uplift_curve(y, s, t)
        ref_qs, ref_us = sklift.qini_auc_score(y, s, t), sklift.uplift_auc_score(y, s, t)
    for ours, ref in ((qini_curve(y, s, t), ref_q), (uplift_curve(y, s, t), ref_u)):
        np.testing.assert_array_equal(ours[0], ref[0])
        np.testing.assert_allclose(ours[1], ref[1], rtol=0, atol=1e-9)
    assert qini_auc_score(y, s, t) == pytest.approx(ref_qs, abs=1e-12)
    assert uplift_auc_score(y, s, t) == pytest.approx(ref_us, abs=1e-12)
    # ours ÷ n² is the same area over random as sklift's, only normalised differently
    x, q = ref_q
    area = np.trapezoid(q, x) - q[-1] * x[-1] / 2
    assert qini_coefficient(y, s, t) == pytest.approx(area / len(y) ** 2, abs=1e-12)


@st.composite
def uplift_data(draw):
    n = draw(st.integers(1, 60))
    ints = st.lists(st.integers(0, 1), min_size=n, max_size=n)
    scores = st.lists(st.sampled_from([-1.0, 0.0, 0.25, 0.5, 3.0]), min_size=n, max_size=n)
    perm = draw(st.permutations(range(n)))
    return np.array(draw(ints)), np.array(draw(ints)), np.array(draw(scores)), np.array(perm)


@settings(max_examples=300, deadline=None)
@given(uplift_data())
def test_every_figure_is_invariant_to_row_permutation(data):
    y, t, s, perm = data
    for fn in (qini_coefficient, auuc, qini_auc_score, uplift_auc_score):
        a, b = fn(y, s, t), fn(y[perm], s[perm], t[perm])
        assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, abs=1e-12), fn.__name__
    for curve in (qini_curve, uplift_curve):
        (xa, ya), (xb, yb) = curve(y, s, t), curve(y[perm], s[perm], t[perm])
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_allclose(ya, yb, atol=1e-9)
