"""Reads files are recognised by their content, whatever their names (`bpnet_core.reads.reads_format`)."""

import gzip
import os

import pyBigWig
import pysam
import pytest
from test_raw_inputs import CHROMS, READS, nonzero, track, write_bam, write_fasta

from bpnet_core.errors import InputError
from bpnet_core.reads import default_shift, is_reads, reads_format, reads_to_bigwig

FRAGMENTS = "chr1\t100\t300\tAAACG-1\t1\nchr1\t150\t181\tCCGTA-1\t1\nchr2\t10\t60\tAAACG-1\t1\n"
# Ends of FRAGMENTS with the default fragment shift (0, +1): start and end.
FRAGMENT_ENDS = {"chr1": {100: 1.0, 300: 1.0, 150: 1.0, 181: 1.0}, "chr2": {10: 1.0, 60: 1.0}}
EXPECTED = "expected a bigWig, or reads: BAM/SAM/CRAM, fragments, BEDPE or tagAlign"


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    return write_fasta(tmp_path_factory.mktemp("genome") / "genome.fa", CHROMS)


def convert(paths, genome, out, **kwargs):
    """Unstranded counts of `paths` (default shift) as {chrom: {position: count}}."""
    reads_to_bigwig([str(p) for p in paths], genome, [out], **kwargs)
    return {chrom: nonzero(values) for chrom, values in track(out).items() if values.any()}


def bgzip(text, path):
    """`text` BGZF-compressed (many gzip members, as 10x and MACS3 write them) to `path`."""
    with pysam.BGZFile(str(path), "wb") as handle:
        handle.write(text.encode())
    return path


def write_bigwig(path):
    with pyBigWig.open(str(path), "w") as bw:
        bw.addHeader(list(CHROMS.items()))
        bw.addEntries("chr1", [10], values=[2.0], span=1)
    return path


def test_fragment_files_count_alike_whatever_their_names(genome, tmp_path):
    header = "# id=10x fragment file\n# another comment\n"
    tsv = tmp_path / "x.tsv.gz"
    with gzip.open(tsv, "wt") as handle:
        handle.write(header + FRAGMENTS)
    frag = bgzip(header + FRAGMENTS, tmp_path / "x.frag.gz")  # MACS3's name for them
    bed = tmp_path / "x.bed"
    bed.write_text(FRAGMENTS)
    for path in (tsv, frag, bed):
        assert reads_format(path) == "fragments"
        assert default_shift(path, stranded=False) == (0, 1)
        assert convert([path], genome, tmp_path / f"{path.name}.bw") == FRAGMENT_ENDS, path.name


def test_three_column_bedpe_is_counted_as_fragments(genome, tmp_path):
    bedpe = tmp_path / "fragments.txt"  # MACS3's BEDPE: chrom, start, end
    bedpe.write_text("".join("\t".join(line.split("\t")[:3]) + "\n" for line in FRAGMENTS.splitlines()))
    assert reads_format(bedpe) == "fragments"
    assert default_shift(bedpe, stranded=False) == (0, 1)
    assert convert([bedpe], genome, tmp_path / "bedpe.bw") == FRAGMENT_ENDS


def test_fifth_column_of_fragments_is_ignored(genome, tmp_path):
    # Each fragment line counts once (deduplicated), whatever its duplicate count.
    frag = tmp_path / "dups.frag.gz"
    with gzip.open(frag, "wt") as handle:
        handle.write("chr1\t100\t300\tAAACG-1\t5\n")
    assert convert([frag], genome, tmp_path / "dups.bw") == {"chr1": {100: 1.0, 300: 1.0}}


def test_tagalign_named_txt(genome, tmp_path):
    reads = tmp_path / "reads.txt"
    reads.write_text("track name=reads\nchr1\t100\t150\tN\t1000\t+\nchr1\t200\t250\tN\t1000\t-\n")
    assert reads_format(reads) == "tagalign"
    plus, minus = tmp_path / "plus.bw", tmp_path / "minus.bw"
    assert reads_to_bigwig([str(reads)], genome, [plus, minus]) == [1, 1]
    assert nonzero(track(plus)["chr1"]) == {100: 1.0} and nonzero(track(minus)["chr1"]) == {249: 1.0}
    # Space-separated and gzip-compressed under a name that says neither.
    spaced = tmp_path / "reads.dat"
    with gzip.open(spaced, "wt") as handle:
        handle.write("chr1 100 150 N 1000 +\nchr1 200 250 N 1000 -\n")
    assert reads_format(spaced) == "tagalign"
    assert convert([spaced], genome, tmp_path / "spaced.bw", shift=(0, 0)) == {"chr1": {100: 1.0, 249: 1.0}}


