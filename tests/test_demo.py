"""Tests for the demo ChIP-nexus-like simulator in ``bpnet_core.simulate.chip``."""

import numpy as np
import pandas as pd
import pyBigWig
import pyfaidx
import pytest

from bpnet_core.simulate.chip import BACKGROUND, PLANTED_MOTIFS, simulate_demo

CHROM_SIZES = {"chr1": 60_000, "chr2": 40_000}
N_PEAKS = 30
KEYS = {
    "sequences", "peaks", "negatives", "signal_plus", "signal_minus",
    "control_plus", "control_minus", "motifs", "planted", "variants",
}
BIGWIG_KEYS = ["signal_plus", "signal_minus", "control_plus", "control_minus"]
NARROWPEAK_COLUMNS = [
    "chrom", "start", "end", "name", "score", "strand",
    "signal", "p", "q", "summit",
]
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def _simulate(tmp_path_factory, name, seed):
    return simulate_demo(
        tmp_path_factory.mktemp(name), seed=seed, chrom_sizes=CHROM_SIZES, n_peaks=N_PEAKS
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return _simulate(tmp_path_factory, "seed0", 0)


@pytest.fixture(scope="module")
def demo_again(tmp_path_factory):
    return _simulate(tmp_path_factory, "seed0_again", 0)


@pytest.fixture(scope="module")
def peaks(demo):
    return pd.read_csv(demo["peaks"], sep="\t", header=None, names=NARROWPEAK_COLUMNS)


@pytest.fixture(scope="module")
def negatives(demo):
    return pd.read_csv(demo["negatives"], sep="\t", header=None, names=["chrom", "start", "end"])


@pytest.fixture(scope="module")
def planted(demo):
    return pd.read_csv(demo["planted"], sep="\t")


@pytest.fixture(scope="module")
def motifs(demo):
    from tangermeme.io import read_meme

    return {name: pwm.numpy() for name, pwm in read_meme(str(demo["motifs"])).items()}


def _bigwig_values(path):
    """Per-chromosome count arrays of a bigWig, zeros where there is no entry."""
    with pyBigWig.open(str(path)) as bw:
        return {
            chrom: np.nan_to_num(bw.values(chrom, 0, size, numpy=True))
            for chrom, size in bw.chroms().items()
        }


def _centres(intervals):
    """Centres of BED-like intervals, as an integer array."""
    return ((intervals["start"] + intervals["end"]) // 2).to_numpy()


def _log_odds(sequence, ppm):
    """PWM log-odds score (bits) of ``sequence`` under a (4, w) PPM."""
    index = ["ACGT".index(base) for base in sequence]
    ratios = ppm[index, np.arange(len(index))] / np.asarray(BACKGROUND)[index]
    return np.log2(ratios).sum()


def test_all_outputs_written_atomically(demo):
    assert set(demo) == KEYS
    outdir = demo["sequences"].parent
    for path in demo.values():
        assert path.parent == outdir
        assert path.stat().st_size > 0
    assert (outdir / "genome.fa.fai").exists()
    assert not list(outdir.glob(".*tmp*")), "temporary files left behind"


def test_fasta_has_requested_chromosomes(demo):
    with pyfaidx.Fasta(str(demo["sequences"])) as fasta:
        assert {name: len(fasta[name]) for name in fasta.keys()} == CHROM_SIZES
        sequence = "".join(str(fasta[name][:]) for name in CHROM_SIZES)
    assert set(sequence) == set("ACGT")
    gc = (sequence.count("G") + sequence.count("C")) / len(sequence)
    assert abs(gc - 0.41) < 0.01
    lines = demo["sequences"].read_text().splitlines()
    assert max(len(line) for line in lines if not line.startswith(">")) == 60


@pytest.mark.parametrize("key", BIGWIG_KEYS)
def test_bigwig_chroms_match_fasta(demo, key):
    with pyBigWig.open(str(demo[key])) as bw:
        assert bw.chroms() == CHROM_SIZES
    for values in _bigwig_values(demo[key]).values():
        assert np.all(values >= 0)
        assert np.array_equal(values, np.round(values))


def test_same_seed_is_reproducible(demo, demo_again):
    for key in ["sequences", "peaks", "negatives", "motifs", "planted"]:
        assert demo[key].read_bytes() == demo_again[key].read_bytes(), key
    for key in BIGWIG_KEYS:
        first, second = _bigwig_values(demo[key]), _bigwig_values(demo_again[key])
        for chrom in CHROM_SIZES:
            np.testing.assert_array_equal(first[chrom], second[chrom])


def test_different_seed_changes_genome(demo, tmp_path_factory):
    other = _simulate(tmp_path_factory, "seed1", 1)
    assert demo["sequences"].read_bytes() != other["sequences"].read_bytes()


def test_peaks_are_spaced_with_summits_inside(peaks):
    assert len(peaks) == N_PEAKS
    assert list(peaks["name"]) == [f"peak_{i}" for i in range(N_PEAKS)]
    assert peaks["score"].between(0, 1000).all()
    assert (peaks["strand"] == ".").all()
    assert ((peaks["summit"] >= 0) & (peaks["summit"] < peaks["end"] - peaks["start"])).all()
    for chrom, group in peaks.groupby("chrom"):
        centres = _centres(group)
        assert np.all(np.diff(centres) >= 1500)
        assert centres.min() >= 1200 and centres.max() <= CHROM_SIZES[chrom] - 1200
    chrom_rank = peaks["chrom"].map({c: i for i, c in enumerate(CHROM_SIZES)})
    assert peaks.assign(rank=chrom_rank).sort_values(["rank", "start"]).index.equals(peaks.index)


def test_negatives_stay_clear_of_peaks_and_weak_sites(peaks, negatives, planted):
    assert len(negatives) == N_PEAKS // 2
    assert ((negatives["end"] - negatives["start"]) == 1000).all()
    weak = planted[~planted["in_peak"]]
    weak_centres = weak["position"] + weak["motif"].map(
        {name: len(consensus) // 2 for name, (consensus, _) in PLANTED_MOTIFS.items()}
    )
    for chrom, group in negatives.groupby("chrom"):
        centres = _centres(group)
        chrom_peaks = peaks[peaks["chrom"] == chrom]
        for start, end in zip(chrom_peaks["start"], chrom_peaks["end"]):
            assert not np.any((group["start"] < end) & (group["end"] > start))
        sites = np.concatenate([
            _centres(chrom_peaks),
            weak_centres[weak["chrom"] == chrom].to_numpy(),
        ])
        if sites.size:
            assert np.abs(centres[:, None] - sites[None, :]).min() >= 2000
        assert np.all(np.diff(group["start"]) >= 1000)


def test_every_peak_carries_a_motif(peaks, planted):
    in_peak = planted[planted["in_peak"]]
    for chrom, start, end in zip(peaks["chrom"], peaks["start"], peaks["end"]):
        here = in_peak[(in_peak["chrom"] == chrom) & in_peak["position"].between(start, end)]
        assert len(here) >= 1
    assert (~planted["in_peak"]).sum() > 0, "expected weak sites outside peaks"


def test_signal_is_enriched_at_summits(demo, peaks):
    signal = {
        chrom: plus + minus
        for (chrom, plus), minus in zip(
            _bigwig_values(demo["signal_plus"]).items(),
            _bigwig_values(demo["signal_minus"]).values(),
        )
    }
    # Median over 1 kb bins: the typical background, robust to the peaks and
    # sticky regions that make up a large share of such a tiny genome.
    bins = np.concatenate([values.reshape(-1, 1000).mean(axis=1) for values in signal.values()])
    background = np.median(bins)
    assert background > 0
    summits = peaks["start"] + peaks["summit"]
    at_summits = np.mean([
        signal[chrom][summit - 100:summit + 101].mean()
        for chrom, summit in zip(peaks["chrom"], summits)
    ])
    assert at_summits >= 10 * background


def test_planted_sites_match_their_motif(demo, planted, motifs):
    rng = np.random.default_rng(0)
    with pyfaidx.Fasta(str(demo["sequences"])) as fasta:
        for name, ppm in motifs.items():
            width = ppm.shape[1]
            random_bases = rng.choice(list("ACGT"), (5000, width), p=BACKGROUND)
            threshold = np.percentile([_log_odds(s, ppm) for s in random_bases], 99)
            sites = planted[planted["motif"] == name]
            if name not in {"AP1_like", "GATA_like", "CEBP_like"}:
                assert sites.empty, "decoy motifs must never be planted"
                continue
            scores = []
            for chrom, position, strand in zip(sites["chrom"], sites["position"], sites["strand"]):
                sequence = str(fasta[chrom][position:position + width])
                if strand == "-":
                    sequence = sequence.translate(COMPLEMENT)[::-1]
                scores.append(_log_odds(sequence, ppm))
            assert len(scores) > 0
            assert np.mean(np.array(scores) > threshold) >= 0.9, name


def test_meme_file_parses(demo, motifs):
    assert list(motifs) == [
        "AP1_like", "GATA_like", "CEBP_like", "ETS_like", "NRF1_like", "TEAD_like",
    ]
    for ppm in motifs.values():
        assert ppm.shape[0] == 4
        np.testing.assert_allclose(ppm.sum(axis=0), 1.0, atol=1e-6)
    np.testing.assert_allclose(motifs["GATA_like"][:, -1], [0.455, 0.045, 0.455, 0.045])


def test_meme_file_parses_with_memelite(demo):
    memelite_io = pytest.importorskip("memelite.io")
    assert len(memelite_io.read_meme(str(demo["motifs"]))) == 6


def test_too_many_peaks_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="do not fit"):
        simulate_demo(tmp_path, chrom_sizes=CHROM_SIZES, n_peaks=200)


def test_crowded_genome_still_gets_all_negatives(tmp_path):
    paths = simulate_demo(tmp_path, chrom_sizes=CHROM_SIZES, n_peaks=40)
    peaks = pd.read_csv(paths["peaks"], sep="\t", header=None, names=NARROWPEAK_COLUMNS)
    negatives = pd.read_csv(
        paths["negatives"], sep="\t", header=None, names=["chrom", "start", "end"]
    )
    assert len(peaks) == 40 and len(negatives) == 20
    for chrom in CHROM_SIZES:
        peak_centres = _centres(peaks[peaks["chrom"] == chrom])
        negative_centres = _centres(negatives[negatives["chrom"] == chrom])
        assert np.all(np.diff(peak_centres) >= 1500)
        if peak_centres.size and negative_centres.size:
            distances = np.abs(negative_centres[:, None] - peak_centres[None, :])
            assert distances.min() >= 2000
