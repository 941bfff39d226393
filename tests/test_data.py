"""Tests for BED reading (``bpnet_core.io.read_loci``) and window extraction,
sampling and reverse complement in ``bpnet_core.data``."""

import gzip
import logging

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import torch

from bpnet_core.data import (
    TrainingSampler,
    Windows,
    load_windows,
    reverse_complement_sequence,
    reverse_complement_tracks,
)
from bpnet_core.errors import InputError
from bpnet_core.io import read_loci

ALPHABET = "ACGT"
CHROM_SIZES = {"chr1": 3000, "chr2": 2000}
# A run of N on chr2: any window overlapping it is dropped.
N_RUN = (1000, 1010)
IN_WINDOW, OUT_WINDOW = 100, 40


# --------------------------------------------------------------------------
# helpers building tiny real files


def _genome():
    """Known sequences and per-base tracks of the two chromosomes."""
    rng = np.random.RandomState(7)
    seqs, plus, minus, ctl = {}, {}, {}, {}
    for chrom, size in CHROM_SIZES.items():
        seq = rng.choice(list(ALPHABET), size=size)
        if chrom == "chr2":
            seq[N_RUN[0]:N_RUN[1]] = "N"
        seqs[chrom] = "".join(seq)
        # small integers: stored exactly as float32 in the bigWig
        plus[chrom] = rng.randint(0, 10, size=size).astype(np.float64)
        minus[chrom] = rng.randint(0, 5, size=size).astype(np.float64)
        ctl[chrom] = rng.randint(0, 3, size=size).astype(np.float64)
    return seqs, plus, minus, ctl


def _write_fasta(path, seqs, width=60):
    with open(path, "w") as handle:
        for chrom, seq in seqs.items():
            handle.write(f">{chrom}\n")
            for i in range(0, len(seq), width):
                handle.write(seq[i:i + width] + "\n")
    return str(path)


def _write_bigwig(path, tracks):
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader([(chrom, len(values)) for chrom, values in tracks.items()])
    for chrom, values in tracks.items():
        bw.addEntries(chrom, list(range(len(values))), values=[float(v) for v in values], span=1)
    bw.close()
    return str(path)


def _write_bed(path, rows, gz=False):
    text = "".join("\t".join(str(f) for f in row) + "\n" for row in rows)
    if gz:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        with open(path, "w") as handle:
            handle.write(text)
    return str(path)


def _bed3(center, width=200):
    """A BED3 row whose midpoint is `center`."""
    start = center - width // 2
    return ("chr1", start, start + width)


def _one_hot(seq):
    out = np.zeros((4, len(seq)), dtype=np.int8)
    for i, base in enumerate(seq):
        if base in ALPHABET:
            out[ALPHABET.index(base), i] = 1
    return out


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    root = tmp_path_factory.mktemp("genome")
    seqs, plus, minus, ctl = _genome()
    return {
        "dir": root,
        "seqs": seqs,
        "plus": plus,
        "minus": minus,
        "ctl": ctl,
        "fasta": _write_fasta(root / "genome.fa", seqs),
        "signals": [_write_bigwig(root / "plus.bw", plus), _write_bigwig(root / "minus.bw", minus)],
        "controls": [_write_bigwig(root / "ctl.bw", ctl)],
    }


# --------------------------------------------------------------------------
# read_loci


def test_read_loci_centres_on_summit_and_midpoint(tmp_path):
    narrow = _write_bed(tmp_path / "peaks.narrowPeak", [
        ("chr1", 100, 300, "p1", 0, ".", 1.0, 2.0, 3.0, 40),
        ("chr2", 500, 601, "p2", 0, ".", 1.0, 2.0, 3.0, 0),
        ("chr1", 1000, 1200, "p3", 0, ".", 1.0, 2.0, 3.0, -1),  # no summit: midpoint
    ])
    loci = read_loci(narrow)
    assert list(loci.columns) == ["chrom", "start", "end", "center", "source"]
    assert loci["chrom"].tolist() == ["chr1", "chr2", "chr1"]
    assert loci["start"].tolist() == [100, 500, 1000]
    assert loci["end"].tolist() == [300, 601, 1200]
    assert loci["center"].tolist() == [140, 500, 1100]
    assert loci["center"].dtype == np.int64

    bed3 = _write_bed(tmp_path / "plain.bed", [("chr1", 100, 301), ("chr2", 10, 20)])
    loci = read_loci(bed3)
    # midpoint = start + (end - start) // 2
    assert loci["center"].tolist() == [200, 15]
    assert loci["source"].tolist() == [0, 0]


