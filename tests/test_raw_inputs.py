"""Raw ENCODE inputs: reads to bigWigs (strand and shift base by base) and MACS3 peaks."""

import gzip

import numpy as np
import pandas as pd
import pyBigWig
import pysam
import pytest
from conftest import planned_jobs, snakemake, write_json

from bpnet_core.config import PeakCallingConfig
from bpnet_core.errors import InputError
from bpnet_core.io import read_loci
from bpnet_core.peaks import call_peaks
from bpnet_core.reads import reads_to_bigwig
from bpnet_core.report import write_dataset_report

CHROMS = {"chr1": 1000, "chr2": 500}


def write_fasta(path, sizes, seed=0):
    rng = np.random.default_rng(seed)
    with open(path, "w") as handle:
        for chrom, size in sizes.items():
            handle.write(f">{chrom}\n{''.join(rng.choice(list('ACGT'), size))}\n")
    return path


def write_bam(path, reads, sizes, sort=True):
    """`reads`: (chrom, start, cigar, reverse, flag) with 0-based aligned starts; chrM is not in the FASTA."""
    header = {"HD": {"VN": "1.6"}, "SQ": [{"SN": c, "LN": n} for c, n in {**sizes, "chrM": 16569}.items()]}
    names = [sq["SN"] for sq in header["SQ"]]
    unsorted = path.with_suffix(".unsorted.bam")
    with pysam.AlignmentFile(str(unsorted), "wb", header=header) as out:
        for i, (chrom, start, cigar, reverse, flag) in enumerate(reads):
            read = pysam.AlignedSegment()
            read.query_name = f"r{i}"
            read.reference_id = names.index(chrom)
            read.reference_start = start
            read.cigarstring = cigar
            length = read.query_length or read.infer_query_length()
            read.query_sequence = "A" * length
            read.query_qualities = pysam.qualitystring_to_array("I" * length)
            read.flag = flag | (0x10 if reverse else 0)
            read.mapping_quality = 60
            out.write(read)
    if sort:
        pysam.sort("-o", str(path), str(unsorted))
        unsorted.unlink()
    else:
        unsorted.rename(path)
    return path


def track(path):
    with pyBigWig.open(str(path)) as bw:
        return {chrom: np.nan_to_num(np.array(bw.values(chrom, 0, size))) for chrom, size in bw.chroms().items()}


def nonzero(values):
    return {int(i): float(values[i]) for i in np.flatnonzero(values)}


READS = [
    ("chr1", 100, "50M", False, 0),        # 5' end 100
    ("chr1", 200, "50M", True, 0),         # 5' end 249 (last aligned base)
    ("chr1", 300, "10M5D20M", True, 0),    # spans 35 bp: 5' end 334
    ("chr1", 400, "5S45M", False, 0),      # soft clip: the aligned start, 400
    ("chr1", 100, "50M", False, 0),        # a second read at 100
    ("chr2", 0, "30M", True, 0),           # 5' end 29
    ("chr2", 2, "30M", False, 0),          # plus end 2: shifted -4 it would run off
    ("chr1", 500, "50M", False, 0x400),    # duplicate: skipped
    ("chr1", 510, "50M", False, 0x100),    # secondary: skipped
    ("chr1", 520, "50M", False, 0x800),    # supplementary: skipped
    ("chrM", 10, "50M", False, 0),         # contig the FASTA lacks: dropped
]


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    return write_fasta(tmp_path_factory.mktemp("genome") / "genome.fa", CHROMS)


def test_stranded_bam_counts_each_read_at_its_five_prime_end(genome, tmp_path):
    bam = write_bam(tmp_path / "chip.bam", READS, CHROMS)
    plus, minus = tmp_path / "plus.bw", tmp_path / "minus.bw"
    totals = reads_to_bigwig([str(bam)], genome, [plus, minus])
    assert totals == [4, 3]
    plus_track, minus_track = track(plus), track(minus)
    assert nonzero(plus_track["chr1"]) == {100: 2.0, 400: 1.0}
    assert nonzero(plus_track["chr2"]) == {2: 1.0}
    assert nonzero(minus_track["chr1"]) == {249: 1.0, 334: 1.0}
    assert nonzero(minus_track["chr2"]) == {29: 1.0}
    with pyBigWig.open(str(plus)) as bw:
        assert bw.chroms() == CHROMS  # the FASTA's chromosomes, not the BAM's chrM


