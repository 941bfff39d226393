"""DeepLIFT/SHAP contributions of a trained model: the BPNet Attribute step."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from .config import AttributeConfig, as_step_config
from .io import fasta_chrom_sizes, write_bigwig, write_npz, write_tsv
from .models import BPNet
from .predict import load_model_and_windows
from .runtime import with_shrinking_batches

log = logging.getLogger(__name__)

# tangermeme's default: deltas above this (in output units) are suspicious.
CONVERGENCE_THRESHOLD = 1e-3


class ProfileHead(nn.Module):
    """The profile output as one number per sequence, for attribution.

    sum_j w_j * z_j over the flattened tracks and positions, with z the
    mean-centred logits and w = softmax(z) of the sequence explained, held
    constant (the official ChromBPNet's weighted mean-normalised logits).

    With `paired` on, as `deep_lift_shap` sets it, a batch is tangermeme's
    [sequences; their references] and each reference is weighted by its
    sequence's w. The head is then linear in the logits: the contributions
    add up exactly to sum_j w_j (z_j - z_ref_j), and no rescale rule divides
    by a logit's change between a sequence and its shuffle, which made the
    former z * softmax(z) formulation ill-conditioned in float32 (fast path
    and reference computation 38% apart in relative L2 on the speed
    benchmark's model; now as close as the counts head's).
    """

    def __init__(self, model: BPNet):
        super().__init__()
        self.model = model
        self.paired = False

    def forward(self, X: torch.Tensor, X_ctl: torch.Tensor | None = None) -> torch.Tensor:
        logits, _ = self.model(X, X_ctl)
        logits = logits.reshape(len(logits), -1)
        logits = logits - logits.mean(dim=1, keepdim=True)
        weights = torch.softmax(logits, dim=-1).detach()
        if self.paired:
            n = len(weights) // 2
            weights = torch.cat([weights[:n], weights[:n]])
        return (weights * logits).sum(dim=1, keepdim=True)


@contextlib.contextmanager
def paired_references(head: nn.Module):
    """`head` with its sequences' profile weights applied to their references (see `ProfileHead`)."""
    profile = [module for module in head.modules() if isinstance(module, ProfileHead)]
    for module in profile:
        module.paired = True
    try:
        yield head
    finally:
        for module in profile:
            module.paired = False


class CountHead(nn.Module):
    """The predicted log(1 + total counts), shape (N, 1), for attribution."""

    def __init__(self, model: BPNet):
        super().__init__()
        self.model = model

    def forward(self, X: torch.Tensor, X_ctl: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(X, X_ctl)[1]


HEADS = {"profile": ProfileHead, "counts": CountHead}


def attribution_head(model: BPNet, output: str) -> nn.Module:
    """The model wrapped so that its `output` ("profile" or "counts") is (N, 1)."""
    return HEADS[output](model)


# Sequence-reference pairs per batch on a CPU. Measured on 2 cores for 64
# filters x 8 layers, 2114 bp, 20 shuffles: 4-16 pairs 1.15-1.19 seq/s, 32
# pairs 0.87, 80 or more 0.48 -- larger batches' activations (2 x pairs x 64
# x 2114 x 4 B, 17 MB at 16 pairs per layer) no longer stay in cache. GPUs
# take `batch_size` as given.
CPU_PAIRS_PER_BATCH = 16


class _RecordOutputs(nn.Module):
    """`head`, keeping each batch's outputs: tangermeme runs the sequences
    and their references in one forward pass, whose outputs the convergence
    check needs."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head
        self.outputs: list[torch.Tensor] = []

    def forward(self, *args):
        y = self.head(*args)
        self.outputs.append(y.detach().reshape(2, -1).cpu())
        return y


def deep_lift_shap(head: nn.Module, X: torch.Tensor, X_ctl: torch.Tensor | None, n_shuffles: int,
                   random_state: int | None, batch_size: int, device: torch.device,
                   verbose: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Hypothetical DeepLIFT/SHAP contributions against dinucleotide shuffles.

    tangermeme's `deep_lift_shap` does the work; this adds the per-sequence
    convergence check and halves the batch size when the GPU runs out of
    memory.

    Parameters
    ----------
    head : torch.nn.Module
        A model whose output is (N, 1) (see `attribution_head`).
    X : torch.Tensor, shape (N, 4, L)
        One-hot sequences.
    X_ctl : torch.Tensor or None, shape (N, C, L)
        Control tracks, passed to the model unchanged for the references.
    n_shuffles, random_state : int
        Number and seed of the dinucleotide-shuffled references.
    batch_size : int
        Sequence-reference pairs per batch; at most `CPU_PAIRS_PER_BATCH`
        on a CPU.

    Returns
    -------
    attributions : numpy.ndarray, shape (N, 4, L), float32
        Hypothetical contributions; times the one-hot sequence, they sum
        (per sequence) to the output minus the mean output of its references.
    deltas : numpy.ndarray, shape (N,)
        |sum of contributions - (output - mean reference output)|, the
        convergence delta per sequence.
    """
    from tangermeme.deep_lift_shap import deep_lift_shap as tangermeme_dls

    X = X.float()
    args = None if X_ctl is None else (X_ctl.float(),)
    if device.type == "cpu":
        batch_size = min(batch_size, CPU_PAIRS_PER_BATCH)

    def attempt(size: int) -> tuple[np.ndarray, np.ndarray]:
        recorder = _RecordOutputs(head)
        with paired_references(recorder):
            attributions = tangermeme_dls(
                recorder, X, args=args, n_shuffles=n_shuffles, random_state=random_state,
                hypothetical=True, batch_size=size, device=device, verbose=verbose,
                warning_threshold=np.inf)
        # Output minus reference output, one per pair, in tangermeme's order
        # (sequence-major); the contributions are the mean over the pairs.
        differences = torch.cat([y[0] - y[1] for y in recorder.outputs]).double().reshape(len(X), n_shuffles)
        total = (attributions.double() * X.double()).sum(dim=(1, 2))
        deltas = (total - differences.mean(dim=1)).abs().numpy()
        return attributions.float().numpy(), deltas

    return with_shrinking_batches(attempt, batch_size, device)


def attribute_model(config: AttributeConfig | Mapping[str, Any],
                    ohe_path: str | os.PathLike | None = None,
                    attr_path: str | os.PathLike | None = None,
                    loci_path: str | os.PathLike | None = None,
                    bigwig_path: str | os.PathLike | None = None,
                    max_loci: int | None = None) -> dict[str, Any]:
    """DeepLIFT/SHAP contributions at `loci` on `chroms`, for the `output` head.

    With `max_loci`, a random subset of that many loci (seeded by
    `random_state`, kept in genome order) is used.

    Writes
    - `ohe_path` (default `ohe_filename`): ``arr_0``, the one-hot sequences,
      (N, 4, in_window) float32;
    - `attr_path` (default `attr_filename`): ``arr_0``, the hypothetical
      contributions, (N, 4, in_window) float32 -- the pair that
      ``modisco motifs -s ohe.npz -a attr.npz`` reads;
    - `loci_path` (default: `attr_filename` with ``.loci.tsv``): the window
      of each row (chrom, start, end, center; 0-based), after windows with N
      or off a chromosome end were dropped (counted in the log);
    - `bigwig_path` (optional): the projected contribution (contribution
      of the observed base) at each base, the mean where windows overlap.

    Returns
    -------
    dict
        ``n_sequences``, ``n_over_threshold`` (sequences whose convergence
        delta exceeds `CONVERGENCE_THRESHOLD`) and ``max_delta``.
    """
    config = as_step_config(AttributeConfig, config)
    model, windows, device = load_model_and_windows(config)
    if max_loci is not None and len(windows) > max_loci:
        log.info("attributing a random %d of the %d loci", max_loci, len(windows))
        windows = windows.sample(max_loci, config.random_state)
    head = attribution_head(model, config.output)
    log.info("DeepLIFT/SHAP of the %s head on %d sequences, %d shuffles each", config.output,
             len(windows), config.n_shuffles)
    attributions, deltas = deep_lift_shap(
        head, windows.X, windows.X_ctl, config.n_shuffles, config.random_state,
        config.batch_size * config.n_shuffles, device, verbose=config.verbose)
    over = int((deltas > CONVERGENCE_THRESHOLD).sum())
    if over:
        log.warning("%d of %d sequences have a DeepLIFT convergence delta above %g (max %.3g): "
                    "their contributions do not add up to the prediction", over, len(deltas),
                    CONVERGENCE_THRESHOLD, deltas.max())
    else:
        log.info("convergence deltas: all below %g (max %.3g)", CONVERGENCE_THRESHOLD, deltas.max())

    ohe = windows.X.float().numpy()
    ohe_path = ohe_path or config.ohe_filename
    attr_path = attr_path or config.attr_filename
    loci_path = loci_path or f"{os.path.splitext(attr_path)[0]}.loci.tsv"
    center = windows.loci["center"].to_numpy()
    start = center - config.in_window // 2
    write_npz(ohe_path, arr_0=ohe)
    write_npz(attr_path, arr_0=attributions)
    write_tsv(loci_path, pd.DataFrame({"chrom": windows.loci["chrom"], "start": start,
                                       "end": start + config.in_window, "center": center}))
    if bigwig_path is not None:
        projected = (attributions * ohe).sum(axis=1)
        write_bigwig(bigwig_path, fasta_chrom_sizes(config.sequences), windows.loci["chrom"].to_numpy(),
                     start, projected)
    log.info("wrote %s, %s, %s%s", ohe_path, attr_path, loci_path, f", {bigwig_path}" if bigwig_path else "")
    return {"n_sequences": len(deltas), "n_over_threshold": over, "max_delta": float(deltas.max())}
