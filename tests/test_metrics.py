"""Tests for the performance metrics in ``bpnet_core.metrics``."""

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch
from scipy.spatial.distance import jensenshannon

from bpnet_core.losses import multinomial_nll
from bpnet_core.metrics import (
    pearson,
    performance,
    profile_jsd,
    profile_mnll,
    profile_pearson,
    profile_spearman,
    spearman,
)


def _random(n=4, s=2, length=6, seed=0):
    rng = np.random.RandomState(seed)
    logits = rng.normal(size=(n, s, length))
    counts = rng.poisson(3.0, size=(n, s, length)).astype(float)
    return logits, counts


# --------------------------------------------------------------------------
# JSD


def test_jsd_zero_for_matching_prediction():
    counts = np.array([[[1.0, 2.0, 3.0], [4.0, 0.0, 2.0]], [[5.0, 5.0, 5.0], [5.0, 5.0, 5.0]]])
    with np.errstate(divide="ignore"):
        logits = np.log(counts)  # -inf where no reads: probability 0
    jsd = profile_jsd(logits + 3.0, counts)
    assert jsd.shape == (2,)
    np.testing.assert_allclose(jsd, 0.0, atol=1e-12)


def test_jsd_one_for_disjoint_support():
    counts = np.array([[[4.0, 1.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 3.0]]])
    logits = np.array([[[-1000.0, -1000.0, 0.0, 1.0]], [[0.0, 0.5, 2.0, -1000.0]]])
    np.testing.assert_allclose(profile_jsd(logits, counts), 1.0, atol=1e-12)


def test_jsd_nan_for_regions_without_reads():
    logits, counts = _random(n=3)
    counts[1] = 0
    jsd = profile_jsd(logits, counts)
    assert np.isnan(jsd[1])
    assert np.isfinite(jsd[[0, 2]]).all()
    assert ((jsd[[0, 2]] > 0) & (jsd[[0, 2]] < 1)).all()


def test_jsd_by_hand():
    # P = (1/2, 1/2, 0), Q = (1/4, 1/4, 1/2), M = (3/8, 3/8, 1/4)
    counts = np.array([[[3.0, 3.0, 0.0]]])
    logits = np.log(np.array([[[0.25, 0.25, 0.5]]]))
    kl_p = 2 * 0.5 * math.log2(0.5 / 0.375)
    kl_q = 2 * 0.25 * math.log2(0.25 / 0.375) + 0.5 * math.log2(0.5 / 0.25)
    expected = (kl_p + kl_q) / 2
    assert expected == pytest.approx(0.3113, abs=1e-4)
    assert profile_jsd(logits, counts)[0] == pytest.approx(expected, rel=1e-12)


def test_jsd_flattens_strands_and_matches_scipy():
    logits, counts = _random(n=5, s=2, length=7, seed=1)
    jsd = profile_jsd(logits, counts)
    for i in range(5):
        p = counts[i].reshape(-1) / counts[i].sum()
        q = scipy.special.softmax(logits[i].reshape(-1))
        # scipy returns the JS distance, the square root of the divergence
        assert jsd[i] == pytest.approx(jensenshannon(p, q, base=2) ** 2, rel=1e-9)


# --------------------------------------------------------------------------
# correlations and MNLL


def test_profile_pearson_and_spearman_match_scipy():
    logits, counts = _random(n=4, s=2, length=9, seed=2)
    r = profile_pearson(logits, counts)
    rho = profile_spearman(logits, counts)
    assert r.shape == rho.shape == (4,)
    for i in range(4):
        y = counts[i].reshape(-1)  # ties among the counts: average ranks
        p = scipy.special.softmax(logits[i].reshape(-1))
        assert r[i] == pytest.approx(scipy.stats.pearsonr(y, p)[0], rel=1e-9)
        assert rho[i] == pytest.approx(scipy.stats.spearmanr(y, p)[0], rel=1e-9)


def test_profile_pearson_uses_probabilities_not_logits():
    counts = np.array([[[0.0, 1.0, 8.0, 2.0]]])
    logits = np.array([[[0.0, 1.0, 3.0, 1.5]]])
    expected = scipy.stats.pearsonr(counts[0, 0], scipy.special.softmax(logits[0, 0]))[0]
    assert profile_pearson(logits, counts)[0] == pytest.approx(expected, rel=1e-12)
    assert abs(expected - scipy.stats.pearsonr(counts[0, 0], logits[0, 0])[0]) > 1e-3


def test_profile_correlations_nan_for_constant_profiles():
    logits, counts = _random(n=3, seed=3)
    counts[0] = 2.0
    counts[2] = 0.0
    r = profile_pearson(logits, counts)
    rho = profile_spearman(logits, counts)
    assert np.isnan(r[[0, 2]]).all() and np.isnan(rho[[0, 2]]).all()
    assert np.isfinite(r[1]) and np.isfinite(rho[1])