def test_unstranded_tn5_shift_moves_plus_ends_right_and_minus_ends_left(genome, tmp_path):
    # An unsorted SAM of the same reads: no index needed, format by name.
    bam = write_bam(tmp_path / "atac.bam", READS, CHROMS, sort=False)
    sam = tmp_path / "atac.sam"
    pysam.view("-h", "-o", str(sam), str(bam), catch_stdout=False)
    out = tmp_path / "atac.bw"
    reads_to_bigwig([str(sam)], genome, [out], shift=(4, -4))
    values = track(out)
    assert nonzero(values["chr1"]) == {104: 2.0, 404: 1.0, 245: 1.0, 330: 1.0}
    assert nonzero(values["chr2"]) == {6: 1.0, 25: 1.0}


def test_fragments_give_both_cut_sites_and_replicates_pool(genome, tmp_path):
    rep1 = tmp_path / "rep1.fragments.tsv.gz"
    with gzip.open(rep1, "wt") as handle:
        handle.write("# comment line of a 10x fragment file\n")
        handle.write("chr1\t100\t300\tAAACG-1\t2\nchr2\t10\t60\tAAACG-1\t1\nchrUn\t5\t50\tX\t1\n")
    rep2 = tmp_path / "rep2.tsv"
    rep2.write_text("chr1\t100\t180\tCCGTA-1\t1\n")
    out = tmp_path / "frag.bw"
    reads_to_bigwig([str(rep1), str(rep2)], genome, [out], shift=(0, 1))
    values = track(out)
    # Ends: start + 0 and (end - 1) + 1.
    assert nonzero(values["chr1"]) == {100: 2.0, 300: 1.0, 180: 1.0}
    assert nonzero(values["chr2"]) == {10: 1.0, 60: 1.0}


def test_reads_on_no_chromosome_of_the_fasta_is_one_clear_error(genome, tmp_path):
    reads = tmp_path / "other.tsv"
    reads.write_text("1\t100\t300\tA\t1\n")
    out = tmp_path / "none.bw"
    with pytest.raises(InputError, match=r"other.tsv \(config key 'signals'\): no read on a chromosome of the FASTA"):
        reads_to_bigwig([str(reads)], genome, [out])
    assert not out.exists() and not list(tmp_path.glob(".none.bw*"))


def _chip_reads(rng, sizes, centers, n_per_peak=120, n_background=6000):
    reads = []
    for chrom, center in centers:
        for middle in rng.normal(center, 25, n_per_peak).astype(int):
            length = int(rng.integers(150, 250))
            start = middle - length // 2
            if rng.random() < 0.5:
                reads.append((chrom, start, "36M", False, 0))
            else:
                reads.append((chrom, start + length - 36, "36M", True, 0))
    chroms = list(sizes)
    weights = np.array([sizes[c] for c in chroms], float)
    for chrom in rng.choice(chroms, n_background, p=weights / weights.sum()):
        reads.append((chrom, int(rng.integers(0, sizes[chrom] - 36)), "36M", bool(rng.random() < 0.5), 0))
    return reads


def test_macs3_calls_the_enriched_regions_with_summits(tmp_path):
    sizes = {"chr1": 120_000, "chr2": 80_000}
    genome = write_fasta(tmp_path / "genome.fa", sizes, seed=1)
    rng = np.random.default_rng(0)
    centers = [("chr1", int(c)) for c in np.linspace(5_000, 115_000, 12)] + \
              [("chr2", int(c)) for c in np.linspace(5_000, 75_000, 8)]
    bam = write_bam(tmp_path / "chip.bam", _chip_reads(rng, sizes, centers), sizes)
    control = write_bam(tmp_path / "control.bam", _chip_reads(rng, sizes, [], n_background=6000), sizes)
    output = tmp_path / "inputs" / "peaks.narrowPeak"
    config = PeakCallingConfig(sequences=str(genome), signals=[str(bam)], controls=[str(control)],
                               stranded=True, output_filename=str(output))
    peaks = call_peaks(config)
    loci = read_loci(str(output))  # the pipeline reads summits as window centres
    found = [min(abs(loci.loc[loci.chrom == c, "center"] - x), default=10**9) for c, x in centers]
    assert sum(d <= 50 for d in found) >= 18, found
    assert len(peaks) <= len(centers) + 2
    assert list(peaks["chrom"]) == sorted(peaks["chrom"])
    assert not list(output.parent.glob(".call_peaks.*"))  # MACS3's scratch folder is gone


