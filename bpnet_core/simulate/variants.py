"""Variants of a simulated demo genome whose effect is known: motif-breaking and background SNVs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyfaidx

from ..io import write_text
from .chip import PLANTED_MOTIFS

#: The substitution of each base: never the consensus base it replaces.
_SUBSTITUTE = {"A": "C", "C": "A", "G": "T", "T": "G"}


def demo_variants(sequences: str | os.PathLike, planted: str | os.PathLike, negatives: str | os.PathLike,
                  output: str | os.PathLike, seed: int = 0) -> Path:
    """Write SNVs that break planted motif instances in peaks, and as many in background regions.

    Parameters
    ----------
    sequences : path
        The demo genome FASTA.
    planted : path
        ``planted_motifs.tsv`` of `bpnet_core.simulate.chip.simulate_demo`
        (chrom, 0-based position, motif, strand, in_peak).
    negatives : path
        Its background regions (BED).
    output : path
        The TSV written: ``chrom pos ref alt id`` (1-based, as in VCF), no
        header. ``id`` is ``planted_<motif>_<k>`` for an SNV at the central
        base of a planted instance in a peak (the base replaced by another),
        ``background_<k>`` for one at a random base of a background region.
    seed : int
        Seed of the background positions (independent of the simulation's).

    Returns
    -------
    Path
        `output`.
    """
    genome = pyfaidx.Fasta(str(sequences), as_raw=True, sequence_always_upper=True)
    sites = pd.read_csv(planted, sep="\t")
    sites = sites[sites["in_peak"].astype(bool) & sites["motif"].isin(list(PLANTED_MOTIFS))]
    rows = []
    for k, site in enumerate(sites.itertuples()):
        width = len(PLANTED_MOTIFS[site.motif][0])
        position = int(site.position) + width // 2  # 0-based; the central base is informative in each motif
        ref = genome[site.chrom][position:position + 1]
        rows.append((site.chrom, position + 1, ref, _SUBSTITUTE.get(ref, "A"), f"planted_{site.motif}_{k}"))
    regions = pd.read_csv(negatives, sep="\t", header=None, usecols=[0, 1, 2], names=["chrom", "start", "end"])
    rng = np.random.default_rng(seed)
    for k, row in enumerate(regions.iloc[rng.integers(0, len(regions), size=len(rows))].itertuples()):
        position = int(rng.integers(row.start, row.end))
        ref = genome[row.chrom][position:position + 1]
        rows.append((row.chrom, position + 1, ref, _SUBSTITUTE.get(ref, "A"), f"background_{k}"))
    genome.close()
    write_text(output, "".join("\t".join(map(str, row)) + "\n" for row in rows))
    return Path(output)