def test_read_loci_bed12_is_not_read_as_narrowpeak(tmp_path):
    # BED12's 10th column is blockCount, not a summit offset.
    bed12 = _write_bed(tmp_path / "genes.bed", [
        ("chr1", 100, 300, "g", 0, "+", 100, 300, "0", 2, "10,10", "0,190")])
    assert read_loci(bed12)["center"].tolist() == [200]


def test_load_windows_accepts_pathlike(genome, tmp_path):
    from pathlib import Path

    bed = Path(_write_bed(tmp_path / "loci.bed", [_bed3(700)]))
    w = load_windows(bed, genome["fasta"], in_window=IN_WINDOW, out_window=OUT_WINDOW)
    assert w.loci["center"].tolist() == [700]


def test_read_loci_skips_header_lines(tmp_path):
    path = tmp_path / "with_header.bed"
    path.write_text("track name=x\nbrowser position chr1\n# comment\n\nchr1\t10\t20\n")
    loci = read_loci(str(path))
    assert loci[["chrom", "start", "end", "center"]].values.tolist() == [["chr1", 10, 20, 15]]


def test_read_loci_gzipped(tmp_path):
    rows = [("chr1", 100, 300, "p1", 0, ".", 1, 2, 3, 7), ("chr2", 0, 10, "p2", 0, ".", 1, 2, 3, 9)]
    gz = _write_bed(tmp_path / "peaks.narrowPeak.gz", rows, gz=True)
    loci = read_loci(gz)
    assert loci["chrom"].tolist() == ["chr1", "chr2"]
    assert loci["center"].tolist() == [107, 9]
    # detected by content, not by the name
    hidden = _write_bed(tmp_path / "peaks_gz_no_suffix.bed", rows, gz=True)
    assert read_loci(hidden)["center"].tolist() == [107, 9]


def test_read_loci_interleaves_files(tmp_path):
    f0 = _write_bed(tmp_path / "a.bed", [("chr1", 0, 10), ("chr1", 100, 110), ("chr1", 200, 210)])
    f1 = _write_bed(tmp_path / "b.bed.gz", [("chr2", 0, 20), ("chr2", 100, 120)], gz=True)
    loci = read_loci([f0, f1])
    assert loci["chrom"].tolist() == ["chr1", "chr2", "chr1", "chr2", "chr1"]
    assert loci["start"].tolist() == [0, 0, 100, 100, 200]
    assert loci["source"].tolist() == [0, 1, 0, 1, 0]
    assert loci.index.tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("content, fragment", [
    ("chr1\t100\n", "line 1 has 2 column(s)"),
    ("chr1\t10\t20\nchr1\tabc\t200\n", "line 2: start and end must be integers, got 'abc'"),
    ("", "holds no intervals"),
    ("# only a comment\ntrack name=x\n", "holds no intervals"),
    ("chr1\t200\t100\n", "invalid interval chr1:200-100"),
])
def test_read_loci_bad_content(tmp_path, content, fragment):
    path = tmp_path / "bad.bed"
    path.write_text(content)
    with pytest.raises(InputError) as err:
        read_loci(str(path), key="peaks")
    message = str(err.value)
    assert str(path) in message
    assert "config key 'peaks'" in message
    assert fragment in message