def test_macs3_with_no_enrichment_says_which_keys_to_change(tmp_path):
    sizes = {"chr1": 50_000}
    genome = write_fasta(tmp_path / "genome.fa", sizes)
    rng = np.random.default_rng(1)
    cut_sites = tmp_path / "flat.fragments.tsv"
    starts = np.sort(rng.integers(0, 49_000, 300))
    cut_sites.write_text("".join(f"chr1\t{s}\t{s + 200}\tX\t1\n" for s in starts))
    output = tmp_path / "peaks.narrowPeak"
    config = PeakCallingConfig(sequences=str(genome), signals=[str(cut_sites)], stranded=False,
                               peak_qvalue=1e-6, output_filename=str(output))
    with pytest.raises(InputError, match="MACS3 called no peak at q < 1e-06 .*'peak_qvalue'"):
        call_peaks(config)
    assert not output.exists()


def test_macs3_peaks_at_chromosome_ends_are_clipped_to_them(tmp_path):
    # MACS3 extends cut sites by 150 bp (--shift -75): piles at the first
    # and last bases of a chromosome give peaks past its ends, which every
    # later stage would take for loci of another genome build.
    sizes = {"chr1": 60_000, "chr2": 40_000}
    genome = write_fasta(tmp_path / "genome.fa", sizes, seed=3)
    rng = np.random.default_rng(3)
    ends = [("chr1", 30), ("chr1", 59_970), ("chr2", 20_000)]
    rows = []
    for chrom, site in ends:
        for _ in range(150):
            start = int(np.clip(site + rng.integers(-20, 20), 0, sizes[chrom] - 60))
            rows.append((chrom, start, min(start + int(rng.integers(40, 60)), sizes[chrom])))
    for _ in range(1500):
        chrom = str(rng.choice(list(sizes)))
        start = int(rng.integers(0, sizes[chrom] - 400))
        rows.append((chrom, start, start + 200))
    fragments = tmp_path / "atac.frag.gz"
    with gzip.open(fragments, "wt") as handle:
        handle.writelines(f"{c}\t{s}\t{e}\tBC-1\t1\n" for c, s, e in sorted(rows))
    output = tmp_path / "peaks.narrowPeak"
    peaks = call_peaks(PeakCallingConfig(sequences=str(genome), signals=[str(fragments)], stranded=False,
                                         output_filename=str(output)))
    assert (peaks["start"] >= 0).all() and (peaks["end"] <= peaks["chrom"].map(sizes)).all()
    assert ((peaks["summit"] >= 0) & (peaks["summit"] < peaks["end"] - peaks["start"])).all()
    loci = read_loci(str(output))
    for chrom, site in ends:  # each pile is still called, with its summit near it
        assert min(abs(loci.loc[loci.chrom == chrom, "center"] - site)) <= 60, (chrom, site, loci)
    assert peaks["start"].min() == 0 and (peaks["end"] == peaks["chrom"].map(sizes)).any()


