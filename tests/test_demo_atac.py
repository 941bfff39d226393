"""Tests for the ATAC-seq-like simulator in ``bpnet_core.simulate.atac``."""

import gzip

import numpy as np
import pyBigWig
import pyfaidx
import pytest

from bpnet_core.simulate.chip import (
    BACKGROUND,
    DECOY_MOTIFS,
    PLANTED_MOTIFS,
    _meme_text,
    iupac_to_ppm,
)
from bpnet_core.simulate.atac import BIAS_MOTIFS, FUNCTIONAL_MARGIN, simulate_atac_demo

CHROM_SIZES = {"chr1": 400_000, "chr2": 200_000}
KEYS = {"sequences", "peaks", "negatives", "signal", "motifs", "planted"}
TEXT_KEYS = ["sequences", "peaks", "negatives", "motifs", "planted"]
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def _simulate(tmp_path_factory, name, seed):
    return simulate_atac_demo(tmp_path_factory.mktemp(name), seed=seed, chrom_sizes=CHROM_SIZES)


def _tracks(path):
    """Per-base counts of every chromosome of a bigWig (missing -> 0)."""
    bw = pyBigWig.open(str(path))
    try:
        return {c: np.nan_to_num(np.array(bw.values(c, 0, n))) for c, n in bw.chroms().items()}
    finally:
        bw.close()


def _bed_rows(path):
    with gzip.open(path, "rt") as handle:
        return [line.rstrip("\n").split("\t") for line in handle]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return _simulate(tmp_path_factory, "atac_seed0", 0)


@pytest.fixture(scope="module")
def tracks(demo):
    return _tracks(demo["signal"])


@pytest.fixture(scope="module")
def genome(demo):
    fasta = pyfaidx.Fasta(str(demo["sequences"]))
    yield {record.name: str(record[:]).upper() for record in fasta}
    fasta.close()


@pytest.fixture(scope="module")
def summits(demo):
    """(chrom, global summit) of each peak, from the narrowPeak summit column."""
    return [(r[0], int(r[1]) + int(r[9])) for r in _bed_rows(demo["peaks"])]