@pytest.mark.parametrize("text", [
    "chr1\t100\t300\tp1\t0\t.\t1\t2\t3\t50\nchr2\t10\t20\tp2\t0\t.\t1\t2\t3\t-1\n",  # narrowPeak
    "chr1\t100\t300\tp1\t0\t.\t1\t2\t3\t500\n",  # a summit outside the peak: midpoint
    "chr1\t100\t300\tp1\t0\t.\t1\t2\t3\tNA\n",
    "track name=x\n# comment\nchr1\t100\t300\nchr1\t5\t6\n",
    "chr1 100 300\nchr1 400 500\n",  # space-separated
    "chr1\t100\t300\nchr1\t400\t500\textra\n",  # ragged
    "chr1\t100\t300\n# a comment in the middle\nchr1\t400\t500\n",
    "chr1\t1\t2\t.\t0\t+\t1\t2\t0\t1\t1,\t0,\n",  # BED12
    "1\t100\t300\n",
])
def test_read_loci_fast_path_reads_as_the_line_by_line_one(tmp_path, text):
    from bpnet_core.io import _read_bed_exact, _read_bed_fast

    path = tmp_path / "loci.bed"
    path.write_text(text)
    exact = _read_bed_exact(path, "loci")
    fast = _read_bed_fast(path)
    if fast is not None:  # None: the line-by-line reader takes it
        pd.testing.assert_frame_equal(fast, exact)
    pd.testing.assert_frame_equal(read_loci(str(path)).drop(columns="source"), exact)


def test_read_loci_empty_gzipped_file(tmp_path):
    path = _write_bed(tmp_path / "empty.bed.gz", [], gz=True)
    with pytest.raises(InputError, match="holds no intervals") as err:
        read_loci(path, key="negatives")
    assert path in str(err.value) and "config key 'negatives'" in str(err.value)


def test_read_loci_missing_file(tmp_path):
    good = _write_bed(tmp_path / "a.bed", [("chr1", 0, 10)])
    missing = str(tmp_path / "nope.bed")
    with pytest.raises(InputError) as err:
        read_loci([good, missing], key="peaks")
    assert missing in str(err.value)
    assert "config key 'peaks'" in str(err.value)
    assert "not found" in str(err.value)


# --------------------------------------------------------------------------
# load_windows


def test_load_windows_sequence_signals_and_controls(genome, tmp_path):
    centers = [500, 1234, 2001]
    rows = [_bed3(c) for c in centers] + [("chr2", 1500, 1600)]  # chr2 midpoint 1550
    bed = _write_bed(tmp_path / "loci.bed", rows)
    w = load_windows(bed, genome["fasta"], signals=genome["signals"], controls=genome["controls"],
                     in_window=IN_WINDOW, out_window=OUT_WINDOW)
    expected = [("chr1", c) for c in centers] + [("chr2", 1550)]
    assert len(w) == 4
    assert w.X.shape == (4, 4, IN_WINDOW) and w.X.dtype == torch.int8
    assert w.y.shape == (4, 2, OUT_WINDOW) and w.y.dtype == torch.float32
    assert w.X_ctl.shape == (4, 1, IN_WINDOW)
    assert w.max_jitter == 0
    assert list(zip(w.loci["chrom"], w.loci["center"])) == expected
    for i, (chrom, c) in enumerate(expected):
        lo, hi = c - IN_WINDOW // 2, c + IN_WINDOW // 2
        olo, ohi = c - OUT_WINDOW // 2, c + OUT_WINDOW // 2
        np.testing.assert_array_equal(w.X[i].numpy(), _one_hot(genome["seqs"][chrom][lo:hi]))
        np.testing.assert_array_equal(w.y[i, 0].numpy(), genome["plus"][chrom][olo:ohi])
        np.testing.assert_array_equal(w.y[i, 1].numpy(), genome["minus"][chrom][olo:ohi])
        np.testing.assert_array_equal(w.X_ctl[i, 0].numpy(), genome["ctl"][chrom][lo:hi])


def test_load_windows_without_signals(genome, tmp_path):
    bed = _write_bed(tmp_path / "loci.bed", [_bed3(700)])
    w = load_windows(bed, genome["fasta"], in_window=IN_WINDOW, out_window=OUT_WINDOW)
    assert w.y is None and w.X_ctl is None
    np.testing.assert_array_equal(w.X[0].numpy(), _one_hot(genome["seqs"]["chr1"][650:750]))


