"""Variant effect scores: what a trained model says about each genetic variant.

Each variant is read from a VCF (plain or gzipped) or a TSV ``chrom pos ref
alt [id]`` (1-based positions, as in VCF), its reference allele checked
against the FASTA, and the model's predictions for the reference and the
alternative sequence compared. The windows follow kundajelab/variant-scorer:
``in_window`` bp starting ``in_window // 2`` bases before the variant's
first base, so that the variant sits at the window's centre; an indel keeps
the window's length: the alternative window is the left flank, the
alternative allele, then the right flank from the base after the
reference allele, cut to ``in_window`` bases (a deletion reads further
right, an insertion less far).

Scores, each the mean of the sequence's and its reverse complement's
predictions (and of the models' when several are given, e.g. folds):

- ``logfc``: log2 of alt over ref predicted total counts, with counts =
  exp(predicted log counts), as variant-scorer computes it;
- ``jsd``: Jensen-Shannon distance (base 2; 0 same shape, 1 disjoint)
  between the ref and alt predicted profiles (softmax over tracks and
  positions);
- ``active_allele_quantile``: where the stronger allele's predicted log
  counts fall among those of the peaks (`loci`): 1 is above every peak;
- ``logfc_pval``, ``jsd_pval``: empirical p-values of ``|logfc|`` and
  ``jsd`` against a null of the same scores for `n_shuffles` variants
  drawn from those scored and put into dinucleotide-shuffled contexts
  (variant-scorer's approach): (1 + null scores >= the score) / (1 + nulls).

For ChromBPNet the model scored is the accessibility (bias-free) model and
the full model's scores follow with the prefix ``full_``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.special import log_softmax

from .config import VariantsConfig, as_step_config
from .data import Windows
from .errors import InputError
from .metrics import js_divergence
from .io import ALPHABET, as_list, atomic_output, fasta_chrom_sizes, read_loci, write_tsv
from .variant_files import INPUT_COLUMNS, read_variants
from .models import ChromBPNet, load_model, set_compute

log = logging.getLogger(__name__)

# Status of each input variant (the table's ``status`` column).
SCORED = "scored"                    # ref allele matches the FASTA
FLIPPED = "flipped"                  # alt allele matches the FASTA: alleles swapped, then scored
REF_MISMATCH = "ref_mismatch"        # neither allele matches the FASTA: not scored
OFF_CHROMOSOME = "off_chromosome"    # the window runs off the chromosome: not scored
UNKNOWN_CHROMOSOME = "unknown_chromosome"  # no such chromosome in the FASTA: not scored
INVALID_ALLELE = "invalid_allele"    # not A/C/G/T (symbolic, N, '*'), or an indel of in_window / 2 or more
SCORED_STATUSES = (SCORED, FLIPPED)

SCORE_COLUMNS = ["ref_log_counts", "alt_log_counts", "logfc", "abs_logfc", "jsd", "active_allele_quantile",
                 "logfc_pval", "jsd_pval"]
NULL_COLUMNS = ["abs_logfc", "jsd"]
# Bases -> codes 0..3 (ALPHABET order); anything else (N, IUPAC) -> 4, an all-zero one-hot column.
N_CODE = 4
_CODES = np.full(256, N_CODE, dtype=np.uint8)
for _i, _base in enumerate(ALPHABET):
    _CODES[ord(_base)] = _CODES[ord(_base.lower())] = _i
# Variants read, encoded and predicted together: bounds the memory of a job
# (2 alleles x 4096 x 2114 bp one-hot and their profiles), whatever the file's size.
BLOCK_SIZE = 4096


# --------------------------------------------------------------------------
# Alleles and windows


class _Genome:
    """Windows of a FASTA as base codes (0..3 = ACGT, 4 = other), one pyfaidx read each."""

    def __init__(self, path: str):
        import pyfaidx

        self.sizes = fasta_chrom_sizes(path)
        self.fasta = pyfaidx.Fasta(path, as_raw=True, sequence_always_upper=True)

    def codes(self, chrom: str, start: int, end: int) -> np.ndarray:
        """Codes of [start, end) on `chrom` (0-based), shape (end - start,), uint8."""
        return _CODES[np.frombuffer(self.fasta[chrom][start:end].encode("ascii"), dtype=np.uint8)]

    def close(self) -> None:
        self.fasta.close()


def encode(sequence: str) -> np.ndarray:
    """Codes of a DNA string, shape (len,), uint8 (0..3 = ACGT, 4 = other)."""
    return _CODES[np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)]


def one_hot(codes: np.ndarray) -> torch.Tensor:
    """One-hot sequences (N, 4, L), int8, of codes (N, L); code 4 (N) gives an all-zero column."""
    eye = np.eye(5, 4, dtype=np.int8)
    return torch.from_numpy(np.ascontiguousarray(eye[codes].transpose(0, 2, 1)))


def context_length(in_window: int, ref: str, alt: str) -> int:
    """Bases of genome needed from the window start for both alleles' windows (a deletion reads further)."""
    return in_window + max(0, len(ref) - len(alt))


