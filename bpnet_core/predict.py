"""Predict with a trained model: the BPNet Predict step of the parameter reference."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from scipy.special import softmax

from .checks import check_files
from .config import PredictConfig, StepConfig, as_step_config
from .data import Windows, load_windows, reverse_complement_sequence, reverse_complement_tracks
from .errors import InputError
from .io import as_list, fasta_chrom_sizes, write_bigwig, write_npz
from .models import BPNet, load_model, set_compute
from .runtime import select_device, with_shrinking_batches

log = logging.getLogger(__name__)


@torch.no_grad()
def predict_windows(model: BPNet, windows: Windows, batch_size: int, device: torch.device,
                    rc_average: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Profile logits (N, S, out_window) and log counts (N,) of windows.

    With `rc_average`, each output is the mean of the window's prediction
    and its reverse complement's (strands swapped and positions reversed
    back; logits averaged, as bpnet-lite does), so that both strands of the
    DNA get the same prediction. When the GPU runs out of memory, the batch
    size is halved and the prediction retried (logged), down to batches of one.
    """
    model.eval()
    return with_shrinking_batches(lambda size: _predict_batches(model, windows, size, device, rc_average),
                                  batch_size, device)


def _predict_batches(model, windows, batch_size, device, rc_average=False):
    logits, counts = [], []
    for i in range(0, len(windows), batch_size):
        X = windows.X[i:i + batch_size].to(device).float()
        X_ctl = None if windows.X_ctl is None else windows.X_ctl[i:i + batch_size].to(device)
        y_profile, y_counts = model(X, X_ctl)
        if rc_average:
            rc_profile, rc_counts = model(reverse_complement_sequence(X),
                                          None if X_ctl is None else reverse_complement_tracks(X_ctl))
            y_profile = (y_profile + reverse_complement_tracks(rc_profile)) / 2
            y_counts = (y_counts + rc_counts) / 2
        logits.append(y_profile.float().cpu())
        counts.append(y_counts.float().cpu().reshape(-1))
    return torch.cat(logits).numpy(), torch.cat(counts).numpy()


def load_model_and_windows(config: StepConfig, signals: Sequence[str] | None = None
                           ) -> tuple[BPNet, Windows, Any]:
    """The model of `config.model` and the unjittered windows of `config.loci`.

    Checks that the config's windows and control tracks fit the model.
    """
    check_files(config)
    device = select_device(config.device)
    # Attribution has no `precision`: DeepLIFT/SHAP runs in float32.
    model = set_compute(load_model(config.model, device=device), config.fast_path,
                        getattr(config, "precision", "fp32"))
    trimming = (config.in_window - config.out_window) // 2
    if trimming != model.trimming:
        raise InputError(
            f"{config.model}: the model maps in_window - out_window = {2 * model.trimming} bp, "
            f"but the config has in_window {config.in_window} and out_window {config.out_window} "
            f"(the model was trained with {model.metadata.get('in_window')} -> "
            f"{model.metadata.get('out_window')})"
        )
    n_controls = len(as_list(config.controls))
    if n_controls != model.n_control_tracks:
        raise InputError(
            f"config key 'controls': {n_controls} control track(s) given, but the model "
            f"{config.model} was trained with {model.n_control_tracks}"
        )
    if signals is not None and len(signals) != model.n_outputs:
        raise InputError(
            f"config key 'signals': {len(signals)} track(s) given, but the model {config.model} "
            f"predicts {model.n_outputs}"
        )
    windows = load_windows(config.loci, config.sequences, signals=signals, controls=config.controls,
                           chroms=config.chroms, in_window=config.in_window,
                           out_window=config.out_window, verbose=config.verbose)
    return model, windows, device


def _coordinates(windows: Windows, out_window: int) -> dict[str, np.ndarray]:
    center = windows.loci["center"].to_numpy()
    return {
        "chrom": windows.loci["chrom"].to_numpy(dtype=str),
        "start": center - out_window // 2,
        "end": center - out_window // 2 + out_window,
    }