def test_load_windows_jitter_and_centered(genome, tmp_path):
    j = 7
    c = 900
    bed = _write_bed(tmp_path / "loci.bed", [_bed3(c)])
    w = load_windows(bed, genome["fasta"], signals=genome["signals"], controls=genome["controls"],
                     in_window=IN_WINDOW, out_window=OUT_WINDOW, max_jitter=j)
    assert w.max_jitter == j
    assert w.X.shape == (1, 4, IN_WINDOW + 2 * j)
    assert w.y.shape == (1, 2, OUT_WINDOW + 2 * j)
    lo = c - IN_WINDOW // 2 - j
    np.testing.assert_array_equal(w.X[0].numpy(), _one_hot(genome["seqs"]["chr1"][lo:lo + IN_WINDOW + 2 * j]))
    olo = c - OUT_WINDOW // 2 - j
    np.testing.assert_array_equal(w.y[0, 0].numpy(), genome["plus"]["chr1"][olo:olo + OUT_WINDOW + 2 * j])
    np.testing.assert_array_equal(w.X_ctl[0, 0].numpy(), genome["ctl"]["chr1"][lo:lo + IN_WINDOW + 2 * j])

    centred = w.centered(IN_WINDOW, OUT_WINDOW)
    np.testing.assert_array_equal(centred.X[0].numpy(), _one_hot(genome["seqs"]["chr1"][c - 50:c + 50]))
    np.testing.assert_array_equal(centred.y[0, 1].numpy(), genome["minus"]["chr1"][c - 20:c + 20])
    np.testing.assert_array_equal(centred.X_ctl[0, 0].numpy(), genome["ctl"]["chr1"][c - 50:c + 50])


def test_load_windows_drops_off_end_and_n(genome, tmp_path, caplog):
    half = IN_WINDOW // 2
    size1, size2 = CHROM_SIZES["chr1"], CHROM_SIZES["chr2"]
    rows = [
        ("chr1", half - 1, half),              # centre 49: starts at -1 -> dropped
        ("chr1", half, half + 1),              # centre 50: window [0, 100) -> kept
        ("chr1", size1 - half, size1 - half + 1),          # window ends at 3000 -> kept
        ("chr1", size1 - half + 1, size1 - half + 2),      # ends at 3001 -> dropped
        ("chr2", 1005, 1006),                  # over the N run -> dropped
        ("chr2", N_RUN[0] - half + 1, N_RUN[0] - half + 2),  # window [901, 1001) holds one N -> dropped
        ("chr2", N_RUN[0] - half, N_RUN[0] - half + 1),      # window [900, 1000): no N -> kept
        ("chr2", N_RUN[1] + half, N_RUN[1] + half + 1),    # window [1010, 1110): no N -> kept
        ("chr2", size2 - 10, size2 - 9),       # off the end -> dropped
    ]
    bed = _write_bed(tmp_path / "loci.bed", rows)
    with caplog.at_level(logging.INFO, logger="bpnet_core.data"):
        w = load_windows(bed, genome["fasta"], in_window=IN_WINDOW, out_window=OUT_WINDOW)
    assert list(zip(w.loci["chrom"], w.loci["center"])) == [
        ("chr1", half), ("chr1", size1 - half), ("chr2", N_RUN[0] - half), ("chr2", N_RUN[1] + half)]
    np.testing.assert_array_equal(w.X[0].numpy(), _one_hot(genome["seqs"]["chr1"][:IN_WINDOW]))
    np.testing.assert_array_equal(w.X[1].numpy(), _one_hot(genome["seqs"]["chr1"][-IN_WINDOW:]))
    assert (w.X.sum(dim=1) == 1).all()
    text = caplog.text
    assert bed in text
    assert "9 read" in text
    assert "3 off a chromosome end" in text
    assert "2 with N in the sequence" in text
    assert "4 kept" in text


