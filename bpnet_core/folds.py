"""Fold ensembles: chromosome folds, and the averages of the folds' outputs over one set of regions.

A pipeline with ``folds`` trains one model per fold, each on its own
training, validation and test chromosomes (as ENCODE's ChromBPNet models
are trained, 5 folds), runs every model on the same loci, and averages
the outputs here:

- `balanced_folds` makes n folds from chromosome lengths (the rule is in
  its docstring);
- `average_predictions`, `average_contributions` average the folds' npz
  files over the regions every fold could score (`common_rows`); a region
  that one fold dropped is dropped for all, and counted;
- `tabulate_fold_metrics` writes each fold's held-out metrics with their
  mean and standard deviation; `average_marginalization` averages the
  folds' marginalization tables, with the spread.
"""

from __future__ import annotations

import html
import logging
import os
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import pages
from .errors import InputError
from .io import atomic_output, fasta_chrom_sizes, write_bigwig, write_npz, write_tsv

log = logging.getLogger(__name__)

FOLD_PREFIX = "fold_"
# The rows of the fold metrics table that are not folds.
SUMMARY_ROWS = ("mean", "sd")


def fold_names(n: int) -> list[str]:
    """``fold_0`` ... ``fold_<n-1>``: the folds' names, in config order."""
    return [f"{FOLD_PREFIX}{i}" for i in range(n)]


MIN_FOLDS = 3


def check_n_folds(n: int) -> None:
    """Raise ValueError when `n` is below `MIN_FOLDS`, the fewest folds `balanced_folds` makes."""
    if n < MIN_FOLDS:
        raise ValueError(f"{n} folds: at least {MIN_FOLDS} are needed (each fold tests on one group of "
                         "chromosomes, validates on the next and trains on the others)")


def balanced_folds(chrom_sizes: Mapping[str, int], n: int) -> list[dict[str, list[str]]]:
    """`n` folds of the chromosomes of `chrom_sizes`, balanced by length.

    The rule: the chromosomes, by decreasing length (ties in the order of
    `chrom_sizes`), go one by one to the group of least total length so far
    (ties to the lowest group index), giving `n` groups. Fold k tests on
    group k, validates on group (k + 1) mod n and trains on the others.
    Each group is listed in the order of `chrom_sizes`. The same chromosomes,
    lengths and `n` always give the same folds.

    Parameters
    ----------
    chrom_sizes : mapping of str to int
        Chromosome -> length (bp), in the order the folds list them.
    n : int
        Number of folds, at least 3 (test, validation and training groups
        must differ) and at most the number of chromosomes.

    Returns
    -------
    list of dict
        One dict per fold: ``training_chroms``, ``validation_chroms``,
        ``test_chroms`` (lists of chromosome names).

    Raises
    ------
    ValueError
        When `n` is below 3 or above the number of chromosomes.
    """
    chroms = list(chrom_sizes)
    check_n_folds(n)
    if n > len(chroms):
        raise ValueError(f"{n} folds need at least {n} chromosomes, and there are {len(chroms)} "
                         f"({', '.join(chroms)})")
    order = sorted(range(len(chroms)), key=lambda i: (-chrom_sizes[chroms[i]], i))
    groups: list[list[int]] = [[] for _ in range(n)]
    totals = [0] * n
    for i in order:
        group = min(range(n), key=lambda g: (totals[g], g))
        groups[group].append(i)
        totals[group] += chrom_sizes[chroms[i]]
    names = [[chroms[i] for i in sorted(group)] for group in groups]
    return [{"training_chroms": [c for g in range(n) if g not in (k, (k + 1) % n) for c in names[g]],
             "validation_chroms": names[(k + 1) % n],
             "test_chroms": names[k]} for k in range(n)]


# --------------------------------------------------------------------------
# One set of regions for every fold


