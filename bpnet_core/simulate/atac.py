r"""Deterministic simulator of a small ATAC-seq-like experiment (ChromBPNet demo).

The genome, the layout of peaks / weak sites / negatives and the planted
transcription-factor motifs come from the ChIP-nexus-like simulator in
:mod:`bpnet_core.simulate.chip`; the read model differs, and so does which motif
instances act. Accessibility here is a function of the sequence: a planted
instance opens chromatin only when it is *functional* (it scores within
``FUNCTIONAL_MARGIN`` nats of its motif's consensus, i.e. at most one
mismatch), and every window of the random genome that close to a planted
motif is mutated away before planting, so that no equally good match
elsewhere stays closed. Without that, ~1.6 AP1-like matches per 574 bp of
background did nothing while the planted ones opened chromatin, and no
sequence model could predict counts in peaks with Pearson r above ~0.4.  One unstranded track of
Tn5 cut counts per base is drawn as

.. math::

    \lambda(x) = r_0 \, b(x) \, (1 + A(x) F(x)), \qquad
    c(x) \sim \mathrm{Poisson}(\lambda(x)),

where

* ``r_0 = BACKGROUND_RATE`` (cuts/bp) is the open-chromatin-independent
  background cut rate;
* ``b(x)`` is the enzyme sequence bias, everywhere in the genome:
  ``exp(k s(x))`` summed over both strands, where ``s`` is the log-odds score
  (nats, against ``BACKGROUND``) of the ``BIAS_MOTIFS`` PWM on the window
  centred on ``x`` and ``k = BIAS_SLOPE``; it is scaled to a genome-wide
  mean of 1 and capped at ``BIAS_CAP``;
* ``A(x)`` is the accessibility: a Gaussian bump (sd ``BUMP_SD`` bp) on each
  peak and weak site, centred on the mean centre of the site's planted motif
  instances (the narrowPeak summit), of height ``(BUMP_BASE +
  BUMP_PER_STRENGTH * sum of the functional instances' strengths) * exp(N(0,
  LOG_BUMP_SD**2))`` times background, scaled by ``WEAK_BUMP_FRACTION`` on
  weak sites (whose one instance always acts; they lie outside every peak
  and background window). Every peak has at least one functional instance;
* ``F(x)`` is the TF footprint: ``FOOTPRINT_DEPTH`` over the bases of each
  bound (acting) instance plus ``FOOTPRINT_PAD`` bp either side (the bound
  protein shields them from Tn5), 1 elsewhere.

Because the bias multiplies everything, negatives (``NEGATIVES_PER_PEAK``
per peak, at least 2000 bp from any site centre) carry bias-only signal from
which a ChromBPNet bias model can be learned.  Peaks reach ~10-60x the
background rate at their summit and hold ~9x the cuts of a negative over
1000 bp, so ChromBPNet's bias threshold (half the 1st percentile of peak
counts) keeps nearly all negatives.

Coordinates are 0-based and half-open; internally chromosomes are
concatenated into one global axis, as in :mod:`bpnet_core.simulate.chip`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .chip import (
    ALPHABET,
    BACKGROUND,
    BP_PER_WEAK_SITE,
    NEGATIVE,
    PEAK,
    PEAK_HALF_WIDTH,
    PLANTED_MOTIFS,
    WEAK,
    _Genome,
    _instance_centres,
    _Instances,
    _layout_loci,
    _meme_text,
    _narrowpeak_lines,
    _negative_lines,
    _plant_motifs,
    _planted_text,
    _start,
    _write_bigwig,
    _write_fasta,
    _write_gzip_text,
    _write_text,
    iupac_to_ppm,
)

logger = logging.getLogger(__name__)

__all__ = ["BIAS_MOTIFS", "motif_count_ceiling", "simulate_atac_demo"]

#: Enzyme-bias motifs: name -> IUPAC consensus.  Names start with ``TN5`` so
#: that tools recognise them as bias (not TF) motifs, as in ChromBPNet's
#: ``motifs.meme.txt``.  The consensus is not palindromic and shares at most
#: 3 contiguous bases with any planted or decoy motif.
BIAS_MOTIFS: dict[str, str] = {"TN5_like": "GCACAGTAC"}

# Bias model.  A perfect match scores ~24 nats above a median window, so
# k = 0.15 gives it ~20x the median cut rate; one mismatch costs ~3.4 nats,
# i.e. a factor 0.6, so the bias is a smooth, learnable PWM in log space.
BIAS_SLOPE = 0.15          # k, per nat of log-odds score
BIAS_CAP = 50.0            # largest bias multiplier, after scaling to mean 1

# Accessibility model (rates in cuts/bp, heights relative to background).
BACKGROUND_RATE = 0.06     # r_0: ~60 cuts per 1000 bp negative window
BUMP_SD = 120              # bp
BUMP_BASE = 8.0            # peak height floor, so 1-motif peaks stay well above negatives
BUMP_PER_STRENGTH = 16.0   # extra height per unit of summed motif strength
LOG_BUMP_SD = 0.25
WEAK_BUMP_FRACTION = 0.25  # weak sites get this fraction of a peak's height
BUMP_REACH = 4             # bumps are truncated at +/- this many sd
FOOTPRINT_DEPTH = 0.2      # fraction of accessible cuts left on bound bases
FOOTPRINT_PAD = 3          # protected bases either side of a motif instance, bp

# A planted instance acts when it scores within this many nats of its
# motif's consensus: one mismatch costs 3.0-3.8 nats, two at least 6.
FUNCTIONAL_MARGIN = 4.0
SCRUB_PASSES = 10          # mutation rounds; each usually clears all but a few matches

# Negatives train the bias model, so there are more of them than in chip.py.
NEGATIVES_PER_PEAK = 2


def simulate_atac_demo(
    outdir: str | os.PathLike,
    seed: int = 0,
    chrom_sizes: dict[str, int] | None = None,
    n_peaks: int | None = None,
) -> dict[str, Path]:
    """Simulate an ATAC-seq-like experiment and write it to disk.

    See the module docstring for the generative model.

    Parameters
    ----------
    outdir : str or os.PathLike
        Output directory, created if missing.
    seed : int, default 0
        Seed of the single random generator driving the whole simulation.
    chrom_sizes : dict of str to int, optional
        Chromosome name -> length in bp, in genome order.  Defaults to
        ``DEFAULT_CHROM_SIZES`` (6 Mb over chr1-chr4).
    n_peaks : int, optional
        Number of peaks.  Defaults to one per 5 kb of genome (1200 for the
        default genome, which then holds all 2400 negatives).

    Returns
    -------
    dict of str to pathlib.Path
        Paths keyed by ``sequences`` (``genome.fa``, with its ``.fai``),
        ``peaks`` (``peaks.narrowPeak.gz``; the summit column marks the
        accessibility bump centre), ``negatives`` (``negatives.bed.gz``, BED3
        of 1000 bp), ``signal`` (``atac.bw``: unstranded Tn5 cuts per base,
        integer counts stored as float), ``motifs`` (``motifs.meme``: planted,
        decoy and ``BIAS_MOTIFS`` motifs) and ``planted``
        (``planted_motifs.tsv``, with a ``functional`` column).

    Raises
    ------
    ValueError
        If ``n_peaks`` is not positive or the peaks do not fit in the genome.

    Notes
    -----
    One weak site per 10 kb and ``NEGATIVES_PER_PEAK * n_peaks`` negatives are
    requested; both are reduced with a warning when the genome is too small.
    The same seed gives byte-identical text files and identical bigWig values.
    """
    genome, n_peaks, outdir, rng, codes = _start(outdir, seed, chrom_sizes, n_peaks)
    kinds, centres = _layout_loci(
        rng,
        genome,
        n_peaks=n_peaks,
        n_weak=genome.total // BP_PER_WEAK_SITE,
        n_negatives=NEGATIVES_PER_PEAK * n_peaks,
    )
    peak_centres = centres[kinds == PEAK]
    n_weak = int(np.sum(kinds == WEAK))
    n_scrubbed = _scrub_matches(rng, codes, _Instances(*[np.zeros(0, dtype=np.int64)] * 5))
    instances = _plant_motifs(rng, codes, peak_centres, centres[kinds == WEAK])
    functional = _make_peaks_functional(codes, instances)
    # Planting can complete a match across an instance's edge: clear those too.
    n_scrubbed += _scrub_matches(rng, codes, instances)
    acting = functional | ~instances.in_peak

    rate = BACKGROUND_RATE * _bias_multiplier(codes)
    accessible = _accessibility(rng, genome, instances, acting, n_peaks, n_weak)
    rate *= 1.0 + accessible * _footprint(genome, instances, acting)
    counts = rng.poisson(rate)
    half_widths = rng.integers(PEAK_HALF_WIDTH[0], PEAK_HALF_WIDTH[1] + 1, size=n_peaks)

    paths = {
        "sequences": outdir / "genome.fa",
        "peaks": outdir / "peaks.narrowPeak.gz",
        "negatives": outdir / "negatives.bed.gz",
        "signal": outdir / "atac.bw",
        "motifs": outdir / "motifs.meme",
        "planted": outdir / "planted_motifs.tsv",
    }
    _write_fasta(paths["sequences"], genome, codes)
    _write_gzip_text(
        paths["peaks"], _narrowpeak_lines(genome, peak_centres, half_widths, instances, counts)
    )
    _write_gzip_text(paths["negatives"], _negative_lines(genome, centres[kinds == NEGATIVE]))
    _write_bigwig(paths["signal"], genome, counts)
    _write_text(paths["motifs"], _meme_text() + _bias_meme_text())
    _write_text(paths["planted"], _planted_text(genome, instances, functional))
    logger.info(
        "simulated ATAC: %d peaks (%d of %d instances functional), %d weak sites, %d negatives, "
        "%d cuts, %d bases mutated to clear chance motif matches, in %s",
        n_peaks, int(functional[instances.in_peak].sum()), int(instances.in_peak.sum()), n_weak,
        int(np.sum(kinds == NEGATIVE)), int(counts.sum()), n_scrubbed, outdir,
    )
    return paths


def motif_count_ceiling(paths: dict[str, Path], chroms: list[str], out_window: int) -> dict[str, float]:
    """How well the planted motifs explain the counts in peaks: the count Pearson a model can hope for.

    The bump height of a peak is ``BUMP_BASE + BUMP_PER_STRENGTH * S``
    (S: summed strength of its functional instances) times log-normal noise
    that no sequence model can predict; the Pearson r between log(1 +
    observed counts) in the `out_window` around each summit and
    log(BUMP_BASE + BUMP_PER_STRENGTH * S) is the ceiling of a model's
    count Pearson on those peaks (Poisson noise, the enzyme's preference
    and the background lower it a little further).

    Parameters
    ----------
    paths : dict
        As returned by `simulate_atac_demo`.
    chroms : list of str
        The chromosomes whose peaks are scored (e.g. the validation ones).
    out_window : int
        The model's output window, bp.

    Returns
    -------
    dict
        ``pearson`` and ``n_peaks``.
    """
    import pandas as pd
    import pyBigWig

    peaks = pd.read_csv(paths["peaks"], sep="\t", header=None, usecols=[0, 1, 9], names=["chrom", "start", "summit"])
    peaks = peaks[peaks["chrom"].isin(chroms)]
    planted = pd.read_csv(paths["planted"], sep="\t")
    planted = planted[planted["in_peak"] & planted["functional"]]
    strength = {name: s for name, (_, s) in PLANTED_MOTIFS.items()}
    observed, expected = [], []
    signal = pyBigWig.open(str(paths["signal"]))
    try:
        for chrom, start, summit in peaks.itertuples(index=False):
            lo = start + summit - out_window // 2
            if lo < 0 or lo + out_window > signal.chroms(chrom):
                continue
            near = planted[(planted["chrom"] == chrom) & (planted["position"] >= lo)
                           & (planted["position"] < lo + out_window)]
            observed.append(np.log1p(np.nansum(signal.values(chrom, lo, lo + out_window))))
            expected.append(np.log(BUMP_BASE + BUMP_PER_STRENGTH * near["motif"].map(strength).sum()))
    finally:
        signal.close()
    return {"pearson": float(np.corrcoef(observed, expected)[0, 1]), "n_peaks": len(observed)}


def _log_odds(consensus: str) -> np.ndarray:
    """Log-odds PWM of an IUPAC consensus against ``BACKGROUND``, nats.

    Returns
    -------
    numpy.ndarray of float64, shape (w, 5)
        Columns A, C, G, T, then the background-expected score, used for the
        padding (code 4) beyond the genome ends.
    """
    scores = np.log(iupac_to_ppm(consensus) / np.asarray(BACKGROUND))
    return np.column_stack([scores, scores @ np.asarray(BACKGROUND)])


def _bias_multiplier(codes: np.ndarray) -> np.ndarray:
    """Per-base Tn5 cut-rate multiplier ``b(x)`` from the bias PWM(s).

    ``b(x)`` sums ``exp(BIAS_SLOPE * s)`` over both strands (and bias motifs),
    where ``s`` is the log-odds score of the window whose centre (offset
    ``w // 2``) is ``x``; it is then scaled to mean 1 and capped.

    Parameters
    ----------
    codes : numpy.ndarray of uint8, shape (genome_length,)
        Genome as base codes 0-3 (A, C, G, T).

    Returns
    -------
    numpy.ndarray of float64, shape (genome_length,)
        Dimensionless multiplier, genome-wide mean ~1, at most ``BIAS_CAP``.
    """
    affinity = np.zeros(codes.size)
    for consensus in BIAS_MOTIFS.values():
        forward = _log_odds(consensus)
        # Reverse strand: reversed positions, complemented bases (A<->T, C<->G).
        reverse = forward[::-1][:, [3, 2, 1, 0, 4]]
        width = len(forward)
        padded = np.concatenate([
            np.full(width // 2, 4, np.uint8), codes, np.full(width - 1 - width // 2, 4, np.uint8)
        ])
        for pwm in (forward, reverse):
            affinity += np.exp(BIAS_SLOPE * _window_scores(padded, pwm))
    return np.minimum(affinity / affinity.mean(), BIAS_CAP)


def _planted_pwms() -> list[np.ndarray]:
    """Log-odds PWM (nats against ``BACKGROUND``, shape (w, 4)) of each planted motif."""
    return [_log_odds(consensus)[:, :4] for consensus, _ in PLANTED_MOTIFS.values()]


def _oriented_pwms() -> list[tuple[int, np.ndarray]]:
    """(motif index, PWM) for both strands of each planted motif, as read on the forward strand."""
    return [(m, p) for m, pwm in enumerate(_planted_pwms()) for p in (pwm, pwm[::-1, ::-1])]


def _window_scores(codes: np.ndarray, pwm: np.ndarray) -> np.ndarray:
    """Score (nats) of `pwm` (w, 4 or 5 codes) at every window start of `codes`, shape (len(codes) - w + 1,)."""
    n = codes.size - len(pwm) + 1
    score = np.zeros(n)
    for j in range(len(pwm)):  # a gather per PWM column: fast on whole genomes
        score += pwm[j][codes[j:j + n]]
    return score


def _scrub_matches(rng: np.random.Generator, codes: np.ndarray, planted: _Instances) -> int:
    """Mutate every close match to a planted motif that is not a planted instance.

    A window scoring within ``FUNCTIONAL_MARGIN`` nats of a planted motif's
    consensus, on either strand, gets its highest-scoring base outside the
    planted instances replaced by a random non-consensus base, until no
    such window is left (or ``SCRUB_PASSES`` rounds; what is left then is
    logged). ``codes`` is modified in place.

    Returns
    -------
    int
        The number of bases mutated.
    """
    widths = np.array([len(c) for c, _ in PLANTED_MOTIFS.values()])
    protected = np.zeros(codes.size, dtype=bool)
    for start, width in zip(planted.start, widths[planted.motif]):
        protected[start:start + width] = True
    # A match of the same motif shifted by less than half its width is the
    # planted instance read on the other strand (CEBP's consensus is its own
    # reverse complement shifted by one base), not a chance match.
    own = {(int(s) + shift, int(m)) for s, m in zip(planted.start, planted.motif)
           for shift in range(-(widths[m] // 2), widths[m] // 2 + 1)}
    mutated, left = 0, 0
    for _ in range(SCRUB_PASSES):
        left = 0
        for motif, pwm in _oriented_pwms():
            width = len(pwm)
            hits = np.flatnonzero(_window_scores(codes, pwm) >= pwm.max(1).sum() - FUNCTIONAL_MARGIN)
            hits = np.array([h for h in hits if (int(h), motif) not in own], dtype=np.int64)
            positions = hits[:, None] + np.arange(width)
            contribution = pwm[np.arange(width), codes[positions]]
            contribution[protected[positions]] = -np.inf
            # Windows inside abutting planted instances have no base to mutate.
            free = np.isfinite(contribution).any(1)
            if not free.any():
                continue
            column = contribution[free].argmax(1)
            targets = positions[free, column]
            # Any base scoring below the column's best drops the window by >= 1.1 nats.
            for target, j in zip(targets, column):
                choices = np.flatnonzero(pwm[j] < pwm[j].max())
                codes[target] = choices[rng.integers(len(choices))]
            mutated += len(targets)
            left += len(targets)
        if not left:
            break
    if left:
        logger.warning("%d chance motif matches left after %d rounds of mutation", left, SCRUB_PASSES)
    return mutated


def _make_peaks_functional(codes: np.ndarray, instances: _Instances) -> np.ndarray:
    """Which instances act; the first instance of a peak with none acting is rewritten to its consensus.

    An instance is functional when it scores within ``FUNCTIONAL_MARGIN``
    nats of its motif's consensus in the orientation it was planted.
    ``codes`` is modified in place.

    Returns
    -------
    numpy.ndarray of bool, shape (n_instances,)
    """
    pwms = _planted_pwms()
    functional = np.zeros(len(instances.start), dtype=bool)
    for i, (start, motif, reverse) in enumerate(zip(instances.start, instances.motif, instances.reverse)):
        pwm = pwms[motif][::-1, ::-1] if reverse else pwms[motif]
        score = pwm[np.arange(len(pwm)), codes[start:start + len(pwm)]].sum()
        functional[i] = score >= pwm.max(1).sum() - FUNCTIONAL_MARGIN
    peaks = instances.in_peak
    has_one = np.bincount(instances.site[peaks], weights=functional[peaks],
                          minlength=int(instances.site[peaks].max()) + 1) > 0
    for site in np.flatnonzero(~has_one):
        i = np.flatnonzero(peaks & (instances.site == site))[0]
        pwm = pwms[instances.motif[i]][::-1, ::-1] if instances.reverse[i] else pwms[instances.motif[i]]
        codes[instances.start[i]:instances.start[i] + len(pwm)] = pwm.argmax(1)
        functional[i] = True
    return functional


def _site_summits(instances: _Instances, in_peak: bool, n_sites: int) -> np.ndarray:
    """Rounded mean instance centre of each peak (or weak site), global bp.

    This matches the summit that ``_narrowpeak_lines`` writes for peaks.

    Returns
    -------
    numpy.ndarray of int64, shape (n_sites,)
    """
    mask = instances.in_peak == in_peak
    sites = instances.site[mask]
    total = np.bincount(sites, weights=_instance_centres(instances)[mask], minlength=n_sites)
    return np.rint(total / np.bincount(sites, minlength=n_sites)).astype(np.int64)


def _accessibility(
    rng: np.random.Generator,
    genome: _Genome,
    instances: _Instances,
    acting: np.ndarray,
    n_peaks: int,
    n_weak: int,
) -> np.ndarray:
    """Accessibility ``A(x)``: Gaussian bumps on peaks and weak sites.

    Parameters
    ----------
    rng : numpy.random.Generator
    genome : _Genome
    instances : _Instances
        Planted instances; every peak and weak site carries at least one.
    acting : numpy.ndarray of bool, shape (n_instances,)
        The instances whose strength counts towards their site's height.
    n_peaks, n_weak : int
        Number of peaks and weak sites.

    Returns
    -------
    numpy.ndarray of float64, shape (genome_length,)
        Extra cut rate as a multiple of the background rate (0 outside bumps).
    """
    strengths = np.array([s for _, s in PLANTED_MOTIFS.values()])[instances.motif] * acting
    centres, heights = [], []
    for in_peak, n_sites, scale in [(True, n_peaks, 1.0), (False, n_weak, WEAK_BUMP_FRACTION)]:
        mask = instances.in_peak == in_peak
        summed = np.bincount(instances.site[mask], weights=strengths[mask], minlength=n_sites)
        noise = np.exp(rng.normal(0.0, LOG_BUMP_SD, size=n_sites))
        heights.append(scale * (BUMP_BASE + BUMP_PER_STRENGTH * summed) * noise)
        centres.append(_site_summits(instances, in_peak, n_sites))
    offsets = np.arange(-BUMP_REACH * BUMP_SD, BUMP_REACH * BUMP_SD + 1)
    shape = np.exp(-0.5 * (offsets / BUMP_SD) ** 2)
    # Site centres are >= 1200 bp from chromosome ends and bumps reach 480 bp
    # (+60 bp motif offset), so no bump spills into a neighbouring chromosome.
    positions = np.concatenate(centres)[:, None] + offsets
    weights = np.concatenate(heights)[:, None] * shape
    return np.bincount(positions.ravel(), weights=weights.ravel(), minlength=genome.total)


def _footprint(genome: _Genome, instances: _Instances, bound: np.ndarray) -> np.ndarray:
    """Footprint ``F(x)``: ``FOOTPRINT_DEPTH`` on bound bases, 1 elsewhere.

    Bound bases are each `bound` instance (bool, shape (n_instances,)) plus
    ``FOOTPRINT_PAD`` bp either side.

    Returns
    -------
    numpy.ndarray of float64, shape (genome_length,)
    """
    widths = np.array([len(c) for c, _ in PLANTED_MOTIFS.values()])[instances.motif][bound]
    starts = instances.start[bound]
    delta = np.zeros(genome.total + 1, dtype=np.int64)
    np.add.at(delta, starts - FOOTPRINT_PAD, 1)
    np.add.at(delta, starts + widths + FOOTPRINT_PAD, -1)
    return np.where(np.cumsum(delta[:-1]) > 0, FOOTPRINT_DEPTH, 1.0)


def _bias_meme_text() -> str:
    """``BIAS_MOTIFS`` as MEME minimal-format motif blocks (body only)."""
    blocks = []
    for name, consensus in BIAS_MOTIFS.items():
        rows = [" " + " ".join(f"{p:.6f}" for p in row) for row in iupac_to_ppm(consensus)]
        header = f"letter-probability matrix: alength= {len(ALPHABET)} w= {len(consensus)}"
        blocks.append(f"\nMOTIF {name}\n{header} nsites= 20 E= 0\n" + "\n".join(rows) + "\n")
    return "".join(blocks)
