"""GC-matched background regions: `negatives` for datasets that come without them.

The genome is tiled into windows of the model's input width; tangermeme's
`extract_matching_loci` picks, for each peak, `per_peak` tiles of the same
GC content (bins of `gc_bin_width`) that overlap no peak's input window
(the official ChromBPNet draws 2 per peak, ``--neg-to-pos-ratio-train``). Exclusion
lists (e.g. the ENCODE blacklist), which tangermeme does not take, are
applied to its answer here.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .config import NegativesConfig, as_step_config
from .io import as_list, atomic_output, fasta_chrom_sizes, read_loci, write_tsv

log = logging.getLogger("bpnet_core")


@dataclass(frozen=True)
class GCComparison:
    """GC content of peaks and negatives over their input windows.

    Attributes
    ----------
    peaks, negatives : numpy.ndarray
        GC fraction of each window, shape (N,), in [0, 1].
    ks_statistic, ks_pvalue : float
        Two-sample Kolmogorov-Smirnov test of the two distributions.
    """

    peaks: np.ndarray
    negatives: np.ndarray
    ks_statistic: float
    ks_pvalue: float


def gc_fraction(sequences: str | os.PathLike, loci: pd.DataFrame, width: int) -> np.ndarray:
    """GC fraction of the `width`-bp window centred on each locus' ``center``; N bases count as absent.

    Returns
    -------
    numpy.ndarray
        Shape (N,), NaN for windows that are all N or run off their chromosome.
    """
    import pyfaidx

    gc = np.full(len(loci), np.nan)
    with pyfaidx.Fasta(str(sequences), as_raw=True, sequence_always_upper=True) as fasta:
        for i, (chrom, center) in enumerate(zip(loci["chrom"], loci["center"])):
            start = int(center) - width // 2
            if start < 0 or start + width > len(fasta[chrom]):
                continue
            seq = fasta[chrom][start:start + width]
            called = len(seq) - seq.count("N")
            if called:
                gc[i] = (seq.count("G") + seq.count("C")) / called
    return gc


def compare_gc(sequences: str | os.PathLike, peaks: pd.DataFrame, negatives: pd.DataFrame,
               width: int) -> GCComparison:
    """GC distributions of `peaks` and `negatives` and their two-sample KS test."""
    from scipy.stats import ks_2samp

    gc_peaks = gc_fraction(sequences, peaks, width)
    gc_negatives = gc_fraction(sequences, negatives, width)
    gc_peaks, gc_negatives = gc_peaks[~np.isnan(gc_peaks)], gc_negatives[~np.isnan(gc_negatives)]
    test = ks_2samp(gc_peaks, gc_negatives)
    return GCComparison(gc_peaks, gc_negatives, float(test.statistic), float(test.pvalue))


def _overlaps(regions: pd.DataFrame, excluded: pd.DataFrame) -> np.ndarray:
    """Whether each region overlaps any interval of `excluded` (half-open, same chromosome)."""
    hit = np.zeros(len(regions), dtype=bool)
    for chrom, rows in regions.groupby("chrom").groups.items():
        other = excluded[excluded["chrom"] == chrom].sort_values("start")
        if other.empty:
            continue
        starts, ends = other["start"].to_numpy(), np.maximum.accumulate(other["end"].to_numpy())
        region = regions.loc[rows]
        # The last excluded interval starting before each region's end.
        last = np.searchsorted(starts, region["end"].to_numpy(), side="left") - 1
        hit[regions.index.get_indexer(rows)] = (last >= 0) & (ends[np.maximum(last, 0)] > region["start"].to_numpy())
    return hit


def _read_peaks(peaks: str | Sequence[str], chroms: Sequence[str] | None) -> pd.DataFrame:
    loci = read_loci(peaks, key="loci")
    if chroms is not None:
        loci = loci[loci["chrom"].isin(list(chroms))]
    if loci.empty:
        raise InputError(f"{', '.join(as_list(peaks))} (config key 'loci'): no peak on the chromosomes "
                         f"to draw negatives from ({', '.join(chroms or [])})")
    return loci


def gc_matched_negatives(
    peaks: str | Sequence[str],
    sequences: str | os.PathLike,
    in_window: int = 2114,
    chroms: Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    gc_bin_width: float = 0.02,
    max_n_fraction: float = 0.1,
    random_state: int | None = 0,
    per_peak: int = 2,
) -> pd.DataFrame:
    """Background regions matched to the peaks' GC content, `per_peak` for each peak.

    Parameters
    ----------
    peaks : str or list of str
        BED / narrowPeak files (config key ``loci``); windows are centred on
        summits when given.
    sequences : path
        Genome FASTA (with or without a .fai index).
    in_window : int
        Width of the model's input window, bp: the tile size, the width over
        which GC is measured, and the width around each peak that no
        negative may overlap.
    chroms : list of str, optional
        Chromosomes to draw negatives from; default those of the peaks.
    exclude : str or list of str, optional
        BED files of regions no negative may overlap (e.g. ENCODE blacklist).
    gc_bin_width : float
        GC fraction bins within which peaks and negatives are matched.
    max_n_fraction : float
        Windows with more N bases than this are never drawn.
    random_state : int, optional
    per_peak : int
        Distinct tiles drawn for each peak, each from the peak's GC bin or
        the nearest one with tiles left.

    Returns
    -------
    pandas.DataFrame
        Columns ``chrom, start, end, center`` of `in_window`-bp regions,
        sorted by position; about `per_peak` per peak (fewer where the genome
        runs out of tiles, and minus those overlapping `exclude`, both logged).
    """
    return _match(_read_peaks(peaks, chroms), sequences, in_window, chroms, exclude, gc_bin_width,
                  max_n_fraction, random_state, per_peak)


def _match(loci: pd.DataFrame, sequences, in_window, chroms, exclude, gc_bin_width, max_n_fraction,
           random_state, per_peak=1) -> pd.DataFrame:
    from tangermeme.match import extract_matching_loci

    sizes = fasta_chrom_sizes(sequences)
    unknown = sorted((set(loci["chrom"]) | set(chroms or [])) - set(sizes))
    if unknown:
        raise InputError(f"chromosomes not in the FASTA {sequences} (config key 'sequences'): "
                         f"{', '.join(unknown[:10])}")
    # tangermeme centres on the interval's midpoint and masks the tiles that
    # overlap each interval: give it the peaks' input windows around their summits.
    start = loci["center"] - in_window // 2
    windows = pd.DataFrame({"chrom": loci["chrom"], "start": start, "end": start + in_window})
    # Each copy of a peak asks for one more tile of its GC bin; tiles are
    # drawn without replacement, so the copies get distinct tiles.
    windows = pd.concat([windows] * per_peak, ignore_index=True)
    matched = extract_matching_loci(windows, str(sequences), in_window=in_window, out_window=in_window,
                                    max_n_perc=max_n_fraction, gc_bin_width=gc_bin_width,
                                    chroms=list(chroms) if chroms is not None else None,
                                    random_state=random_state)
    matched["center"] = matched["start"] + in_window // 2
    n_matched = len(matched)
    if exclude:
        excluded = read_loci(exclude, key="exclusion_lists")
        matched = matched[~_overlaps(matched.reset_index(drop=True), excluded)]
    log.info("negatives: %d GC-matched tiles of %d bp for %d peaks (%d per peak asked); "
             "%d dropped for overlapping %s", n_matched, in_window, len(loci), per_peak, n_matched - len(matched),
             ", ".join(as_list(exclude)) if exclude else "no exclusion list")
    return matched.sort_values(["chrom", "start"]).reset_index(drop=True)[["chrom", "start", "end", "center"]]


def write_negatives(peaks: str | Sequence[str], sequences: str | os.PathLike, output: str | os.PathLike,
                    in_window: int = 2114, chroms: Sequence[str] | None = None,
                    exclude: str | Sequence[str] | None = None, gc_bin_width: float = 0.02,
                    max_n_fraction: float = 0.1, random_state: int | None = 0,
                    per_peak: int = 2) -> GCComparison:
    """`gc_matched_negatives` written as a BED file (gzipped when `output` ends in .gz); the GC test is logged."""
    import gzip

    loci = _read_peaks(peaks, chroms)
    negatives = _match(loci, sequences, in_window, chroms, exclude, gc_bin_width, max_n_fraction,
                       random_state, per_peak)
    comparison = compare_gc(sequences, loci, negatives, in_window)
    log.info("GC over %d bp: peaks mean %.3f (n %d), negatives mean %.3f (n %d); "
             "two-sample KS statistic %.3f (p %.2g)", in_window, comparison.peaks.mean(),
             len(comparison.peaks), comparison.negatives.mean(), len(comparison.negatives),
             comparison.ks_statistic, comparison.ks_pvalue)
    text = negatives[["chrom", "start", "end"]].to_csv(sep="\t", header=False, index=False)
    with atomic_output(output) as tmp:
        if str(output).endswith(".gz"):
            with gzip.open(tmp, "wt") as handle:
                handle.write(text)
        else:
            tmp.write_text(text)
    return comparison


def make_negatives(config: NegativesConfig | Mapping[str, Any], gc_table: str | os.PathLike) -> GCComparison:
    """The ``negatives`` stage of a ChromBPNet pipeline with no `negatives`.

    Writes the regions to ``config.output_filename`` and the GC fraction of
    every peak and negative window to `gc_table` (TSV: ``set``, ``gc``), which
    the dataset report plots.
    """
    config = as_step_config(NegativesConfig, config)
    comparison = write_negatives(config.loci, config.sequences, config.output_filename,
                                 in_window=config.in_window, chroms=config.chroms,
                                 exclude=config.exclusion_lists, random_state=config.random_state,
                                 per_peak=config.negatives_per_peak)
    table = pd.DataFrame({"set": ["peaks"] * len(comparison.peaks) + ["negatives"] * len(comparison.negatives),
                          "gc": np.concatenate([comparison.peaks, comparison.negatives])})
    write_tsv(gc_table, table)
    return comparison
