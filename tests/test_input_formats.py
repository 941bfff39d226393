"""Input files in the wrong format for the workflow: gzipped FASTA, non-count bigWigs."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from bpnet_core.batch import load_datasets
from bpnet_core.checks import check_files
from bpnet_core.config import FitConfig
from bpnet_core.errors import InputError
from bpnet_core.io import fasta_chrom_sizes, warn_if_not_counts, write_bigwig
from bpnet_core.reads import reads_to_bigwig

from conftest import tiny_fit_config, tiny_pipeline_config, write_json
from test_cli import run_cli


def _gzip(source, target):
    with open(source, "rb") as src, gzip.open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


@pytest.fixture
def gz_fasta(tiny_data, tmp_path):
    """The tiny genome gzipped, with the .fai a user may have made next to it."""
    path = _gzip(tiny_data["sequences"], tmp_path / "genome.fa.gz")
    shutil.copy(f"{tiny_data['sequences']}.fai", f"{path}.fai")
    return path


def _float_bigwig(path, tiny_data, values=None):
    """A fold-change-like bigWig: 1 kb of non-integer values at the start of each chromosome."""
    sizes = fasta_chrom_sizes(tiny_data["sequences"])
    if values is None:
        values = np.random.default_rng(0).gamma(2.0, 0.7, size=(len(sizes), 1000))
    write_bigwig(path, sizes, list(sizes), np.zeros(len(sizes), dtype=np.int64), values)
    return path


# --------------------------------------------------------------------------
# gzipped FASTA


def test_gzip_fasta_names_file_key_and_fix(gz_fasta):
    with pytest.raises(InputError) as info:
        fasta_chrom_sizes(gz_fasta)
    message = str(info.value)
    assert message.startswith(f"{gz_fasta} (config key 'sequences'): the FASTA is gzip-compressed")
    assert f"`gunzip -k {gz_fasta}`" in message
    assert f"set 'sequences' to {gz_fasta.with_name('genome.fa')}" in message


def test_gzip_fasta_is_found_by_its_bytes_not_its_name(tiny_data, tmp_path):
    path = _gzip(tiny_data["sequences"], tmp_path / "genome.fa")
    with pytest.raises(InputError, match=r"gzip-compressed.*`gunzip -c .*genome\.fa > .*genome\.uncompressed\.fa`"):
        fasta_chrom_sizes(path)


def test_batch_with_a_gzip_fasta_lists_every_bad_config(tiny_data, gz_fasta, tmp_path):
    gz = write_json(tmp_path / "gz.json", tiny_pipeline_config(tiny_data, name="gz", sequences=str(gz_fasta)))
    absent = write_json(tmp_path / "absent.json",
                        tiny_pipeline_config(tiny_data, name="absent", sequences=str(tmp_path / "no.fa")))
    good = write_json(tmp_path / "good.json", tiny_pipeline_config(tiny_data, name="good"))
    with pytest.raises(InputError) as info:
        load_datasets({"datasets": [str(gz), str(absent), str(good)]}, "batch.json")
    message = str(info.value)
    assert message.startswith("2 of the configs listed in batch.json are invalid")
    assert f"{gz_fasta} (config key 'sequences'): the FASTA is gzip-compressed" in message
    assert f"{tmp_path / 'no.fa'}: file not found (config key 'sequences')" in message


def test_validate_files_with_gzip_fasta_is_one_line(tiny_data, gz_fasta, tmp_path):
    config = write_json(tmp_path / "fit.json", tiny_fit_config(tiny_data, sequences=str(gz_fasta)))
    result = run_cli("validate", "--files", config)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert f"{gz_fasta} (config key 'sequences'): the FASTA is gzip-compressed" in result.stderr
    assert "gunzip -k" in result.stderr


# --------------------------------------------------------------------------
# bigWigs that hold no counts


def test_float_bigwig_signal_warns_naming_file_and_key(tiny_data, tmp_path, capsys):
    track = _float_bigwig(tmp_path / "fold_change.bw", tiny_data)
    config = FitConfig.model_validate(tiny_fit_config(
        tiny_data, signals=[str(track), str(tiny_data["signal_minus"])]))
    check_files(config)
    check_files(config)  # the same file checked again (another stage): no second warning
    err = capsys.readouterr().err
    assert err.count("warning: ") == 1, err
    assert err.startswith(f"warning: {track} (config key 'signals[0]'): ")
    assert "not read counts" in err


def test_negative_values_are_not_counts(tiny_data, tmp_path, capsys):
    track = _float_bigwig(tmp_path / "log_ratio.bw", tiny_data, values=-np.ones((2, 1000)))
    warn_if_not_counts(track, "controls[1]")
    assert f"{track} (config key 'controls[1]')" in capsys.readouterr().err


def test_count_bigwigs_do_not_warn(tiny_data, tmp_path, capsys):
    # Large whole numbers, as float32 stores them, are counts too.
    big = _float_bigwig(tmp_path / "big_counts.bw", tiny_data, values=np.full((2, 1000), 123456.0))
    check_files(FitConfig.model_validate(tiny_fit_config(tiny_data, controls=[str(big)])))
    assert "warning" not in capsys.readouterr().err


def test_bigwig_written_from_reads_does_not_warn(tiny_data, tmp_path, capsys):
    tagalign = tmp_path / "reads.tagAlign"
    starts = np.arange(1000, 60_000, 37)
    tagalign.write_text("".join(f"chr1\t{s}\t{s + 36}\tN\t1000\t{'+-'[s % 2]}\n" for s in starts))
    outputs = [tmp_path / "plus.bw", tmp_path / "minus.bw"]
    reads_to_bigwig(str(tagalign), tiny_data["sequences"], outputs)
    capsys.readouterr()
    for i, path in enumerate(outputs):
        warn_if_not_counts(path, f"signals[{i}]")
    assert "warning" not in capsys.readouterr().err
