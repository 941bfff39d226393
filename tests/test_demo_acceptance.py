"""The demo, end to end: the model learns, TF-MoDISco finds the planted motifs,
marginalization ranks them above the decoys.

This runs `config/demo.json` as `make demo` does (about 3.5 minutes on 2 cores),
on demo data simulated into a temporary folder.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from bpnet_core.demo import DECOY_MOTIFS, PLANTED_MOTIFS, simulate_demo

from conftest import REPO


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    simulate_demo(workdir / "resources" / "demo")
    # config/demo.json names resources/demo/..., relative to the working directory
    config = json.loads((REPO / "config" / "demo.json").read_text())
    (workdir / "demo.json").write_text(json.dumps(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
         "--directory", str(workdir), "--configfile", str(workdir / "demo.json"), "--cores", "2"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir / "results" / "demo"


def test_model_learns(demo_results):
    performance = pd.read_csv(demo_results / "evaluate" / "demo.performance.tsv", sep="\t").iloc[0]
    assert performance["count_pearson"] > 0.4
    assert performance["profile_pearson"] > 0.4
    history = pd.read_csv(demo_results / "fit" / "demo.history.tsv", sep="\t")
    assert history["valid_loss"].min() < 0.8 * history["valid_loss"].iloc[0]


def test_modisco_finds_every_planted_motif(demo_results):
    motifs = pd.read_csv(demo_results / "modisco" / "report" / "motifs.tsv", sep="\t")
    significant = motifs[motifs["qvalue0"] < 0.05]
    assert set(PLANTED_MOTIFS) <= set(significant["match0"])
    assert not set(DECOY_MOTIFS) & set(significant["match0"])


def test_marginalization_ranks_planted_above_decoys(demo_results):
    summary = pd.read_csv(demo_results / "marginalize" / "summary.tsv", sep="\t").set_index("motif")
    planted = summary.loc[list(PLANTED_MOTIFS), "delta_log_counts"]
    decoys = summary.loc[list(DECOY_MOTIFS), "delta_log_counts"]
    assert planted.min() > decoys.max()
    assert planted.min() > 0.1
