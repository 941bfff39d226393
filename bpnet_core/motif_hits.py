"""Motif instances: Fi-NeMo hit calling on the attributed regions' contributions.

TF-MoDISco says which motifs a model uses; Fi-NeMo (kundajelab's ``finemo``)
says where, by fitting the TF-MoDISco patterns' contribution weight
matrices to each region's contribution scores as a sparse, non-negative
sum (proximal gradient descent, one L1 weight ``global_lambda`` per
pattern). This module hands Fi-NeMo exactly the regions that were
attributed: the central `region_width` bases of every attributed window
(``attribute/{name}.loci.tsv``), with genomic starts, so that every hit
has the coordinates of the sequence it was called on. It runs Fi-NeMo's
own hit calling and report, then writes the pipeline's tables:

- ``hits.tsv``: one row per hit (both strands of a palindrome are one
  hit): chrom, start, end (0-based, the trimmed motif), pattern, motif
  (the database match that classifies the pattern as a TF's or the
  enzyme's, `pattern_labels`, else the pattern), motif_name (the match's name
  in the motif database, e.g. RSC3 for MA0374.2; empty without one), kind
  (TF, bias, ambiguous, composition, low-complexity, unmatched), strand, coefficient,
  similarity, importance, region (chrom:start-end of the window) and
  summit_offset (hit centre minus the window's centre, bp);
- ``hits.bed``: BED6+1 of the same (name: motif_name, else motif; score:
  1000 x similarity), the region last;
- ``hit_counts.tsv``: per pattern, its motif and kind, hits and regions with a hit;
- ``cooccurrence.tsv``: regions holding both of two patterns;
- ``hit_positions.png``: where hits fall around the summits.

Fi-NeMo's own outputs (``hits.tsv``, ``hits_unique.tsv``, ``peaks_qc.tsv``,
its HTML report) are under ``finemo/``. Fi-NeMo runs on the GPU when there
is one, else on the CPU.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .config import MotifHitsConfig, as_step_config
from .errors import InputError
from .io import atomic_output, meme_names, write_tsv
from .modisco import _read_patterns

log = logging.getLogger(__name__)

#: A pattern is named after its best database match when the match has q below this.
MAX_MATCH_QVALUE = 0.05
#: Columns of ``hits.tsv``.
HIT_COLUMNS = ["chrom", "start", "end", "pattern", "motif", "motif_name", "kind", "strand", "coefficient", "similarity",
               "importance", "region", "summit_offset"]


def load_regions(ohe_path: str | os.PathLike, attr_path: str | os.PathLike,
                 loci_path: str | os.PathLike, region_width: int
                 ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The central `region_width` bases of the attributed windows.

    Parameters
    ----------
    ohe_path, attr_path : path
        ``arr_0``: one-hot sequences and hypothetical contributions, both
        (N, 4, in_window), as `bpnet_core.attribute.attribute_model` writes them.
    loci_path : path
        TSV of the N windows: chrom, start, end, center (0-based).
    region_width : int
        Even, at most in_window (bp).

    Returns
    -------
    sequences : numpy.ndarray
        (N, 4, region_width) int8.
    contributions : numpy.ndarray
        (N, 4, region_width) float32, hypothetical.
    regions : pandas.DataFrame
        N rows: chrom, start, end (the central `region_width` bases), center.
    """
    with np.load(ohe_path) as f:
        ohe = f["arr_0"]
    with np.load(attr_path) as f:
        attr = f["arr_0"]
    loci = pd.read_csv(loci_path, sep="\t")
    if ohe.shape != attr.shape or len(loci) != len(ohe):
        raise InputError(f"{ohe_path}, {attr_path} and {loci_path} do not describe the same windows: "
                         f"shapes {ohe.shape}, {attr.shape}, {len(loci)} rows")
    in_window = ohe.shape[-1]
    if region_width > in_window:
        raise InputError(f"motif_hits_parameters.region_width: {region_width} bp is wider than the "
                         f"attributed windows ({in_window} bp)")
    first = in_window // 2 - region_width // 2
    start = loci["start"].to_numpy() + first
    regions = pd.DataFrame({"chrom": loci["chrom"].astype(str), "start": start,
                            "end": start + region_width, "center": loci["center"].to_numpy()})
    window = slice(first, first + region_width)
    return ohe[:, :, window].astype(np.int8), attr[:, :, window].astype(np.float32), regions


