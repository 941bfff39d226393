"""ChromBPNet: a frozen enzyme-bias model plus an accessibility model.

The official recipe (Pampari et al., chrombpnet 1.0), step by step:

1. `fit_bias_model`: a small BPNet trained on background regions whose total
   counts are at most `beta` x the 1st percentile of total counts in peaks
   (regions with so few reads are assumed closed chromatin, where the
   enzyme's sequence preference is all there is to learn). Its count
   output is then shifted by the mean residual log count on those regions
   (the "scaled" bias model) and frozen.
2. `fit_chrombpnet`: an accessibility BPNet trained, through the full model
   (`bpnet_core.models.ChromBPNet`: profile logits add, log counts combine
   by logsumexp), on the peaks plus a fresh draw of background regions
   each epoch, with the bias model frozen.

Quality control of the bias model is in `bpnet_core.bias_qc`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checks import check_files
from .config import BiasFitConfig, ChromBPNetFitConfig, bias_fit_config, as_step_config
from .data import TrainingSampler, Windows, window_counts
from .errors import InputError
from .io import as_list
from .models import BPNet, ChromBPNet, load_model, save_model, set_compute
from .predict import predict_windows
from .runtime import seed_everything, select_device
from .train import (
    finish_count_head,
    load_fit_windows,
    load_training_windows,
    new_model,
    observed_log_counts,
    save_trained,
    train_model,
    training_metadata,
)

log = logging.getLogger(__name__)

#: The official recipe's low quantile of peak counts that, times `beta`,
#: bounds the counts of the background regions the bias model sees.
PEAK_COUNT_QUANTILE = 0.01
#: Fewest background regions the bias model trains on: fewer cannot give
#: a model of the enzyme's preference, so the run stops and says so.
MIN_BIAS_REGIONS = 50
#: Fewest enzyme insertions in the bias model's training regions. On the
#: real yeast ATAC-seq (docs/chrombpnet.md): 17,462 and 8,979 gave bias-free
#: accessibility models; half the fragments gave 8,410 (two regions per peak)
#: and an accessibility model that was NOT bias-free, or 4,219 (one per peak)
#: and a bias model none of whose patterns was Tn5's. Rounded up from
#: between 8,410 and 8,979. Below this the run goes on and says so (log,
#: bias QC, report, summary); the bias-free QC judges the outcome.
MIN_BIAS_INSERTIONS = 10_000


def depth_warning(insertions: int, n_regions: int) -> str | None:
    """What a run says when its bias model learns from too few insertions; None when enough."""
    if insertions >= MIN_BIAS_INSERTIONS:
        return None
    return (f"shallow data: the bias model learns the enzyme's preference from {insertions:,} insertions in "
            f"{n_regions:,} background regions (at least {MIN_BIAS_INSERTIONS:,} wanted); its "
            "accessibility model may keep part of the enzyme's preference. Sequence deeper, give more "
            "background regions (`negatives`, `negatives_per_peak`), or use a bias model trained on "
            "deeper data of the same enzyme (`bias_model`)")


def bias_threshold(config: BiasFitConfig) -> dict[str, float]:
    """The count threshold of the bias model's background regions.

    Returns
    -------
    dict
        ``peak_quantile`` (the 1st percentile of total counts in the
        `out_window` of the peaks on the training chromosomes), ``beta``
        and ``threshold`` = beta x peak_quantile (reads).
    """
    counts = window_counts(config.peaks, config.sequences, config.signals, config.training_chroms,
                           config.out_window, key="loci")
    if len(counts) == 0:
        raise InputError(
            f"{', '.join(as_list(config.peaks))} (config key 'loci'): no peaks on the training "
            f"chromosomes {','.join(config.training_chroms)}; the bias threshold needs their counts"
        )
    quantile = float(np.quantile(counts, PEAK_COUNT_QUANTILE))
    return {"peak_quantile": quantile, "beta": config.beta, "threshold": config.beta * quantile,
            "n_peaks": len(counts)}


def _check_enough(config: BiasFitConfig, threshold: dict[str, float], passed: dict[str, tuple[int, int]]) -> None:
    """Stop with a message that says what to change when too few regions pass."""
    n_train, n_all = passed["training"]
    n_valid, _ = passed["validation"]
    if n_train >= MIN_BIAS_REGIONS and n_valid > 0:
        return
    raise InputError(
        f"{', '.join(as_list(config.loci))} (config key 'negatives' / 'bias_fit_parameters.loci'): "
        f"too few background regions for the bias model: {n_train} of {n_all} on the training "
        f"chromosomes and {n_valid} on the validation chromosomes have at most "
        f"{threshold['threshold']:.1f} counts in their {config.out_window} bp window; the threshold "
        f"is beta ({config.beta}) x {threshold['peak_quantile']:.1f}, the 1st percentile of counts "
        f"in the peaks (config key 'loci'), and the bias model needs at least {MIN_BIAS_REGIONS} "
        "training regions and one validation region. Raise `beta` (0.5 is the ATAC, 0.8 the "
        "DNase recommendation), or give more background regions in `negatives`."
    )


def fit_bias_model(config: BiasFitConfig | Mapping[str, Any], model_path: str | os.PathLike,
                   history_path: str | os.PathLike) -> dict[str, Any]:
    """Train, scale and save the bias model of ChromBPNet (step 1 of the recipe).

    Parameters
    ----------
    config : BiasFitConfig or mapping
        `loci` are the background regions, `peaks` set the threshold
        (see `bias_threshold`); regions above it, or outside
        [min_counts, max_counts], are dropped and counted in the log.
    model_path, history_path : str or PathLike
        The scaled bias model (a `BPNet` file) and its training history.

    Returns
    -------
    dict
        The model's metadata, including ``bias_threshold``, ``count_shift``
        (the log-count shift added to the count head) and
        ``background_insertions`` (the counts it learnt from, see `depth_warning`).

    Raises
    ------
    InputError
        When fewer than `MIN_BIAS_REGIONS` training regions, or no
        validation region, pass the threshold; the message gives the
        threshold, the peak count quantile and the counts that passed.
    """
    config = as_step_config(BiasFitConfig, config)
    check_files(config)
    threshold = bias_threshold(config)
    max_counts = min(config.max_counts, threshold["threshold"])
    passed = {}
    for split, chroms in (("training", config.training_chroms), ("validation", config.validation_chroms)):
        counts = window_counts(config.loci, config.sequences, config.signals, chroms, config.out_window,
                               key="negatives")
        passed[split] = (int(((counts <= max_counts) & (counts >= config.min_counts)).sum()), len(counts))
    log.info("bias threshold: beta %.2f x %.1f (1st percentile of counts in %d training peaks) = "
             "%.1f counts; background regions at most that: %d of %d training, %d of %d validation",
             config.beta, threshold["peak_quantile"], threshold["n_peaks"], threshold["threshold"],
             *passed["training"], *passed["validation"])
    _check_enough(config, threshold, passed)

    train, valid = load_fit_windows(config, key="negatives", max_counts=max_counts)
    insertions = int(train.centered(config.in_window, config.out_window).y.sum())
    log.info("the bias model learns from %d insertions in %d background regions (%.1f per region)",
             insertions, len(train), insertions / len(train))
    shallow = depth_warning(insertions, len(train))
    if shallow:
        log.warning("%s", shallow)
    device = select_device(config.device)
    seed_everything(config.random_state)
    model = new_model(config, train, n_control_tracks=0)
    sampler = TrainingSampler(train, config.batch_size, config.in_window, config.out_window,
                              config.reverse_complement, config.random_state)
    result = train_model(model, sampler, valid, config, device, model_path)
    shift = scale_bias_counts(model, train, config, device)
    metadata = training_metadata(config, model, train, valid, result, device)
    metadata.update(kind="bias", bias_threshold=threshold, count_shift=shift, background_insertions=insertions)
    save_trained(model, model_path, metadata, result["history"], history_path)
    return metadata


def scale_bias_counts(model: BPNet, windows: Windows, config: BiasFitConfig, device) -> float:
    """Shift the count head so its mean matches the observed mean log count.

    The official recipe's "scaled" bias model: the shift is
    mean(log(1 + counts) - predicted log counts) over `windows` (the
    training background regions, unjittered). A model without a count
    bias term gets one.

    Returns
    -------
    float
        The shift, in log counts.
    """
    centered = windows.centered(config.in_window, config.out_window)
    # In float32 whatever the training precision: the model file keeps no
    # precision, and the shift must hold for every later one.
    set_compute(model, config.fast_path, "fp32")
    _, predicted = predict_windows(model, centered, config.batch_size, device)
    shift = float((observed_log_counts(centered, config.out_window).numpy() - predicted).mean())
    with torch.no_grad():
        if model.linear.bias is None:
            model.linear.bias = torch.nn.Parameter(torch.zeros(1, device=model.linear.weight.device))
            model.hyperparameters["count_output_bias"] = True
        model.linear.bias += shift
    log.info("bias model count output shifted by %+.4f log counts (mean residual on %d regions)",
             shift, len(centered))
    return shift


def check_bias_qc(qc: Mapping[str, Any], qc_path: str | os.PathLike, accept: bool) -> None:
    """Stop unless the bias QC passed or the config accepts a flagged bias model."""
    if not qc.get("flagged"):
        return
    reasons = "; ".join(qc.get("reasons", []))
    if accept:
        log.warning("the bias model is flagged by QC (%s) but bias_qc_parameters.accept is true: "
                    "going on", reasons)
        return
    raise InputError(
        f"{qc_path}: the bias model failed QC: {reasons}. A bias model that learned TF motifs "
        "or does not predict background counts removes real signal from the accessibility model. "
        "Lower `beta` (the bias model then sees only regions with fewer reads), or set "
        "`bias_qc_parameters.accept` to true to use it anyway (see the QC report next to this file)."
    )


def fit_chrombpnet(config: ChromBPNetFitConfig | Mapping[str, Any], bias_model_path: str | os.PathLike,
                   model_path: str | os.PathLike, accessibility_path: str | os.PathLike,
                   history_path: str | os.PathLike, qc_path: str | os.PathLike | None = None,
                   accept: bool = False) -> dict[str, Any]:
    """Train the accessibility model through the full model, bias frozen (step 2).

    Training examples are the peaks (`loci`) on `training_chroms`, jittered
    and randomly reverse-complemented, plus ``negative_ratio`` x n_peaks
    background regions (`negatives`) drawn afresh each epoch; validation is
    on the peaks of `validation_chroms`. The loss (profile MNLL + `alpha` x
    count MSE) is of the full model's output against the observed signal.

    Parameters
    ----------
    config : ChromBPNetFitConfig or mapping
    bias_model_path : str or PathLike
        A scaled bias model (`fit_bias_model`), frozen here.
    model_path : str or PathLike
        The full model (`bpnet_core.models.ChromBPNet`).
    accessibility_path : str or PathLike
        The accessibility model alone (a `BPNet`): the bias-free readout that
        predict, attribute and marginalize use.
    history_path : str or PathLike
        Training history TSV, as for `bpnet_core.train.fit_model`.
    qc_path : str or PathLike, optional
        The bias model's ``qc.json`` (`bpnet_core.bias_qc.qc_bias_model`):
        a flagged bias model stops training unless `accept`.

    Returns
    -------
    dict
        The full model's metadata.
    """
    if qc_path is not None:
        check_bias_qc(json.loads(Path(qc_path).read_text()), qc_path, accept)
    config = as_step_config(ChromBPNetFitConfig, config)
    check_files(config)
    device = select_device(config.device)
    bias = load_model(bias_model_path, key="bias_model")
    if not isinstance(bias, BPNet) or bias.n_outputs != len(config.signals) or bias.n_control_tracks:
        raise InputError(f"{bias_model_path} (config key 'bias_model'): not a bias model of "
                         f"{len(config.signals)} track(s) without controls")
    peaks_train, valid = load_fit_windows(config)
    # Validation is on peaks only: background regions of the training chromosomes.
    negatives_train = load_training_windows(config, loci=config.negatives, key="negatives")
    train = peaks_train.concat(negatives_train)
    n_sampled = int(round(config.negative_ratio * len(peaks_train)))
    log.info("training on %d peaks + %d of %d background regions per epoch (%s), validating on "
             "%d peaks of %s", len(peaks_train), n_sampled, len(negatives_train),
             ",".join(config.training_chroms), len(valid), ",".join(config.validation_chroms))

    seed_everything(config.random_state)
    accessibility = new_model(config, peaks_train, n_control_tracks=0)
    if accessibility.trimming != bias.trimming:
        raise InputError(f"{bias_model_path} (config key 'bias_model'): maps in_window - out_window = "
                         f"{2 * bias.trimming} bp, the config {2 * accessibility.trimming} bp")
    model = ChromBPNet(bias, accessibility)
    sampler = TrainingSampler(train, config.batch_size, config.in_window, config.out_window,
                              config.reverse_complement, config.random_state,
                              n_always=len(peaks_train), n_sampled=n_sampled)
    result = train_model(model, sampler, valid, config, device, model_path)
    refit = finish_count_head(model, peaks_train, valid, config, device)
    metadata = training_metadata(config, model, train, valid, result, device)
    metadata.update(kind="chrombpnet", bias_model=str(bias_model_path),
                    bias_metadata=bias.metadata, count_head_refit=refit)
    save_model(model.accessibility, accessibility_path, {**metadata, "kind": "accessibility"})
    save_trained(model, model_path, metadata, result["history"], history_path)
    return metadata


def extract_submodel(model_path: str | os.PathLike, part: str, output_path: str | os.PathLike) -> None:
    """Write the ``"bias"`` or ``"accessibility"`` part of a full ChromBPNet model as its own model file."""
    model = load_model(model_path, key="model")
    if not isinstance(model, ChromBPNet):
        raise InputError(f"{model_path} (config key 'model'): not a full ChromBPNet model")
    metadata = model.metadata.get("bias_metadata", {}) if part == "bias" else model.metadata
    save_model(getattr(model, part), output_path, {**metadata, "kind": part})


def assemble_chrombpnet(bias_model_path: str | os.PathLike, accessibility_path: str | os.PathLike,
                        model_path: str | os.PathLike) -> None:
    """Write the full model of a given bias model and accessibility model."""
    bias = load_model(bias_model_path, key="bias_model")
    accessibility = load_model(accessibility_path, key="accessibility_model")
    for path, key, part in ((bias_model_path, "bias_model", bias),
                            (accessibility_path, "accessibility_model", accessibility)):
        if not isinstance(part, BPNet):
            raise InputError(f"{path} (config key '{key}'): a BPNet model file is expected")
    model = ChromBPNet(bias, accessibility)
    save_model(model, model_path, {**accessibility.metadata, "kind": "chrombpnet",
                                   "bias_model": str(bias_model_path)})


def fit_chrombpnet_step(config: ChromBPNetFitConfig | Mapping[str, Any], output_dir: str | os.PathLike = ".",
                        source: str = "<config>") -> dict[str, Any]:
    """The ChromBPNet Fit command: bias model (unless `bias_model` exists), then the full model.

    Writes, in `output_dir`: ``<name>.bias.torch`` (when trained),
    ``<name>.torch`` (full), ``<name>.accessibility.torch`` and history TSVs.
    Bias QC by TF-MoDISco needs a motif database and runs in the pipeline.
    """
    config = as_step_config(ChromBPNetFitConfig, config, source)
    out = Path(output_dir)
    bias_path = config.bias_model
    if not bias_path or not Path(bias_path).is_file():
        bias_path = out / f"{config.name}.bias.torch"
        fit_bias_model(bias_fit_config(config, source), bias_path, out / f"{config.name}.bias.history.tsv")
    return fit_chrombpnet(config, bias_path, out / f"{config.name}.torch",
                          out / f"{config.name}.accessibility.torch", out / f"{config.name}.history.tsv")