def allele_windows(context: np.ndarray, ref: str, alt: str, in_window: int) -> tuple[np.ndarray, np.ndarray]:
    """The ref and alt windows (codes, (in_window,) each) of a variant in `context`.

    Parameters
    ----------
    context : numpy.ndarray, shape (>= context_length(in_window, ref, alt),), uint8
        Codes from the window start, ``in_window // 2`` bases before the
        variant's first base: the genome, or a shuffle of it.
    ref, alt : str
        The alleles ('' for an empty one); `ref` replaces the context's
        bases at the centre.

    Returns
    -------
    ref_window, alt_window : numpy.ndarray, shape (in_window,), uint8
        Left flank, the allele, then the context from the base after the
        reference allele, cut to `in_window` (variant-scorer's windows).
    """
    centre = in_window // 2
    left, right = context[:centre], context[centre + len(ref):]

    def window(allele: str) -> np.ndarray:
        joined = np.concatenate([left, encode(allele), right[:max(0, in_window - centre - len(allele))]])
        return joined[:in_window]

    return window(ref), window(alt)


def _allele_ok(allele: str) -> bool:
    return all(base in ALPHABET for base in allele)


def check_alleles(variants: pd.DataFrame, genome: _Genome, in_window: int) -> pd.DataFrame:
    """Each variant's status against the FASTA, and its alleles in the genome's orientation.

    A variant whose `alt` (not `ref`) matches the genome at its position was
    given on the other orientation: its alleles are swapped and it is
    ``flipped``. See the module's statuses (`SCORED`, `FLIPPED`, ...).

    Returns
    -------
    pandas.DataFrame
        `variants` with ``ref``, ``alt`` in the genome's orientation and a
        ``status`` column; the input is not changed.
    """
    table = variants.copy()
    statuses, refs, alts = [], table["ref"].to_list(), table["alt"].to_list()
    for i, (chrom, pos) in enumerate(zip(table["chrom"], table["pos"])):
        ref, alt = refs[i], alts[i]
        if chrom not in genome.sizes:
            statuses.append(UNKNOWN_CHROMOSOME)
            continue
        if (not _allele_ok(ref) or not _allele_ok(alt) or ref == alt
                or max(len(ref), len(alt)) >= in_window // 2):
            statuses.append(INVALID_ALLELE)
            continue
        start = pos - 1
        size = genome.sizes[chrom]
        if start + len(ref) > size:
            statuses.append(OFF_CHROMOSOME)
            continue
        status = REF_MISMATCH
        if genome_allele(genome, chrom, start, len(ref)) == ref:
            status = SCORED
        elif alt and start + len(alt) <= size and genome_allele(genome, chrom, start, len(alt)) == alt:
            status, refs[i], alts[i] = FLIPPED, alt, ref
        if status != REF_MISMATCH:
            window_start = start - in_window // 2
            if window_start < 0 or window_start + context_length(in_window, refs[i], alts[i]) > size:
                status = OFF_CHROMOSOME
        statuses.append(status)
    table["ref"], table["alt"], table["status"] = refs, alts, statuses
    return table


def genome_allele(genome: _Genome, chrom: str, start: int, length: int) -> str:
    return "".join(ALPHABET[c] if c < 4 else "N" for c in genome.codes(chrom, start, start + length))


def genome_windows(table: pd.DataFrame, genome: _Genome, in_window: int) -> tuple[np.ndarray, np.ndarray]:
    """Ref and alt windows (codes, (N, in_window) each) of variants that fit their chromosome."""
    ref = np.empty((len(table), in_window), dtype=np.uint8)
    alt = np.empty_like(ref)
    for i, row in enumerate(table[["chrom", "pos", "ref", "alt"]].itertuples(index=False)):
        start = row.pos - 1 - in_window // 2
        context = genome.codes(row.chrom, start, start + context_length(in_window, row.ref, row.alt))
        ref[i], alt[i] = allele_windows(context, row.ref, row.alt, in_window)
    return ref, alt


def control_windows(table: pd.DataFrame, controls: Sequence[str], in_window: int) -> torch.Tensor | None:
    """Control reads per base (N, C, in_window), float32, over the ref windows; None without controls.

    The control tracks are measured, not predicted from sequence: both alleles see the same.
    """
    if not controls:
        return None
    import pyBigWig

    tracks = np.zeros((len(table), len(controls), in_window), dtype=np.float32)
    for c, path in enumerate(controls):
        with pyBigWig.open(str(path)) as bigwig:
            for i, (chrom, pos) in enumerate(zip(table["chrom"], table["pos"])):
                start = int(pos) - 1 - in_window // 2
                tracks[i, c] = np.nan_to_num(bigwig.values(chrom, start, start + in_window, numpy=True))
    return torch.from_numpy(tracks)


# --------------------------------------------------------------------------
# Predictions and scores


@dataclasses.dataclass
class Predictions:
    """A model's predictions on N sequences.

    Attributes
    ----------
    logits : numpy.ndarray, shape (N, S, out_window), float32
        Profile logits.
    log_counts : numpy.ndarray, shape (N,), float64
        Predicted log(1 + total counts) (natural log).
    """

    logits: np.ndarray
    log_counts: np.ndarray


def predict(models: Sequence[torch.nn.Module], X: torch.Tensor, X_ctl: torch.Tensor | None, batch_size: int,
            device: torch.device) -> Predictions:
    """Mean over `models` of their reverse-complement-averaged predictions on `X` (N, 4, L).

    Logits and log counts are averaged, as `bpnet_core.predict.predict_windows`
    averages the two strands.
    """
    from .predict import predict_windows

    windows = Windows(X=X, y=None, X_ctl=X_ctl, loci=pd.DataFrame())
    logits, log_counts = 0.0, 0.0
    for model in models:
        model_logits, model_counts = predict_windows(model, windows, batch_size, device, rc_average=True)
        logits = logits + model_logits.astype(np.float64)
        log_counts = log_counts + model_counts.astype(np.float64)
    return Predictions((logits / len(models)).astype(np.float32), log_counts / len(models))


def profile_probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over tracks and positions, (N, S, L) -> (N, S * L), float64."""
    return np.exp(log_softmax(logits.reshape(len(logits), -1).astype(np.float64), axis=1))


def jensen_shannon_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (base 2) between the rows of two distributions (N, K) -> (N,).

    The square root of `bpnet_core.metrics.js_divergence`, as scipy's
    ``jensenshannon`` and variant-scorer report it: 0 for the same
    distribution, 1 for disjoint ones.
    """
    return np.sqrt(js_divergence(p, q))


def allele_scores(ref: Predictions, alt: Predictions) -> dict[str, np.ndarray]:
    """Scores (N,) of alt against ref: log counts, ``logfc`` (log2), ``abs_logfc``, ``jsd``."""
    logfc = (alt.log_counts - ref.log_counts) / math.log(2)
    return {
        "ref_log_counts": ref.log_counts,
        "alt_log_counts": alt.log_counts,
        "logfc": logfc,
        "abs_logfc": np.abs(logfc),
        "jsd": jensen_shannon_distance(profile_probabilities(ref.logits), profile_probabilities(alt.logits)),
    }


def quantiles(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Fraction of `reference` at or below each value (N,) -> (N,), in [0, 1]."""
    reference = np.sort(np.asarray(reference, dtype=np.float64))
    return np.searchsorted(reference, values, side="right") / max(len(reference), 1)


def empirical_pvalues(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """(1 + null scores >= each observed score) / (1 + null scores), (N,) -> (N,).

    NaN for every score when the null is empty; never 0, so that the
    p-value of the most extreme score reflects the null's size.
    """
    null = np.sort(np.asarray(null, dtype=np.float64))
    if len(null) == 0:
        return np.full(len(observed), np.nan)
    at_least = len(null) - np.searchsorted(null, observed, side="left")
    return (1 + at_least) / (1 + len(null))


# --------------------------------------------------------------------------
# Models


@dataclasses.dataclass
class ScoredModels:
    """The models a run scores: column prefix ('' or 'full_') -> models averaged (folds)."""

    models: dict[str, list[torch.nn.Module]]
    n_control_tracks: int
    trimming: int


def load_scored_models(config: VariantsConfig, device: torch.device) -> ScoredModels:
    """The models of `config`: `model` (a ChromBPNet file scores its accessibility model)
    and, for ChromBPNet, the full models (`full_model`, or the `model` files themselves).

    Raises
    ------
    InputError
        When the models do not map in_window -> out_window as the config
        says, or take other control tracks than `controls`.
    """
    def load(path: str, key: str) -> torch.nn.Module:
        return set_compute(load_model(path, key, device=device), config.fast_path, config.precision)

    main, full = [], []
    for path in as_list(config.model):
        model = load(path, config.key_name("model"))
        if isinstance(model, ChromBPNet):
            main.append(model.accessibility)
            if not config.full_model:
                full.append(model)
        else:
            main.append(model)
    full += [load(path, config.key_name("full_model")) for path in as_list(config.full_model)]
    models = {"": main, **({"full_": full} if full else {})}
    trimming = (config.in_window - config.out_window) // 2
    n_controls = len(as_list(config.controls))
    for path, model in zip(as_list(config.model) + as_list(config.full_model), main + full):
        if model.trimming != trimming:
            raise InputError(
                f"{path}: the model maps in_window - out_window = {2 * model.trimming} bp, but the config "
                f"has in_window {config.in_window} and out_window {config.out_window}")
    for model in main + full:
        if model.n_control_tracks != n_controls:
            raise InputError(f"config key '{config.key_name('controls')}': {n_controls} control track(s) "
                             f"given, but the model was trained with {model.n_control_tracks}")
    return ScoredModels(models, n_controls, trimming)


# --------------------------------------------------------------------------
# Scoring


def _blocks(n: int, size: int = BLOCK_SIZE) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def peak_log_counts(config: VariantsConfig, models: ScoredModels, genome: _Genome,
                    device: torch.device) -> dict[str, np.ndarray]:
    """Predicted log counts of up to `n_peaks` windows of `loci` (all chromosomes), per prefix.

    The same peaks (a sample seeded by `random_state`) for every chunk of
    a run, so that quantiles of per-chromosome jobs compare.
    """
    from .data import windows_fit

    table = read_loci(config.loci, key=config.key_name("loci"))
    table = table[table["chrom"].isin(list(genome.sizes))]
    table = table[windows_fit(table, genome.sizes, config.in_window)].reset_index(drop=True)
    if len(table) > config.n_peaks:
        rows = np.sort(np.random.default_rng(config.random_state).choice(len(table), config.n_peaks, replace=False))
        table = table.iloc[rows].reset_index(drop=True)
    if table.empty:
        raise InputError(f"{', '.join(as_list(config.loci))} (config key '{config.key_name('loci')}'): "
                         "no peak window within its chromosome, to rank the active allele against")
    half = config.in_window // 2
    counts = {prefix: [] for prefix in models.models}
    for block in _blocks(len(table)):
        rows = table.iloc[block]
        codes = np.stack([genome.codes(chrom, c - half, c - half + config.in_window)
                          for chrom, c in zip(rows["chrom"], rows["center"])])
        positions = pd.DataFrame({"chrom": rows["chrom"], "pos": rows["center"].to_numpy() + 1})
        X_ctl = control_windows(positions, as_list(config.controls), config.in_window)
        for prefix, scored in models.models.items():
            counts[prefix].append(predict(scored, one_hot(codes), X_ctl, config.batch_size, device).log_counts)
    log.info("active allele quantiles against %d peaks of %s", len(table), ", ".join(as_list(config.loci)))
    return {prefix: np.concatenate(values) for prefix, values in counts.items()}


def _score_windows(ref: np.ndarray, alt: np.ndarray, X_ctl: torch.Tensor | None, models: ScoredModels,
                   config: VariantsConfig, device: torch.device) -> dict[str, np.ndarray]:
    """Scores of ref / alt windows (codes), with each prefix's columns prefixed."""
    scores = {}
    for prefix, scored in models.models.items():
        ref_pred = predict(scored, one_hot(ref), X_ctl, config.batch_size, device)
        alt_pred = predict(scored, one_hot(alt), X_ctl, config.batch_size, device)
        scores.update({prefix + key: value for key, value in allele_scores(ref_pred, alt_pred).items()})
    return scores


def null_scores(table: pd.DataFrame, genome: _Genome, models: ScoredModels, config: VariantsConfig,
                device: torch.device) -> pd.DataFrame:
    """Scores of `n_shuffles` variants drawn (with replacement, seeded) from the scored rows of
    `table`, each put into a dinucleotide shuffle of its window's context.

    Columns `NULL_COLUMNS` per prefix (``abs_logfc``, ``jsd``, ``full_abs_logfc`` ...).
    """
    from tangermeme.ersatz import dinucleotide_shuffle

    columns = [prefix + column for prefix in models.models for column in NULL_COLUMNS]
    scored = np.flatnonzero(table["status"].isin(SCORED_STATUSES).to_numpy())
    if config.n_shuffles == 0 or len(scored) == 0:
        return pd.DataFrame(columns=columns, dtype=np.float64)
    rng = np.random.default_rng(config.random_state)
    picks = table.iloc[rng.choice(scored, config.n_shuffles, replace=True)].reset_index(drop=True)
    seeds = rng.integers(0, 2**31 - 1, size=len(picks))
    half = config.in_window // 2
    parts = []
    for block in _blocks(len(picks)):
        rows = picks.iloc[block]
        refs, alts = [], []
        lengths = np.array([context_length(config.in_window, r, a) for r, a in zip(rows["ref"], rows["alt"])])
        # Shuffled together, contexts must have one length: grouped by it (SNVs all share in_window).
        for length in np.unique(lengths):
            group = np.flatnonzero(lengths == length)
            contexts = np.stack([genome.codes(rows["chrom"].iloc[i], rows["pos"].iloc[i] - 1 - half,
                                              rows["pos"].iloc[i] - 1 - half + length) for i in group])
            shuffled = dinucleotide_shuffle(one_hot(contexts), n=1, random_state=seeds[block][group].tolist(),
                                            allow_N=True)[:, 0]
            codes = np.where(shuffled.any(dim=1).numpy(), shuffled.argmax(dim=1).numpy(), N_CODE).astype(np.uint8)
            for i, context in zip(group, codes):
                ref, alt = allele_windows(context, rows["ref"].iloc[i], rows["alt"].iloc[i], config.in_window)
                refs.append((i, ref))
                alts.append((i, alt))
        order = np.argsort([i for i, _ in refs])
        ref_codes = np.stack([refs[j][1] for j in order])
        alt_codes = np.stack([alts[j][1] for j in order])
        X_ctl = control_windows(rows, as_list(config.controls), config.in_window)
        scores = _score_windows(ref_codes, alt_codes, X_ctl, models, config, device)
        parts.append(pd.DataFrame({column: scores[column] for column in columns}))
    log.info("null: %d variants in dinucleotide-shuffled contexts", len(picks))
    return pd.concat(parts, ignore_index=True)


def add_pvalues(table: pd.DataFrame, null: pd.DataFrame, prefixes: Sequence[str]) -> pd.DataFrame:
    """``logfc_pval`` and ``jsd_pval`` (per prefix) of `table`'s scores against `null`; returns `table`."""
    for prefix in prefixes:
        for score, column in (("abs_logfc", "logfc_pval"), ("jsd", "jsd_pval")):
            values = table[prefix + score].to_numpy(dtype=np.float64)
            pvalues = np.full(len(table), np.nan)
            known = ~np.isnan(values)
            if prefix + score in null:
                pvalues[known] = empirical_pvalues(values[known], null[prefix + score].dropna().to_numpy())
            table[prefix + column] = pvalues
    return table


def score_columns(prefixes: Sequence[str]) -> list[str]:
    return [prefix + column for prefix in prefixes for column in SCORE_COLUMNS]


def prefixes_of(table: pd.DataFrame) -> list[str]:
    """The model prefixes whose scores `table` holds ('' and, for ChromBPNet, 'full_')."""
    return [prefix for prefix in ("", "full_") if f"{prefix}logfc" in table]


def score_variant_table(config: VariantsConfig | Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores of the variants of `config` on `chroms` (all when null).

    Returns
    -------
    table : pandas.DataFrame
        One row per variant (per alternative allele) of the file on
        `chroms`, in file order: the input columns (alleles in the
        genome's orientation), ``status``, then `SCORE_COLUMNS` (NaN for
        variants not scored), then the same prefixed ``full_`` for a
        ChromBPNet model.
    null : pandas.DataFrame
        The null's scores (see `null_scores`).
    """
    from .runtime import select_device

    config = as_step_config(VariantsConfig, config)
    key = config.key_name("variants")
    variants = read_variants(config.variants, key, config.chroms)
    device = select_device(config.device)
    models = load_scored_models(config, device)
    genome = _Genome(config.sequences)
    try:
        table = check_alleles(variants, genome, config.in_window)
        counts = table["status"].value_counts()
        log.info("variants of %s%s: %d read; %s", config.variants,
                 f" on {', '.join(config.chroms)}" if config.chroms else "", len(table),
                 "; ".join(f"{n} {status}" for status, n in counts.items()))
        for status in (REF_MISMATCH, OFF_CHROMOSOME, UNKNOWN_CHROMOSOME, INVALID_ALLELE):
            if counts.get(status):
                example = table[table["status"] == status].iloc[0]
                log.warning("%d variant(s) not scored: %s (e.g. %s %s:%d %s>%s)", counts[status], status,
                            example["id"], example["chrom"], example["pos"], example["ref"] or "-",
                            example["alt"] or "-")
        prefixes = list(models.models)
        for column in score_columns(prefixes):
            table[column] = np.nan
        scored = np.flatnonzero(table["status"].isin(SCORED_STATUSES).to_numpy())
        peaks = peak_log_counts(config, models, genome, device) if len(scored) else {}
        for n_done, block in enumerate(_blocks(len(scored)), 1):
            rows = table.iloc[scored[block]]
            ref, alt = genome_windows(rows, genome, config.in_window)
            X_ctl = control_windows(rows, as_list(config.controls), config.in_window)
            scores = _score_windows(ref, alt, X_ctl, models, config, device)
            for prefix in prefixes:
                strongest = np.maximum(scores[prefix + "ref_log_counts"], scores[prefix + "alt_log_counts"])
                scores[prefix + "active_allele_quantile"] = quantiles(strongest, peaks[prefix])
            for column, values in scores.items():
                table.loc[table.index[scored[block]], column] = values
            if config.verbose:
                log.info("scored %d of %d variants", min(block.stop, len(scored)), len(scored))
        null = null_scores(table, genome, models, config, device)
    finally:
        genome.close()
    # An empty allele is written '-' (variant-scorer's convention), not as an empty field.
    table[["ref", "alt"]] = table[["ref", "alt"]].replace("", "-")
    return add_pvalues(table, null, prefixes), null


# --------------------------------------------------------------------------
# Outputs


def sort_table(table: pd.DataFrame, chrom_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows by chromosome (`chrom_order`, else name) and position, as tabix needs; stable."""
    order = {chrom: i for i, chrom in enumerate(chrom_order or sorted(table["chrom"].unique()))}
    rank = table["chrom"].map(order).fillna(len(order)).astype(int)
    return (table.assign(_rank=rank).sort_values(["_rank", "chrom", "pos"], kind="stable")
            .drop(columns="_rank").reset_index(drop=True))


def write_scores(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the scores as a bgzip-compressed TSV with a tabix index (``<path>.tbi``), atomically.

    `table` must be sorted by chromosome and position (`sort_table`). The
    header line (``chrom pos ref alt id status ...``) is skipped by tabix,
    so ``tabix scores.tsv.gz chr1:100-200`` gives the rows of a region.
    """
    import pysam

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = path.with_name(f".{path.name}.{os.getpid()}.plain.tsv")
    try:
        table.to_csv(plain, sep="\t", index=False, float_format="%.6g")
        with atomic_output(path) as tmp:
            pysam.tabix_compress(str(plain), str(tmp), force=True)
            # Index the temporary file, then move both: a reader never sees one without the other.
            pysam.tabix_index(str(tmp), seq_col=0, start_col=1, end_col=1, line_skip=1, zerobased=False,
                              force=True, keep_original=True)
            os.replace(f"{tmp}.tbi", f"{path}.tbi")
    finally:
        plain.unlink(missing_ok=True)


def read_scores(path: str | os.PathLike) -> pd.DataFrame:
    """A scores table written by `write_scores` (or a plain TSV chunk)."""
    return pd.read_csv(path, sep="\t", dtype={"chrom": str, "ref": str, "alt": str, "id": str},
                       keep_default_na=False, na_values=[""])


def merge_variant_scores(chunks: Sequence[str | os.PathLike], nulls: Sequence[str | os.PathLike],
                         scores_path: str | os.PathLike, null_path: str | os.PathLike,
                         chrom_order: Sequence[str] | None = None) -> pd.DataFrame:
    """One table of per-chunk tables, p-values against the pooled nulls of every chunk.

    Parameters
    ----------
    chunks, nulls : sequences of paths
        Plain TSVs of `score_variant_table`'s table and null, one per chunk
        (e.g. per chromosome).
    scores_path : path
        Where the merged table goes (`write_scores`: bgzip + tabix index).
    null_path : path
        Where the pooled null goes (TSV).
    chrom_order : sequence of str, optional
        Chromosome order of the table (the FASTA's).

    Returns
    -------
    pandas.DataFrame
        The merged table, sorted by chromosome and position.
    """
    tables = [read_scores(path) for path in chunks]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=INPUT_COLUMNS + ["status"])
    null_tables = [pd.read_csv(path, sep="\t") for path in nulls]
    null = pd.concat(null_tables, ignore_index=True) if null_tables else pd.DataFrame()
    table = add_pvalues(table, null, prefixes_of(table))
    table = sort_table(table, chrom_order)
    write_scores(table, scores_path)
    write_tsv(null_path, null)
    return table


def score_variants(config: VariantsConfig | Mapping[str, Any],
                   output_folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """Score the variants of `config` and write the results (the ``bpnet-core variants`` step).

    Writes, in `output_folder` (default `output_folder` of the config):

    - ``variants.tsv.gz``: one row per variant (`score_variant_table`),
      sorted by chromosome and position, bgzip-compressed, and its tabix
      index ``variants.tsv.gz.tbi``;
    - ``null.tsv``: the null's scores;
    - ``report.html``: the strongest variants (`bpnet_core.variant_report`).

    Returns
    -------
    pandas.DataFrame
        The table written.
    """
    from .variant_report import write_variant_report

    config = as_step_config(VariantsConfig, config)
    folder = Path(output_folder or config.output_folder)
    table, null = score_variant_table(config)
    table = sort_table(table, list(fasta_chrom_sizes(config.sequences)))
    write_scores(table, folder / "variants.tsv.gz")
    write_tsv(folder / "null.tsv", null)
    write_variant_report(config, table, folder / "report.html")
    log.info("wrote %s, %s and %s", folder / "variants.tsv.gz", folder / "null.tsv", folder / "report.html")
    return table


def finish_variant_scores(config: VariantsConfig | Mapping[str, Any], chunks: Sequence[str | os.PathLike],
                          nulls: Sequence[str | os.PathLike], scores_path: str | os.PathLike,
                          null_path: str | os.PathLike, html_path: str | os.PathLike) -> pd.DataFrame:
    """Merge a run's chunks (`merge_variant_scores`, FASTA chromosome order) and write its page."""
    from .variant_report import write_variant_report

    config = as_step_config(VariantsConfig, config)
    table = merge_variant_scores(chunks, nulls, scores_path, null_path, list(fasta_chrom_sizes(config.sequences)))
    write_variant_report(config, table, html_path)
    log.info("merged %d chunk(s): %d variants; wrote %s, %s", len(chunks), len(table), scores_path, html_path)
    return table


def score_variant_chunk(config: VariantsConfig | Mapping[str, Any], scores_path: str | os.PathLike,
                        null_path: str | os.PathLike) -> None:
    """One chunk of a run (the variants on `chroms`): its table and null as plain TSVs, to merge."""
    table, null = score_variant_table(config)
    write_tsv(scores_path, table)
    write_tsv(null_path, null)

