"""Marginal effect of each motif on a trained model: the BPNet Marginalize step.

Each motif's consensus is written into the centre of background sequences,
and the model's predictions with and without it are compared. Averaged over
many backgrounds, the difference is the effect of the motif alone, as the
model has learnt it.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from scipy.special import softmax

from . import pages
from .config import MarginalizeConfig, as_step_config
from .data import Windows
from .errors import InputError
from .io import ALPHABET, as_list, atomic_output, read_meme, write_tsv
from .predict import load_model_and_windows, predict_windows, predicted_tracks

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = ["motif", "consensus", "n_loci", "delta_log_counts", "delta_log_counts_se",
                   "delta_log_counts_shuffled", "motif_delta_log_counts", "profile_l1", "max_delta_reads"]
MINIMAL_COLUMNS = ["motif", "n_loci", "delta_log_counts", "motif_delta_log_counts", "profile_l1"]


@dataclasses.dataclass
class _Prediction:
    """What the comparisons need of a model's predictions on N sequences.

    Attributes
    ----------
    log_counts : numpy.ndarray, shape (N,)
        Predicted log(1 + total counts).
    probs : numpy.ndarray, shape (N, S, L)
        Predicted profile probabilities, summing to 1 over tracks and positions.
    mean_reads : numpy.ndarray, shape (S, L)
        Predicted reads per base (probs x expm1(log_counts)), averaged over N.
    """

    log_counts: np.ndarray
    probs: np.ndarray
    mean_reads: np.ndarray


def _predict(model, windows: Windows, batch_size: int, device, rc_average: bool = False) -> _Prediction:
    """The model's predictions on `windows` (N sequences), summarised for comparison."""
    logits, log_counts = predict_windows(model, windows, batch_size, device, rc_average)
    n, s, length = logits.shape
    probs = softmax(logits.reshape(n, -1).astype(np.float64), axis=1).reshape(n, s, length)
    return _Prediction(log_counts.astype(np.float64), probs,
                       predicted_tracks(logits, log_counts).mean(axis=0))


def _background(windows: Windows, n_loci: int, shuffle: bool, random_state: int | None) -> Windows:
    """`n_loci` of the windows: the first ones, or a random set when `shuffle`."""
    available = len(windows)
    if available <= n_loci:
        if available < n_loci:
            log.warning("n_loci is %d but only %d loci are available; using all of them",
                        n_loci, available)
        return windows
    return windows.sample(n_loci, random_state) if shuffle else windows.subset(np.arange(n_loci))


def motif_consensus(ppm: np.ndarray) -> tuple[str, torch.Tensor]:
    """The most likely sequence of a PPM (w, 4): as a string and one-hot (1, 4, w) int8."""
    from tangermeme.utils import pwm_consensus

    one_hot = pwm_consensus(torch.from_numpy(ppm.T.copy())).to(torch.int8)
    return "".join(ALPHABET[i] for i in one_hot.argmax(dim=0).tolist()), one_hot.unsqueeze(0)


