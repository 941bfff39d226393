"""What a simulated demo planted, against what the pipeline found."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .chip import PLANTED_MOTIFS


def instance_contributions(planted: pd.DataFrame, ohe: np.ndarray, attributions: np.ndarray,
                           windows: pd.DataFrame) -> np.ndarray:
    """Projected contribution summed over each planted instance (NaN when no window holds it whole).

    Parameters
    ----------
    planted : pandas.DataFrame
        chrom, position (0-based start), motif.
    ohe, attributions : numpy.ndarray
        (N, 4, L) one-hot sequences and hypothetical contributions of the windows.
    windows : pandas.DataFrame
        The N windows: chrom, start (0-based).
    """
    width = {name: len(consensus) for name, (consensus, _) in PLANTED_MOTIFS.items()}
    projected = (ohe * attributions).sum(axis=1)  # (N, L)
    length = projected.shape[1]
    total = np.full(len(planted), np.nan)
    for i, (chrom, position, motif) in enumerate(zip(planted["chrom"], planted["position"], planted["motif"])):
        offset = position - windows["start"].to_numpy()
        holds = np.flatnonzero((windows["chrom"].to_numpy() == chrom) & (offset >= 0)
                               & (offset + width.get(motif, 0) <= length))
        if motif in width and len(holds):
            j = holds[0]
            total[i] = projected[j, offset[j]:offset[j] + width[motif]].sum()
    return total


def hit_recovery(hits: pd.DataFrame, planted: pd.DataFrame, regions: pd.DataFrame,
                 tolerance: float = 5) -> pd.DataFrame:
    """Precision and recall of motif hits against the planted instances.

    A hit and a planted instance of the same motif match when their centres
    are at most `tolerance` bp apart. Only planted instances lying wholly in
    one of the `regions` (where hits were called) count.

    Parameters
    ----------
    hits : pandas.DataFrame
        ``hits.tsv`` of `bpnet_core.motif_hits`: chrom, start, end, motif.
    planted : pandas.DataFrame
        ``planted_motifs.tsv``: chrom, position (0-based start), motif.
    regions : pandas.DataFrame
        chrom, start, end of the regions searched.
    tolerance : float
        bp.

    Returns
    -------
    pandas.DataFrame
        One row per planted motif and ``all``: hits, matched_hits,
        precision, planted (in the regions), recovered, recall.
    """
    width = {name: len(consensus) for name, (consensus, _) in PLANTED_MOTIFS.items()}
    planted = planted[planted["motif"].isin(list(width))].copy()
    planted["center"] = planted["position"] + planted["motif"].map(width) / 2
    inside = np.zeros(len(planted), dtype=bool)
    for region in regions.itertuples(index=False):
        inside |= ((planted["chrom"] == region.chrom) & (planted["position"] >= region.start)
                   & (planted["position"] + planted["motif"].map(width) <= region.end)).to_numpy()
    planted = planted[inside]
    hit_center = (hits["start"] + hits["end"]).to_numpy() / 2
    rows = []
    for motif in width:
        own_hits = (hits["motif"] == motif).to_numpy()
        own_planted = (planted["motif"] == motif).to_numpy()
        near = ((hits["chrom"].to_numpy()[own_hits, None] == planted["chrom"].to_numpy()[None, own_planted])
                & (np.abs(hit_center[own_hits, None] - planted["center"].to_numpy()[None, own_planted])
                   <= tolerance))
        rows.append({"motif": motif, "hits": int(own_hits.sum()), "matched_hits": int(near.any(1).sum()),
                     "planted": int(own_planted.sum()), "recovered": int(near.any(0).sum())})
    table = pd.DataFrame(rows)
    table.loc[len(table)] = {"motif": "all", **table.drop(columns="motif").sum()}
    table["precision"] = table["matched_hits"] / table["hits"].clip(lower=1)
    table["recall"] = table["recovered"] / table["planted"].clip(lower=1)
    return table[["motif", "hits", "matched_hits", "precision", "planted", "recovered", "recall"]]
