"""Is the accessibility model bias-free? Quality control of the corrected ChromBPNet model.

Every interpretation of a ChromBPNet run (contributions, TF-MoDISco,
marginalization) reads the accessibility model, so an accessibility model
that has learned the enzyme's sequence preference spoils all of them. The
bias model's QC (`bpnet_core.bias_qc`) cannot see that; this one looks at
the accessibility model itself, as the official recipe does, and further:

- **Marginal footprints** of each enzyme-bias motif (names starting with
  TN5 or DNASE in the motif database, as in the chrombpnet motif file):
  its consensus is written into the centre of background regions, and the
  model's predicted reads on both strands of the sequence (the reverse
  prediction flipped back) are pooled, normalised to sum to 1 over the
  output window and averaged over regions. A flat footprint is
  1 / `out_window` everywhere; the official bound is a maximum below
  0.003 for a 1000 bp output, three times flat, here `max_footprint_fold`
  times flat for any output width (the mean over the enzyme motifs, as
  the official check averages them). The full model, which includes the
  bias, is footprinted too, for contrast: there the motif must show.
- **The change in predicted log counts** when each enzyme motif is
  inserted, for both models.
- **TF-MoDISco patterns of the accessibility model**: one whose match to
  an enzyme motif is significant and specific (see
  `bpnet_core.bias_qc.classify_patterns`) flags the model.

A flagged model is reported, loudly: in ``qc.json``, ``qc.html``, the
dataset report and the batch summary; with `strict` the stage also fails.
"""

from __future__ import annotations

import html
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import softmax

from . import pages
from .bias_qc import BIAS_MOTIF_NAME, classify_patterns, pattern_matches
from .config import BiasFreeQCConfig, as_step_config
from .data import Windows, load_windows, reverse_complement_sequence
from .errors import InputError
from .io import read_meme, write_text, write_tsv
from .marginalize import motif_consensus
from .models import load_model, set_compute
from .predict import predict_windows
from .runtime import select_device

log = logging.getLogger(__name__)


def enzyme_motifs(motifs: str | os.PathLike) -> dict[str, np.ndarray]:
    """The enzyme-bias motifs (TN5*, DNASE*) of a MEME file: name -> PPM (w, 4)."""
    return {name: ppm for name, ppm in read_meme(motifs, key="motifs").items() if BIAS_MOTIF_NAME.match(name)}


def _reads(model, X: torch.Tensor, batch_size: int, device) -> tuple[np.ndarray, np.ndarray]:
    """Predicted reads per base summed over tracks, shape (N, L), and log counts (N,)."""
    windows = Windows(X=X, y=None, X_ctl=None, loci=pd.DataFrame(index=range(len(X))))
    logits, log_counts = predict_windows(model, windows, batch_size, device)
    n = len(logits)
    probs = softmax(logits.reshape(n, -1).astype(np.float64), axis=1).reshape(logits.shape)
    return (probs * np.expm1(log_counts.astype(np.float64))[:, None, None]).sum(axis=1), log_counts


def marginal_footprint(model, X: torch.Tensor, insert: torch.Tensor | None, batch_size: int,
                       device) -> tuple[np.ndarray, np.ndarray]:
    """The official marginal footprint of a motif: both strands pooled, normalised, averaged.

    Parameters
    ----------
    model : torch.nn.Module
        A model without control tracks (the accessibility or the full model).
    X : torch.Tensor, shape (N, 4, in_window), int8
        Background sequences.
    insert : torch.Tensor, shape (1, 4, w), int8, or None
        The motif written into the centre of each sequence; None: the
        background as it is.

    Returns
    -------
    footprint : numpy.ndarray, shape (out_window,)
        Mean over sequences of the predicted reads (forward prediction plus
        the reverse-complement prediction flipped back), each normalised to
        sum to 1.
    log_counts : numpy.ndarray, shape (N,)
        Predicted log counts, the mean of both strands' predictions.
    """
    from tangermeme.ersatz import substitute

    edited = X if insert is None else substitute(X, insert)
    forward, counts_forward = _reads(model, edited, batch_size, device)
    reverse, counts_reverse = _reads(model, reverse_complement_sequence(edited), batch_size, device)
    pooled = forward + reverse[:, ::-1]
    footprint = (pooled / np.maximum(pooled.sum(axis=1, keepdims=True), 1e-12)).mean(axis=0)
    return footprint, (counts_forward.astype(np.float64) + counts_reverse) / 2


#: Shuffles of each motif's consensus that control for its base composition.
N_SHUFFLES = 3