def marginalize_motifs(config: MarginalizeConfig | Mapping[str, Any],
                       output_folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """The effect on the model's predictions of inserting each motif into background loci.

    The background is `n_loci` windows of `loci` on `chroms`: the first
    ones, or a random set (seeded by `random_state`) when `shuffle`; all of
    them, with a warning, when fewer are available. Each motif of the
    `motifs` MEME file is reduced to its consensus (the most likely base at
    each position), which replaces the bases at the centre of every
    background sequence, and the model predicts each edited sequence with
    the locus's own control tracks. The unedited background is predicted
    once, for all motifs.

    Writes, in `output_folder`:

    - ``summary.tsv``: the returned table;
    - ``report.html``: the table and a bar plot of ``delta_log_counts`` per
      motif (with its standard error) and, unless `minimal`, for each motif
      the mean predicted reads along the output window with and without it
      and their difference (two tracks are drawn as strands: plus up, minus
      down). Figures are PNG files in ``figures/``, linked relatively, so
      the folder moves as one.

    Parameters
    ----------
    config : MarginalizeConfig or mapping
        The BPNet Marginalize parameters.
    output_folder : str or PathLike, optional
        Where the results go, created if missing; default `output_folder`,
        else `output_filename`.

    Returns
    -------
    pandas.DataFrame
        One row per motif, sorted by ``delta_log_counts``, largest first, with
        the columns of ``summary.tsv``:

        - ``motif``: name in the MEME file;
        - ``consensus``: the sequence inserted, 5' to 3';
        - ``n_loci``: background loci used;
        - ``delta_log_counts``: mean over loci of the predicted log(1 + total
          counts) with the motif minus without it (natural log; 0.69 is a
          doubling of the predicted reads);
        - ``delta_log_counts_se``: its standard error (NaN with one locus);
        - ``delta_log_counts_shuffled``: the same for the consensus with its
          bases shuffled, averaged over `shuffled_controls` shuffles (NaN
          with none): the effect of the motif's base composition alone;
        - ``motif_delta_log_counts``: ``delta_log_counts`` minus that, the
          effect of the motif's order;
        - ``profile_l1``: mean over loci of the L1 distance between the
          predicted profile probabilities (softmax over all tracks and
          positions) with and without the motif; 0 is no change of shape,
          2 is no overlap;
        - ``max_delta_reads``: the maximum, over tracks and positions, of
          the mean predicted reads per base with the motif minus without it.

        With `minimal`, the minimal report: only ``motif``, ``n_loci``,
        ``delta_log_counts``, ``motif_delta_log_counts`` and ``profile_l1``.

    Raises
    ------
    InputError
        When the MEME file is malformed or holds a motif wider than
        `in_window`, and for the problems of `load_model_and_windows`.
    """
    config = as_step_config(MarginalizeConfig, config)
    folder = Path(output_folder or config.output_folder or config.output_filename)
    # Read first: a malformed motif file should fail before any model or data is read.
    motifs = read_meme(config.motifs, key="motifs")
    for name, ppm in motifs.items():
        if len(ppm) > config.in_window:
            raise InputError(f"{config.motifs} (config key 'motifs'): motif '{name}' is {len(ppm)} bp "
                             f"wide, wider than in_window ({config.in_window} bp)")

    from tangermeme.ersatz import substitute

    model, windows, device = load_model_and_windows(config)
    background = _background(windows, config.n_loci, config.shuffle, config.random_state)
    n = len(background)
    log.info("marginalizing %d motifs of %s over %d loci", len(motifs), config.motifs, n)
    before = _predict(model, background, config.batch_size, device, config.reverse_complement_average)

    rng = np.random.default_rng(config.random_state)
    rows, after_reads = [], {}
    for i, (name, ppm) in enumerate(motifs.items(), 1):
        consensus, one_hot = motif_consensus(ppm)
        edited = dataclasses.replace(background, X=substitute(background.X, one_hot))
        after = _predict(model, edited, config.batch_size, device, config.reverse_complement_average)
        delta = after.log_counts - before.log_counts
        difference = after.mean_reads - before.mean_reads
        shuffled = np.nan
        if config.shuffled_controls:
            shuffled = np.mean([
                (_predict(model, dataclasses.replace(background, X=substitute(
                    background.X, one_hot[:, :, torch.from_numpy(rng.permutation(len(ppm)))])),
                    config.batch_size, device, config.reverse_complement_average).log_counts
                 - before.log_counts).mean()
                for _ in range(config.shuffled_controls)])
        rows.append({
            "motif": name,
            "consensus": consensus,
            "n_loci": n,
            "delta_log_counts": delta.mean(),
            "delta_log_counts_se": delta.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan,
            "delta_log_counts_shuffled": shuffled,
            "motif_delta_log_counts": delta.mean() - shuffled,
            "profile_l1": np.abs(after.probs - before.probs).sum(axis=(1, 2)).mean(),
            "max_delta_reads": difference.max(),
        })
        after_reads[name] = after.mean_reads
        if config.verbose:
            log.info("motif %d/%d %s (%s): delta log counts %.3f, profile L1 %.3f", i, len(motifs),
                     name, consensus, rows[-1]["delta_log_counts"], rows[-1]["profile_l1"])

    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS).sort_values(
        "delta_log_counts", ascending=False, kind="stable").reset_index(drop=True)
    table = summary[MINIMAL_COLUMNS] if config.minimal else summary
    folder.mkdir(parents=True, exist_ok=True)
    write_tsv(folder / "summary.tsv", table)
    _write_report(folder, config, summary, table, before.mean_reads, after_reads)
    log.info("wrote %s and %s", folder / "summary.tsv", folder / "report.html")
    return table