def test_load_windows_chroms_filter(genome, tmp_path, caplog):
    bed = _write_bed(tmp_path / "loci.bed", [_bed3(500), ("chr2", 1500, 1600), _bed3(800)])
    with caplog.at_level(logging.INFO, logger="bpnet_core.data"):
        w = load_windows(bed, genome["fasta"], chroms=["chr2"], in_window=IN_WINDOW, out_window=OUT_WINDOW)
    assert w.loci["chrom"].tolist() == ["chr2"]
    assert w.loci["center"].tolist() == [1550]
    np.testing.assert_array_equal(w.X[0].numpy(), _one_hot(genome["seqs"]["chr2"][1500:1600]))
    assert "2 on other chromosomes" in caplog.text
    # chromosomes not in the FASTA are fine when the chroms filter drops them
    bed2 = _write_bed(tmp_path / "loci2.bed", [_bed3(500), ("chrUn", 10, 20)])
    w = load_windows(bed2, genome["fasta"], chroms=["chr1"], in_window=IN_WINDOW, out_window=OUT_WINDOW)
    assert w.loci["chrom"].tolist() == ["chr1"]


def _totals(genome, centers):
    lo = OUT_WINDOW // 2
    return np.array([
        genome["plus"]["chr1"][c - lo:c + lo].sum() + genome["minus"]["chr1"][c - lo:c + lo].sum()
        for c in centers
    ])


def test_load_windows_count_filters(genome, tmp_path, caplog):
    centers = [200, 400, 600, 800, 1000, 1200, 1400]
    totals = _totals(genome, centers)
    assert len(set(totals)) == len(totals)  # distinct, so the thresholds split cleanly
    order = np.argsort(totals)
    lo_total, hi_total = totals[order[2]], totals[order[4]]
    bed = _write_bed(tmp_path / "loci.bed", [_bed3(c) for c in centers])
    with caplog.at_level(logging.INFO, logger="bpnet_core.data"):
        w = load_windows(bed, genome["fasta"], signals=genome["signals"], in_window=IN_WINDOW,
                         out_window=OUT_WINDOW, min_counts=lo_total, max_counts=hi_total)
    # bounds are inclusive, counts are over both tracks of the output window
    expected = [c for c, t in zip(centers, totals) if lo_total <= t <= hi_total]
    assert len(expected) == 3
    assert w.loci["center"].tolist() == expected
    np.testing.assert_array_equal(w.y.sum(dim=(1, 2)).numpy(), _totals(genome, expected))
    assert "2 below min_counts" in caplog.text
    assert "2 above max_counts" in caplog.text
    assert "3 kept" in caplog.text

    only_min = load_windows(bed, genome["fasta"], signals=genome["signals"], in_window=IN_WINDOW,
                            out_window=OUT_WINDOW, min_counts=lo_total)
    assert only_min.loci["center"].tolist() == [c for c, t in zip(centers, totals) if t >= lo_total]


def test_load_windows_nothing_left(genome, tmp_path):
    bed = _write_bed(tmp_path / "loci.bed", [_bed3(500), _bed3(900), ("chr2", 1500, 1600)])
    with pytest.raises(InputError) as err:
        load_windows(bed, genome["fasta"], signals=genome["signals"], chroms=["chr1"],
                     in_window=IN_WINDOW, out_window=OUT_WINDOW, min_counts=1e9, key="peaks")
    message = str(err.value)
    assert bed in message
    assert "config key 'peaks'" in message
    assert "chroms chr1" in message
    assert "no loci left" in message
    assert "3 read" in message
    assert "1 on other chromosomes" in message
    assert "2 below min_counts" in message
    assert "0 kept" in message


def test_load_windows_all_off_end(genome, tmp_path):
    bed = _write_bed(tmp_path / "loci.bed", [("chr1", 0, 10), ("chr2", 1990, 2000)])
    with pytest.raises(InputError, match="2 off a chromosome end") as err:
        load_windows(bed, genome["fasta"], in_window=IN_WINDOW, out_window=OUT_WINDOW)
    assert bed in str(err.value)


def test_load_windows_unknown_chromosomes(genome, tmp_path):
    bed = _write_bed(tmp_path / "loci.bed", [_bed3(500), ("1", 10, 200), ("chrM", 5, 50)])
    with pytest.raises(InputError) as err:
        load_windows(bed, genome["fasta"], in_window=IN_WINDOW, out_window=OUT_WINDOW, key="peaks")
    message = str(err.value)
    assert bed in message
    assert "config key 'peaks'" in message
    assert "chromosomes not in the FASTA" in message
    assert genome["fasta"] in message
    assert "1, chrM" in message
    assert "chr1" in message  # names what the FASTA has