def footprint_table(models: Mapping[str, torch.nn.Module], background: torch.Tensor,
                    motifs: Mapping[str, np.ndarray], batch_size: int, device, random_state: int | None = 0
                    ) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Footprint maxima and count changes of each motif under each model.

    The count change of a motif is compared with that of its consensus with
    the bases shuffled (`N_SHUFFLES` times): inserting 30 bp of GC-rich
    sequence may change a model's counts through the composition alone,
    which is not the enzyme's motif.

    Returns
    -------
    table : pandas.DataFrame
        One row per motif and model: ``motif``, ``consensus``, ``model``,
        ``footprint_max`` (the maximum of the normalised footprint),
        ``footprint_fold`` (that maximum over a flat profile's 1 / L),
        ``background_fold`` (the same without the motif),
        ``delta_log_counts`` (mean predicted log counts with the motif
        minus without it), ``delta_log_counts_shuffled`` (the same for the
        shuffled consensus, averaged over shuffles) and
        ``motif_delta_log_counts`` (their difference: the motif's own effect).
    footprints : dict
        Model -> motif -> footprint (L,), with ``"(background)"`` too.
    """
    rng = np.random.default_rng(random_state)
    inserts = {}
    for name, ppm in motifs.items():
        consensus, one_hot = motif_consensus(ppm)
        shuffled = [one_hot[:, :, torch.from_numpy(rng.permutation(len(ppm)))] for _ in range(N_SHUFFLES)]
        inserts[name] = (consensus, one_hot, shuffled)
    rows, footprints = [], {}
    for label, model in models.items():
        base, base_counts = marginal_footprint(model, background, None, batch_size, device)
        length = len(base)
        footprints[label] = {"(background)": base}
        for name, (consensus, one_hot, shuffled) in inserts.items():
            footprint, counts = marginal_footprint(model, background, one_hot, batch_size, device)
            footprints[label][name] = footprint
            delta = float((counts - base_counts).mean())
            control = float(np.mean([(marginal_footprint(model, background, insert, batch_size, device)[1]
                                      - base_counts).mean() for insert in shuffled]))
            rows.append({"motif": name, "consensus": consensus, "model": label,
                         "footprint_max": footprint.max(), "footprint_fold": footprint.max() * length,
                         "background_fold": base.max() * length, "delta_log_counts": delta,
                         "delta_log_counts_shuffled": control, "motif_delta_log_counts": delta - control})
    return pd.DataFrame(rows), footprints


def qc_accessibility_model(config: BiasFreeQCConfig | Mapping[str, Any], modisco_h5: str | os.PathLike | None,
                           output_folder: str | os.PathLike) -> dict[str, Any]:
    """Judge whether a ChromBPNet accessibility model is bias-free; write the QC files.

    Parameters
    ----------
    config : BiasFreeQCConfig or mapping
        The accessibility `model`, the `full_model`, background regions
        (`loci`) on `chroms`, the motif database (`motifs`) and the bounds.
    modisco_h5 : path, optional
        The accessibility model's TF-MoDISco results at peaks; None when the
        run has no TF-MoDISco stage (the check is then reported as not done).
    output_folder : path
        Gets ``qc.json`` (the dict returned), ``qc.html``,
        ``footprints.tsv`` (`footprint_table`) and ``footprints.png``.

    Returns
    -------
    dict
        ``bias_free`` (bool), ``reasons`` (list of str), ``footprints`` (the
        rows of ``footprints.tsv``), ``mean_footprint_fold`` {model: mean
        over enzyme motifs}, ``max_footprint_fold``, ``patterns`` (the
        accessibility model's TF-MoDISco patterns, classified),
        ``modisco_check`` (False when there was no table or no database)
        and ``strict``.

    Raises
    ------
    InputError
        When the database holds no enzyme-bias motif, or with `strict`
        when the model is not bias-free (after the files are written).
    """
    config = as_step_config(BiasFreeQCConfig, config)
    folder = Path(output_folder)
    motifs = enzyme_motifs(config.motifs)
    if not motifs:
        raise InputError(f"{config.motifs} (config key 'motifs'): no enzyme-bias motif (a name starting with "
                         "TN5 or DNASE) to footprint the accessibility model with; add them, e.g. from the "
                         "chrombpnet motif file")
    device = select_device(config.device)
    models = {label: set_compute(load_model(path, key=key, device=device), config.fast_path)
              for label, path, key in (("accessibility", config.model, "accessibility_model"),
                                       ("full", config.full_model, "model"))}
    windows = load_windows(config.loci, config.sequences, chroms=config.chroms, in_window=config.in_window,
                           out_window=config.out_window, key="loci")
    rows = np.random.default_rng(config.random_state).permutation(len(windows))[:config.n_loci]
    background = windows.X[torch.from_numpy(np.sort(rows))]
    log.info("footprinting %d enzyme motifs on %d background regions of %s", len(motifs), len(background),
             ",".join(config.chroms or []))
    table, footprints = footprint_table(models, background, motifs, config.batch_size, device,
                                        config.random_state)
    mean_fold = {label: float(table.loc[table["model"] == label, "footprint_fold"].mean()) for label in models}

    reasons = []
    if not mean_fold["accessibility"] < config.max_footprint_fold:
        reasons.append(f"enzyme motifs leave a footprint in the accessibility model: maximum "
                       f"{mean_fold['accessibility']:.2f} x flat on average over {len(motifs)} motifs, "
                       f"not below {config.max_footprint_fold} (official: 0.003 at 1000 bp)")
    patterns, modisco_check = [], False
    if modisco_h5 is not None:
        modisco_check = True
        patterns = classify_patterns(pattern_matches(modisco_h5, config.motifs), config.max_qvalue)
        reasons += [f"TF-MoDISco pattern {p['pattern']} ({p['n_seqlets']} seqlets) of the accessibility "
                    f"model matches the enzyme motif {p['best_match']} (q = {p['qvalue']:.2g})"
                    for p in patterns if p["kind"] == "bias"]
    qc = {"bias_free": not reasons, "reasons": reasons, "mean_footprint_fold": mean_fold,
          "max_footprint_fold": config.max_footprint_fold, "n_regions": len(background),
          "footprints": table.to_dict("records"), "patterns": patterns, "modisco_check": modisco_check,
          "strict": config.strict, "model": config.model}
    folder.mkdir(parents=True, exist_ok=True)
    write_tsv(folder / "footprints.tsv", table)
    _plot_footprints(footprints, folder / "footprints.png")
    write_text(folder / "qc.json", json.dumps(qc, indent=2) + "\n")
    write_text(folder / "qc.html", qc_html(qc))
    level = logging.WARNING if reasons else logging.INFO
    log.log(level, "accessibility model %s: enzyme footprints %.2f x flat (full model %.2f x); %s",
            "is bias-free" if not reasons else "is NOT bias-free", mean_fold["accessibility"], mean_fold["full"],
            "; ".join(reasons) or "no enzyme pattern in its TF-MoDISco results")
    if reasons and config.strict:
        raise InputError(f"the accessibility model {config.model} is not bias-free (strict): "
                         + "; ".join(reasons) + f"; see {folder / 'qc.html'}")
    return qc


def _plot_footprints(footprints: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    figure = pages.new_figure(5 * len(footprints), 3)
    axes = figure.subplots(1, len(footprints), sharey=True, squeeze=False)[0]
    for ax, (label, curves) in zip(axes, footprints.items()):
        length = len(next(iter(curves.values())))
        x = np.arange(length) - length // 2
        middle = slice(length // 2 - 100, length // 2 + 100)
        for name, footprint in curves.items():
            style = {"color": "grey", "lw": 2} if name == "(background)" else {"lw": 1}
            ax.plot(x[middle], footprint[middle] * length, label=name, **style)
        ax.set_title(f"{label} model")
        ax.set_xlabel("bp from the motif")
    axes[0].set_ylabel("footprint (x flat)")
    axes[-1].legend(fontsize=6, ncol=2)
    figure.tight_layout()
    pages.save_png(figure, path, dpi=90)


def qc_html(qc: dict[str, Any]) -> str:
    """The QC verdict as a standalone HTML page."""
    verdict = ("<p class='pass'><b>Bias-free.</b></p>" if qc["bias_free"] else
               "<p class='flag'><b>NOT bias-free</b>: contributions, motifs and marginalization read from "
               "this accessibility model may show the enzyme's preference.</p><ul>"
               + "".join(f"<li>{html.escape(r)}</li>" for r in qc["reasons"]) + "</ul>")
    modisco = (pages.table(pd.DataFrame(qc["patterns"])) if qc["patterns"] else
               "<p>No TF-MoDISco pattern.</p>" if qc["modisco_check"] else
               "<p class='missing'>Not checked: the run has no TF-MoDISco report with a motif database.</p>")
    body = f"""{verdict}
<h2>Marginal footprints of the enzyme motifs</h2>
<p>Mean over the enzyme motifs of each footprint's maximum, in units of a flat profile:
accessibility model {qc['mean_footprint_fold']['accessibility']:.2f}, full model
{qc['mean_footprint_fold']['full']:.2f}; bound {qc['max_footprint_fold']} ({qc['n_regions']} background regions).</p>
{pages.img("footprints.png", "footprints")}
{pages.table(pd.DataFrame(qc["footprints"]))}
<h2>TF-MoDISco patterns of the accessibility model</h2>{modisco}"""
    return pages.page("Accessibility model QC", body, heading="Is the accessibility model bias-free?")
