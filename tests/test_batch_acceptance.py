"""The two demos (BPNet and ChromBPNet) as one batch run, and its summary."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def summary(demo_runs):
    for name in ("demo", "demo_atac"):
        demo_runs.results(name)
    return demo_runs.workdir / "results" / "summary"


def test_batch_summary_has_each_dataset_with_metrics_and_motifs(summary):
    table = pd.read_csv(summary / "demos.tsv", sep="\t").set_index("dataset")
    assert list(table.index) == ["demo", "demo_atac"]
    assert (table["status"] == "done").all()
    for name in table.index:
        performance = pd.read_csv(summary.parent / name / "evaluate" / f"{name}.performance.tsv", sep="\t")
        assert table.loc[name, "profile_pearson"] == pytest.approx(performance["profile_pearson"][0], rel=1e-5)
        assert table.loc[name, "training_s"] > 0
        assert table.loc[name, "motif1_seqlets"] >= table.loc[name, "motif2_seqlets"] > 0
    # The BPNet demo's motif database names the planted motifs.
    assert isinstance(table.loc["demo", "motif1_match"], str) and table.loc["demo", "motif1_match"]
    page = (summary / "demos.html").read_text()
    assert "2 datasets: 2 done, 0 failed, 0 not done." in page
