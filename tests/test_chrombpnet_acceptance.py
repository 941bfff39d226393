"""ChromBPNet end to end on simulated ATAC-seq data: the bias model learns the
enzyme's preference and nothing else, the accessibility model learns the TF
motifs and not the enzyme's.

Runs the workflow on `config/demo_atac.json` scaled down (a 2.6 Mb genome,
fewer epochs; see `conftest._atac_demo`), on data simulated into a temporary
folder, in the background from the start of the session.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from bpnet_core.simulate.chip import PLANTED_MOTIFS
from bpnet_core.simulate.atac import BIAS_MOTIFS, motif_count_ceiling


SIGNIFICANT = 0.05


@pytest.fixture(scope="module")
def atac_results(demo_runs):
    return demo_runs.results("demo_atac")


def _significant_matches(table: pd.DataFrame) -> set[str]:
    return set(table.loc[table["qvalue0"] < SIGNIFICANT, "match0"])


def test_bias_model_learns_the_enzyme_motif_and_no_tf_motif(atac_results):
    qc = json.loads((atac_results / "bias_qc" / "qc.json").read_text())
    assert not qc["flagged"], qc["reasons"]
    matches = _significant_matches(pd.read_csv(atac_results / "bias_qc" / "motifs" / "motifs.tsv", sep="\t"))
    assert set(BIAS_MOTIFS) <= matches
    assert not matches & set(PLANTED_MOTIFS)
    assert qc["count_pearson"]["negatives"]["pearson"] > 0


def test_accessibility_model_learns_tf_motifs_not_the_enzyme(atac_results):
    matches = _significant_matches(pd.read_csv(atac_results / "modisco" / "report" / "motifs.tsv", sep="\t"))
    assert len(matches & set(PLANTED_MOTIFS)) >= 2
    assert not matches & set(BIAS_MOTIFS)


def test_bias_free_readout_ignores_the_enzyme_motif(atac_results):
    summary = pd.read_csv(atac_results / "marginalize" / "summary.tsv", sep="\t").set_index("motif")
    enzyme = summary.loc[list(BIAS_MOTIFS), "delta_log_counts"].abs().max()
    tf_effects = summary.loc[list(PLANTED_MOTIFS), "delta_log_counts"]
    assert (tf_effects > 5 * enzyme).sum() >= 2


def test_accessibility_model_passes_its_own_bias_free_qc(atac_results):
    qc = json.loads((atac_results / "bias_free_qc" / "qc.json").read_text())
    assert qc["bias_free"], qc["reasons"]
    assert qc["modisco_check"]
    fold = qc["mean_footprint_fold"]
    # The enzyme's footprint is in the full model, not in the accessibility model.
    assert fold["accessibility"] < qc["max_footprint_fold"] < fold["full"]
    report = (atac_results / "demo_atac.report.html").read_text()
    assert "<b>Accessibility model: bias-free</b>" in report and 'id="bias_free_qc"' in report


def test_full_model_learns_the_observed_signal(atac_results, demo_runs):
    performance = pd.read_csv(atac_results / "evaluate" / "demo_atac.performance.tsv", sep="\t").iloc[0]
    assert performance["profile_pearson"] > 0.3
    # Counts in the held-out peaks. The planted motifs allow r = 0.84 here;
    # trained on 400 peaks for 16 epochs, this run measured 0.53, and 0.38
    # before the simulator's accessibility followed the sequence.
    data = demo_runs.workdir / "resources" / "demo_atac"
    ceiling = motif_count_ceiling({"peaks": data / "peaks.narrowPeak.gz", "planted": data / "planted_motifs.tsv",
                                   "signal": data / "atac.bw"}, ["chr2"], 500)["pearson"]
    assert ceiling > 0.7  # the counts follow the sequence: there is something to learn
    assert performance["count_pearson"] > 0.45, (performance["count_pearson"], ceiling)


def test_dataset_report_shows_the_bias_qc(atac_results):
    page = (atac_results / "demo_atac.report.html").read_text()
    assert 'id="bias_qc"' in page and "Passed:" in page and "TN5_like" in page


# Every stage that reads loci, and the chromosome whose edge loci it sees.
EDGE_STAGES = ["fit_bias_model", "attribute_bias_model", "qc_bias_model", "fit_chrombpnet",
               "predict_peaks", "evaluate_model", "attribute_peaks", "marginalize_motifs"]


def test_every_stage_drops_and_counts_windows_off_chromosome_ends(atac_results):
    # conftest.EDGE_LOCI puts 2 peaks and 2 background regions at the ends of
    # chr1 and chr2; the run finished (atac_results), and each stage says so.
    for stage in EDGE_STAGES:
        log = (atac_results / "logs" / f"{stage}.log").read_text()
        dropped = [int(n) for n in re.findall(r"(\d+) off a chromosome end", log)]
        assert dropped and max(dropped) >= 2, (stage, dropped)