#: Pattern kinds (`bpnet_core.bias_qc.classify_patterns`) named after their deciding database match.
NAMED_KINDS = ("TF", "bias", "ambiguous")


def pattern_labels(modisco_h5: str | os.PathLike, motifs: str | os.PathLike | None
                   ) -> dict[str, tuple[str, str]]:
    """Pattern -> (motif, kind): each pattern classified as the QC pages do.

    `bpnet_core.bias_qc.classify_patterns` weighs each pattern's best TF
    match against its best enzyme-bias match (TN5_*, DNASE_*) and against
    its own base composition: on real ATAC-seq TN5_1, 30 bp of nearly
    uniform bases, is the top TOMTOM match of 13 of the yeast accessibility
    model's 14 patterns, by composition alone. A pattern of kind TF, bias or
    ambiguous is named after the match that decided it; others (composition,
    low-complexity, unmatched) keep the pattern's name. Without a motif
    database, every pattern keeps its name and its kind is empty.
    """
    if motifs is None:
        return {}
    from .bias_qc import classify_patterns, pattern_matches

    labels = {}
    for row in classify_patterns(pattern_matches(modisco_h5, motifs), MAX_MATCH_QVALUE):
        named = row["kind"] in NAMED_KINDS and row["best_match"]
        labels[row["pattern"]] = (row["best_match"] if named else row["pattern"], row["kind"])
    return labels


def _finemo_regions(regions: pd.DataFrame):
    """Fi-NeMo's peak table of the regions: its columns, our coordinates (no re-centring)."""
    import polars as pl

    return pl.DataFrame({
        "chr": regions["chrom"].tolist(),
        "peak_region_start": regions["start"].astype(np.int64).tolist(),
        "peak_name": region_names(regions),
        "peak_id": np.arange(len(regions), dtype=np.uint32),
        "chr_id": pd.factorize(regions["chrom"])[0],
    }).with_columns(pl.col("peak_id").cast(pl.UInt32), pl.col("chr_id").cast(pl.UInt32))


def region_names(regions: pd.DataFrame) -> list[str]:
    """``chrom:start-end`` of each region."""
    return [f"{c}:{s}-{e}" for c, s, e in zip(regions["chrom"], regions["start"], regions["end"])]


def run_finemo(sequences: np.ndarray, contributions: np.ndarray, regions: pd.DataFrame,
               modisco_h5: str | os.PathLike, config: MotifHitsConfig, folder: str | os.PathLike) -> Path:
    """Fi-NeMo's ``call-hits`` and ``report`` on the regions, written under `folder`.

    Parameters
    ----------
    sequences, contributions : numpy.ndarray
        (N, 4, W) one-hot (int8) and hypothetical contributions.
    regions : pandas.DataFrame
        The N regions: chrom, start (0-based start of the W bases).
    modisco_h5 : path
        TF-MoDISco results (modisco-lite's h5).
    config : MotifHitsConfig
    folder : path
        Receives Fi-NeMo's outputs and ``report/``.

    Returns
    -------
    Path
        Fi-NeMo's ``hits.tsv``.
    """
    from finemo import data_io, main

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    regions_npz = folder / "regions.npz"
    data_io.write_regions_npz(sequences, contributions.astype(np.float16), str(regions_npz),
                              peaks_df=_finemo_regions(regions))
    lambdas = None
    if config.motif_lambdas:
        lambdas = folder / "motif_lambdas.tsv"
        lambdas.write_text("".join(f"{k}\t{v}\n" for k, v in config.motif_lambdas.items()))
    log.info("Fi-NeMo: %d regions of %d bp, lambda %g, mode %s", len(regions), sequences.shape[-1],
             config.global_lambda, config.mode)
    main.call_hits(
        regions_path=str(regions_npz), peaks_path=None, modisco_h5_path=str(modisco_h5),
        chrom_order_path=None, motifs_include_path=None, motif_names_path=None,
        motif_lambdas_path=None if lambdas is None else str(lambdas), out_dir=str(folder),
        cwm_trim_threshold_default=config.cwm_trim_threshold, lambda_default=config.global_lambda,
        step_size_max=config.step_size_max, step_size_min=config.step_size_min,
        sqrt_transform=config.sqrt_transform, convergence_tol=config.convergence_tol,
        max_steps=config.max_steps, step_adjust=config.step_adjust, mode=config.mode,
        no_post_filter=config.no_post_filter)
    if config.finemo_report:
        main.report(regions_path=str(regions_npz), hits_dir=str(folder), modisco_h5_path=str(modisco_h5),
                    peaks_path=None, motifs_include_path=None, motif_names_path=None,
                    out_dir=str(folder / "report"), modisco_region_width=config.modisco_region_width,
                    cwm_trim_threshold=config.cwm_trim_threshold)
    return folder / "hits.tsv"