# --------------------------------------------------------------------------
# Report


DPI = 100  # of the report's figures


def _bar_plot(summary: pd.DataFrame, path: Path) -> None:
    """Horizontal bars of delta_log_counts per motif, largest on top, +/- 1 SE."""
    figure = pages.new_figure(6, 1 + 0.3 * len(summary), layout="constrained")
    ax = figure.add_subplot()
    y = np.arange(len(summary))[::-1]
    ax.barh(y, summary["delta_log_counts"], xerr=summary["delta_log_counts_se"].fillna(0),
            color=np.where(summary["delta_log_counts"] >= 0, "tab:red", "tab:blue"))
    ax.set_yticks(y, summary["motif"])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("change in predicted log(1 + counts)")
    pages.save_png(figure, path, dpi=DPI)


def _draw_tracks(ax, x: np.ndarray, tracks: np.ndarray, label: str, **style) -> None:
    """Tracks (S, L) on `ax`; with two tracks, plus (first) up and minus down."""
    if len(tracks) == 2:
        ax.plot(x, tracks[0], label=f"{label} (+)", **style)
        ax.plot(x, -tracks[1], label=f"{label} (-)", linestyle="--", **style)
    else:
        for i, track in enumerate(tracks):
            ax.plot(x, track, label=f"{label}, track {i}" if len(tracks) > 1 else label, **style)


def _motif_plot(name: str, consensus: str, before: np.ndarray, after: np.ndarray, path: Path) -> None:
    """Mean predicted reads (S, L) with and without a motif, and their difference."""
    length = before.shape[1]
    x = np.arange(length) - length // 2
    figure = pages.new_figure(8, 4.5, layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    _draw_tracks(top, x, before, "without", color="grey")
    _draw_tracks(top, x, after, "with motif", color="tab:red")
    _draw_tracks(bottom, x, after - before, "difference", color="black")
    for ax in (top, bottom):
        # The substituted bases: centred on the window, as `substitute` does.
        ax.axvspan(-(len(consensus) // 2), len(consensus) - len(consensus) // 2, color="gold", alpha=0.3)
        ax.axhline(0, color="black", linewidth=0.5)
    top.set_title(f"{name} ({consensus})")
    top.set_ylabel("mean predicted reads")
    bottom.set_ylabel("with - without")
    bottom.set_xlabel("position from the window centre (bp)")
    top.legend(fontsize="small", loc="upper right")
    pages.save_png(figure, path, dpi=DPI)


def figure_name(index: int, motif: str) -> str:
    """File name (in the report's figures/ folder) of motif `index`'s profile plot.

    Public because the dataset report embeds these figures. Motif names come
    from the MEME file, so they are kept out of paths and URLs.
    """
    return f"motif_{index:03d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', motif)}.png"


def _write_report(folder: Path, config: MarginalizeConfig, summary: pd.DataFrame, table: pd.DataFrame,
                  before: np.ndarray, after: dict[str, np.ndarray]) -> None:
    """report.html and its figures (see `marginalize_motifs`)."""
    figures = folder / "figures"
    _bar_plot(summary, figures / "delta_log_counts.png")
    sections = []
    if not config.minimal:
        for index, row in summary.iterrows():
            name = figure_name(index, row["motif"])
            _motif_plot(row["motif"], row["consensus"], before, after[row["motif"]], figures / name)
            sections.append(f"<h3>{html.escape(row['motif'])} <code>{html.escape(row['consensus'])}</code></h3>\n"
                            + pages.img(f"figures/{name}", f"predictions with and without {row['motif']}"))
    n_loci = int(summary["n_loci"].iloc[0]) if len(summary) else 0
    body = f"""<p>Each motif's consensus replaced the centre of {n_loci} background sequences of
{html.escape(", ".join(as_list(config.loci)))};
model {html.escape(config.model)}; motifs {html.escape(config.motifs)}.
Changes are with the motif minus without it, averaged over the loci.</p>
<h2>Summary</h2>
{pages.table(table)}
<h2>Change in predicted counts</h2>
{pages.img("figures/delta_log_counts.png", "change in predicted log counts per motif")}
{"<h2>Predicted profiles</h2>" if sections else ""}
{chr(10).join(sections)}"""
    with atomic_output(folder / "report.html") as tmp:
        tmp.write_text(pages.page("Motif marginalization", body))