def _atac_fragments(path, rng, sizes, centers, n_per_peak=150, n_background=3000):
    rows = []
    for chrom, center in centers:
        for middle in rng.normal(center, 40, n_per_peak).astype(int):
            length = int(rng.integers(50, 300))
            rows.append((chrom, middle - length // 2, middle - length // 2 + length))
    chroms = list(sizes)
    weights = np.array([sizes[c] for c in chroms], float)
    for chrom in rng.choice(chroms, n_background, p=weights / weights.sum()):
        start = int(rng.integers(0, sizes[chrom] - 400))
        rows.append((chrom, start, start + int(rng.integers(50, 300))))
    with gzip.open(path, "wt") as handle:
        handle.writelines(f"{c}\t{s}\t{e}\tBC-1\t1\n" for c, s, e in sorted(rows))
    return path


def test_workflow_starts_from_bam_and_fragment_files(tmp_path):
    """A BPNet dataset from BAMs with no peaks, and a ChromBPNet one from fragments with neither
    peaks nor negatives: the input rules are planned first, ahead of the fits, and run."""
    sizes = {"chr1": 120_000, "chr2": 80_000}
    genome = write_fasta(tmp_path / "genome.fa", sizes, seed=1)
    rng = np.random.default_rng(0)
    centers = [("chr1", int(c)) for c in np.linspace(5_000, 115_000, 12)] + \
              [("chr2", int(c)) for c in np.linspace(5_000, 75_000, 8)]
    chip_reads = _chip_reads(rng, sizes, centers)
    chip = write_bam(tmp_path / "chip.bam", chip_reads, sizes)
    control = write_bam(tmp_path / "control.bam", _chip_reads(rng, sizes, [], n_background=6000), sizes)
    fragments = _atac_fragments(tmp_path / "atac.fragments.tsv.gz", rng, sizes, centers)
    excluded = tmp_path / "exclusion.bed"
    excluded.write_text("chr1\t40000\t60000\n")
    common = {"sequences": str(genome), "training_chroms": ["chr1"], "validation_chroms": ["chr2"],
              "in_window": 1000, "out_window": 500, "fit_parameters": {"max_epochs": 1}}
    configs = [write_json(tmp_path / "raw_chip.json", {
                   "name": "raw_chip", **common, "signals": [str(chip)], "controls": [str(control)]}),
               write_json(tmp_path / "raw_atac.json", {
                   "name": "raw_atac", **common, "signals": [str(fragments)], "negatives": None,
                   "exclusion_lists": [str(excluded)]})]
    batch = write_json(tmp_path / "raw.json", {"datasets": [str(c) for c in configs]})

    planned = planned_jobs(tmp_path, batch)
    assert {rule: planned[rule] for rule in INPUT_RULES} == INPUT_RULES
    assert planned["fit_model"] == 1 and planned["fit_bias_model"] == 1

    inputs = {name: tmp_path / "results" / name / "inputs" for name in ("raw_chip", "raw_atac")}
    targets = [inputs["raw_chip"] / f for f in ("signals.plus.bw", "signals.minus.bw", "controls.plus.bw",
                                                "controls.minus.bw", "peaks.narrowPeak")]
    targets += [inputs["raw_atac"] / f for f in ("signals.bw", "peaks.narrowPeak", "negatives.bed")]
    run = snakemake(tmp_path, batch, *(str(t.relative_to(tmp_path)) for t in targets))
    assert run.returncode == 0, run.stdout + run.stderr

    plus, minus = track(targets[0]), track(targets[1])
    n_plus = sum(not reverse for *_, reverse, _ in chip_reads)
    assert sum(v.sum() for v in plus.values()) == n_plus
    assert sum(v.sum() for v in minus.values()) == len(chip_reads) - n_plus
    atac = track(inputs["raw_atac"] / "signals.bw")
    assert sum(v.sum() for v in atac.values()) == 2 * (20 * 150 + 3000)  # two cut sites per fragment

    for name in inputs:
        loci = read_loci(str(inputs[name] / "peaks.narrowPeak"))
        found = [min(abs(loci.loc[loci.chrom == c, "center"] - x), default=10**9) for c, x in centers]
        assert sum(d <= 100 for d in found) >= 16, (name, found)

    negatives = read_loci(str(inputs["raw_atac"] / "negatives.bed"))
    peaks = read_loci(str(inputs["raw_atac"] / "peaks.narrowPeak"))
    assert len(negatives) >= 0.5 * len(peaks)
    assert (negatives["end"] - negatives["start"] == 1000).all()
    for _, neg in negatives.iterrows():
        same = peaks[peaks.chrom == neg.chrom]
        assert (abs(same["center"] - neg.center) >= 1000).all()
        assert not (neg.chrom == "chr1" and neg.start < 60000 and neg.end > 40000)
    gc = pd.read_csv(inputs["raw_atac"] / "negatives.gc.tsv", sep="\t")
    assert set(gc["set"]) == {"peaks", "negatives"}
    assert "two-sample KS statistic" in (tmp_path / "results/raw_atac/logs/draw_negatives.log").read_text()

    # The dataset report shows what was made, and the two GC distributions.
    sections = write_dataset_report(tmp_path / "results" / "raw_atac", "raw_atac", tmp_path / "report.html")
    assert sections == ["inputs"]
    page = (tmp_path / "report.html").read_text()
    assert "two-sample Kolmogorov-Smirnov statistic" in page and "MACS3 peaks" in page
    assert page.count('<img src="data:image/png;base64,') == 1


INPUT_RULES = {"convert_reads_to_stranded_bigwigs": 2, "convert_reads_to_bigwig": 1, "call_peaks": 2,
               "draw_negatives": 1}


def _pipeline(genome, **keys):
    return {"name": "raw", "sequences": str(genome), "training_chroms": ["chr1"], "validation_chroms": ["chr2"],
            "fit_parameters": {}, **keys}


@pytest.mark.parametrize("keys, message", [
    ({"signals": ["a.bam", "b.bw"]}, "key 'signals': mixes reads files and bigWigs"),
    ({"signals": ["a.bw"]}, "missing required key 'loci': give peaks (BED or narrowPeak), or reads files"),
    ({"signals": ["a.bw"], "loci": "p.bed", "predict_parameters": {"signals": ["a.bam"]}},
     "key 'predict_parameters.signals': reads files are converted for the fit's signals only"),
    ({"signals": ["a.bam"], "read_shift": [4]}, "read_shift"),
])
def test_raw_input_config_errors_name_the_key(genome, keys, message):
    from bpnet_core.config import parse_config

    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_config(_pipeline(genome, **keys), source="raw.json")


def test_missing_bam_is_reported_before_anything_runs(genome, tmp_path):
    from bpnet_core.batch import load_dataset

    with pytest.raises(InputError, match=r"raw.json: .*missing.bam: file not found "
                                         r"\(config key 'signals\[0\]'\)"):
        load_dataset(_pipeline(genome, signals=[str(tmp_path / "missing.bam")]), source="raw.json")
    # Files the input rules will write are not required up front.
    bam = write_bam(tmp_path / "chip.bam", READS, CHROMS)
    dataset = load_dataset(_pipeline(genome, signals=[str(bam)]), source="raw.json")
    assert list(dataset.stages)[:2] == ["signals_bigwig", "call_peaks"]
    assert dataset.stages["fit"].signals == ["results/raw/inputs/signals.plus.bw", "results/raw/inputs/signals.minus.bw"]
    assert dataset.stages["fit"].loci == "results/raw/inputs/peaks.narrowPeak"


def test_command_line_converts_reads_and_calls_peaks(genome, tmp_path):
    import subprocess
    import sys

    fragments = tmp_path / "atac.fragments.tsv"
    fragments.write_text("chr1\t100\t300\tA\t1\nchr2\t10\t60\tA\t1\n")
    out = tmp_path / "atac.bw"
    run = subprocess.run([sys.executable, "-m", "bpnet_core", "bigwig", str(fragments), "--sequences", str(genome),
                          "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert nonzero(track(out)["chr1"]) == {100: 1.0, 300: 1.0}  # the default fragment shift (0, +1)
    run = subprocess.run([sys.executable, "-m", "bpnet_core", "peaks", str(fragments), "--sequences", str(genome),
                          "-o", str(tmp_path / "p.narrowPeak"), "--unstranded", "--qvalue", "2"],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr == "error: key 'peak_qvalue': Input should be less than 1 (got 2.0)\n"


def test_negatives_per_peak_reaches_the_negatives_stage(genome, tmp_path):
    from bpnet_core.batch import load_dataset

    bam = write_bam(tmp_path / "atac.bam", READS, CHROMS)
    default = load_dataset(_pipeline(genome, signals=[str(bam)], negatives=None), source="raw.json")
    assert default.stages["negatives"].negatives_per_peak == 2
    dataset = load_dataset(_pipeline(genome, signals=[str(bam)], negatives=None, negatives_per_peak=3),
                           source="raw.json")
    assert dataset.stages["negatives"].negatives_per_peak == 3
    with pytest.raises(InputError, match=r"raw.json: key 'negatives_per_peak': Input should be greater than 0"):
        load_dataset(_pipeline(genome, signals=[str(bam)], negatives=None, negatives_per_peak=0),
                     source="raw.json")
