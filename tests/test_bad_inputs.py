"""Every bad input is one message naming the file and config key, exit 1, no traceback."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyBigWig
import pytest

from bpnet_core.cli import main
from bpnet_core.config import FitConfig
from bpnet_core.errors import InputError
from bpnet_core.io import read_meme
from bpnet_core.train import fit_model

from conftest import tiny_fit_config, write_json


def run_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    """`bpnet-core ARGS` in this process (an interpreter start-up per test costs seconds).

    An exception other than the clean exit of an input error propagates
    and fails the test, as a traceback would.
    """
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.chdir(cwd or os.getcwd()):
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as exit_:
            code = exit_.code
    return subprocess.CompletedProcess(args, code, "", stderr.getvalue())


def _fit_error(tiny_data, tmp_path, **overrides) -> str:
    """Run `bpnet-core fit` on a bad config; return its one-line error."""
    params = write_json(tmp_path / "fit.json", tiny_fit_config(tiny_data, max_epochs=1, **overrides))
    result = run_cli("fit", "-p", params, "-o", tmp_path / "out")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.stderr.rstrip("\n").endswith(errors[0].split("\n")[-1])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    return result.stderr


def _bed(path, lines, gz=False):
    text = "".join(line + "\n" for line in lines)
    if gz:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        Path(path).write_text(text)
    return str(path)


def _bigwig(path, chroms, entries):
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(chroms)
    for chrom, starts, values in entries:
        bw.addEntries(chrom, starts, values=values, span=1)
    bw.close()
    return str(path)


def test_missing_file(tiny_data, tmp_path):
    message = _fit_error(tiny_data, tmp_path, loci=str(tmp_path / "peaks.bed"))
    assert f"{tmp_path / 'peaks.bed'}: file not found (config key 'loci')" in message


def test_empty_peak_file(tiny_data, tmp_path):
    message = _fit_error(tiny_data, tmp_path, loci=_bed(tmp_path / "empty.bed.gz", [], gz=True))
    assert "empty.bed.gz (config key 'loci'): the file holds no intervals" in message


def test_peak_file_with_words_for_coordinates(tiny_data, tmp_path):
    message = _fit_error(tiny_data, tmp_path, loci=_bed(tmp_path / "p.bed", ["chr1\t100\t300", "chr1\tstart\tend"]))
    assert "p.bed (config key 'loci'): line 2: start and end must be integers, got 'start' and 'end'" in message


def test_peak_file_with_two_columns(tiny_data, tmp_path):
    message = _fit_error(tiny_data, tmp_path, loci=_bed(tmp_path / "p.bed", ["chr1\t100"]))
    assert "p.bed (config key 'loci'): line 1 has 2 column(s); a BED file needs at least chrom, start, end" in message


def test_loci_beyond_the_chromosome_end(tiny_data, tmp_path):
    loci = _bed(tmp_path / "hg19.bed", ["chr1\t10000\t10200", "chr1\t250000000\t250000200"])
    message = _fit_error(tiny_data, tmp_path, loci=loci)
    assert "hg19.bed (config key 'loci'): 1 interval(s) end beyond their chromosome" in message
    assert "chr1:250000000-250000200 on chr1 of 200000 bp" in message and "another genome build?" in message


def test_no_loci_left_on_training_chromosomes(tiny_data, tmp_path):
    loci = _bed(tmp_path / "chr2_only.bed", ["chr2\t30000\t30200", "chr2\t50000\t50200"])
    message = _fit_error(tiny_data, tmp_path, loci=loci)
    assert "chr2_only.bed (config key 'loci', chroms chr1): no loci left after filtering" in message
    assert "2 read; 2 on other chromosomes; 0 off a chromosome end" in message


def test_validation_chromosome_without_peaks(tiny_data, tmp_path):
    loci = _bed(tmp_path / "chr1_only.bed", ["chr1\t30000\t30200", "chr1\t50000\t50200"])
    message = _fit_error(tiny_data, tmp_path, loci=loci)
    assert "(config key 'loci', chroms chr2): no loci left after filtering" in message


def test_bigwig_chromosome_names_do_not_match(tiny_data, tmp_path):
    ensembl = _bigwig(tmp_path / "ensembl.bw", [("1", 200_000), ("2", 100_000)], [("1", [5], [1.0])])
    message = _fit_error(tiny_data, tmp_path, signals=[ensembl, str(tiny_data["signal_minus"])])
    assert "ensembl.bw (config key 'signals[0]'): chromosome names do not match the FASTA" in message


@pytest.mark.parametrize("value, problem", [(float("nan"), "NaN"), (-3.0, "negative")])
def test_nan_or_negative_values_in_a_bigwig(tiny_data, tmp_path, value, problem):
    # values inside the first training window: the peaks' windows cover most of chr1
    starts = list(range(0, 200_000, 997))
    track = _bigwig(tmp_path / "bad.bw", [("chr1", 200_000), ("chr2", 100_000)],
                    [("chr1", starts, [value] * len(starts)), ("chr2", [10], [1.0])])
    message = _fit_error(tiny_data, tmp_path, controls=[track, str(tiny_data["control_minus"])])
    assert "bad.bw (config key 'controls[0]'):" in message
    assert f"{problem} value(s) in the windows read, the first at chr1:" in message


def _read_only_mounts_work() -> bool:
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True) if shutil.which("unshare") else None
    return probe is not None and probe.returncode == 0


@pytest.mark.skipif(not _read_only_mounts_work(), reason="needs unshare for a read-only bind mount")
def test_fasta_without_index_in_read_only_folder(tiny_data, tmp_path):
    # Root writes anywhere, so the folder is made read-only by a read-only
    # bind mount in a private mount namespace.
    folder = tmp_path / "readonly"
    folder.mkdir()
    shutil.copy(tiny_data["sequences"], folder / "genome.fa")
    params = write_json(tmp_path / "fit.json", tiny_fit_config(tiny_data, sequences=str(folder / "genome.fa")))
    script = (f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} && "
              f"exec {sys.executable} -m bpnet_core fit -p {params} -o {tmp_path / 'out'}")
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (f"error: {folder / 'genome.fa'} (config key 'sequences'): the FASTA has no .fai index "
            "and its folder is not writable") in result.stderr
    assert not (folder / "genome.fa.fai").exists()


def test_controls_missing_for_a_model_trained_with_them(tiny_data, tmp_path):
    fit_model(FitConfig.model_validate(tiny_fit_config(tiny_data, max_epochs=1)), tmp_path / "m.torch",
              tmp_path / "h.tsv")
    predict = write_json(tmp_path / "predict.json", {
        "model": str(tmp_path / "m.torch"), "sequences": str(tiny_data["sequences"]),
        "loci": str(tiny_data["peaks"]), "in_window": 206, "out_window": 100})
    result = run_cli("predict", "-p", predict, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "config key 'controls': 0 control track(s) given, but the model" in result.stderr
    assert "was trained with 2" in result.stderr


def test_signals_do_not_match_the_model_outputs(tiny_data, tmp_path):
    fit_model(FitConfig.model_validate(tiny_fit_config(tiny_data, max_epochs=1)), tmp_path / "m.torch",
              tmp_path / "h.tsv")
    evaluate = write_json(tmp_path / "evaluate.json", {
        "model": str(tmp_path / "m.torch"), "sequences": str(tiny_data["sequences"]),
        "loci": str(tiny_data["peaks"]), "in_window": 206, "out_window": 100,
        "signals": [str(tiny_data["signal_plus"])],
        "controls": [str(tiny_data["control_plus"]), str(tiny_data["control_minus"])]})
    result = run_cli("evaluate", "-p", evaluate, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "config key 'signals': 1 track(s) given, but the model" in result.stderr and "predicts 2" in result.stderr


def test_model_file_of_another_program(tiny_data, tmp_path):
    (tmp_path / "keras.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    predict = write_json(tmp_path / "predict.json", {
        "model": str(tmp_path / "keras.h5"), "sequences": str(tiny_data["sequences"]),
        "loci": str(tiny_data["peaks"])})
    result = run_cli("predict", "-p", predict, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "keras.h5 (config key 'model'): not a model file of bpnet_core" in result.stderr


@pytest.mark.parametrize("text, fragment", [
    ("nothing here\n", "no motifs found"),
    ("MEME version 4\n\nMOTIF m1\nletter-probability matrix: alength= 4 w= 2\n0.25 0.25 0.25 0.25\n",
     "motif 'm1' (line 3) has 1 matrix rows, its header says w= 2"),
    ("MOTIF m1\nletter-probability matrix: alength= 4 w= 1\n0.5 0.5 x 0\n",
     "line 3: matrix row of motif 'm1' is not numeric"),
    ("MOTIF m1\nletter-probability matrix: alength= 4 w= 1\n0.9 0.5 0.1 0\n",
     "line 3: matrix row of motif 'm1' must be 4 probabilities summing to 1"),
    ("MOTIF m1\nletter-probability matrix: nsites= 20\n", "line 2: a letter-probability matrix line needs"),
])
def test_malformed_meme_file(tmp_path, text, fragment):
    path = tmp_path / "motifs.meme"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_meme(path)
    assert str(info.value).startswith(f"{path} (config key 'motifs'): ")
    assert fragment in str(info.value)


def test_malformed_meme_file_is_caught_by_validate_files(tiny_data, tmp_path):
    (tmp_path / "bad.meme").write_text("MOTIF x\n")
    config = write_json(tmp_path / "marginalize.json", {
        "model": "m.torch", "sequences": str(tiny_data["sequences"]), "loci": str(tiny_data["negatives"]),
        "motifs": str(tmp_path / "bad.meme"), "n_loci": 10})
    result = run_cli("validate", "--files", config)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "bad.meme (config key 'motifs'): motif 'x' (line 1) has no 'letter-probability matrix' line" in result.stderr


def test_demo_motif_file_reads(tiny_data):
    motifs = read_meme(tiny_data["motifs"])
    assert len(motifs) == 6 and all(m.shape[1] == 4 for m in motifs.values())