def common_rows(coordinates: Sequence[pd.DataFrame]) -> tuple[list[np.ndarray], int]:
    """The rows of each fold's table that are regions every fold has, in the first fold's order.

    Parameters
    ----------
    coordinates : sequence of pandas.DataFrame
        One per fold: the regions of its outputs, one row per region, the
        same columns (e.g. ``chrom``, ``start``, ``end``).

    Returns
    -------
    rows : list of numpy.ndarray
        For each fold, the indices of its rows that hold the common regions,
        each array in the same region order.
    n_dropped : int
        Regions that some fold has but not every fold (dropped for all).
    """
    keys = [list(map(tuple, table.astype({"chrom": str}).itertuples(index=False, name=None)))
            for table in coordinates]
    for fold, fold_keys in enumerate(keys):
        if len(set(fold_keys)) != len(fold_keys):
            raise InputError(f"fold {fold}: the same region is listed twice; the folds' outputs "
                             "cannot be matched by coordinates")
    common = set(keys[0]).intersection(*keys[1:])
    order = [key for key in keys[0] if key in common]
    rows = []
    for fold_keys in keys:
        position = {key: i for i, key in enumerate(fold_keys)}
        rows.append(np.array([position[key] for key in order], dtype=np.int64))
    n_dropped = len(set().union(*map(set, keys)) - common)
    return rows, n_dropped


