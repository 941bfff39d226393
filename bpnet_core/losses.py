"""Training losses of BPNet, per example."""

from __future__ import annotations

import torch


def multinomial_nll(logits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Multinomial negative log-likelihood of observed counts, per example.

    The tracks are flattened into one multinomial (for a stranded model,
    one distribution across both strands), as the reference does:

        -log P(y) = -log(n!) + sum_j log(y_j!) - sum_j y_j log p_j,

    with n = sum_j y_j and p = softmax(logits) over all tracks and positions.

    Parameters
    ----------
    logits : torch.Tensor, shape (N, S, L)
    counts : torch.Tensor, shape (N, S, L)
        Observed read counts per base.

    Returns
    -------
    torch.Tensor, shape (N,)
        In nats.
    """
    logits = logits.reshape(logits.shape[0], -1)
    counts = counts.reshape(counts.shape[0], -1)
    log_p = torch.log_softmax(logits, dim=-1)
    n = counts.sum(dim=-1)
    log_coefficient = torch.lgamma(n + 1) - torch.lgamma(counts + 1).sum(dim=-1)
    return -log_coefficient - (counts * log_p).sum(dim=-1)


def log_count_mse(log_counts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Squared error of the predicted log(1 + total counts), per example.

    Parameters
    ----------
    log_counts : torch.Tensor, shape (N, 1)
        Predicted log(1 + total counts).
    counts : torch.Tensor, shape (N, S, L)
        Observed read counts per base; the total is over tracks and positions.

    Returns
    -------
    torch.Tensor, shape (N,)
    """
    target = torch.log1p(counts.sum(dim=(1, 2)))
    return (log_counts.reshape(-1) - target) ** 2


def bpnet_loss(logits: torch.Tensor, log_counts: torch.Tensor, counts: torch.Tensor, alpha: float,
               profile_rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean over the batch of profile MNLL + `alpha` x log-count MSE.

    Parameters
    ----------
    profile_rows : torch.Tensor, shape (N,), bool, optional
        The examples whose profile is learned (bpnet-lite masks background
        regions, whose few reads say nothing of the profile); all when None.
        The count loss is over every example.

    Returns
    -------
    total, profile, count : torch.Tensor (scalars)
    """
    mnll = multinomial_nll(logits, counts)
    if profile_rows is not None:
        # A batch of background regions alone has no profile loss (not NaN).
        mnll = mnll[profile_rows.to(mnll.device)] if profile_rows.any() else mnll[:0]
    profile = mnll.mean() if len(mnll) else logits.sum() * 0
    count = log_count_mse(log_counts, counts).mean()
    return profile + alpha * count, profile, count
