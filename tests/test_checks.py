"""Checks of configs against the files they name."""

from __future__ import annotations

import pyBigWig
import pytest

from bpnet_core.checks import check_files
from bpnet_core.config import FitConfig
from bpnet_core.errors import InputError

from conftest import tiny_fit_config


def _check(data, **overrides) -> str:
    with pytest.raises(InputError) as info:
        check_files(FitConfig.model_validate(tiny_fit_config(data, **overrides)), where="my.json: fit")
    return str(info.value)


def test_valid_files_pass(tiny_data):
    check_files(FitConfig.model_validate(tiny_fit_config(tiny_data)))


def test_missing_file_names_file_and_key(tiny_data, tmp_path):
    message = _check(tiny_data, signals=[str(tmp_path / "absent.bw"), str(tiny_data["signal_minus"])])
    assert message == f"my.json: fit: {tmp_path / 'absent.bw'}: file not found (config key 'signals[0]')"


def test_chromosomes_absent_from_fasta_are_listed(tiny_data):
    message = _check(tiny_data, validation_chroms=["chr2", "chr9", "chrX"])
    assert "config key 'validation_chroms': chromosomes not in the FASTA" in message
    assert "chr9, chrX" in message and "(the FASTA has chr1, chr2)" in message


def _bigwig(path, chroms):
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(chroms)
    for name, _ in chroms:
        bw.addEntries(name, [10], values=[1.0], span=1)
    bw.close()
    return str(path)


def test_bigwig_with_other_chromosome_names(tiny_data, tmp_path):
    ensembl = _bigwig(tmp_path / "ensembl.bw", [("1", 60_000), ("2", 40_000)])
    message = _check(tiny_data, controls=[ensembl, str(tiny_data["control_minus"])])
    assert "ensembl.bw (config key 'controls[0]'): chromosome names do not match the FASTA" in message
    assert "the bigWig has 1, 2, the FASTA has chr1, chr2" in message


def test_bigwig_missing_a_used_chromosome(tiny_data, tmp_path):
    partial = _bigwig(tmp_path / "partial.bw", [("chr1", 60_000)])
    message = _check(tiny_data, signals=[partial, str(tiny_data["signal_minus"])])
    assert "partial.bw (config key 'signals[0]'): no chromosome chr2 in this bigWig" in message


def test_not_a_bigwig(tiny_data, tmp_path):
    fake = tmp_path / "fake.bw"
    fake.write_text("chr1\t0\t10\t1\n")
    message = _check(tiny_data, signals=[str(fake), str(tiny_data["signal_minus"])])
    assert "fake.bw (config key 'signals[0]'): unrecognised content (line 1 is bedGraph" in message
    assert "bedGraphToBigWig" in message


def test_all_problems_reported_at_once(tiny_data, tmp_path):
    message = _check(tiny_data, sequences=str(tmp_path / "no.fa"), loci=str(tmp_path / "no.bed"))
    assert message.startswith("my.json: fit: 2 problems:")
    assert "no.fa: file not found (config key 'sequences')" in message
    assert "no.bed: file not found (config key 'loci')" in message