def _coordinates(npz: Mapping[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame({"chrom": npz["chrom"].astype(str), "start": npz["start"], "end": npz["end"]})


def _load(paths: Sequence[str | os.PathLike]) -> list[dict[str, np.ndarray]]:
    arrays = []
    for path in paths:
        with np.load(path) as npz:
            arrays.append({key: npz[key] for key in npz.files})
    return arrays


def average_predictions(profile_paths: Sequence[str | os.PathLike], counts_paths: Sequence[str | os.PathLike],
                        profile_path: str | os.PathLike, counts_path: str | os.PathLike) -> int:
    """The folds' predictions averaged over the regions every fold predicted.

    Parameters
    ----------
    profile_paths, counts_paths : sequence of path
        Each fold's npz files of `bpnet_core.predict.predict_arrays`:
        ``arr_0`` the profile logits (N_f, S, L) or log(1 + counts) (N_f, 1),
        and ``chrom``, ``start``, ``end`` of each row.
    profile_path, counts_path : path
        The averages, in the same format: the mean over folds of the logits
        and of the log counts (as the reverse-complement and multi-model
        averages of this package do), for the regions of every fold (the
        first fold's order); plus ``n_folds`` and ``n_dropped``.

    Returns
    -------
    int
        Regions dropped because some fold has no prediction for them.
    """
    if len(profile_paths) != len(counts_paths) or not profile_paths:
        raise ValueError("one profile and one counts file per fold are needed")
    profiles, counts = _load(profile_paths), _load(counts_paths)
    for profile, count, path in zip(profiles, counts, counts_paths):
        if not _coordinates(profile).equals(_coordinates(count)):
            raise InputError(f"{path}: its regions are not those of the fold's profile file")
    rows, dropped = common_rows([_coordinates(profile) for profile in profiles])
    coords = {key: profiles[0][key][rows[0]] for key in ("chrom", "start", "end")}
    summary = {"n_folds": np.int64(len(rows)), "n_dropped": np.int64(dropped)}
    for arrays, path in ((profiles, profile_path), (counts, counts_path)):
        mean = np.mean([fold["arr_0"][index].astype(np.float64) for fold, index in zip(arrays, rows)], axis=0)
        write_npz(path, arr_0=mean.astype(np.float32), **coords, **summary)
    _log_dropped("predictions", len(rows[0]), dropped, len(rows))
    return dropped


def _log_dropped(what: str, n: int, dropped: int, n_folds: int) -> None:
    if dropped:
        log.warning("%s: %d region(s) that some fold could not score were dropped for every fold", what, dropped)
    log.info("averaged the %s of %d folds over %d regions (%d dropped)", what, n_folds, n, dropped)


def average_contributions(ohe_paths: Sequence[str | os.PathLike], attr_paths: Sequence[str | os.PathLike],
                          loci_paths: Sequence[str | os.PathLike], ohe_path: str | os.PathLike,
                          attr_path: str | os.PathLike, loci_path: str | os.PathLike,
                          sequences: str | None = None, bigwig_path: str | os.PathLike | None = None) -> int:
    """The folds' DeepLIFT/SHAP contributions averaged over the windows every fold attributed.

    Parameters
    ----------
    ohe_paths, attr_paths, loci_paths : sequence of path
        Each fold's files of `bpnet_core.attribute.attribute_model`: one-hot
        sequences and hypothetical contributions (``arr_0``, (N_f, 4,
        in_window)) and the window of each row (TSV: chrom, start, end, center).
    ohe_path, attr_path, loci_path : path
        The one-hot sequences, the mean hypothetical contributions (float32)
        and the windows, for the windows of every fold, in the first fold's
        order: the pair TF-MoDISco reads.
    sequences : str, optional
        The genome FASTA, for the bigWig's header.
    bigwig_path : path, optional
        The projected mean contribution at each base (mean where windows overlap).

    Returns
    -------
    int
        Windows dropped because some fold did not attribute them.

    Raises
    ------
    InputError
        When two folds give one window different sequences.
    """
    loci = [pd.read_csv(path, sep="\t", dtype={"chrom": str}) for path in loci_paths]
    rows, dropped = common_rows([table[["chrom", "start", "end"]] for table in loci])
    ohe = [np.load(path)["arr_0"] for path in ohe_paths]
    for fold, (one_hot, index, path) in enumerate(zip(ohe, rows, ohe_paths)):
        if len(one_hot) != len(loci[fold]):
            raise InputError(f"{path}: {len(one_hot)} sequences, but {loci_paths[fold]} lists {len(loci[fold])} windows")
        if not np.array_equal(one_hot[index], ohe[0][rows[0]]):
            raise InputError(f"{path}: the sequences differ from {ohe_paths[0]}'s for the same windows")
    attr = np.mean([np.load(path)["arr_0"][index].astype(np.float64) for path, index in zip(attr_paths, rows)],
                   axis=0).astype(np.float32)
    one_hot = ohe[0][rows[0]]
    table = loci[0].iloc[rows[0]].reset_index(drop=True)
    write_npz(ohe_path, arr_0=one_hot)
    write_npz(attr_path, arr_0=attr)
    write_tsv(loci_path, table)
    if bigwig_path is not None:
        if sequences is None:
            raise ValueError("the genome FASTA is needed for the bigWig")
        projected = (attr * one_hot).sum(axis=1)
        write_bigwig(bigwig_path, fasta_chrom_sizes(sequences), table["chrom"].to_numpy(),
                     table["start"].to_numpy(), projected)
    _log_dropped("contributions", len(table), dropped, len(rows))
    return dropped


# --------------------------------------------------------------------------
# Metrics and marginalization


def tabulate_fold_metrics(folds: Mapping[str, Sequence[str]], performance_paths: Sequence[str | os.PathLike],
                          regions_paths: Sequence[str | os.PathLike], table_path: str | os.PathLike,
                          performance_path: str | os.PathLike, regions_path: str | os.PathLike) -> pd.DataFrame:
    """Each fold's metrics on its held-out test chromosomes, with their mean and spread.

    Parameters
    ----------
    folds : mapping of str to list of str
        Fold name -> its test chromosomes, in the order of the paths.
    performance_paths, regions_paths : sequence of path
        Each fold's `bpnet_core.evaluate.evaluate_model` outputs.
    table_path : path
        ``fold, test_chroms`` and the metrics, one row per fold, then a
        ``mean`` row and an ``sd`` row (sample standard deviation over
        folds, ddof 1; empty for one fold).
    performance_path : path
        The ``mean`` row in the single-model layout (one row; ``n_regions``
        the held-out regions of all folds together), which the report and
        the batch summary read as the dataset's metrics.
    regions_path : path
        Every fold's per-region metrics, with a ``fold`` column: each region
        as predicted by the model that did not train on it.

    Returns
    -------
    pandas.DataFrame
        The fold table.
    """
    rows = []
    for (fold, test_chroms), path in zip(folds.items(), performance_paths):
        metrics = pd.read_csv(path, sep="\t").iloc[0].to_dict()
        rows.append({"fold": fold, "test_chroms": ",".join(test_chroms), **metrics})
    table = pd.DataFrame(rows)
    metrics = [column for column in table.columns if column not in ("fold", "test_chroms")]
    mean = {"fold": "mean", "test_chroms": "", **table[metrics].mean().to_dict()}
    sd = {"fold": "sd", "test_chroms": "", **table[metrics].std(ddof=1).to_dict()}
    table = pd.concat([table, pd.DataFrame([mean, sd])], ignore_index=True)
    write_tsv(table_path, table)
    overall = {key: value for key, value in mean.items() if key not in ("fold", "test_chroms")}
    if "n_regions" in overall:
        overall["n_regions"] = int(table.loc[~table["fold"].isin(SUMMARY_ROWS), "n_regions"].sum())
    write_tsv(performance_path, pd.DataFrame([overall]))
    regions = [pd.read_csv(path, sep="\t").assign(fold=fold) for fold, path in zip(folds, regions_paths)]
    write_tsv(regions_path, pd.concat(regions, ignore_index=True))
    log.info("held-out metrics of %d folds: %s", len(rows), ", ".join(
        f"{key} {mean[key]:.4g} +- {sd[key]:.2g}" for key in metrics if key != "n_regions"))
    return table


def average_marginalization(summary_paths: Sequence[str | os.PathLike], folds: Sequence[str],
                            summary_path: str | os.PathLike, html_path: str | os.PathLike) -> pd.DataFrame:
    """The folds' marginalization tables averaged by motif, with the spread.

    Parameters
    ----------
    summary_paths : sequence of path
        Each fold's ``summary.tsv`` of `bpnet_core.marginalize.marginalize_motifs`.
    folds : sequence of str
        The fold names, in the order of `summary_paths` (for the page).
    summary_path : path
        One row per motif: ``consensus`` and ``n_loci``, the mean over folds of each
        other column and ``<column>_sd`` (standard deviation over folds,
        ddof 1), ``n_folds``; by decreasing mean ``delta_log_counts``.
    html_path : path
        A page with the table, linking each fold's own report.

    Returns
    -------
    pandas.DataFrame
        The averaged table.
    """
    tables = [pd.read_csv(path, sep="\t") for path in summary_paths]
    motifs = [set(table["motif"]) for table in tables]
    if any(m != motifs[0] for m in motifs):
        raise InputError(f"{', '.join(map(str, summary_paths))}: the folds marginalized different motifs")
    stacked = pd.concat(tables, ignore_index=True)
    # The loci and the consensus are the same for every fold: kept once.
    text = [c for c in tables[0].columns if c in ("n_loci", "consensus")
            or (c != "motif" and not pd.api.types.is_numeric_dtype(tables[0][c]))]
    numeric = [c for c in tables[0].columns if c not in text and c != "motif"]
    grouped = stacked.groupby("motif", sort=False)
    mean = grouped[numeric].mean()
    sd = grouped[numeric].std(ddof=1).add_suffix("_sd")
    first = grouped[text].first()
    table = pd.concat([first, mean, sd], axis=1).reset_index()
    table["n_folds"] = len(tables)
    ordered = ["motif", *text, *[c for column in numeric for c in (column, f"{column}_sd")], "n_folds"]
    table = table[ordered]
    if "delta_log_counts" in table:
        table = table.sort_values("delta_log_counts", ascending=False, kind="stable").reset_index(drop=True)
    write_tsv(summary_path, table)
    base = os.path.dirname(os.path.abspath(html_path))
    links = "".join(
        f'<li><a href="{html.escape(os.path.relpath(os.path.join(os.path.dirname(os.path.abspath(path)), "report.html"), base))}">'
        f"{html.escape(fold)}</a></li>" for fold, path in zip(folds, summary_paths))
    body = (f"<p>Each motif's effect averaged over the {len(tables)} fold models (mean; <code>_sd</code>: "
            f"standard deviation over folds).</p>\n{pages.table(table)}\n<h2>Each fold's report</h2>\n<ul>{links}</ul>")
    with atomic_output(html_path) as tmp:
        tmp.write_text(pages.page("Motif marginalization, averaged over folds", body))
    return table