def test_load_windows_missing_loci_file(genome, tmp_path):
    missing = str(tmp_path / "absent.bed")
    with pytest.raises(InputError, match="not found") as err:
        load_windows(missing, genome["fasta"], in_window=IN_WINDOW, out_window=OUT_WINDOW, key="peaks")
    assert missing in str(err.value) and "config key 'peaks'" in str(err.value)


def test_load_windows_interleaves_lists(genome, tmp_path):
    peaks = _write_bed(tmp_path / "peaks.bed", [_bed3(300), _bed3(700)])
    negatives = _write_bed(tmp_path / "neg.bed.gz", [("chr2", 400, 500), ("chr2", 1400, 1500)], gz=True)
    w = load_windows([peaks, negatives], genome["fasta"], in_window=IN_WINDOW, out_window=OUT_WINDOW)
    assert w.loci["source"].tolist() == [0, 1, 0, 1]
    assert w.loci["center"].tolist() == [300, 450, 700, 1450]
    np.testing.assert_array_equal(w.X[1].numpy(), _one_hot(genome["seqs"]["chr2"][400:500]))


# --------------------------------------------------------------------------
# reverse complement


def _encode(seq):
    return torch.from_numpy(_one_hot(seq)).unsqueeze(0)


def _decode(X):
    return "".join(ALPHABET[i] for i in X[0].argmax(dim=0).tolist())


def test_reverse_complement_sequence():
    assert _decode(reverse_complement_sequence(_encode("AACGT"))) == "ACGTT"
    assert _decode(reverse_complement_sequence(_encode("GATTACA"))) == "TGTAATC"
    X = torch.from_numpy(np.stack([_one_hot("ACCGTA"), _one_hot("TTTGCA")]))
    rc = reverse_complement_sequence(X)
    assert _decode(rc[:1]) == "TACGGT" and _decode(rc[1:]) == "TGCAAA"
    assert torch.equal(reverse_complement_sequence(rc), X)


def test_reverse_complement_tracks_stranded_pair():
    tracks = torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]])
    expected = torch.tensor([[[6.0, 5.0, 4.0], [3.0, 2.0, 1.0]]])
    assert torch.equal(reverse_complement_tracks(tracks), expected)


def test_reverse_complement_tracks_two_pairs():
    tracks = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    out = reverse_complement_tracks(tracks)
    for n in range(2):
        for pair in range(2):
            plus, minus = tracks[n, 2 * pair], tracks[n, 2 * pair + 1]
            assert torch.equal(out[n, 2 * pair], minus.flip(0))
            assert torch.equal(out[n, 2 * pair + 1], plus.flip(0))
    assert torch.equal(reverse_complement_tracks(out), tracks)


def test_reverse_complement_tracks_odd():
    tracks = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    assert torch.equal(reverse_complement_tracks(tracks), torch.tensor([[[4.0, 3.0, 2.0, 1.0]]]))
    three = torch.arange(12, dtype=torch.float32).reshape(1, 3, 4)
    assert torch.equal(reverse_complement_tracks(three), three.flip(2))
    assert torch.equal(reverse_complement_tracks(reverse_complement_tracks(three)), three)


# --------------------------------------------------------------------------
# TrainingSampler

S_IN, S_OUT, S_JITTER, S_N = 24, 8, 3, 64


@pytest.fixture(scope="module")
def windows():
    g = torch.Generator().manual_seed(0)
    bases = torch.randint(0, 4, (S_N, S_IN + 2 * S_JITTER), generator=g)
    X = torch.nn.functional.one_hot(bases, 4).permute(0, 2, 1).to(torch.int8).contiguous()
    # Distinct values everywhere, so a crop identifies its row and shift.
    y = torch.arange(S_N * 2 * (S_OUT + 2 * S_JITTER), dtype=torch.float32).reshape(S_N, 2, -1)
    X_ctl = -torch.arange(S_N * 2 * (S_IN + 2 * S_JITTER), dtype=torch.float32).reshape(S_N, 2, -1) - 1
    loci = pd.DataFrame({"chrom": ["chr1"] * S_N, "start": 0, "end": 1, "center": 0, "source": 0})
    return Windows(X=X, y=y, X_ctl=X_ctl, loci=loci, max_jitter=S_JITTER)


