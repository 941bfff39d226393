"""Shared fixtures: a tiny simulated dataset and pipeline configs over it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bpnet_core.demo import simulate_demo

REPO = Path(__file__).resolve().parents[1]

# A model small enough to train in seconds: 2 layers -> receptive field
# half-width 10 + 2 + 4 + 37 = 53 bp, so 206 -> 100 trims exactly that.
TINY_MODEL = {
    "n_filters": 8,
    "n_layers": 2,
    "in_window": 206,
    "out_window": 100,
    "batch_size": 16,
    "max_jitter": 16,
    "max_epochs": 2,
    "validation_iter": 4,
    "lr": 0.004,
    "alpha": 10,
    "random_state": 0,
}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """Simulated ChIP-like data: chr1 (training) and chr2 (validation)."""
    out = tmp_path_factory.mktemp("tiny_data")
    return simulate_demo(out, seed=1, chrom_sizes={"chr1": 200_000, "chr2": 100_000})


def tiny_fit_config(data: dict[str, Path], **overrides) -> dict:
    """A BPNet Fit JSON (as a dict) over `data`."""
    return {
        **TINY_MODEL,
        "name": "tiny",
        "training_chroms": ["chr1"],
        "validation_chroms": ["chr2"],
        "sequences": str(data["sequences"]),
        "loci": [str(data["peaks"]), str(data["negatives"])],
        "signals": [str(data["signal_plus"]), str(data["signal_minus"])],
        "controls": [str(data["control_plus"]), str(data["control_minus"])],
        **overrides,
    }


def tiny_pipeline_config(data: dict[str, Path], **overrides) -> dict:
    """A BPNet pipeline JSON (as a dict) over `data`."""
    return {
        **TINY_MODEL,
        "name": "tiny",
        "sequences": str(data["sequences"]),
        "signals": [str(data["signal_plus"]), str(data["signal_minus"])],
        "controls": [str(data["control_plus"]), str(data["control_minus"])],
        "fit_parameters": {
            "training_chroms": ["chr1"],
            "validation_chroms": ["chr2"],
            "loci": [str(data["peaks"]), str(data["negatives"])],
        },
        "predict_parameters": {"chroms": ["chr2"], "loci": str(data["peaks"])},
        **overrides,
    }


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path


SNAKEFILE = REPO / "workflow" / "Snakefile"


def snakemake(workdir: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the workflow in `workdir` with `config`, 2 cores."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
         "--configfile", str(config), "--cores", "2", *args],
        capture_output=True, text=True)


def with_interpretation(data: dict, tiny_data) -> dict:
    """The tiny pipeline plus attribute, TF-MoDISco and marginalize blocks."""
    return {
        **data,
        "attribute_parameters": {"n_shuffles": 3, "batch_size": 8},
        "modisco_motifs_parameters": {"n_seqlets": 500, "window": 100},
        "modisco_report_parameters": {"motifs": str(tiny_data["motifs"])},
        "marginalize_parameters": {"loci": str(tiny_data["negatives"]), "chroms": ["chr2"], "n_loci": 10},
    }


@pytest.fixture(scope="session")
def pipeline_run(tiny_data, tmp_path_factory):
    """One full run of the workflow on the tiny data: (workdir, config path, config dict).

    Shared by the workflow and report tests; they only read its results and
    dry-run edited copies of its config.
    """
    workdir = tmp_path_factory.mktemp("workflow")
    data = with_interpretation(tiny_pipeline_config(tiny_data), tiny_data)
    config = write_json(workdir / "tiny.json", data)
    result = snakemake(workdir, config)
    assert result.returncode == 0, result.stdout + result.stderr
    return workdir, config, data
