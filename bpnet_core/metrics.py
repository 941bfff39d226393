"""Performance metrics of predicted profiles and counts.

Profiles are compared per region on the distribution across all tracks and
positions flattened (one multinomial, as in the loss); counts are compared
across regions on log(1 + total counts).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, log_softmax
from scipy.stats import rankdata


def _flat(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).reshape(len(a), -1)


def profile_mnll(logits: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Multinomial NLL of the observed counts per region, in nats.

    -log(n!) + sum log(y_j!) - sum y_j log softmax(logits)_j, over the
    flattened tracks and positions. Shapes (N, S, L) -> (N,).
    """
    y = _flat(counts)
    log_p = log_softmax(_flat(logits), axis=1)
    n = y.sum(axis=1)
    return -(gammaln(n + 1) - gammaln(y + 1).sum(axis=1)) - (y * log_p).sum(axis=1)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence in bits between the rows of two distributions, (N, K) -> (N,).

    (KL(P || M) + KL(Q || M)) / 2 with M = (P + Q) / 2, clipped to [0, 1];
    rows holding NaN give NaN.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (p + q) / 2
        kl_p = np.where(p > 0, p * np.log2(p / m), 0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0).sum(axis=1)
    return np.clip((kl_p + kl_q) / 2, 0, 1)


def profile_jsd(logits: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence per region, in bits (0 = identical, 1 = disjoint).

    JSD(P, Q) = (KL(P || M) + KL(Q || M)) / 2 with M = (P + Q) / 2, between
    P = observed counts / their total and Q = softmax(logits). Regions with
    no observed counts give NaN. Shapes (N, S, L) -> (N,). The reference
    ChromBPNet reports the JS distance, the square root of this value.
    """
    y = _flat(counts)
    total = y.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = y / total
    jsd = js_divergence(p, np.exp(log_softmax(_flat(logits), axis=1)))
    jsd[total[:, 0] == 0] = np.nan
    return jsd


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=1) / np.sqrt((a ** 2).sum(axis=1) * (b ** 2).sum(axis=1))


def profile_pearson(logits: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Pearson r per region between observed counts and predicted probabilities.

    Shapes (N, S, L) -> (N,); NaN where either profile is constant.
    """
    return _rowwise_pearson(_flat(counts), np.exp(log_softmax(_flat(logits), axis=1)))


def profile_spearman(logits: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Spearman rho per region (Pearson of average ranks). (N, S, L) -> (N,)."""
    return _rowwise_pearson(rankdata(_flat(counts), axis=1), rankdata(_flat(logits), axis=1))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two vectors (NaN if either is constant)."""
    return float(_rowwise_pearson(np.asarray(a, float)[None], np.asarray(b, float)[None])[0])


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rho of two vectors."""
    return pearson(rankdata(a), rankdata(b))


def performance(logits: np.ndarray, log_counts: np.ndarray, counts: np.ndarray) -> tuple[dict, dict]:
    """All metrics of predictions against observations.

    Parameters
    ----------
    logits : numpy.ndarray, shape (N, S, L)
        Predicted profile logits.
    log_counts : numpy.ndarray, shape (N,) or (N, 1)
        Predicted log(1 + total counts).
    counts : numpy.ndarray, shape (N, S, L)
        Observed counts per base.

    Returns
    -------
    summary : dict
        ``n_regions``; ``profile_mnll``, ``profile_jsd``, ``profile_pearson``,
        ``profile_spearman`` (means over regions, NaN regions skipped);
        ``count_pearson``, ``count_spearman``, ``count_mse`` (across regions,
        on log(1 + counts)).
    per_region : dict of numpy.ndarray, shape (N,)
        ``observed_log_counts``, ``predicted_log_counts`` and the four
        profile metrics per region.
    """
    observed = np.log1p(_flat(counts).sum(axis=1))
    predicted = np.asarray(log_counts, dtype=np.float64).reshape(-1)
    per_region = {
        "observed_log_counts": observed,
        "predicted_log_counts": predicted,
        "profile_mnll": profile_mnll(logits, counts),
        "profile_jsd": profile_jsd(logits, counts),
        "profile_pearson": profile_pearson(logits, counts),
        "profile_spearman": profile_spearman(logits, counts),
    }
    with np.errstate(all="ignore"):
        summary = {"n_regions": len(observed)}
        for key in ("profile_mnll", "profile_jsd", "profile_pearson", "profile_spearman"):
            values = per_region[key]
            summary[key] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
        summary["count_pearson"] = pearson(observed, predicted)
        summary["count_spearman"] = spearman(observed, predicted)
        summary["count_mse"] = float(np.mean((observed - predicted) ** 2))
    return summary, per_region