def _locate(w, X, X_ctl, y):
    """(row, shift, flipped) of one sampled example inside the stored windows."""
    found = []
    for flipped in (False, True):
        Xf = reverse_complement_sequence(X[None])[0] if flipped else X
        yf = reverse_complement_tracks(y[None])[0] if flipped else y
        cf = reverse_complement_tracks(X_ctl[None])[0] if flipped else X_ctl
        for shift in range(2 * w.max_jitter + 1):
            seq_rows = (w.X[:, :, shift:shift + S_IN].float() == Xf).all(dim=2).all(dim=1)
            for row in torch.nonzero(seq_rows).flatten().tolist():
                if (torch.equal(w.y[row, :, shift:shift + S_OUT], yf)
                        and torch.equal(w.X_ctl[row, :, shift:shift + S_IN], cf)):
                    found.append((row, shift, flipped))
    assert len(found) == 1, found
    return found[0]


def _epoch(w, seed, rc=True, batch_size=16):
    sampler = TrainingSampler(w, batch_size, S_IN, S_OUT, reverse_complement=rc, random_state=seed)
    return list(sampler)


def test_sampler_batches_are_sub_windows(windows):
    batches = _epoch(windows, seed=1)
    assert len(batches) == S_N // 16
    located = []
    for X, X_ctl, y, _ in batches:
        assert X.dtype == torch.float32
        assert X.shape == (16, 4, S_IN) and X_ctl.shape == (16, 2, S_IN) and y.shape == (16, 2, S_OUT)
        for i in range(len(X)):
            located.append(_locate(windows, X[i], X_ctl[i], y[i]))
    rows = [r for r, _, _ in located]
    assert sorted(rows) == list(range(S_N))  # each window once per epoch
    assert rows != sorted(rows)  # shuffled
    shifts = {s for _, s, _ in located}
    assert shifts <= set(range(2 * S_JITTER + 1))
    assert shifts == set(range(2 * S_JITTER + 1))  # the whole range is used
    flipped = sum(f for _, _, f in located)
    assert 0.3 * S_N <= flipped <= 0.7 * S_N


def test_sampler_without_reverse_complement(windows):
    for X, X_ctl, y, _ in _epoch(windows, seed=3, rc=False):
        for i in range(len(X)):
            assert _locate(windows, X[i], X_ctl[i], y[i])[2] is False


def test_sampler_drops_partial_batch(windows):
    sampler = TrainingSampler(windows, 24, S_IN, S_OUT, random_state=0)
    assert len(sampler) == 2
    assert [len(X) for X, *_ in sampler] == [24, 24]
    big = TrainingSampler(windows, 1000, S_IN, S_OUT, random_state=0)
    assert len(big) == 1
    assert [len(X) for X, *_ in big] == [S_N]


def test_sampler_random_state(windows):
    a, b, c = _epoch(windows, seed=5), _epoch(windows, seed=5), _epoch(windows, seed=6)
    for (Xa, Ca, ya, _), (Xb, Cb, yb, _) in zip(a, b):
        assert torch.equal(Xa, Xb) and torch.equal(Ca, Cb) and torch.equal(ya, yb)
    assert any(not torch.equal(ya, yc) for (_, _, ya, _), (_, _, yc, _) in zip(a, c))
    # a second epoch of the same sampler is a new shuffle
    sampler = TrainingSampler(windows, 16, S_IN, S_OUT, random_state=5)
    first, second = list(sampler), list(sampler)
    assert any(not torch.equal(f[2], s[2]) for f, s in zip(first, second))


def test_sampler_without_controls(windows):
    w = Windows(X=windows.X, y=windows.y, X_ctl=None, loci=windows.loci, max_jitter=S_JITTER)
    for X, X_ctl, y, _ in TrainingSampler(w, 16, S_IN, S_OUT, random_state=0):
        assert X_ctl is None
        assert X.shape == (16, 4, S_IN) and y.shape == (16, 2, S_OUT)
