"""The two demos (BPNet and ChromBPNet) as one batch run, and its summary."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import planned_jobs, write_json


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
    # Fi-NeMo's hits per pattern (the BPNet demo calls them; the ATAC demo does not).
    counts = pd.read_csv(summary.parent / "demo" / "motif_hits" / "demo.hit_counts.tsv", sep="\t")
    assert table.loc["demo", "motif_hits"] == counts["hits"].sum() > 0
    assert table.loc["demo", "motif1_hits"] == counts.set_index("pattern")["hits"].get(table.loc["demo", "motif1"], 0)
    assert pd.isna(table.loc["demo_atac", "motif_hits"])
    # ChromBPNet datasets say whether their accessibility model is bias-free.
    assert table.loc["demo_atac", "bias_free"] == "yes" and pd.isna(table.loc["demo", "bias_free"])
    assert table.loc["demo_atac", "bias_qc"] == "passed" and pd.isna(table.loc["demo", "bias_qc"])
    # The BPNet demo scores variants: its strongest is listed, with its scores.
    scores = pd.read_csv(summary.parent / "demo" / "variants" / "demo.variants.tsv.gz", sep="\t")
    assert table.loc["demo", "variant1"] in set(scores["id"])
    assert table.loc["demo", "variant1_pval"] == pytest.approx(scores["logfc_pval"].min(), rel=1e-5)
    page = (summary / "demos.html").read_text()
    assert "2 datasets: 2 done, 0 failed, 0 not done." in page


FIT_AND_AFTER = {"fit_chrombpnet", "predict_peaks", "export_predicted_bigwig", "evaluate_model",
                 "attribute_peaks", "discover_motifs", "report_motifs", "export_motifs",
                 "marginalize_motifs", "qc_accessibility_model", "write_report", "all"}
BIAS_QC = {"attribute_bias_model", "discover_bias_motifs", "qc_bias_model"}


def _planned(workdir, edit):
    config = json.loads((workdir / "demo_atac.json").read_text())
    edit(config)
    return set(planned_jobs(workdir, write_json(workdir / "edited_atac.json", config)))


@pytest.mark.parametrize("edit, expected", [
    (lambda c: None, set()),
    (lambda c: c.update(verbose=True, device="cpu"), set()),
    (lambda c: c.setdefault("fit_parameters", {}).update(lr=0.002), FIT_AND_AFTER),
    (lambda c: c["bias_qc_parameters"].update(n_shuffles=5), BIAS_QC | FIT_AND_AFTER),
    (lambda c: c["bias_fit_parameters"].update(lr=0.002), {"fit_bias_model"} | BIAS_QC | FIT_AND_AFTER),
], ids=["unchanged", "verbose-device", "fit", "bias_qc", "bias_fit"])
def test_chrombpnet_block_change_reruns_its_stage_and_what_follows(summary, edit, expected):
    """After the batch run, the ChromBPNet demo run on its own config is cached;
    each block reruns exactly its stage and the stages downstream of it."""
    assert _planned(summary.parent.parent, edit) == expected
