"""Fit a BPNet model: the BPNet Fit step of the parameter reference."""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .checks import check_files
from .config import FitConfig
from .data import TrainingSampler, Windows, load_windows
from .io import write_tsv
from .losses import bpnet_loss
from .metrics import performance
from .models import BPNet, receptive_field_half_width, save_model
from .runtime import seed_everything, select_device

log = logging.getLogger(__name__)

# Reference setting (bpnet-lite, official BPNet): clip gradients at norm 1.
_MAX_GRAD_NORM = 1.0


@torch.no_grad()
def predict_windows(model: BPNet, windows: Windows, batch_size: int,
                    device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Profile logits (N, S, out_window) and log counts (N,) of windows."""
    model.eval()
    logits, counts = [], []
    for i in range(0, len(windows), batch_size):
        X = windows.X[i:i + batch_size].to(device).float()
        X_ctl = None if windows.X_ctl is None else windows.X_ctl[i:i + batch_size].to(device)
        y_profile, y_counts = model(X, X_ctl)
        logits.append(y_profile.float().cpu())
        counts.append(y_counts.float().cpu().reshape(-1))
    return torch.cat(logits).numpy(), torch.cat(counts).numpy()


def _validate(model, windows, config, device) -> dict[str, float]:
    logits, log_counts = predict_windows(model, windows, config.batch_size, device)
    observed = windows.y.numpy()
    total, profile, count = bpnet_loss(torch.from_numpy(logits), torch.from_numpy(log_counts)[:, None],
                                       torch.from_numpy(observed), config.alpha)
    summary, _ = performance(logits, log_counts, observed)
    return {
        "valid_loss": float(total), "valid_profile_loss": float(profile),
        "valid_count_loss": float(count), "valid_count_pearson": summary["count_pearson"],
        "valid_profile_pearson": summary["profile_pearson"], "valid_profile_jsd": summary["profile_jsd"],
    }


def fit_model(config: FitConfig | Mapping[str, Any], model_path: str | os.PathLike,
              history_path: str | os.PathLike) -> dict[str, Any]:
    """Train a BPNet model and save the best one by validation loss.

    Training examples are the `loci` on `training_chroms`, jittered by up
    to `max_jitter` and reverse-complemented at random; validation is on the
    unjittered `loci` of `validation_chroms`, every `validation_iter`
    batches and once at the end. The loss is profile multinomial NLL +
    `alpha` x MSE of log(1 + total counts), optimised by AdamW with `lr`
    and gradients clipped at norm 1. Training stops after `max_epochs`, or
    after `early_stopping` validations without improvement. The first
    validation, at iteration 0, is of the untrained model.

    Parameters
    ----------
    config : FitConfig or mapping
        The BPNet Fit parameters.
    model_path : str or PathLike
        Where the model is written (see `bpnet_core.models.save_model`).
    history_path : str or PathLike
        Training log TSV: one row per validation, with iteration, epoch,
        mean training losses since the previous row, validation losses,
        count Pearson, profile Pearson and JSD, elapsed seconds and
        training examples per second.

    Returns
    -------
    dict
        The model's metadata (best iteration, its validation metrics, ...).
    """
    config = config if isinstance(config, FitConfig) else FitConfig.model_validate(dict(config))
    check_files(config)
    device = select_device(config.device)
    seed_everything(config.random_state)

    common = dict(sequences=config.sequences, signals=config.signals, controls=config.controls,
                  in_window=config.in_window, out_window=config.out_window,
                  min_counts=config.min_counts, max_counts=config.max_counts,
                  verbose=config.verbose)
    train = load_windows(config.loci, chroms=config.training_chroms,
                         max_jitter=config.max_jitter, **common)
    valid = load_windows(config.loci, chroms=config.validation_chroms, **common)
    log.info("training on %d windows of %s, validating on %d of %s",
             len(train), ",".join(config.training_chroms), len(valid), ",".join(config.validation_chroms))

    trimming = (config.in_window - config.out_window) // 2
    reach = receptive_field_half_width(config.n_layers)
    if trimming < reach:
        log.warning("(in_window - out_window) / 2 = %d bp is less than the receptive field's "
                    "half-width (%d bp): outputs near the window edges see zero padding", trimming, reach)
    model = BPNet(n_filters=config.n_filters, n_layers=config.n_layers,
                  n_outputs=len(config.signals), n_control_tracks=len(config.controls or []),
                  profile_output_bias=config.profile_output_bias,
                  count_output_bias=config.count_output_bias, trimming=trimming)
    if config.count_output_bias:
        # Start the count head at the mean log count, so that early training
        # is spent on the sequence, not on learning an offset.
        j = train.max_jitter
        mean_log = torch.log1p(train.y[:, :, j:j + config.out_window].sum(dim=(1, 2))).mean()
        with torch.no_grad():
            model.linear.bias.fill_(float(mean_log))
    model = model.to(device)
    n_parameters = sum(p.numel() for p in model.parameters())
    log.info("BPNet %d filters x %d layers, %d parameters, %d -> %d bp",
             config.n_filters, config.n_layers, n_parameters, config.in_window, config.out_window)

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    sampler = TrainingSampler(train, config.batch_size, config.in_window, config.out_window,
                              config.reverse_complement, config.random_state)

    history: list[dict[str, Any]] = []
    best = {"valid_loss": math.inf}
    best_state = None
    stale = 0
    iteration = 0
    running = np.zeros(3)
    running_n = examples = 0
    start = time.perf_counter()
    stop = False

    def validate(epoch):
        nonlocal best, best_state, stale, running, running_n, examples
        elapsed = time.perf_counter() - start
        train_means = running / running_n if running_n else np.full(3, np.nan)
        row = {"iteration": iteration, "epoch": epoch,
               "train_loss": train_means[0], "train_profile_loss": train_means[1],
               "train_count_loss": train_means[2],
               **_validate(model, valid, config, device),
               "elapsed_s": elapsed, "examples_per_s": examples / max(elapsed, 1e-9)}
        improved = row["valid_loss"] < best["valid_loss"]
        row["best"] = improved
        history.append(row)
        if improved:
            best, best_state, stale = row, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
        running, running_n = np.zeros(3), 0
        log.info("iteration %d epoch %d: train %.2f | valid %.2f (profile %.2f, count %.3f), "
                 "count r %.3f, profile r %.3f, JSD %.3f%s", iteration, epoch, row["train_loss"],
                 row["valid_loss"], row["valid_profile_loss"], row["valid_count_loss"],
                 row["valid_count_pearson"], row["valid_profile_pearson"], row["valid_profile_jsd"],
                 " *" if improved else "")
        return config.early_stopping is not None and stale >= config.early_stopping

    # Row 0 is the untrained model: the baseline that training must beat.
    validate(0)
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        for X, X_ctl, y in tqdm(sampler, desc=f"epoch {epoch}", disable=not config.verbose, leave=False):
            X, y = X.to(device), y.to(device)
            X_ctl = None if X_ctl is None else X_ctl.to(device)
            y_profile, y_counts = model(X, X_ctl)
            loss, profile, count = bpnet_loss(y_profile, y_counts, y, config.alpha)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), _MAX_GRAD_NORM)
            optimizer.step()
            iteration += 1
            examples += len(X)
            running += [loss.item(), profile.item(), count.item()]
            running_n += 1
            if iteration % config.validation_iter == 0:
                stop = validate(epoch)
                model.train()
                if stop:
                    break
        if stop:
            log.info("early stopping: %d validations without improvement", config.early_stopping)
            break
    if history[-1]["iteration"] != iteration:
        validate(epoch)

    model.load_state_dict(best_state)
    metadata = {
        "config": config.to_params(),
        "signals": list(config.signals),
        "controls": list(config.controls or []),
        "in_window": config.in_window,
        "out_window": config.out_window,
        "n_parameters": n_parameters,
        "n_train": len(train),
        "n_valid": len(valid),
        "best_iteration": best["iteration"],
        "validation": {k: v for k, v in best.items() if k.startswith("valid_")},
        "training_seconds": time.perf_counter() - start,
        "device": str(device),
    }
    write_tsv(history_path, pd.DataFrame(history))
    save_model(model, model_path, metadata)
    log.info("saved %s (best iteration %d: valid loss %.3f, count r %.3f) and %s",
             model_path, best["iteration"], best["valid_loss"], best["valid_count_pearson"], history_path)
    return metadata