@pytest.fixture(scope="module")
def negative_centres(demo):
    return [(r[0], (int(r[1]) + int(r[2])) // 2) for r in _bed_rows(demo["negatives"])]


def _window_totals(tracks, loci, width):
    return np.array([tracks[c][x - width // 2:x + width // 2].sum() for c, x in loci])


def test_outputs_exist_and_are_well_formed(demo, genome, tracks, summits, negative_centres):
    assert set(demo) == KEYS
    assert all(path.is_file() for path in demo.values())
    assert demo["sequences"].with_name("genome.fa.fai").is_file()
    assert {c: len(s) for c, s in genome.items()} == CHROM_SIZES
    assert set("".join(genome.values())) <= set("ACGT")
    # One value per base, non-negative integer cut counts, some of them non-zero.
    assert {c: t.size for c, t in tracks.items()} == CHROM_SIZES
    values = np.concatenate(list(tracks.values()))
    assert values.min() >= 0 and np.array_equal(values, np.round(values)) and values.sum() > 0
    # Defaults: one peak per 5 kb and two negatives (BED3, 1000 bp) per peak.
    assert len(summits) == 120 and len(negative_centres) == 240
    peak_rows = _bed_rows(demo["peaks"])
    assert all(len(r) == 10 and 0 <= int(r[9]) < int(r[2]) - int(r[1]) for r in peak_rows)
    negative_rows = _bed_rows(demo["negatives"])
    assert all(len(r) == 3 and int(r[2]) - int(r[1]) == 1000 for r in negative_rows)


def test_same_seed_is_reproducible_and_other_seed_differs(demo, tracks, tmp_path_factory):
    again = _simulate(tmp_path_factory, "atac_seed0_again", 0)
    for key in TEXT_KEYS:
        assert demo[key].read_bytes() == again[key].read_bytes(), key
    again_tracks = _tracks(again["signal"])
    assert all(np.array_equal(tracks[c], again_tracks[c]) for c in CHROM_SIZES)

    other = _simulate(tmp_path_factory, "atac_seed1", 1)
    assert demo["sequences"].read_bytes() != other["sequences"].read_bytes()
    assert demo["peaks"].read_bytes() != other["peaks"].read_bytes()
    other_tracks = _tracks(other["signal"])
    assert not np.array_equal(tracks["chr1"], other_tracks["chr1"])


def test_meme_file_holds_tf_decoy_and_bias_motifs(demo):
    text = demo["motifs"].read_text()
    names = [line.split()[1] for line in text.splitlines() if line.startswith("MOTIF ")]
    assert names == [*PLANTED_MOTIFS, *DECOY_MOTIFS, *BIAS_MOTIFS]
    # TF and decoy motifs are written exactly as the ChIP-nexus demo writes them.
    assert text.startswith(_meme_text())
    assert all(name.startswith(("TN5", "DNASE")) for name in BIAS_MOTIFS)
    # The bias motif block is a valid PPM matching its consensus.
    for name, consensus in BIAS_MOTIFS.items():
        assert consensus != consensus.translate(COMPLEMENT)[::-1], "bias motif is palindromic"
        block = text.split(f"MOTIF {name}\n")[1].splitlines()
        assert f"w= {len(consensus)}" in block[0]
        ppm = np.array([[float(v) for v in row.split()] for row in block[1:1 + len(consensus)]])
        np.testing.assert_allclose(ppm, iupac_to_ppm(consensus), atol=1e-6)


def _bias_scores(sequence, consensus):
    """Best-strand log-odds of the bias PWM on the window centred on each base.

    Written independently of the simulator (sliding windows, not gathers).
    """
    pwm = np.log(iupac_to_ppm(consensus) / np.asarray(BACKGROUND))
    codes = np.frombuffer(sequence.encode(), np.uint8)
    codes = np.searchsorted(np.frombuffer(b"ACGT", np.uint8), codes)
    windows = np.lib.stride_tricks.sliding_window_view(codes, len(consensus))
    rows = np.arange(len(consensus))
    forward = pwm[rows, windows].sum(axis=1)
    reverse = pwm[::-1][rows, 3 - windows].sum(axis=1)
    scores = np.full(codes.size, -np.inf)
    left = len(consensus) // 2
    scores[left:left + windows.shape[0]] = np.maximum(forward, reverse)
    return scores


def test_enzyme_bias_shapes_cuts_in_negatives(genome, tracks, negative_centres):
    (consensus,) = BIAS_MOTIFS.values()
    scores = {c: _bias_scores(s, consensus) for c, s in genome.items()}
    positions = [(c, np.arange(x - 500, x + 500)) for c, x in negative_centres]
    score = np.concatenate([scores[c][p] for c, p in positions])
    cuts = np.concatenate([tracks[c][p] for c, p in positions])
    top = cuts[score >= np.quantile(score, 0.99)].mean()
    bottom = cuts[score <= np.quantile(score, 0.5)].mean()
    assert top >= 5 * bottom, (top, bottom)


def test_bound_motifs_leave_a_footprint(demo, tracks):
    widths = {name: len(consensus) for name, (consensus, _) in PLANTED_MOTIFS.items()}
    lines = demo["planted"].read_text().splitlines()[1:]
    bound, flank = [], []
    for chrom, position, motif, _, in_peak, functional in (line.split("\t") for line in lines):
        if in_peak != "True" or functional != "True":
            continue
        start, end = int(position) - 3, int(position) + widths[motif] + 3
        track = tracks[chrom]
        bound.append(track[start:end])
        flank += [track[start - 20:start], track[end:end + 20]]
    bound_mean, flank_mean = np.concatenate(bound).mean(), np.concatenate(flank).mean()
    assert bound_mean < 0.5 * flank_mean, (bound_mean, flank_mean)


@pytest.mark.parametrize("width", [1000, 500])
def test_peak_and_negative_counts_pass_chrombpnet_threshold(
    tracks, summits, negative_centres, width
):
    peaks = _window_totals(tracks, summits, width)
    negatives = _window_totals(tracks, negative_centres, width)
    # ChromBPNet keeps negatives below half the 1st percentile of peak counts.
    threshold = 0.5 * np.percentile(peaks, 1)
    assert threshold > np.percentile(negatives, 90), (threshold, np.percentile(negatives, 90))
    assert np.mean(negatives < threshold) >= 0.95
    assert np.median(peaks) >= 5 * np.median(negatives)


def _motif_scores(sequence, consensus):
    """Log-odds of a planted motif at each window start, on each strand, shape (2, n - w + 1).

    Written independently of the simulator (sliding windows, not gathers).
    """
    pwm = np.log(iupac_to_ppm(consensus) / np.asarray(BACKGROUND))
    codes = np.searchsorted(np.frombuffer(b"ACGT", np.uint8), np.frombuffer(sequence.encode(), np.uint8))
    windows = np.lib.stride_tricks.sliding_window_view(codes, len(consensus))
    rows = np.arange(len(consensus))
    return np.stack([pwm[rows, windows].sum(axis=1), pwm[::-1][rows, 3 - windows].sum(axis=1)])


def _top_score(consensus):
    return np.log(iupac_to_ppm(consensus) / np.asarray(BACKGROUND)).max(1).sum()


def test_accessibility_is_a_function_of_the_sequence(demo, genome, summits):
    # Every close match to a planted motif in the genome is a planted instance
    # (or that instance read on the other strand, shifted by under half its
    # width); only those within FUNCTIONAL_MARGIN act, and each peak has one.
    rows = [line.split("\t") for line in demo["planted"].read_text().splitlines()[1:]]
    planted = {(chrom, motif): [] for chrom in genome for motif in PLANTED_MOTIFS}
    for chrom, position, motif, strand, in_peak, functional in rows:
        planted[chrom, motif].append(int(position))
        consensus = PLANTED_MOTIFS[motif][0]
        scores = _motif_scores(genome[chrom][int(position):int(position) + len(consensus)], consensus)
        top = _top_score(consensus)
        score = scores[int(strand == "-"), 0]
        assert (functional == "True") == (score >= top - FUNCTIONAL_MARGIN) or in_peak == "False", rows
    for (chrom, motif), starts in planted.items():
        consensus = PLANTED_MOTIFS[motif][0]
        top = _top_score(consensus)
        hits = np.flatnonzero((_motif_scores(genome[chrom], consensus) >= top - FUNCTIONAL_MARGIN).any(0))
        distance = np.abs(hits[:, None] - np.array(starts)[None, :]).min(1)
        assert (distance <= len(consensus) // 2).all(), (chrom, motif, hits[distance > len(consensus) // 2])
    acting = {(r[0], int(r[1])) for r in rows if r[4] == "True" and r[5] == "True"}
    for chrom, summit in summits:
        assert any(c == chrom and abs(position - summit) <= 70 for c, position in acting), (chrom, summit)
