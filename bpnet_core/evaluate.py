"""Evaluate a trained model against observed signal."""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping

import pandas as pd

from .config import EvaluateConfig, as_step_config
from .io import write_tsv
from .metrics import performance
from .predict import load_model_and_windows, predict_windows

log = logging.getLogger(__name__)


def evaluate_model(config: EvaluateConfig | Mapping[str, Any],
                   performance_path: str | os.PathLike | None = None,
                   regions_path: str | os.PathLike | None = None) -> dict[str, float]:
    """Metrics of the model at `loci` on `chroms` against `signals`.

    Writes `performance_path` (default `performance_filename`), a one-row
    TSV of the summary metrics of `bpnet_core.metrics.performance`
    (profile MNLL, JSD, Pearson, Spearman as means over regions; count
    Pearson, Spearman and MSE across regions on log(1 + counts)), and, when
    given, `regions_path`: one row per region with its coordinates and
    per-region metrics.

    Returns
    -------
    dict
        The summary metrics.
    """
    config = as_step_config(EvaluateConfig, config)
    model, windows, device = load_model_and_windows(config, signals=config.signals)
    logits, log_counts = predict_windows(model, windows, config.batch_size, device,
                                         config.reverse_complement_average)
    summary, per_region = performance(logits, log_counts, windows.y.numpy())
    write_tsv(performance_path or config.performance_filename, pd.DataFrame([summary]))
    if regions_path is not None:
        regions = windows.loci[["chrom", "center"]].assign(**per_region)
        write_tsv(regions_path, regions)
    log.info("evaluation on %d regions: %s", summary["n_regions"],
             ", ".join(f"{k} {v:.4g}" for k, v in summary.items() if k != "n_regions"))
    return summary
