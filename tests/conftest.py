"""Shared fixtures: a tiny simulated dataset and pipeline configs over it."""

from __future__ import annotations

import json
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
