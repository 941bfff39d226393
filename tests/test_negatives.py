"""GC-matched negatives drawn from the genome when a dataset has none."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from bpnet_core.cli import main
from bpnet_core.io import read_loci
from bpnet_core.negatives import _overlaps, compare_gc, gc_matched_negatives

WIDTH = 200
BLOCK = 2000
# Tolerance: a two-sample KS statistic of GC content below this (random tiles give about 0.6 here).
KS_TOLERANCE = 0.15


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    """chr1 and chr2 of 2 kb blocks of GC fraction 0.3 to 0.7; peaks in GC-rich blocks."""
    out = tmp_path_factory.mktemp("gc_genome")
    rng = np.random.default_rng(0)
    records, peaks = [], []
    for chrom, n_blocks in (("chr1", 150), ("chr2", 100)):
        gc = rng.choice([0.3, 0.4, 0.5, 0.6, 0.7], size=n_blocks)
        seq = []
        for i, fraction in enumerate(gc):
            p = [(1 - fraction) / 2, fraction / 2, fraction / 2, (1 - fraction) / 2]
            seq.append("".join(rng.choice(list("ACGT"), size=BLOCK, p=p)))
            if fraction >= 0.6 and rng.random() < 0.5:
                center = i * BLOCK + BLOCK // 2
                peaks.append((chrom, center - 50, center + 50))
        records.append(f">{chrom}\n" + "\n".join("".join(seq)[j:j + 60] for j in range(0, n_blocks * BLOCK, 60)))
    (out / "genome.fa").write_text("\n".join(records) + "\n")
    (out / "peaks.bed").write_text("".join(f"{c}\t{s}\t{e}\n" for c, s, e in peaks))
    # Excluded: a stretch of chr1 with GC-rich blocks that negatives would otherwise use.
    (out / "exclude.bed").write_text("chr1\t0\t100000\n")
    return out


def _windows(loci: pd.DataFrame) -> pd.DataFrame:
    start = loci["center"] - WIDTH // 2
    return pd.DataFrame({"chrom": loci["chrom"], "start": start, "end": start + WIDTH})


def test_negatives_match_peak_gc_and_avoid_peaks_and_excluded_regions(genome):
    peaks = read_loci(str(genome / "peaks.bed"))
    negatives = gc_matched_negatives(str(genome / "peaks.bed"), genome / "genome.fa", in_window=WIDTH,
                                     exclude=str(genome / "exclude.bed"))
    assert len(negatives) >= 0.8 * len(peaks)
    assert (negatives["end"] - negatives["start"] == WIDTH).all()
    assert not _overlaps(negatives, _windows(peaks)).any()
    assert not ((negatives["chrom"] == "chr1") & (negatives["start"] < 100_000)).any()
    matched = compare_gc(genome / "genome.fa", peaks, negatives, WIDTH)
    assert matched.ks_statistic < KS_TOLERANCE

    # Tiles drawn at random would not pass the same test.
    rng = np.random.default_rng(1)
    random = pd.DataFrame({"chrom": "chr2", "center": rng.integers(WIDTH, 199_000, size=200)})
    assert compare_gc(genome / "genome.fa", peaks, random, WIDTH).ks_statistic > 2 * KS_TOLERANCE


def test_same_seed_same_negatives(genome):
    args = (str(genome / "peaks.bed"), genome / "genome.fa", WIDTH)
    first = gc_matched_negatives(*args, random_state=3)
    assert first.equals(gc_matched_negatives(*args, random_state=3))
    assert not first.equals(gc_matched_negatives(*args, random_state=4))


def test_overlap_is_half_open():
    regions = pd.DataFrame({"chrom": ["a", "a", "a", "b"], "start": [0, 100, 250, 0], "end": [100, 200, 300, 50]})
    excluded = pd.DataFrame({"chrom": ["a", "a"], "start": [100, 150], "end": [260, 160]})
    assert _overlaps(regions, excluded).tolist() == [False, True, True, False]


def test_negatives_command_writes_a_gzipped_bed(genome, tmp_path, capsys):
    out = tmp_path / "negatives.bed.gz"
    assert main(["negatives", "--loci", str(genome / "peaks.bed"), "--sequences", str(genome / "genome.fa"),
                 "--in-window", str(WIDTH), "--exclude", str(genome / "exclude.bed"), "-o", str(out)]) == 0
    with gzip.open(out, "rt") as handle:
        rows = [line.split("\t") for line in handle]
    assert rows and all(int(end) - int(start) == WIDTH for _, start, end in rows)
    assert "two-sample KS statistic" in capsys.readouterr().err


def test_two_per_peak_gives_twice_as_many_distinct_gc_matched_tiles(genome):
    peaks = read_loci(str(genome / "peaks.bed"))
    args = (str(genome / "peaks.bed"), genome / "genome.fa", WIDTH)
    one, two = gc_matched_negatives(*args, per_peak=1), gc_matched_negatives(*args, per_peak=2)
    assert len(two) >= 1.8 * len(one)
    assert not two.duplicated(["chrom", "start"]).any()
    assert not _overlaps(two, _windows(peaks)).any()
    assert compare_gc(genome / "genome.fa", peaks, two, WIDTH).ks_statistic < KS_TOLERANCE
