"""Deterministic simulator of a small stranded ChIP-nexus-like experiment.

The simulator writes a random genome in which a few transcription-factor-like
motifs are planted, together with stranded read-end coverage tracks whose
shape and height depend on those motifs.  It backs ``make demo`` and the test
suite, so everything is driven by a single :func:`numpy.random.default_rng`
and every output file is written atomically.

Coordinates are 0-based and half-open throughout.  Internally the chromosomes
are concatenated, in the order given, into one "global" coordinate axis.
"""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyBigWig
import pyfaidx

from ..io import ALPHABET, atomic_output

logger = logging.getLogger(__name__)

__all__ = [
    "BACKGROUND",
    "DECOY_MOTIFS",
    "DEFAULT_CHROM_SIZES",
    "PLANTED_MOTIFS",
    "iupac_to_ppm",
    "simulate_demo",
]

DEFAULT_CHROM_SIZES: dict[str, int] = {
    "chr1": 2_000_000,
    "chr2": 1_200_000,
    "chr3": 1_600_000,
    "chr4": 1_200_000,
}


#: Genome base frequencies (A, C, G, T); GC content 0.41.
BACKGROUND = (0.295, 0.205, 0.205, 0.295)

IUPAC: dict[str, str] = {
    "A": "A", "C": "C", "G": "G", "T": "T",
    "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
    "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}

#: Motifs planted in the genome: name -> (IUPAC consensus, signal strength).
PLANTED_MOTIFS: dict[str, tuple[str, float]] = {
    "AP1_like": ("TGACTCA", 1.0),
    "GATA_like": ("AGATAAGR", 0.6),
    "CEBP_like": ("TTGCGCAAT", 0.35),
}
#: Probability of choosing each planted motif, in ``PLANTED_MOTIFS`` order.
PLANTED_MOTIF_PROBS = (0.4, 0.35, 0.25)
#: Motifs written to the MEME file but never planted (negative controls for
#: motif discovery): name -> IUPAC consensus.
DECOY_MOTIFS: dict[str, str] = {
    "ETS_like": "ACCGGAAGT",
    "NRF1_like": "GCGCATGCGC",
    "TEAD_like": "ACATTCCA",
}
CONSENSUS_MASS = 0.91

# Layout of loci, in bp.
END_MARGIN = 1200          # closest a peak/weak-site/negative centre gets to a chromosome end
SITE_SPACING = 1500        # minimum distance between peak and weak-site centres
NEGATIVE_CLEARANCE = 2000  # minimum distance from a negative centre to any site centre
NEGATIVE_WIDTH = 1000      # negatives abut at most, so this is also their spacing
MOTIF_OFFSET = 60          # motif centres fall within peak centre +/- this
# Each extra run of negatives turns a site-site gap into two clearances.
RUN_COST = 2 * NEGATIVE_CLEARANCE - SITE_SPACING - NEGATIVE_WIDTH

# Read model.
READS_PER_STRENGTH = 120.0
LOG_READS_SD = 0.25
STRAND_SHIFT = 12          # read 5' ends sit this far upstream on each strand
SHIFT_SCALE = 5.0          # Laplace scale of the 5' end jitter, bp
SIGNAL_BACKGROUND = 0.02   # reads per bp per strand
CONTROL_BACKGROUND = 0.03
STICKY_RATE = 0.15         # extra reads per bp per strand inside sticky regions
STICKY_WIDTH = (2000, 6000)
PEAK_HALF_WIDTH = (100, 250)
SIGNAL_VALUE_HALF_WIDTH = 250

# Genome-proportional counts, chosen so that the default 3 Mb genome gets
# 600 peaks, 300 weak sites and 150 sticky regions.
BP_PER_PEAK = 5000
BP_PER_WEAK_SITE = 10_000
BP_PER_STICKY_REGION = 20_000

FASTA_LINE_WIDTH = 60

PEAK, WEAK, NEGATIVE = 0, 1, 2


class _Instances(NamedTuple):
    """Planted motif instances, all arrays of shape ``(n_instances,)``.

    Attributes
    ----------
    start : numpy.ndarray of int64
        Global 0-based start of the instance, bp.
    motif : numpy.ndarray of int64
        Index into ``PLANTED_MOTIFS``.
    reverse : numpy.ndarray of bool
        Whether the reverse complement of the motif was planted.
    site : numpy.ndarray of int64
        Index of the peak (or weak site) that carries the instance.
    in_peak : numpy.ndarray of bool
        Whether the carrying site is a peak rather than a weak site.
    """

    start: np.ndarray
    motif: np.ndarray
    reverse: np.ndarray
    site: np.ndarray
    in_peak: np.ndarray


class _Genome(NamedTuple):
    """Chromosome layout on the global coordinate axis.

    Attributes
    ----------
    names : list of str
        Chromosome names, in genome order.
    sizes : numpy.ndarray of int64, shape (n_chroms,)
        Chromosome lengths, bp.
    offsets : numpy.ndarray of int64, shape (n_chroms + 1,)
        Global coordinate of each chromosome start, then the total length.
    """

    names: list[str]
    sizes: np.ndarray
    offsets: np.ndarray

    @property
    def total(self) -> int:
        """Total genome length, bp."""
        return int(self.offsets[-1])

    def chrom_of(self, position: np.ndarray) -> np.ndarray:
        """Chromosome index of each global position."""
        return np.searchsorted(self.offsets, position, side="right") - 1


def iupac_to_ppm(consensus: str) -> np.ndarray:
    """Turn an IUPAC consensus into a position probability matrix.

    At each position the bases allowed by the IUPAC code share probability
    0.91 evenly and the other bases share 0.09 evenly; ``N`` is uniform.

    Parameters
    ----------
    consensus : str
        IUPAC consensus string of length ``w``.

    Returns
    -------
    numpy.ndarray of float64, shape (w, 4)
        Probabilities of A, C, G, T at each position; rows sum to 1.
    """
    ppm = np.zeros((len(consensus), 4))
    for i, code in enumerate(consensus.upper()):
        allowed = [ALPHABET.index(b) for b in IUPAC[code]]
        if len(allowed) == 4:
            ppm[i] = 0.25
            continue
        ppm[i] = (1 - CONSENSUS_MASS) / (4 - len(allowed))
        ppm[i, allowed] = CONSENSUS_MASS / len(allowed)
    return ppm


def simulate_demo(
    outdir: str | os.PathLike,
    seed: int = 0,
    chrom_sizes: dict[str, int] | None = None,
    n_peaks: int | None = None,
    reads: bool = False,
    reads_per_strength: float = READS_PER_STRENGTH,
    log_reads_sd: float = LOG_READS_SD,
    signal_background: float = SIGNAL_BACKGROUND,
    sticky_rate: float = STICKY_RATE,
) -> dict[str, Path]:
    """Simulate a stranded ChIP-nexus-like experiment and write it to disk.

    Peaks carry 1-3 planted motif instances each; a further set of "weak
    sites" carry one instance and get signal but are left out of the peak
    file, so the signal is a function of sequence rather than of the peak
    calls.  Each instance yields a pair of strand-specific read-end peaks
    24 bp apart whose height depends on the motif.  Broad "sticky" regions
    raise both the signal and the control tracks.

    Parameters
    ----------
    outdir : str or os.PathLike
        Output directory, created if missing.
    seed : int, default 0
        Seed of the single random generator driving the whole simulation.
    chrom_sizes : dict of str to int, optional
        Chromosome name -> length in bp, in genome order.  Defaults to
        ``DEFAULT_CHROM_SIZES`` (3 Mb over chr1-chr4).
    n_peaks : int, optional
        Number of peaks.  Defaults to one per 5 kb of genome (600 for the
        default genome).  Peak centres are at least 1500 bp apart and at
        least 1200 bp from chromosome ends.
    reads : bool, default False
        Also write the signal and control as reads (``signal.bam``,
        ``control.bam``: 36-bp reads whose 5' ends are the counts of the
        bigWigs), the raw form ENCODE hands out.
    reads_per_strength : float, default 120
        Expected reads of a motif instance of strength 1.
    log_reads_sd : float, default 0.25
        Standard deviation of an instance's log read count around its
        expectation (noise that the sequence does not explain); 1.0 spreads
        peak totals over two orders of magnitude, as in real ChIP-seq.
    signal_background, sticky_rate : float, default 0.02, 0.15
        Reads per bp per strand everywhere, and inside broad sticky regions
        (signal and control alike).

    Returns
    -------
    dict of str to pathlib.Path
        Paths keyed by ``sequences``, ``peaks``, ``negatives``,
        ``signal_plus``, ``signal_minus``, ``control_plus``,
        ``control_minus``, ``motifs``, ``planted`` and ``variants`` (SNVs
        breaking planted instances and background ones, see
        `bpnet_core.simulate.variants.demo_variants`).  ``genome.fa.fai`` is
        written next to ``genome.fa``.

    Raises
    ------
    ValueError
        If ``n_peaks`` is not positive or the peaks cannot fit in the genome
        under the spacing constraints.

    Notes
    -----
    The genome gets one weak site per 10 kb and one sticky region per 20 kb
    (300 and 150 for the default genome).  Weak sites, then negatives
    (``n_peaks // 2`` regions of 1000 bp whose centres are at least 2000 bp
    from every peak and weak-site centre), are reduced with a warning when
    the genome is too small to hold them all; in crowded genomes negatives
    are clumped into runs of abutting regions.
    The same seed gives byte-identical FASTA, BED, narrowPeak, MEME and TSV
    files and identical bigWig values.
    """
    genome, n_peaks, outdir, rng, codes = _start(outdir, seed, chrom_sizes, n_peaks)
    kinds, centres = _layout_loci(
        rng,
        genome,
        n_peaks=n_peaks,
        n_weak=genome.total // BP_PER_WEAK_SITE,
        n_negatives=n_peaks // 2,
    )
    peak_centres = centres[kinds == PEAK]
    weak_centres = centres[kinds == WEAK]
    instances = _plant_motifs(rng, codes, peak_centres, weak_centres)

    sticky = _sticky_coverage(rng, genome, genome.total // BP_PER_STICKY_REGION)
    plus, minus = _motif_read_ends(rng, genome, instances, reads_per_strength, log_reads_sd)
    signal_plus = plus + rng.poisson(signal_background + sticky_rate * sticky)
    signal_minus = minus + rng.poisson(signal_background + sticky_rate * sticky)
    control_plus = rng.poisson(CONTROL_BACKGROUND + sticky_rate * sticky)
    control_minus = rng.poisson(CONTROL_BACKGROUND + sticky_rate * sticky)
    half_widths = rng.integers(PEAK_HALF_WIDTH[0], PEAK_HALF_WIDTH[1] + 1, size=n_peaks)

    paths = {
        "sequences": outdir / "genome.fa",
        "peaks": outdir / "peaks.narrowPeak.gz",
        "negatives": outdir / "negatives.bed.gz",
        "signal_plus": outdir / "signal.plus.bw",
        "signal_minus": outdir / "signal.minus.bw",
        "control_plus": outdir / "control.plus.bw",
        "control_minus": outdir / "control.minus.bw",
        "motifs": outdir / "motifs.meme",
        "planted": outdir / "planted_motifs.tsv",
    }
    _write_fasta(paths["sequences"], genome, codes)
    peak_lines = _narrowpeak_lines(
        genome, peak_centres, half_widths, instances, signal_plus + signal_minus
    )
    _write_gzip_text(paths["peaks"], peak_lines)
    _write_gzip_text(paths["negatives"], _negative_lines(genome, centres[kinds == NEGATIVE]))
    for key, track in [
        ("signal_plus", signal_plus),
        ("signal_minus", signal_minus),
        ("control_plus", control_plus),
        ("control_minus", control_minus),
    ]:
        _write_bigwig(paths[key], genome, track)
    if reads:
        for key, plus_track, minus_track in [("signal", signal_plus, signal_minus),
                                             ("control", control_plus, control_minus)]:
            paths[f"{key}_reads"] = outdir / f"{key}.bam"
            _write_reads(paths[f"{key}_reads"], genome, plus_track, minus_track)
    _write_text(paths["motifs"], _meme_text())
    _write_text(paths["planted"], _planted_text(genome, instances))
    from .variants import demo_variants  # here: it reads this module's motifs

    paths["variants"] = demo_variants(paths["sequences"], paths["planted"], paths["negatives"],
                                      outdir / "variants.tsv")
    logger.info(
        "simulated %d peaks, %d weak sites, %d negatives, %d motif instances in %s",
        n_peaks, weak_centres.size, int(np.sum(kinds == NEGATIVE)),
        instances.start.size, outdir,
    )
    return paths


def _start(outdir, seed: int, chrom_sizes: dict[str, int] | None, n_peaks: int | None
           ) -> tuple[_Genome, int, Path, np.random.Generator, np.ndarray]:
    """What every simulator starts from: the genome layout, the peak count,
    the output folder (created), the seeded generator and a random genome
    (base codes 0-3, shape (genome length,)) drawn with `BACKGROUND`."""
    chrom_sizes = dict(DEFAULT_CHROM_SIZES if chrom_sizes is None else chrom_sizes)
    sizes = np.array(list(chrom_sizes.values()), dtype=np.int64)
    genome = _Genome(list(chrom_sizes), sizes, np.concatenate([[0], np.cumsum(sizes)]))
    if n_peaks is None:
        n_peaks = genome.total // BP_PER_PEAK
    if n_peaks < 1:
        raise ValueError(f"n_peaks must be positive, got {n_peaks}")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    codes = rng.choice(4, size=genome.total, p=BACKGROUND).astype(np.uint8)
    return genome, n_peaks, outdir, rng, codes


# --------------------------------------------------------------------------
# Layout of peaks, weak sites and negatives


def _min_layout_length(n_sites: int, n_negatives: int, n_runs: int) -> int:
    """Upper bound on the summed minimum gaps of a layout, bp.

    ``n_runs`` runs of abutting negatives are inserted between ``n_sites``
    peaks/weak sites; each run turns one site-site gap into two clearances.
    """
    length = (n_sites - 1) * SITE_SPACING
    if n_negatives:
        length += n_negatives * NEGATIVE_WIDTH + n_runs * RUN_COST
    return length


def _layout_loci(
    rng: np.random.Generator,
    genome: _Genome,
    n_peaks: int,
    n_weak: int,
    n_negatives: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Place peaks, weak sites and negatives under the spacing constraints.

    Loci are laid out on the "usable" axis (each chromosome minus its end
    margins, concatenated) in a random order; neighbours are kept apart by
    the minimum gap their kinds require and the remaining slack is spread
    uniformly at random.  Constraints between non-neighbours follow because
    any two gaps add up to at least the largest clearance.

    Parameters
    ----------
    rng : numpy.random.Generator
    genome : _Genome
    n_peaks, n_weak, n_negatives : int
        Requested counts; weak sites then negatives are reduced if needed.

    Returns
    -------
    kinds : numpy.ndarray of int64, shape (n_loci,)
        ``PEAK``, ``WEAK`` or ``NEGATIVE`` for each locus.
    centres : numpy.ndarray of int64, shape (n_loci,)
        Global centre of each locus, sorted ascending.
    """
    usable = np.maximum(genome.sizes - 2 * END_MARGIN, 0)
    total_usable = int(usable.sum())
    if _min_layout_length(n_peaks, 0, 0) >= total_usable:
        raise ValueError(
            f"{n_peaks} peaks spaced {SITE_SPACING} bp apart do not fit in the "
            f"{total_usable} bp available away from chromosome ends"
        )
    requested = (n_weak, n_negatives)
    while n_weak and _min_layout_length(n_peaks + n_weak, n_negatives, 1) >= total_usable:
        n_weak -= 1
    while n_negatives and _min_layout_length(n_peaks, n_negatives, 1) >= total_usable:
        n_negatives -= 1
    if (n_weak, n_negatives) != requested:
        logger.warning(
            "genome too small: placing %d of %d weak sites and %d of %d negatives",
            n_weak, requested[0], n_negatives, requested[1],
        )

    n_sites = n_peaks + n_weak
    # Spend at most half of the spare room on scattering negatives into
    # separate runs; the rest stays as random slack so that crowded genomes
    # get clumped negatives rather than loci on a regular lattice.
    spare = total_usable - 1 - _min_layout_length(n_sites, n_negatives, 1)
    n_runs = min(n_negatives, n_sites + 1, 1 + spare // (2 * RUN_COST))

    order = _interleave(rng, n_peaks, n_weak, n_negatives, n_runs)
    is_negative = order == NEGATIVE
    neighbour_negatives = is_negative[:-1].astype(int) + is_negative[1:]
    gaps = np.choose(neighbour_negatives, [SITE_SPACING, NEGATIVE_CLEARANCE, NEGATIVE_WIDTH])
    offsets = np.concatenate([[0], np.cumsum(gaps)])
    slack = total_usable - 1 - int(offsets[-1])
    usable_pos = offsets + np.sort(rng.integers(0, slack + 1, size=order.size))

    usable_starts = np.concatenate([[0], np.cumsum(usable)])
    chrom = np.searchsorted(usable_starts, usable_pos, side="right") - 1
    centres = genome.offsets[chrom] + END_MARGIN + usable_pos - usable_starts[chrom]
    return order, centres


def _interleave(
    rng: np.random.Generator, n_peaks: int, n_weak: int, n_negatives: int, n_runs: int
) -> np.ndarray:
    """Random order of locus kinds with negatives grouped into ``n_runs`` runs.

    Returns
    -------
    numpy.ndarray of int64, shape (n_peaks + n_weak + n_negatives,)
    """
    sites = rng.permutation(np.repeat([PEAK, WEAK], [n_peaks, n_weak]))
    if n_negatives == 0:
        return sites
    cuts = np.sort(rng.choice(np.arange(1, n_negatives), size=n_runs - 1, replace=False))
    run_sizes = np.diff(np.concatenate([[0], cuts, [n_negatives]]))
    slots = np.sort(rng.choice(sites.size + 1, size=n_runs, replace=False))
    pieces = []
    previous = 0
    for slot, size in zip(slots, run_sizes):
        pieces += [sites[previous:slot], np.full(size, NEGATIVE)]
        previous = slot
    pieces.append(sites[previous:])
    return np.concatenate(pieces)


# --------------------------------------------------------------------------
# Motifs and reads


def _sample_motif(rng: np.random.Generator, ppm: np.ndarray) -> np.ndarray:
    """Draw one sequence (base codes, shape ``(w,)``) from a ``(w, 4)`` PPM."""
    cdf = np.cumsum(ppm, axis=1)[:, :-1]
    return (rng.random(len(ppm))[:, None] >= cdf).sum(axis=1).astype(np.uint8)


def _plant_motifs(
    rng: np.random.Generator,
    codes: np.ndarray,
    peak_centres: np.ndarray,
    weak_centres: np.ndarray,
) -> _Instances:
    """Plant motif instances in ``codes`` (modified in place).

    Each peak gets 1-3 non-overlapping instances centred within +/- 60 bp of
    its centre; each weak site gets one instance centred on it.

    Parameters
    ----------
    rng : numpy.random.Generator
    codes : numpy.ndarray of uint8, shape (genome_length,)
        Genome as base codes 0-3 (A, C, G, T).
    peak_centres, weak_centres : numpy.ndarray of int64
        Global centres, bp.

    Returns
    -------
    _Instances
        Sorted by start.
    """
    ppms = [iupac_to_ppm(consensus) for consensus, _ in PLANTED_MOTIFS.values()]
    widths = np.array([len(p) for p in ppms])
    rows = []  # (start, motif, reverse, site, in_peak)
    for site, centre in enumerate(peak_centres):
        taken: list[tuple[int, int]] = []
        for motif in rng.choice(len(ppms), size=rng.integers(1, 4), p=PLANTED_MOTIF_PROBS):
            while True:
                start = centre + rng.integers(-MOTIF_OFFSET, MOTIF_OFFSET + 1) - widths[motif] // 2
                end = start + widths[motif]
                if all(end <= s or start >= e for s, e in taken):
                    break
            taken.append((start, end))
            rows.append((start, motif, rng.random() < 0.5, site, True))
    for site, centre in enumerate(weak_centres):
        motif = rng.choice(len(ppms), p=PLANTED_MOTIF_PROBS)
        rows.append((centre - widths[motif] // 2, motif, rng.random() < 0.5, site, False))
    rows.sort()

    for start, motif, reverse, _, _ in rows:
        sequence = _sample_motif(rng, ppms[motif])
        codes[start:start + len(sequence)] = 3 - sequence[::-1] if reverse else sequence
    columns = list(zip(*rows))
    return _Instances(
        start=np.array(columns[0], dtype=np.int64),
        motif=np.array(columns[1], dtype=np.int64),
        reverse=np.array(columns[2], dtype=bool),
        site=np.array(columns[3], dtype=np.int64),
        in_peak=np.array(columns[4], dtype=bool),
    )


def _instance_centres(instances: _Instances) -> np.ndarray:
    """Global centre of each instance (start + width // 2), bp."""
    widths = np.array([len(c) for c, _ in PLANTED_MOTIFS.values()])
    return instances.start + widths[instances.motif] // 2


def _motif_read_ends(
    rng: np.random.Generator, genome: _Genome, instances: _Instances,
    reads_per_strength: float = READS_PER_STRENGTH, log_reads_sd: float = LOG_READS_SD,
) -> tuple[np.ndarray, np.ndarray]:
    """Read 5' end counts produced by the planted motif instances.

    Each instance of strength ``s`` expects ``reads_per_strength * s *
    exp(N(0, log_reads_sd**2))`` reads (120 and 0.25 by default) split evenly between strands; plus-strand ends fall 12 bp upstream
    and minus-strand ends 12 bp downstream of the instance centre, jittered
    by a rounded Laplace(0, 5) offset.

    Returns
    -------
    plus, minus : numpy.ndarray of int64, shape (genome_length,)
        Read-end counts per global position.
    """
    strengths = np.array([s for _, s in PLANTED_MOTIFS.values()])
    centres = _instance_centres(instances)
    expected = (
        reads_per_strength
        * strengths[instances.motif]
        * np.exp(rng.normal(0.0, log_reads_sd, size=centres.size))
    )
    chrom = genome.chrom_of(centres)
    tracks = []
    for shift in (-STRAND_SHIFT, STRAND_SHIFT):
        n_reads = rng.poisson(expected / 2)
        jitter = np.rint(rng.laplace(0.0, SHIFT_SCALE, size=n_reads.sum())).astype(np.int64)
        ends = np.repeat(centres + shift, n_reads) + jitter
        # Reads never spill into the neighbouring chromosome.
        read_chrom = np.repeat(chrom, n_reads)
        ends = np.clip(ends, genome.offsets[read_chrom], genome.offsets[read_chrom + 1] - 1)
        tracks.append(np.bincount(ends, minlength=genome.total))
    return tracks[0], tracks[1]


def _sticky_coverage(rng: np.random.Generator, genome: _Genome, n_regions: int) -> np.ndarray:
    """Number of broad sticky regions covering each base.

    Regions are 2-6 kb wide, start uniformly over the genome and are cut at
    the end of the chromosome they start in.

    Returns
    -------
    numpy.ndarray of int64, shape (genome_length,)
    """
    widths = rng.integers(STICKY_WIDTH[0], STICKY_WIDTH[1] + 1, size=n_regions)
    starts = rng.integers(0, np.maximum(genome.total - widths, 1))
    ends = np.minimum(starts + widths, genome.offsets[genome.chrom_of(starts) + 1])
    delta = np.zeros(genome.total + 1, dtype=np.int64)
    np.add.at(delta, starts, 1)
    np.add.at(delta, ends, -1)
    return np.cumsum(delta[:-1])


# --------------------------------------------------------------------------
# Text formats


def _narrowpeak_lines(
    genome: _Genome,
    centres: np.ndarray,
    half_widths: np.ndarray,
    instances: _Instances,
    coverage: np.ndarray,
) -> list[str]:
    """narrowPeak records, sorted, with summits at the mean motif centre.

    Parameters
    ----------
    genome : _Genome
    centres : numpy.ndarray of int64, shape (n_peaks,)
        Sorted global peak centres, bp.
    half_widths : numpy.ndarray of int64, shape (n_peaks,)
        Peak half-widths, bp.
    instances : _Instances
        Planted instances; those with ``in_peak`` index ``centres``.
    coverage : numpy.ndarray, shape (genome_length,)
        Read-end counts summed over strands.
    """
    in_peak = instances.in_peak
    motif_centres = _instance_centres(instances)[in_peak]
    sums = np.bincount(instances.site[in_peak], weights=motif_centres, minlength=centres.size)
    counts = np.bincount(instances.site[in_peak], minlength=centres.size)
    summits = np.rint(sums / counts).astype(np.int64)

    cumulative = np.concatenate([[0], np.cumsum(coverage)])
    signal = (
        cumulative[centres + SIGNAL_VALUE_HALF_WIDTH + 1]
        - cumulative[centres - SIGNAL_VALUE_HALF_WIDTH]
    )
    scores = np.rint(1000 * signal / max(signal.max(), 1)).astype(np.int64)

    chrom = genome.chrom_of(centres)
    starts = centres - half_widths - genome.offsets[chrom]
    ends = centres + half_widths - genome.offsets[chrom]
    offsets = np.clip(summits - genome.offsets[chrom] - starts, 0, ends - starts - 1)
    return [
        f"{genome.names[c]}\t{s}\t{e}\tpeak_{i}\t{score}\t.\t{value:.1f}\t-1\t-1\t{o}\n"
        for i, (c, s, e, score, value, o) in enumerate(
            zip(chrom, starts, ends, scores, signal, offsets)
        )
    ]


def _negative_lines(genome: _Genome, centres: np.ndarray) -> list[str]:
    """BED3 records of ``NEGATIVE_WIDTH`` bp around sorted global centres."""
    chrom = genome.chrom_of(centres)
    starts = centres - NEGATIVE_WIDTH // 2 - genome.offsets[chrom]
    return [
        f"{genome.names[c]}\t{s}\t{s + NEGATIVE_WIDTH}\n" for c, s in zip(chrom, starts)
    ]


def _meme_text() -> str:
    """All planted and decoy motifs in MEME minimal format version 4."""
    background = " ".join(f"{b} {p}" for b, p in zip(ALPHABET, BACKGROUND))
    parts = [
        "MEME version 4\n\nALPHABET= ACGT\n\nstrands: + -\n\n"
        f"Background letter frequencies\n{background}\n"
    ]
    consensi = {name: c for name, (c, _) in PLANTED_MOTIFS.items()} | DECOY_MOTIFS
    for name, consensus in consensi.items():
        ppm = iupac_to_ppm(consensus)
        rows = "".join(" " + " ".join(f"{p:.6f}" for p in row) + "\n" for row in ppm)
        parts.append(
            f"\nMOTIF {name}\nletter-probability matrix: alength= 4 "
            f"w= {len(consensus)} nsites= 20 E= 0\n{rows}"
        )
    return "".join(parts)


def _planted_text(genome: _Genome, instances: _Instances, functional: np.ndarray | None = None) -> str:
    """TSV of planted instances: chrom, 0-based start, motif, strand, in_peak (and functional, when given)."""
    names = list(PLANTED_MOTIFS)
    chrom = genome.chrom_of(instances.start)
    extra = [] if functional is None else [functional]
    lines = ["chrom\tposition\tmotif\tstrand\tin_peak" + ("\tfunctional" if extra else "") + "\n"]
    lines += [
        f"{genome.names[c]}\t{start - genome.offsets[c]}\t{names[m]}\t"
        f"{'-' if reverse else '+'}\t{in_peak}" + "".join(f"\t{bool(x)}" for x in rest) + "\n"
        for c, start, m, reverse, in_peak, *rest in zip(
            chrom, instances.start, instances.motif, instances.reverse, instances.in_peak, *extra
        )
    ]
    return "".join(lines)


# --------------------------------------------------------------------------
# Atomic writers


def _write_text(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(text.encode())


def _write_gzip_text(path: Path, lines: list[str]) -> None:
    # mtime=0 and no embedded file name keep the bytes reproducible.
    with atomic_output(path) as tmp:
        tmp.write_bytes(gzip.compress("".join(lines).encode(), mtime=0))


def _write_fasta(path: Path, genome: _Genome, codes: np.ndarray) -> None:
    """Write the genome as 60-column FASTA plus its pyfaidx ``.fai`` index."""
    letters = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            for name, start, end in zip(genome.names, genome.offsets[:-1], genome.offsets[1:]):
                sequence = letters[codes[start:end]].tobytes()
                handle.write(f">{name}\n".encode())
                for i in range(0, len(sequence), FASTA_LINE_WIDTH):
                    handle.write(sequence[i:i + FASTA_LINE_WIDTH] + b"\n")
        tmp_index = tmp.with_name(tmp.name + ".fai")
        try:
            pyfaidx.Fasta(str(tmp)).close()
            # The index lands first so genome.fa never appears without it.
            os.replace(tmp_index, path.with_name(path.name + ".fai"))
        finally:
            tmp_index.unlink(missing_ok=True)


def _write_bigwig(path: Path, genome: _Genome, counts: np.ndarray) -> None:
    """Write non-zero per-base counts (global axis) as a span-1 bigWig."""
    with atomic_output(path) as tmp:
        bw = pyBigWig.open(str(tmp), "w")
        try:
            bw.addHeader([(n, int(s)) for n, s in zip(genome.names, genome.sizes)])
            for name, start, end in zip(genome.names, genome.offsets[:-1], genome.offsets[1:]):
                chrom_counts = counts[start:end]
                positions = np.flatnonzero(chrom_counts).astype(np.int64)
                if positions.size:
                    bw.addEntries(
                        name,
                        positions,
                        values=chrom_counts[positions].astype(np.float64),
                        span=1,
                    )
        finally:
            bw.close()


READ_LENGTH = 36


def _write_reads(path: Path, genome: _Genome, plus: np.ndarray, minus: np.ndarray) -> None:
    """Write reads whose 5' ends are the per-base counts (global axis) as a sorted BAM.

    A SAM text goes through samtools sort (pysam), much faster than building
    each read as a pysam object.
    """
    import pysam

    header = "@HD\tVN:1.6\tSO:unsorted\n" + "".join(
        f"@SQ\tSN:{name}\tLN:{int(size)}\n" for name, size in zip(genome.names, genome.sizes))
    with atomic_output(path) as tmp:
        sam = tmp.with_suffix(".sam")
        try:
            with open(sam, "w") as out:
                out.write(header)
                for name, start, end in zip(genome.names, genome.offsets[:-1], genome.offsets[1:]):
                    for reverse, counts in ((False, plus[start:end]), (True, minus[start:end])):
                        ends = np.repeat(np.flatnonzero(counts), counts[np.flatnonzero(counts)].astype(np.int64))
                        # A minus-strand read's 5' end is its last aligned base.
                        starts = np.maximum(ends - READ_LENGTH + 1, 0) if reverse else ends
                        lengths = ends - starts + 1 if reverse else np.minimum(READ_LENGTH, int(end - start) - ends)
                        flag = 16 if reverse else 0
                        # Bases as N: MACS3 takes the read length from the stored sequence.
                        out.writelines(f"r\t{flag}\t{name}\t{s + 1}\t60\t{n}M\t*\t0\t0\t{'N' * n}\t*\n"
                                       for s, n in zip(starts.tolist(), lengths.tolist()))
            pysam.sort("-o", str(tmp), "-O", "bam", str(sam))
        finally:
            sam.unlink(missing_ok=True)
