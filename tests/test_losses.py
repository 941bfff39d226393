"""Tests for the training losses in ``bpnet_core.losses``."""

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch

from bpnet_core.losses import bpnet_loss, log_count_mse, multinomial_nll

# Two examples, two strands (plus, minus), four positions.
LOGITS = torch.tensor([
    [[0.5, -1.0, 2.0, 0.0], [1.5, 0.3, -0.7, 0.2]],
    [[-2.0, 0.0, 0.0, 1.0], [0.0, 3.0, -1.0, 0.5]],
], dtype=torch.float64)
COUNTS = torch.tensor([
    [[1.0, 0.0, 4.0, 2.0], [3.0, 0.0, 0.0, 1.0]],
    [[0.0, 0.0, 2.0, 5.0], [0.0, 7.0, 1.0, 0.0]],
], dtype=torch.float64)


def _scipy_nll(logits, counts):
    """-log multinomial pmf, both strands flattened into one distribution."""
    out = []
    for lg, ct in zip(logits.numpy(), counts.numpy()):
        p = scipy.special.softmax(lg.reshape(-1))
        ct = ct.reshape(-1)
        out.append(-scipy.stats.multinomial.logpmf(ct, n=ct.sum(), p=p))
    return np.array(out)


def test_multinomial_nll_matches_scipy():
    nll = multinomial_nll(LOGITS, COUNTS)
    assert nll.shape == (2,)
    np.testing.assert_allclose(nll.numpy(), _scipy_nll(LOGITS, COUNTS), rtol=1e-10)


def test_multinomial_nll_is_one_distribution_across_strands():
    # Per-strand multinomials would give a different value: the split of the
    # reads between the strands is part of the likelihood.
    nll = multinomial_nll(LOGITS, COUNTS).numpy()
    per_strand = sum(_scipy_nll(LOGITS[:, s:s + 1], COUNTS[:, s:s + 1]) for s in range(2))
    assert np.all(np.abs(nll - per_strand) > 1e-3)
    # shifting the minus strand's logits changes the loss (it would not per strand)
    shifted = LOGITS.clone()
    shifted[:, 1] += 1.0
    assert not torch.allclose(multinomial_nll(shifted, COUNTS), multinomial_nll(LOGITS, COUNTS))
    # a constant shift of all logits does not
    torch.testing.assert_close(multinomial_nll(LOGITS + 5.0, COUNTS), multinomial_nll(LOGITS, COUNTS))


def test_multinomial_nll_by_hand():
    # 3 positions, counts (2, 1, 0), p = (1/2, 1/4, 1/4): P = 3!/(2!1!0!) (1/2)^2 (1/4) = 3/16
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25]]], dtype=torch.float64))
    counts = torch.tensor([[[2.0, 1.0, 0.0]]], dtype=torch.float64)
    assert multinomial_nll(logits, counts).item() == pytest.approx(-math.log(3 / 16), rel=1e-12)
    # no reads: probability 1
    assert multinomial_nll(logits, torch.zeros_like(counts)).item() == pytest.approx(0.0, abs=1e-12)


def test_multinomial_nll_float32_and_gradient():
    logits = LOGITS.float().requires_grad_(True)
    nll = multinomial_nll(logits, COUNTS.float())
    assert nll.dtype == torch.float32
    np.testing.assert_allclose(nll.detach().numpy(), _scipy_nll(LOGITS, COUNTS), rtol=1e-5)
    nll.sum().backward()
    # d nll / d logits = n * softmax - counts
    flat = LOGITS.reshape(2, -1)
    n = COUNTS.reshape(2, -1).sum(dim=1, keepdim=True)
    expected = (n * torch.softmax(flat, dim=1) - COUNTS.reshape(2, -1)).reshape(LOGITS.shape)
    torch.testing.assert_close(logits.grad.double(), expected, rtol=1e-5, atol=1e-5)


def test_log_count_mse_by_hand():
    totals = COUNTS.sum(dim=(1, 2))  # 11 and 15
    assert totals.tolist() == [11.0, 15.0]
    pred = torch.tensor([[2.0], [3.5]], dtype=torch.float64)
    expected = [(2.0 - math.log(12.0)) ** 2, (3.5 - math.log(16.0)) ** 2]
    mse = log_count_mse(pred, COUNTS)
    assert mse.shape == (2,)
    np.testing.assert_allclose(mse.numpy(), expected, rtol=1e-12)
    # a flat (N,) prediction is read the same way
    np.testing.assert_allclose(log_count_mse(pred.reshape(-1), COUNTS).numpy(), expected, rtol=1e-12)
    # exact prediction: zero
    exact = torch.log1p(totals).unsqueeze(1)
    assert torch.all(log_count_mse(exact, COUNTS) == 0)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 12.5])
def test_bpnet_loss_combines_profile_and_count(alpha):
    pred = torch.tensor([[2.0], [3.5]], dtype=torch.float64)
    total, profile, count = bpnet_loss(LOGITS, pred, COUNTS, alpha)
    expected_profile = _scipy_nll(LOGITS, COUNTS).mean()
    expected_count = np.mean([(2.0 - math.log(12.0)) ** 2, (3.5 - math.log(16.0)) ** 2])
    assert profile.dim() == 0 and count.dim() == 0 and total.dim() == 0
    assert profile.item() == pytest.approx(expected_profile, rel=1e-10)
    assert count.item() == pytest.approx(expected_count, rel=1e-10)
    assert total.item() == pytest.approx(expected_profile + alpha * expected_count, rel=1e-10)


def test_profile_loss_over_the_given_rows_only():
    from bpnet_core.losses import bpnet_loss, multinomial_nll

    g = torch.Generator().manual_seed(0)
    logits, log_counts = torch.randn(4, 2, 10, generator=g), torch.randn(4, 1, generator=g)
    counts = torch.randint(0, 5, (4, 2, 10), generator=g).float()
    rows = torch.tensor([True, False, True, False])
    total, profile, count = bpnet_loss(logits, log_counts, counts, 2.0, rows)
    assert profile == pytest.approx(multinomial_nll(logits, counts)[rows].mean().item())
    assert count == pytest.approx(bpnet_loss(logits, log_counts, counts, 2.0)[2].item())
    # A batch of background regions alone: no profile loss, and a gradient.
    total, profile, _ = bpnet_loss(logits.requires_grad_(), log_counts, counts, 2.0, torch.zeros(4, dtype=torch.bool))
    assert profile.item() == 0
    total.backward()