def predicted_tracks(logits: np.ndarray, log_counts: np.ndarray) -> np.ndarray:
    """Expected reads per base: softmax profile x predicted total counts.

    Parameters
    ----------
    logits : numpy.ndarray, shape (N, S, L)
    log_counts : numpy.ndarray, shape (N,)
        Predicted log(1 + total counts).

    Returns
    -------
    numpy.ndarray, shape (N, S, L)
        Reads per base; summed over tracks and positions it gives the
        predicted total counts.
    """
    n, s, length = logits.shape
    probs = softmax(logits.reshape(n, -1).astype(np.float64), axis=1).reshape(n, s, length)
    return probs * np.expm1(log_counts).reshape(n, 1, 1)


def predict_arrays(config: PredictConfig | Mapping[str, Any],
                   profile_path: str | os.PathLike | None = None,
                   counts_path: str | os.PathLike | None = None) -> None:
    """Predict profiles and counts at `loci` on `chroms` and write them as npz.

    Writes
    - `profile_path` (default `profile_filename`): ``arr_0``, the profile
      logits (N, S, out_window), and the output window of each row:
      ``chrom``, ``start``, ``end`` (0-based, half-open);
    - `counts_path` (default `counts_filename`): ``arr_0``, the predicted
      log(1 + total counts) (N, 1), and the same coordinates.
    """
    config = as_step_config(PredictConfig, config)
    model, windows, device = load_model_and_windows(config)
    logits, log_counts = predict_windows(model, windows, config.batch_size, device,
                                         config.reverse_complement_average)
    coords = _coordinates(windows, config.out_window)
    profile_path = profile_path or config.profile_filename
    counts_path = counts_path or config.counts_filename
    write_npz(profile_path, arr_0=logits.astype(np.float32), **coords)
    write_npz(counts_path, arr_0=log_counts.reshape(-1, 1).astype(np.float32), **coords)
    log.info("predicted %d windows: %s, %s", len(windows), profile_path, counts_path)


def export_bigwig(profile_path: str | os.PathLike, counts_path: str | os.PathLike,
                  sequences: str, track: int, bigwig_path: str | os.PathLike) -> None:
    """Write one output track of saved predictions as a bigWig.

    The value at each base is the predicted reads (softmax profile x
    predicted total counts); where windows overlap, their mean.

    Parameters
    ----------
    profile_path, counts_path : str or PathLike
        npz files written by `predict_arrays`.
    sequences : str
        The genome FASTA (for the bigWig header).
    track : int
        Output index, in the order of the model's `signals`.
    bigwig_path : str or PathLike
    """
    with np.load(profile_path) as profile, np.load(counts_path) as counts:
        logits, log_counts = profile["arr_0"], counts["arr_0"].reshape(-1)
        chroms, starts = profile["chrom"], profile["start"]
    if not 0 <= track < logits.shape[1]:
        raise InputError(f"{profile_path}: no output track {track} (the model has {logits.shape[1]})")
    tracks = predicted_tracks(logits, log_counts)
    write_bigwig(bigwig_path, fasta_chrom_sizes(sequences), chroms, starts, tracks[:, track])


def predict_model(config: PredictConfig | Mapping[str, Any]) -> None:
    """The BPNet Predict step: npz files (`predict_arrays`) plus one bigWig
    of predicted reads per output track, ``<bigwig_prefix>.<track>.bw``
    (prefix: `profile_filename` without its extension, unless set).
    """
    config = as_step_config(PredictConfig, config)
    predict_arrays(config)
    prefix = config.bigwig_prefix or str(Path(config.profile_filename).with_suffix(""))
    with np.load(config.profile_filename) as profile:
        n_tracks = profile["arr_0"].shape[1]
    for track in range(n_tracks):
        export_bigwig(config.profile_filename, config.counts_filename, config.sequences,
                      track, f"{prefix}.{track}.bw")