def test_alignments_under_any_name(genome, tmp_path):
    bam = write_bam(tmp_path / "reads.bam", READS, CHROMS)
    dat = tmp_path / "x.dat"
    dat.write_bytes(bam.read_bytes())
    assert reads_format(dat) == "alignments"
    assert default_shift(dat, stranded=False) == (4, -4)
    assert convert([dat], genome, tmp_path / "dat.bw") == convert([bam], genome, tmp_path / "bam.bw")
    sam = tmp_path / "x.txt"
    pysam.view("-h", "-o", str(sam), str(bam), catch_stdout=False)
    assert reads_format(sam) == "alignments"
    headerless = tmp_path / "headerless.txt"
    headerless.write_text("r1\t0\tchr1\t101\t60\t5M\t*\t0\t0\tAAAAA\tIIIII\n")
    assert reads_format(headerless) == "alignments"


def test_bigwig_named_like_fragments_is_a_bigwig(tmp_path):
    bw = write_bigwig(tmp_path / "x.tsv.gz")
    assert reads_format(bw) is None and not is_reads(bw)


@pytest.mark.parametrize("content, why", [
    (b"hello world\nthis is not data\n", "line 1, columns of no reads format: 'hello world'"),
    (b"", "empty file"),
    (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "binary content"),
])
def test_unrecognised_file_is_one_clear_error(tmp_path, content, why):
    path = tmp_path / "signal.bw"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        reads_format(path, "controls")
    message = str(err.value)
    assert message.startswith(f"{path} (config key 'controls'): unrecognised content (")
    assert why in message and message.endswith(EXPECTED) and "\n" not in message


def test_missing_files_go_by_their_suffix(tmp_path):
    # Config checks run before the input rules write their files.
    assert reads_format(tmp_path / "missing.frag.gz") == "fragments"
    assert reads_format(tmp_path / "missing.bam") == "alignments"
    assert reads_format("results/x/inputs/signals.bw") is None
    assert reads_format(tmp_path) is None  # a folder is no file either


def test_answer_follows_a_rewritten_file(tmp_path):
    path = tmp_path / "x.frag.gz"
    path.write_text(FRAGMENTS)
    assert reads_format(path) == "fragments"
    write_bigwig(path)
    os.utime(path, ns=(0, 10**9))  # a new size and time: sniffed again
    assert reads_format(path) is None


def test_peak_calling_inputs_by_content(genome, tmp_path):
    from bpnet_core.peaks import _macs_inputs

    bedpe = tmp_path / "frags.txt"
    bedpe.write_text("chr1\t100\t300\nchr2\t10\t60\n")
    files, fmt = _macs_inputs([str(bedpe)], "signals", tmp_path)
    assert fmt == "BED" and files != [str(bedpe)]  # cut sites, as for fragment files
    assert [line.split("\t")[1] for line in open(files[0])] == ["100", "10", "299", "59"]
    tagalign = tmp_path / "reads.txt"
    tagalign.write_text("chr1\t100\t150\tN\t1000\t+\n")
    assert _macs_inputs([str(tagalign)], "signals", tmp_path) == ([str(tagalign)], "BED")
    bam = write_bam(tmp_path / "x.dat", READS, CHROMS)
    assert _macs_inputs([str(bam)], "signals", tmp_path) == ([str(bam)], "AUTO")
    with pytest.raises(InputError, match=r"x.bed \(config key 'controls'\): a bigWig; peak calling takes reads"):
        _macs_inputs([str(write_bigwig(tmp_path / "x.bed"))], "controls", tmp_path)


def _chrombpnet(genome, signals):
    return {"name": "raw", "sequences": str(genome), "training_chroms": ["chr1"], "validation_chroms": ["chr2"],
            "negatives": None, "fit_parameters": {}, "signals": [str(signals)]}


def test_workflow_load_plans_conversion_of_a_frag_gz_file(genome, tmp_path):
    from bpnet_core.batch import load_dataset

    frag = bgzip(FRAGMENTS, tmp_path / "atac.frag.gz")
    dataset = load_dataset(_chrombpnet(genome, frag), source="raw.json")
    assert dataset.chrombpnet
    assert list(dataset.stages)[:3] == ["signals_bigwig", "call_peaks", "negatives"]
    assert dataset.stages["signals_bigwig"].reads == [str(frag)]
    assert dataset.stages["fit"].signals == ["results/raw/inputs/signals.bw"]


def test_workflow_load_names_an_unrecognised_signal_file(genome, tmp_path):
    from bpnet_core.batch import load_dataset

    garbage = tmp_path / "atac.frag.gz"
    with gzip.open(garbage, "wt") as handle:
        handle.write("<html>not found</html>\n")
    with pytest.raises(InputError) as err:
        load_dataset(_chrombpnet(genome, garbage), source="raw.json")
    assert str(err.value) == (f"raw.json: {garbage} (config key 'signals'): unrecognised content (line 1, "
                              f"columns of no reads format: '<html>not found</html>'); {EXPECTED}")
