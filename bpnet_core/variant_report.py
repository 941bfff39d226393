"""The variants page: the strongest variants, with their predicted profiles and contributions.

For each of the `n_top` strongest variants (smallest ``logfc_pval``, then
largest ``|logfc|``), the reference and alternative predicted reads along
the output window and DeepLIFT/SHAP contribution logos (count head) of both
alleles around the variant. Figures are embedded: the page is one file.
"""

from __future__ import annotations

import html
import os

import numpy as np
import pandas as pd

from . import pages
from .config import VariantsConfig
from .io import ALPHABET, as_list, atomic_output
from .predict import predicted_tracks
from .runtime import select_device
from .variants import (
    SCORED_STATUSES,
    _Genome,
    control_windows,
    genome_windows,
    load_scored_models,
    one_hot,
    predict,
    prefixes_of,
)

LOGO_HALF_WIDTH = 20  # bases on each side of the variant in the logos
ATTRIBUTION_SHUFFLES = 10  # dinucleotide-shuffled references per allele (DeepLIFT/SHAP)
TABLE_COLUMNS = ["chrom", "pos", "ref", "alt", "id", "status", "logfc", "jsd", "active_allele_quantile",
                 "logfc_pval", "jsd_pval"]


def strongest(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """The `n` strongest scored variants: smallest ``logfc_pval``, then largest ``|logfc|``."""
    scored = table[table["status"].isin(SCORED_STATUSES)]
    return scored.sort_values(["logfc_pval", "abs_logfc"], ascending=[True, False], kind="stable").head(n)


def _alleles(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with '-' (an empty allele in the table) back to ''."""
    return rows.assign(ref=rows["ref"].replace("-", ""), alt=rows["alt"].replace("-", ""))


def _sequence(codes: np.ndarray) -> str:
    return "".join(ALPHABET[c] if c < 4 else "N" for c in codes)


def _figure(row, ref_reads: np.ndarray, alt_reads: np.ndarray, ref_logo: np.ndarray, alt_logo: np.ndarray,
            ref_codes: np.ndarray, alt_codes: np.ndarray):
    """Predicted reads (S, L) of both alleles, then their contribution logos around the variant."""
    from .report import logo_matrix

    figure = pages.new_figure(10, 6.5)
    tracks, ref_ax, alt_ax = figure.subplots(3, 1, gridspec_kw={"height_ratios": [2, 1, 1]})
    x = np.arange(ref_reads.shape[1]) - ref_reads.shape[1] // 2
    stranded = len(ref_reads) % 2 == 0
    for reads, color, label in ((ref_reads, "tab:blue", f"ref {row.ref}"), (alt_reads, "tab:red", f"alt {row.alt}")):
        for track in range(len(reads)):
            sign = -1 if stranded and track % 2 else 1
            tracks.plot(x, sign * reads[track], color=color, linewidth=0.9, label=label if track == 0 else None)
    tracks.axvline(0, color="gold", linewidth=2, alpha=0.6)
    tracks.axhline(0, color="grey", linewidth=0.5)
    tracks.set(title=f"{row.id} {row.chrom}:{row.pos:,} {row.ref}>{row.alt}: log2 FC {row.logfc:.2f}, "
                     f"JSD {row.jsd:.3f}, p {row.logfc_pval:.2g}",
               xlabel="position from the variant (bp)",
               ylabel="predicted reads (+ up, - down)" if stranded else "predicted reads")
    tracks.legend(fontsize=8, loc="upper right")
    for ax, scores, codes, label in ((ref_ax, ref_logo, ref_codes, "ref"), (alt_ax, alt_logo, alt_codes, "alt")):
        pages.draw_logo(ax, logo_matrix(scores, _sequence(codes)), pad=0.05)
        ax.set_xticks([LOGO_HALF_WIDTH], ["variant"])
        ax.set_ylabel(f"{label} contribution")
    figure.tight_layout()
    return figure


def _variant_figures(config: VariantsConfig, top: pd.DataFrame) -> list[str]:
    """One embedded figure per row of `top` (the first model of `model`, its count head)."""
    from .attribute import attribution_head, deep_lift_shap

    device = select_device(config.device)
    models = load_scored_models(config, device)
    model = models.models[""][0]
    genome = _Genome(config.sequences)
    try:
        rows = _alleles(top)
        ref, alt = genome_windows(rows, genome, config.in_window)
    finally:
        genome.close()
    X_ctl = control_windows(rows, as_list(config.controls), config.in_window)
    ref_pred = predict([model], one_hot(ref), X_ctl, config.batch_size, device)
    alt_pred = predict([model], one_hot(alt), X_ctl, config.batch_size, device)
    head = attribution_head(model, "counts")
    contributions = []
    for codes in (ref, alt):
        X = one_hot(codes)
        attributions, _ = deep_lift_shap(head, X, X_ctl, ATTRIBUTION_SHUFFLES, config.random_state,
                                         config.batch_size, device)
        contributions.append((attributions * X.numpy()).sum(axis=1))
    centre = config.in_window // 2
    around = slice(centre - LOGO_HALF_WIDTH, centre + LOGO_HALF_WIDTH + 1)
    ref_reads = predicted_tracks(ref_pred.logits, ref_pred.log_counts)
    alt_reads = predicted_tracks(alt_pred.logits, alt_pred.log_counts)
    figures = []
    for i, row in enumerate(top.itertuples(index=False)):
        figure = _figure(row, ref_reads[i], alt_reads[i], contributions[0][i, around], contributions[1][i, around],
                         ref[i, around], alt[i, around])
        figures.append(pages.embed(figure, f"predictions and contributions of {row.id}"))
    return figures


def write_variant_report(config: VariantsConfig, table: pd.DataFrame, path: str | os.PathLike) -> None:
    """The variants page of a scored `table` (see the module's docstring), atomically."""
    top = strongest(table, config.n_top)
    columns = [c for c in TABLE_COLUMNS if c in table] + [
        f"full_{c}" for c in ("logfc", "jsd", "logfc_pval") if "full_" in prefixes_of(table)]
    statuses = table["status"].value_counts().rename_axis("status").reset_index(name="variants")
    sections = []
    if len(top):
        for (_, row), figure in zip(top.iterrows(), _variant_figures(config, top)):
            sections.append(f"<h3>{html.escape(str(row['id']))}</h3>\n{figure}")
    full = ("<p>ChromBPNet: the scores are the accessibility (bias-free) model's; <code>full_*</code> "
            "columns are the full model's (bias included).</p>" if "full_" in prefixes_of(table) else "")
    body = f"""<p>{len(table):,} variants of {html.escape(config.variants)}; model
{html.escape(", ".join(as_list(config.model)))}. <code>logfc</code>: log2 of alt over ref predicted counts;
<code>jsd</code>: Jensen-Shannon distance of the predicted profiles; <code>active_allele_quantile</code>:
the stronger allele's predicted counts among the peaks'; p-values against {config.n_shuffles:,} variants in
dinucleotide-shuffled contexts. Predictions are averaged over both strands.</p>
{full}
<h2>Variants by status</h2>
{pages.table(statuses)}
<h2>Strongest variants</h2>
{pages.table(top[columns]) if len(top) else '<p class="missing">No variant was scored.</p>'}
{"<h2>Predicted profiles and contributions</h2>" if sections else ""}
{chr(10).join(sections)}"""
    with atomic_output(path) as tmp:
        tmp.write_text(pages.page("Variant effects", body))