def hits_table(finemo_hits: str | os.PathLike, regions: pd.DataFrame, labels: Mapping[str, tuple[str, str]],
               motif_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The pipeline's hit table from Fi-NeMo's ``hits.tsv``: one row per hit.

    `labels` maps patterns to (motif, kind) (`pattern_labels`),
    `motif_names` database IDs to TF names (`bpnet_core.io.meme_names`).

    A palindromic pattern fits both strands at one place: those are one hit
    (the strand of the larger coefficient). Columns: `HIT_COLUMNS`, rows
    in genome order.
    """
    raw = pd.read_csv(finemo_hits, sep="\t")
    if raw.empty:
        return pd.DataFrame(columns=HIT_COLUMNS)
    raw = (raw.sort_values("hit_coefficient", ascending=False)
           .drop_duplicates(["peak_id", "start", "end", "motif_name"]))
    region = regions.iloc[raw["peak_id"].to_numpy()]
    table = pd.DataFrame({
        "chrom": raw["chr"].astype(str).to_numpy(),
        "start": raw["start"].to_numpy(), "end": raw["end"].to_numpy(),
        "pattern": raw["motif_name"].to_numpy(),
        "motif": [labels.get(p, (p, ""))[0] for p in raw["motif_name"]],
        "motif_name": [(motif_names or {}).get(labels.get(p, (p, ""))[0], "") for p in raw["motif_name"]],
        "kind": [labels.get(p, (p, ""))[1] for p in raw["motif_name"]],
        "strand": raw["strand"].to_numpy(),
        "coefficient": raw["hit_coefficient_global"].to_numpy(),
        "similarity": raw["hit_similarity"].to_numpy(),
        "importance": raw["hit_importance"].to_numpy(),
        "region": np.asarray(region_names(regions))[raw["peak_id"].to_numpy()],
        "summit_offset": ((raw["start"].to_numpy() + raw["end"].to_numpy()) / 2
                          - region["center"].to_numpy()),
    })
    return table.sort_values(["chrom", "start", "pattern"], kind="stable").reset_index(drop=True)


def hit_counts(hits: pd.DataFrame, n_regions: int) -> pd.DataFrame:
    """Per pattern: motif, kind, hits, regions with a hit and their fraction of the `n_regions`, most hits first."""
    grouped = hits.groupby(["pattern", "motif", "kind"], sort=False, dropna=False)
    counts = pd.DataFrame({"hits": grouped.size(), "regions": grouped["region"].nunique()}).reset_index()
    counts["fraction_of_regions"] = counts["regions"] / max(n_regions, 1)
    return counts.sort_values(["hits", "pattern"], ascending=[False, True]).reset_index(drop=True)


def cooccurrence(hits: pd.DataFrame) -> pd.DataFrame:
    """Regions holding a hit of both patterns (rows and columns: patterns; diagonal: regions with one)."""
    patterns = sorted(hits["pattern"].unique())
    if not patterns:
        return pd.DataFrame(columns=["pattern"])
    present = pd.crosstab(hits["region"], hits["pattern"]).reindex(columns=patterns, fill_value=0) > 0
    matrix = present.T.astype(int) @ present.astype(int)
    matrix.index.name = "pattern"
    return matrix.reset_index()


def write_bed(hits: pd.DataFrame, path: str | os.PathLike) -> None:
    """BED6 + region: chrom, start, end, motif name (else motif), 1000 x similarity, strand, region."""
    named = hits["motif_name"].fillna("").astype(str)
    bed = pd.DataFrame({"chrom": hits["chrom"], "start": hits["start"], "end": hits["end"],
                        "name": named.where(named != "", hits["motif"]).str.replace(" ", "_"), "score": (1000 * hits["similarity"].clip(0, 1)).round().astype(int),
                        "strand": hits["strand"], "region": hits["region"]})
    with atomic_output(path) as tmp:
        bed.to_csv(tmp, sep="\t", header=False, index=False)


def plot_positions(hits: pd.DataFrame, region_width: int, path: str | os.PathLike) -> None:
    """Histogram of hit centres around the summits (bp), one line per pattern with most hits first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    bins = np.linspace(-region_width / 2, region_width / 2, 41)
    order = hits["pattern"].value_counts().index
    for pattern in order:
        rows = hits[hits["pattern"] == pattern]
        counts, edges = np.histogram(rows["summit_offset"], bins=bins)
        label = rows["motif_name"].iloc[0] or rows["motif"].iloc[0]
        ax.step(edges[:-1], counts, where="post", label=f"{label} ({len(rows)})")
    ax.set_xlabel("hit centre - summit (bp)")
    ax.set_ylabel("hits")
    if len(order):
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def call_motif_hits(config: MotifHitsConfig | Mapping[str, Any], ohe_path: str | os.PathLike,
                    attr_path: str | os.PathLike, loci_path: str | os.PathLike,
                    modisco_h5: str | os.PathLike, outputs: Mapping[str, str | os.PathLike],
                    motifs_meme: str | os.PathLike | None = None) -> dict[str, int]:
    """Motif hits of the TF-MoDISco patterns in the attributed regions (see the module's docstring).

    Parameters
    ----------
    config : MotifHitsConfig or mapping
    ohe_path, attr_path, loci_path : path
        The attribution stage's outputs.
    modisco_h5 : path
        TF-MoDISco results.
    outputs : mapping
        Paths of ``hits``, ``bed``, ``counts``, ``cooccurrence``,
        ``positions`` (PNG) and ``finemo`` (Fi-NeMo's folder).
    motifs_meme : path, optional
        A motif database (the TF-MoDISco report's), to name and classify
        the patterns (`pattern_labels`) and give the TF names of the matches.

    Returns
    -------
    dict
        ``n_regions`` and ``n_hits``.
    """
    config = as_step_config(MotifHitsConfig, config)
    sequences, contributions, regions = load_regions(ohe_path, attr_path, loci_path, config.region_width)
    finemo_folder = Path(outputs["finemo"])
    # Fi-NeMo writes into its folder as it goes: build it aside, then move it in place.
    shutil.rmtree(finemo_folder, ignore_errors=True)
    finemo_folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".finemo.", dir=finemo_folder.parent))
    try:
        if _read_patterns(modisco_h5):
            finemo_hits = run_finemo(sequences, contributions, regions, modisco_h5, config, staging)
            hits = hits_table(finemo_hits, regions, pattern_labels(modisco_h5, motifs_meme),
                              meme_names(motifs_meme) if motifs_meme else None)
        else:
            log.warning("TF-MoDISco found no pattern in %s: no motif hits", modisco_h5)
            hits = pd.DataFrame(columns=HIT_COLUMNS)
        staging.rename(finemo_folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_tsv(outputs["hits"], hits)
    write_bed(hits, outputs["bed"])
    write_tsv(outputs["counts"], hit_counts(hits, len(regions)))
    write_tsv(outputs["cooccurrence"], cooccurrence(hits))
    plot_positions(hits, config.region_width, outputs["positions"])
    log.info("%d hits in %d regions: %s", len(hits), len(regions),
             ", ".join(f"{m} {n}" for m, n in hits["motif"].value_counts().items()))
    return {"n_regions": len(regions), "n_hits": len(hits)}