def test_profile_mnll_matches_scipy_and_loss():
    logits, counts = _random(n=3, s=2, length=5, seed=4)
    mnll = profile_mnll(logits, counts)
    for i in range(3):
        y = counts[i].reshape(-1)
        p = scipy.special.softmax(logits[i].reshape(-1))
        assert mnll[i] == pytest.approx(-scipy.stats.multinomial.logpmf(y, n=y.sum(), p=p), rel=1e-9)
    loss = multinomial_nll(torch.from_numpy(logits), torch.from_numpy(counts)).numpy()
    np.testing.assert_allclose(mnll, loss, rtol=1e-10)


def test_pearson_and_spearman_helpers():
    a = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    b = np.array([2.0, 1.0, 4.0, 3.0, 5.0])
    assert pearson(a, b) == pytest.approx(scipy.stats.pearsonr(a, b)[0], rel=1e-12)
    assert spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a, b)[0], rel=1e-12)
    assert spearman(a, b) == pytest.approx(0.8, rel=1e-12)
    assert isinstance(pearson(a, b), float)
    assert math.isnan(pearson(a, np.ones(5)))


# --------------------------------------------------------------------------
# performance


SUMMARY_KEYS = {
    "n_regions", "profile_mnll", "profile_jsd", "profile_pearson", "profile_spearman",
    "count_pearson", "count_spearman", "count_mse",
}
PER_REGION_KEYS = {
    "observed_log_counts", "predicted_log_counts", "profile_mnll", "profile_jsd",
    "profile_pearson", "profile_spearman",
}


def test_performance_summary():
    logits, counts = _random(n=6, s=2, length=8, seed=5)
    predicted = np.array([[2.0], [3.1], [3.5], [2.2], [4.0], [3.3]])
    summary, per_region = performance(logits, predicted, counts)
    assert set(summary) == SUMMARY_KEYS
    assert set(per_region) == PER_REGION_KEYS
    assert summary["n_regions"] == 6

    observed = np.log1p(counts.sum(axis=(1, 2)))
    np.testing.assert_allclose(per_region["observed_log_counts"], observed, rtol=1e-12)
    np.testing.assert_allclose(per_region["predicted_log_counts"], predicted[:, 0])
    assert summary["count_pearson"] == pytest.approx(scipy.stats.pearsonr(observed, predicted[:, 0])[0], rel=1e-9)
    assert summary["count_spearman"] == pytest.approx(scipy.stats.spearmanr(observed, predicted[:, 0])[0], rel=1e-9)
    assert summary["count_mse"] == pytest.approx(np.mean((observed - predicted[:, 0]) ** 2), rel=1e-12)

    np.testing.assert_allclose(per_region["profile_jsd"], profile_jsd(logits, counts))
    np.testing.assert_allclose(per_region["profile_pearson"], profile_pearson(logits, counts))
    for key in ("profile_mnll", "profile_jsd", "profile_pearson", "profile_spearman"):
        assert summary[key] == pytest.approx(per_region[key].mean(), rel=1e-12)
        assert isinstance(summary[key], float)


def test_performance_skips_nan_regions():
    logits, counts = _random(n=4, s=2, length=8, seed=6)
    counts[2] = 0  # no reads: NaN JSD and correlations, MNLL 0
    summary, per_region = performance(logits, np.array([1.0, 2.0, 0.5, 3.0]), counts)
    assert np.isnan(per_region["profile_jsd"][2])
    assert per_region["profile_mnll"][2] == pytest.approx(0.0, abs=1e-12)
    keep = [0, 1, 3]
    for key in ("profile_jsd", "profile_pearson", "profile_spearman"):
        assert summary[key] == pytest.approx(per_region[key][keep].mean(), rel=1e-12)
    assert summary["profile_mnll"] == pytest.approx(per_region["profile_mnll"].mean(), rel=1e-12)
    observed = np.log1p(counts.sum(axis=(1, 2)))
    assert observed[2] == 0
    assert summary["count_mse"] == pytest.approx(np.mean((observed - [1.0, 2.0, 0.5, 3.0]) ** 2), rel=1e-12)


def test_performance_all_nan_metrics():
    logits = np.zeros((2, 1, 4))
    counts = np.zeros((2, 1, 4))
    summary, _ = performance(logits, np.array([0.0, 1.0]), counts)
    assert math.isnan(summary["profile_jsd"])
    assert math.isnan(summary["profile_pearson"])
    assert math.isnan(summary["count_pearson"])  # observed totals constant
    assert summary["count_mse"] == pytest.approx(0.5)
