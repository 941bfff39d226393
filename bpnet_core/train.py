"""Fit a BPNet model: the BPNet Fit step of the parameter reference."""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .checks import check_files
from .config import RUNTIME_KEYS, FitConfig, as_step_config
from .data import TrainingSampler, Windows, load_windows, reverse_complement_sequence, reverse_complement_tracks
from .io import atomic_output, write_tsv
from .losses import bpnet_loss
from .metrics import performance
from .models import NOT_A_TORCH_FILE, BPNet, ChromBPNet, receptive_field_half_width, save_model, set_compute
from .predict import predict_windows
from .runtime import seed_everything, select_device

log = logging.getLogger(__name__)

# Reference setting (bpnet-lite, official BPNet): clip gradients at norm 1.
_MAX_GRAD_NORM = 1.0
#: The cosine schedule decays the learning rate to this fraction of `lr`.
COSINE_FLOOR = 0.1


def learning_rate(config: FitConfig, iteration: int, iterations: int) -> float:
    """The learning rate of training step `iteration` of `iterations` (max_epochs x batches per epoch).

    ``constant``: `lr` throughout. ``cosine``: from `lr` down to
    `COSINE_FLOOR` x `lr` along half a cosine, then held there.
    """
    if config.lr_schedule == "constant":
        return config.lr
    progress = min(iteration / max(iterations, 1), 1.0)
    return config.lr * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress)))


def _validate(model, windows, config, device) -> dict[str, float]:
    logits, log_counts = predict_windows(model, windows, config.batch_size, device)
    observed = windows.y.numpy()
    total, profile, count = bpnet_loss(torch.from_numpy(logits), torch.from_numpy(log_counts)[:, None],
                                       torch.from_numpy(observed), config.alpha)
    summary, per_region = performance(logits, log_counts, observed)
    bias = per_region["predicted_log_counts"] - per_region["observed_log_counts"]
    return {
        "valid_loss": float(total), "valid_profile_loss": float(profile),
        "valid_count_loss": float(count), "valid_count_bias": float(np.mean(bias)),
        "valid_count_pearson": summary["count_pearson"],
        "valid_profile_pearson": summary["profile_pearson"], "valid_profile_jsd": summary["profile_jsd"],
    }


def checkpoint_path(model_path: str | os.PathLike) -> Path:
    """Where training of `model_path` keeps its checkpoint."""
    return Path(f"{model_path}.checkpoint")


def _resumable(params: dict | None) -> dict | None:
    """The parameters that must match for a checkpoint to be resumed."""
    return params and {k: v for k, v in params.items() if k not in RUNTIME_KEYS}


class WeightAverage:
    """An exponential moving average of a model's weights, bias-corrected.

    After step t the average is sum_i (1 - d) d^(t - i) w_i / (1 - d^t):
    the weights of the last ~1 / (1 - d) steps, with no weight left on the
    initialisation. Validating and keeping the average rather than the
    last step's weights smooths the step-to-step oscillation of the count
    level, which otherwise decides which checkpoint is kept.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay, self.steps = decay, 0
        # Trained parameters only: a frozen part (ChromBPNet's bias model) keeps its exact values.
        self.trained = {name: p for name, p in model.named_parameters() if p.requires_grad}
        self.sums = {name: torch.zeros_like(p) for name, p in self.trained.items()}

    @torch.no_grad()
    def update(self) -> None:
        """Add the trained parameters' current values (after an optimizer step)."""
        self.steps += 1
        for name, total in self.sums.items():
            total.mul_(self.decay).add_(self.trained[name], alpha=1 - self.decay)

    def state(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """`model`'s state dict with the averaged weights (its own before any step)."""
        state = dict(model.state_dict())
        if self.steps:
            correction = 1 - self.decay ** self.steps
            state.update({name: total / correction for name, total in self.sums.items()})
        return state

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "sums": self.sums}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.steps = state["steps"]
        self.sums = {name: tensor.to(device) for name, tensor in state["sums"].items()}


class _TrainingRun:
    """The state of one training run, which is what a checkpoint holds."""

    def __init__(self, model: BPNet, optimizer, sampler: TrainingSampler, valid: Windows,
                 config: FitConfig, device: torch.device, centred_counts: bool = False):
        self.model, self.optimizer, self.sampler = model, optimizer, sampler
        self.valid, self.config, self.device = valid, config, device
        self.centred_counts = centred_counts
        self.iteration = 0
        self.examples = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"selection_loss": math.inf}
        self.best_state: dict | None = None
        self.stale = 0
        self.running = [0.0, 0.0, 0.0]
        self.running_n = 0
        self.elapsed_before = 0.0
        self.started = time.perf_counter()
        self.average = (WeightAverage(model, 1 - 1 / config.validation_iter) if config.average_weights
                        else None)

    def elapsed(self) -> float:
        """Seconds of training, over all the runs resumed from checkpoints."""
        return self.elapsed_before + time.perf_counter() - self.started

    def step(self, X, X_ctl, y, profile_rows=None) -> None:
        # A function of the iteration alone: a resumed run continues the schedule.
        rate = learning_rate(self.config, self.iteration, self.config.max_epochs * len(self.sampler))
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        X, y = X.to(self.device), y.to(self.device)
        X_ctl = None if X_ctl is None else X_ctl.to(self.device)
        y_profile, y_counts = self.model(X, X_ctl)
        loss, profile, count = bpnet_loss(y_profile, y_counts, y, self.config.alpha, profile_rows)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), _MAX_GRAD_NORM)
        self.optimizer.step()
        if self.average is not None:
            self.average.update()
        self.iteration += 1
        self.examples += len(X)
        for i, value in enumerate((loss, profile, count)):
            self.running[i] += value.item()
        self.running_n += 1

    def validate(self) -> bool:
        """Append a row to the history; True when early stopping says stop."""
        elapsed = self.elapsed()
        n = self.running_n
        live = None
        if self.average is not None:  # validate, and keep, the averaged weights
            live = copy.deepcopy(self.model.state_dict())
            self.model.load_state_dict(self.average.state(self.model))
        row = {"iteration": self.iteration, "epoch": self.sampler.epoch,
               "train_loss": self.running[0] / n if n else math.nan,
               "train_profile_loss": self.running[1] / n if n else math.nan,
               "train_count_loss": self.running[2] / n if n else math.nan,
               **_validate(self.model, self.valid, self.config, self.device),
               "lr": self.optimizer.param_groups[0]["lr"],
               "elapsed_s": elapsed, "examples_per_s": self.examples / max(elapsed, 1e-9)}
        # With the count level set after training (the refit), the level's
        # oscillation from batch to batch must not pick the checkpoint: the
        # count loss is taken about its mean, MSE - bias^2.
        row["selection_loss"] = (row["valid_profile_loss"] + self.config.alpha
                                 * (row["valid_count_loss"] - row["valid_count_bias"] ** 2)
                                 if self.centred_counts else row["valid_loss"])
        row["best"] = row["selection_loss"] < self.best["selection_loss"]
        self.history.append(row)
        if row["best"]:
            self.best, self.stale = row, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
        else:
            self.stale += 1
        if live is not None:
            self.model.load_state_dict(live)
        self.running, self.running_n = [0.0, 0.0, 0.0], 0
        log.info("iteration %d epoch %d: train %.2f | valid %.2f (profile %.2f, count %.3f), "
                 "count r %.3f, profile r %.3f, JSD %.3f%s", self.iteration, self.sampler.epoch,
                 row["train_loss"], row["valid_loss"], row["valid_profile_loss"], row["valid_count_loss"],
                 row["valid_count_pearson"], row["valid_profile_pearson"], row["valid_profile_jsd"],
                 " *" if row["best"] else "")
        return self.config.early_stopping is not None and self.stale >= self.config.early_stopping

    def save(self, path: Path) -> None:
        state = {
            "config": self.config.to_params(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "sampler": self.sampler.state_dict(), "best_state": self.best_state,
            "iteration": self.iteration, "examples": self.examples, "history": self.history,
            "best": self.best, "stale": self.stale, "running": self.running,
            "running_n": self.running_n, "elapsed": self.elapsed(),
            "average": None if self.average is None else self.average.state_dict(),
        }
        with atomic_output(path) as tmp:
            torch.save(state, tmp)

    def resume(self, path: Path) -> bool:
        """Continue from the checkpoint at `path` if there is one of this config."""
        if not path.is_file():
            return False
        try:
            # Onto the CPU: an error here is the file's; the state goes to the
            # device below, where running out of memory is an error like any other.
            state = torch.load(path, map_location="cpu", weights_only=True)
        except torch.OutOfMemoryError:
            raise  # a RuntimeError, but not the file's
        except NOT_A_TORCH_FILE as err:  # a truncated or foreign file: start over
            log.warning("ignoring unreadable checkpoint %s (%s); training from the start", path, err)
            return False
        if _resumable(state.get("config")) != _resumable(self.config.to_params()):
            log.warning("ignoring checkpoint %s of another config; training from the start", path)
            return False
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        for key in ("iteration", "examples", "history", "best", "stale", "running", "running_n"):
            setattr(self, key, state[key])
        best_state = state["best_state"]
        self.best_state = (None if best_state is None else
                           {name: tensor.to(self.device) for name, tensor in best_state.items()})
        if self.average is not None:
            self.average.load_state_dict(state["average"], self.device)
        self.elapsed_before = state["elapsed"]
        self.started = time.perf_counter()
        log.info("resuming from checkpoint %s at iteration %d (epoch %d)", path, self.iteration,
                 self.sampler.epoch)
        return True


def new_model(config: FitConfig, train: Windows, n_control_tracks: int | None = None) -> BPNet:
    """An untrained BPNet of `config`'s architecture for the windows of `train`.

    With a count bias, the count head starts at the mean log count of the
    training windows, so that early training is spent on the sequence,
    not on learning an offset.
    """
    trimming = (config.in_window - config.out_window) // 2
    reach = receptive_field_half_width(config.n_layers)
    if trimming < reach:
        log.warning("(in_window - out_window) / 2 = %d bp is less than the receptive field's "
                    "half-width (%d bp): outputs near the window edges see zero padding", trimming, reach)
    if n_control_tracks is None:
        n_control_tracks = len(config.controls or [])
    model = BPNet(n_filters=config.n_filters, n_layers=config.n_layers,
                  n_outputs=len(config.signals), n_control_tracks=n_control_tracks,
                  profile_output_bias=config.profile_output_bias,
                  count_output_bias=config.count_output_bias, trimming=trimming)
    if config.count_output_bias:
        with torch.no_grad():
            model.linear.bias.fill_(float(observed_log_counts(train, config.out_window).mean()))
    log.info("BPNet %d filters x %d layers, %d parameters, %d -> %d bp", config.n_filters,
             config.n_layers, sum(p.numel() for p in model.parameters()), config.in_window,
             config.out_window)
    return model


def observed_log_counts(windows: Windows, out_window: int) -> torch.Tensor:
    """log(1 + total counts) over the central `out_window` of each window, shape (N,)."""
    j = windows.max_jitter
    return torch.log1p(windows.y[:, :, j:j + out_window].sum(dim=(1, 2)))


def train_model(model: torch.nn.Module, sampler: TrainingSampler, valid: Windows, config: FitConfig,
                device: torch.device, model_path: str | os.PathLike,
                mask_background_profiles: bool = False, centred_counts: bool = False) -> dict[str, Any]:
    """Train `model` (its parameters that require gradients) and keep the best state.

    The loss is profile multinomial NLL + `alpha` x MSE of log(1 + total
    counts), optimised by AdamW with `lr` (on `lr_schedule`, see
    `learning_rate`) and gradients clipped at norm 1. With
    `average_weights`, validation and the kept state use the weights
    averaged over about the last `validation_iter` steps (`WeightAverage`).
    With `mask_background_profiles`, the profile loss is over the rows the
    sampler draws every epoch (the peaks) only, as bpnet-lite's BPNet does.
    Validation is every `validation_iter` batches and once at the end; the
    first validation, at iteration 0, is of the untrained model. The best
    state is the one of least ``selection_loss``: the validation loss or,
    with `centred_counts` (the count level is set after training, by
    `refit_count_head`), the profile loss plus `alpha` x the count MSE
    about its mean bias. Training
    stops after `max_epochs`, or after `early_stopping` validations without
    improvement. A checkpoint next to `model_path` (see `checkpoint_path`)
    lets an interrupted run resume; the caller removes it once the model is
    saved.

    Returns
    -------
    dict
        ``history`` (one row per validation), ``best`` (the best row) and
        ``seconds`` of training; `model` holds the best state.
    """
    model = set_compute(model.to(device), config.fast_path, config.precision)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr)
    run = _TrainingRun(model, optimizer, sampler, valid, config, device, centred_counts)
    checkpoint = checkpoint_path(model_path)
    # A run killed while writing its checkpoint leaves the temporary file.
    for stale in checkpoint.parent.glob(f".{checkpoint.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    if not run.resume(checkpoint):
        run.validate()  # row 0: the untrained model, the baseline to beat

    stop = False
    while not stop and not (sampler.epoch_done and sampler.epoch >= config.max_epochs):
        model.train()
        for X, X_ctl, y, always in tqdm(sampler, desc="training", disable=not config.verbose, leave=False):
            run.step(X, X_ctl, y, always if mask_background_profiles else None)
            if run.iteration % config.validation_iter == 0:
                stop = run.validate()
                run.save(checkpoint)
                model.train()
                if stop:
                    log.info("early stopping: %d validations without improvement", config.early_stopping)
                    break
    if run.history[-1]["iteration"] != run.iteration:
        run.validate()
    model.load_state_dict(run.best_state)
    model.eval()
    return {"history": run.history, "best": run.best, "seconds": run.elapsed()}


#: Fewer training regions per count-head parameter than this, and the head is not refit.
_MIN_REGIONS_PER_PARAMETER = 5


@torch.no_grad()
def _count_head_inputs(model: torch.nn.Module, windows: Windows, batch_size: int, device: torch.device
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The count head's pooled features and, for ChromBPNet, the frozen bias model's log counts.

    Rows are the N windows, then their N reverse complements, computed in
    float32: features (2N, F), bias counts (2N,) or None.
    """
    head = model.accessibility.linear if isinstance(model, ChromBPNet) else model.linear
    captured = []
    hook = head.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].float()))
    bf16 = [(m, m.bf16) for m in model.modules() if isinstance(m, BPNet)]
    features, bias_counts = ([], []), ([], [])  # each: (forward strand, reverse complement)
    try:
        for m, _ in bf16:
            m.bf16 = False
        model.eval()
        for start in range(0, len(windows), batch_size):
            X = windows.X[start:start + batch_size].to(device).float()
            X_ctl = None if windows.X_ctl is None else windows.X_ctl[start:start + batch_size].to(device).float()
            for strand, (x, x_ctl) in enumerate(((X, X_ctl), (reverse_complement_sequence(X), None if X_ctl is None
                                                               else reverse_complement_tracks(X_ctl)))):
                captured.clear()
                if isinstance(model, ChromBPNet):
                    model.accessibility(x)
                    bias_counts[strand].append(model.bias(x)[1].float().reshape(-1).cpu())
                else:
                    model(x, x_ctl)
                features[strand].append(captured[-1].cpu())
    finally:
        hook.remove()
        for m, flag in bf16:
            m.bf16 = flag
    # Rows: every window's forward strand, then every window's reverse complement.
    return (torch.cat(features[0] + features[1]),
            torch.cat(bias_counts[0] + bias_counts[1]) if bias_counts[0] else None)


def refit_count_head(model: torch.nn.Module, windows: Windows, out_window: int, batch_size: int,
                     device: torch.device) -> dict[str, float] | None:
    """Refit the count head of a trained model on `windows`, its features held fixed.

    The count head is a linear read-out of features averaged over ~574 bp,
    so gradient training moves it slowly, and background regions in the
    batches pull its level down: after training, its predictions in peaks
    are shrunk toward the background's and set too low. Refit by least
    squares of log(1 + counts) on the training peaks (both strands), it is
    the best read-out of what the model has learnt. For ChromBPNet the
    accessibility model's head is refit through the full model's
    log(exp(bias) + exp(accessibility)) with L-BFGS.

    Parameters
    ----------
    model : BPNet or ChromBPNet
        Trained; its count head (``linear``, or ``accessibility.linear``) is changed in place.
    windows : Windows
        The training peaks, unjittered (`Windows.centered`): sequences (N, 4, in_window).
    out_window : int
        Width (bp) over which counts are totalled.
    batch_size : int
    device : torch.device

    Returns
    -------
    dict or None
        ``n_regions`` and the training count MSE (log counts) ``mse_before``
        and ``mse_after``; None (head unchanged) when there are fewer than
        `_MIN_REGIONS_PER_PARAMETER` regions per head parameter.
    """
    head = model.accessibility.linear if isinstance(model, ChromBPNet) else model.linear
    n_parameters = sum(p.numel() for p in head.parameters())
    if len(windows) < _MIN_REGIONS_PER_PARAMETER * n_parameters:
        log.info("count head not refit: %d training peaks for %d parameters", len(windows), n_parameters)
        return None
    features, bias_counts = _count_head_inputs(model, windows, batch_size, device)
    F = features.double()
    y = torch.log1p(windows.y.sum(dim=(1, 2)).double()).repeat(2)  # both strands, as the features
    weight = head.weight.detach().double().clone().reshape(-1).requires_grad_(True)
    offset = (head.bias.detach().double().clone() if head.bias is not None
              else torch.zeros(1, dtype=torch.float64)).requires_grad_(head.bias is not None)

    def predicted():
        counts = F @ weight + offset
        return counts if bias_counts is None else torch.logaddexp(bias_counts.double(), counts)

    with torch.no_grad():
        before = float(((predicted() - y) ** 2).mean())
    if bias_counts is None:
        # A linear head: least squares, exactly.
        A = torch.cat([F, torch.ones(len(F), 1, dtype=F.dtype)], dim=1) if head.bias is not None else F
        solution = torch.linalg.lstsq(A, y.unsqueeze(1), driver="gelsd").solution.reshape(-1)
        with torch.no_grad():
            weight.copy_(solution[:F.shape[1]])
            if head.bias is not None:
                offset.copy_(solution[F.shape[1]:])
    else:
        optimizer = torch.optim.LBFGS([weight, offset] if head.bias is not None else [weight], max_iter=500,
                                      tolerance_grad=1e-10, tolerance_change=1e-12, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = ((predicted() - y) ** 2).mean()
            loss.backward()
            return loss

        optimizer.step(closure)
    with torch.no_grad():
        after = float(((predicted() - y) ** 2).mean())
    if not after < before:  # keep what training found when the refit cannot improve it
        return {"n_regions": len(windows), "mse_before": before, "mse_after": before}
    with torch.no_grad():
        head.weight.copy_(weight.detach().reshape(head.weight.shape).to(head.weight.dtype))
        if head.bias is not None:
            head.bias.copy_(offset.detach().to(head.bias.dtype))
    log.info("count head refit by least squares on %d training peaks: training count MSE %.3f -> %.3f",
             len(windows), before, after)
    return {"n_regions": len(windows), "mse_before": before, "mse_after": after}


def finish_count_head(model: torch.nn.Module, peaks: Windows, valid: Windows, config: FitConfig,
                      device: torch.device) -> dict[str, float] | None:
    """`refit_count_head` on the training `peaks` when `config.refit_count_head`; logs the validation after.

    Returns `refit_count_head`'s result plus the validation metrics of the
    refit model (``valid_*``, as in the history), or None when not refit.
    """
    if not config.refit_count_head:
        return None
    refit = refit_count_head(model, peaks.centered(config.in_window, config.out_window), config.out_window,
                             config.batch_size, device)
    if refit is None:
        return None
    after = _validate(model, valid, config, device)
    log.info("after the refit: valid count loss %.3f, count r %.3f", after["valid_count_loss"],
             after["valid_count_pearson"])
    return {**refit, **after}


def training_metadata(config: FitConfig, model: torch.nn.Module, train: Windows, valid: Windows,
                      result: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """What a model file records about its training (see `save_model`)."""
    best = result["best"]
    return {
        "config": config.to_params(),
        "signals": list(config.signals),
        "controls": list(config.controls or []),
        "in_window": config.in_window,
        "out_window": config.out_window,
        "n_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "n_train": len(train),
        "n_valid": len(valid),
        "best_iteration": best["iteration"],
        "validation": {k: v for k, v in best.items() if k.startswith("valid_")},
        "training_seconds": result["seconds"],
        "device": str(device),
        "precision": getattr(model, "precision", "fp32"),
    }


def _window_args(config: FitConfig, key: str, **filters) -> dict[str, Any]:
    args = {"sequences": config.sequences, "signals": config.signals, "controls": config.controls,
            "in_window": config.in_window, "out_window": config.out_window,
            "min_counts": config.min_counts, "max_counts": config.max_counts,
            "verbose": config.verbose, "key": key}
    return {**args, **filters}


def load_training_windows(config: FitConfig, loci=None, key: str = "loci", **filters) -> Windows:
    """Windows of `loci` (default ``config.loci``) on the training chromosomes,
    read `max_jitter` wider; `filters` override `min_counts` / `max_counts`."""
    return load_windows(config.loci if loci is None else loci, chroms=config.training_chroms,
                        max_jitter=config.max_jitter, **_window_args(config, key, **filters))


def load_fit_windows(config: FitConfig, loci=None, key: str = "loci", **filters) -> tuple[Windows, Windows]:
    """Jittered training windows and unjittered validation windows of `loci`.

    `loci` defaults to ``config.loci``; `filters` override `min_counts` /
    `max_counts`.
    """
    train = load_training_windows(config, loci, key, **filters)
    valid = load_windows(config.loci if loci is None else loci, chroms=config.validation_chroms,
                         **_window_args(config, key, **filters))
    return train, valid


def fit_model(config: FitConfig | Mapping[str, Any], model_path: str | os.PathLike,
              history_path: str | os.PathLike) -> dict[str, Any]:
    """Train a BPNet model and save the best one by validation loss.

    Training examples are the `loci` on `training_chroms`, jittered by up
    to `max_jitter` and reverse-complemented at random, plus, with
    `negatives`, ``negative_ratio`` x n_peaks background regions drawn
    afresh each epoch; validation is on the unjittered `loci` of
    `validation_chroms` (see `train_model` for the loss, schedule and early
    stopping).

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
    config = as_step_config(FitConfig, config)
    check_files(config)
    train, valid = load_fit_windows(config)
    device = select_device(config.device)
    seed_everything(config.random_state)
    n_always = n_sampled = None
    if config.negatives is not None:
        # Peaks every epoch, a fresh draw of background regions each epoch;
        # validation on the peaks alone.
        negatives = load_training_windows(config, loci=config.negatives, key="negatives")
        n_always, n_sampled = len(train), int(round(config.negative_ratio * len(train)))
        log.info("training on %d peaks + %d of %d background regions per epoch (%s), validating on "
                 "%d peaks of %s", n_always, n_sampled, len(negatives), ",".join(config.training_chroms),
                 len(valid), ",".join(config.validation_chroms))
        train = train.concat(negatives)
    else:
        log.info("training on %d windows of %s, validating on %d of %s", len(train),
                 ",".join(config.training_chroms), len(valid), ",".join(config.validation_chroms))
    model = new_model(config, train if n_always is None else train.subset(np.arange(n_always)))
    sampler = TrainingSampler(train, config.batch_size, config.in_window, config.out_window,
                              config.reverse_complement, config.random_state,
                              n_always=n_always, n_sampled=n_sampled or 0)
    # Background regions teach the count head, not the profile head (bpnet-lite's BPNet).
    result = train_model(model, sampler, valid, config, device, model_path,
                         mask_background_profiles=n_always is not None, centred_counts=config.refit_count_head)
    peaks = train if n_always is None else train.subset(np.arange(n_always))
    refit = finish_count_head(model, peaks, valid, config, device)
    metadata = training_metadata(config, model, train, valid, result, device)
    metadata["count_head_refit"] = refit
    save_trained(model, model_path, metadata, result["history"], history_path)
    return metadata


def save_trained(model: torch.nn.Module, model_path: str | os.PathLike, metadata: dict,
                 history: list[dict], history_path: str | os.PathLike) -> None:
    """Write the history TSV and the model, then drop the training checkpoint."""
    write_tsv(history_path, pd.DataFrame(history))
    save_model(model, model_path, metadata)
    checkpoint_path(model_path).unlink(missing_ok=True)
    log.info("saved %s (best iteration %d: valid loss %.3f, count r %.3f) and %s", model_path,
             metadata["best_iteration"], metadata["validation"]["valid_loss"],
             metadata["validation"]["valid_count_pearson"], history_path)
