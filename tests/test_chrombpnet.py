"""ChromBPNet: the full model, the bias step and its threshold, freezing,
count scaling, QC verdicts, model reuse in the workflow."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bpnet_core.bias_qc import classify_patterns, low_complexity
from bpnet_core.chrombpnet import (
    assemble_chrombpnet,
    check_bias_qc,
    extract_submodel,
    fit_bias_model,
    fit_chrombpnet_step,
)
from bpnet_core.config import bias_fit_config, load_config, parse_config, pipeline_stages
from bpnet_core.data import load_windows
from bpnet_core.simulate.atac import simulate_atac_demo
from bpnet_core.errors import InputError
from bpnet_core.models import BPNet, ChromBPNet, load_model
from bpnet_core.predict import predict_windows

from conftest import REPO, planned_jobs, snakemake, write_json

TINY = {
    "n_filters": 8, "n_layers": 2, "in_window": 206, "out_window": 100, "batch_size": 16,
    "max_jitter": 16, "max_epochs": 1, "validation_iter": 8, "lr": 0.004, "alpha": 10,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def atac(tmp_path_factory):
    return simulate_atac_demo(tmp_path_factory.mktemp("atac"), seed=2,
                              chrom_sizes={"chr1": 300_000, "chr2": 150_000})


def fit_config(data, **overrides) -> dict:
    return {**TINY, "name": "tiny_atac", "training_chroms": ["chr1"], "validation_chroms": ["chr2"],
            "sequences": str(data["sequences"]), "loci": str(data["peaks"]),
            "negatives": str(data["negatives"]), "signals": [str(data["signal"])],
            "bias_model": None, "bias_fit_parameters": {"n_layers": 2}, **overrides}


@pytest.fixture(scope="module")
def trained(atac, tmp_path_factory):
    """The ChromBPNet Fit command on the tiny ATAC data: (folder, config)."""
    out = tmp_path_factory.mktemp("chrombpnet")
    config = parse_config(fit_config(atac), kind="fit")
    fit_chrombpnet_step(config, out)
    return out, config


def test_accessibility_count_head_is_refit_through_the_full_model(atac, trained):
    """The refit lowers the full model's count MSE on the training peaks; it is recorded with the model."""
    from bpnet_core.train import load_training_windows, refit_count_head

    out, config = trained
    refit = load_model(out / "tiny_atac.torch").metadata["count_head_refit"]
    assert refit["mse_after"] < refit["mse_before"] and refit["n_regions"] > 0
    # A second refit finds the optimum it left: nothing more to gain.
    model = load_model(out / "tiny_atac.torch")
    peaks = load_training_windows(config).centered(config.in_window, config.out_window)
    again = refit_count_head(model, peaks, config.out_window, 16, torch.device("cpu"))
    assert again["mse_before"] == pytest.approx(refit["mse_after"], rel=1e-4)
    assert again["mse_after"] == pytest.approx(again["mse_before"], rel=1e-3)


def test_full_model_adds_logits_and_combines_counts_by_logsumexp():
    torch.manual_seed(0)
    bias, accessibility = BPNet(4, 1, 1, trimming=53), BPNet(8, 2, 1, trimming=53)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (3, 206)), 4).transpose(1, 2).float()
    profile, counts = ChromBPNet(bias, accessibility)(X)
    (bp, bc), (ap, ac) = bias(X), accessibility(X)
    torch.testing.assert_close(profile, bp + ap)
    torch.testing.assert_close(counts, torch.log(torch.exp(bc) + torch.exp(ac)))


def test_fit_writes_three_models_and_keeps_the_bias_frozen(trained):
    out, _ = trained
    bias = load_model(out / "tiny_atac.bias.torch")
    full = load_model(out / "tiny_atac.torch")
    accessibility = load_model(out / "tiny_atac.accessibility.torch")
    assert isinstance(bias, BPNet) and isinstance(full, ChromBPNet) and isinstance(accessibility, BPNet)
    for key, value in bias.state_dict().items():
        torch.testing.assert_close(full.bias.state_dict()[key], value, rtol=0, atol=0)
    for key, value in accessibility.state_dict().items():
        torch.testing.assert_close(full.accessibility.state_dict()[key], value, rtol=0, atol=0)
    assert full.metadata["kind"] == "chrombpnet" and full.metadata["n_train"] > 0
    assert (out / "tiny_atac.history.tsv").is_file() and (out / "tiny_atac.bias.history.tsv").is_file()
    assert not list(out.glob("*.checkpoint"))


def test_bias_counts_are_scaled_to_the_observed_mean(trained):
    out, config = trained
    bias = load_model(out / "tiny_atac.bias.torch")
    step = bias_fit_config(config)
    threshold = bias.metadata["bias_threshold"]["threshold"]
    windows = load_windows(step.loci, step.sequences, signals=step.signals, chroms=step.training_chroms,
                           in_window=step.in_window, out_window=step.out_window, max_counts=threshold)
    assert len(windows) == bias.metadata["n_train"]
    _, predicted = predict_windows(bias, windows, 64, torch.device("cpu"))
    observed = np.log1p(windows.y.sum(dim=(1, 2)).numpy())
    assert abs(predicted.mean() - observed.mean()) < 1e-4
    assert bias.metadata["count_shift"] != 0
    # What it learnt from: every count in those regions' output windows.
    assert bias.metadata["background_insertions"] == int(windows.y.sum()) > 0


def test_too_strict_threshold_stops_with_what_to_change(atac, tmp_path):
    config = bias_fit_config(parse_config(fit_config(atac, beta=0.02), kind="fit"))
    with pytest.raises(InputError) as error:
        fit_bias_model(config, tmp_path / "bias.torch", tmp_path / "history.tsv")
    message = str(error.value)
    for part in ("too few background regions", "beta (0.02)", "1st percentile", "Raise `beta`",
                 "negatives", "on the training chromosomes"):
        assert part in message
    assert not list(tmp_path.iterdir())


def _match(enzyme_p=None, tf_p=None, consensus="GCACAGTACGGT", enzyme_gain=5.0, tf_gain=5.0):
    row = {"pattern": "p", "n_seqlets": 30, "consensus": consensus, "complexity": low_complexity(consensus)}
    for kind, name, p, gain in (("enzyme", "TN5_3", enzyme_p, enzyme_gain), ("tf", "GATA_like", tf_p, tf_gain)):
        row.update({f"{kind}_match": name, f"{kind}_pvalue": p if p is not None else 0.5,
                    f"{kind}_qvalue": p * 10 if p is not None else 1.0, f"{kind}_order_gain": gain})
    return row


@pytest.mark.parametrize("row, kind, best", [
    (_match(enzyme_p=1e-6), "bias", "TN5_3"),
    (_match(enzyme_p=1e-6, tf_p=5e-6), "ambiguous", "TN5_3"),  # not 10x more significant than a TF match
    (_match(enzyme_p=1e-6, tf_p=1e-4), "bias", "TN5_3"),
    (_match(enzyme_p=1e-4, tf_p=1e-6), "TF", "GATA_like"),
    (_match(tf_p=1e-5), "TF", "GATA_like"),
    # as good with the columns permuted: the composition matched, not the motif
    (_match(enzyme_p=1e-20, enzyme_gain=0.3), "composition", "TN5_3"),
    (_match(enzyme_p=1e-20, tf_p=1e-5, enzyme_gain=0.3), "TF", "GATA_like"),
    (_match(enzyme_p=1e-9, consensus="CTTTATAATTTTTTAATTTTTTT"), "low-complexity", "TN5_3"),
    (_match(), "unmatched", None),
    # a specific TF match to a motif that is itself an A/T run (SFP1's A5T5): low-complexity, not a TF
    ({**_match(enzyme_p=1e-6, tf_p=1e-8), "tf_complexity": "A/T-rich"}, "low-complexity", "GATA_like"),
    ({**_match(tf_p=1e-5), "tf_complexity": None}, "TF", "GATA_like"),
])
def test_patterns_are_classified_by_specific_significant_matches(row, kind, best):
    [pattern] = classify_patterns([row], 0.05)
    assert pattern["kind"] == kind and pattern["best_match"] == best


def test_low_complexity_cores():
    assert low_complexity("AAAAATGAATCAAAAATTTCCAAAATTTTT") == "A/T-rich"  # a real yeast bias pattern
    assert low_complexity("GGGCGGCCGC") == "G/C-rich"
    assert low_complexity("AGATAA") is None  # too short to say: GATA's core
    assert low_complexity("GGCACGGTCTAGGCCTGTGCGAACTACT") is None


def test_flagged_bias_model_stops_unless_accepted():
    qc = {"flagged": True, "reasons": ["pattern p1 matches the TF motif GATA_like"]}
    with pytest.raises(InputError, match=r"GATA_like.*Lower `beta`.*bias_qc_parameters.accept"):
        check_bias_qc(qc, "qc.json", accept=False)
    check_bias_qc(qc, "qc.json", accept=True)
    check_bias_qc({"flagged": False, "reasons": []}, "qc.json", accept=False)


def test_extract_and_assemble_give_the_same_model(trained, tmp_path):
    out, _ = trained
    extract_submodel(out / "tiny_atac.torch", "accessibility", tmp_path / "acc.torch")
    extract_submodel(out / "tiny_atac.torch", "bias", tmp_path / "bias.torch")
    assemble_chrombpnet(tmp_path / "bias.torch", tmp_path / "acc.torch", tmp_path / "full.torch")
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 206)), 4).transpose(1, 2).float()
    for a, b in zip(load_model(out / "tiny_atac.torch")(X), load_model(tmp_path / "full.torch")(X)):
        torch.testing.assert_close(a, b)


def test_chrombpnet_config_rejects_controls_and_needs_negatives(atac):
    with pytest.raises(InputError, match="controls: ChromBPNet models take no control tracks"):
        parse_config(fit_config(atac, controls=[str(atac["signal"])]), kind="fit")
    with pytest.raises(InputError, match="negatives: ChromBPNet needs background regions"):
        parse_config(fit_config(atac, negatives=None), kind="fit")


def test_pipeline_routes_models_to_stages():
    stages = pipeline_stages(load_config(REPO / "config" / "demo_atac.json"))
    assert stages["bias_fit"].loci == "resources/demo_atac/negatives.bed.gz"
    assert stages["bias_fit"].peaks == "resources/demo_atac/peaks.narrowPeak.gz"
    assert (stages["bias_fit"].n_layers, stages["fit"].n_layers) == (4, 6)
    assert stages["bias_qc"].model == stages["fit"].bias_model == "results/demo_atac/bias_fit/demo_atac.bias.torch"
    accessibility = "results/demo_atac/fit/demo_atac.accessibility.torch"
    assert stages["predict"].model == stages["attribute"].model == stages["marginalize"].model == accessibility
    assert stages["evaluate"].model == "results/demo_atac/fit/demo_atac.torch"
    # The accessibility model's QC: footprints in the background of the validation chromosomes.
    free = stages["bias_free_qc"]
    assert (free.model, free.full_model) == (accessibility, "results/demo_atac/fit/demo_atac.torch")
    assert (free.loci, free.chroms, free.motifs) == ("resources/demo_atac/negatives.bed.gz", ["chr2"],
                                                     "resources/demo_atac/motifs.meme")
    assert not free.strict
    # A stage's own model key wins: the full model predicts the observed signal.
    data = json.loads((REPO / "config" / "demo_atac.json").read_text())
    data["predict_parameters"]["model"] = "results/demo_atac/fit/demo_atac.torch"
    assert pipeline_stages(parse_config(data))["predict"].model == "results/demo_atac/fit/demo_atac.torch"


def _pipeline(data, **overrides) -> dict:
    return {**fit_config(data), "predict_parameters": {"chroms": ["chr2"]},
            "bias_qc_parameters": {"n_loci": 20, "n_shuffles": 2, "n_seqlets": 500, "window": 100},
            **overrides}


def test_workflow_plans_bias_fit_qc_then_chrombpnet(atac, tmp_path):
    jobs = planned_jobs(tmp_path, write_json(tmp_path / "atac.json", _pipeline(atac)))
    for rule in ("fit_bias_model", "attribute_bias_model", "discover_bias_motifs", "qc_bias_model",
                 "fit_chrombpnet", "predict_peaks", "evaluate_model", "write_report"):
        assert jobs[rule] == 1, jobs
    assert "fit_model" not in jobs


@pytest.mark.parametrize(("given", "skipped", "added"), [
    (["bias_model"], {"fit_bias_model"}, set()),
    (["model"], {"fit_bias_model", "fit_chrombpnet"}, {"extract_accessibility_model", "extract_bias_model"}),
    (["bias_model", "accessibility_model"], {"fit_bias_model", "fit_chrombpnet"},
     {"assemble_chrombpnet_model"}),
])
def test_existing_model_files_are_reused(atac, trained, tmp_path, given, skipped, added):
    out, _ = trained
    files = {"bias_model": out / "tiny_atac.bias.torch", "model": out / "tiny_atac.torch",
             "accessibility_model": out / "tiny_atac.accessibility.torch"}
    config = _pipeline(atac, **{key: str(files[key]) for key in given})
    jobs = planned_jobs(tmp_path, write_json(tmp_path / "atac.json", config))
    assert not skipped & set(jobs), jobs
    assert added <= set(jobs), jobs
    assert jobs["predict_peaks"] == 1


def test_chrombpnet_workflow_lint_is_clean(atac, tmp_path):
    result = snakemake(tmp_path, write_json(tmp_path / "atac.json", _pipeline(atac)), "--lint")
    assert result.returncode == 0
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_bias_qc_writes_verdict_and_says_when_motifs_were_not_checked(atac, trained, tmp_path):
    from bpnet_core.bias_qc import attribute_bias_model, qc_bias_model
    from bpnet_core.modisco import discover_motifs

    out, _ = trained
    qc_config = {"model": str(out / "tiny_atac.bias.torch"), "sequences": str(atac["sequences"]),
                 "loci": str(atac["peaks"]), "negatives": str(atac["negatives"]),
                 "signals": [str(atac["signal"])], "chroms": ["chr2"], "in_window": 206,
                 "out_window": 100, "n_loci": 30, "n_shuffles": 2, "batch_size": 16}
    attribute_bias_model(qc_config, tmp_path / "ohe.npz", tmp_path / "attr.npz")
    assert np.load(tmp_path / "attr.npz")["arr_0"].shape == (30, 4, 206)
    discover_motifs(tmp_path / "ohe.npz", tmp_path / "attr.npz", tmp_path / "bias.h5", n_seqlets=500, window=100)
    for motifs, checked in ((None, False), (str(atac["motifs"]), True)):
        qc = qc_bias_model({**qc_config, "motifs": motifs}, tmp_path / "bias.h5", tmp_path / "qc")
        saved = json.loads((tmp_path / "qc" / "qc.json").read_text())
        assert saved == json.loads(json.dumps(qc))
        assert saved["tf_motif_check"] is checked
        assert set(saved["count_pearson"]) == {"negatives", "peaks"}
        assert saved["enrichment"]["max_share"] == 0.25 and "Enrichment of peaks" in (tmp_path / "qc" / "qc.html").read_text()
        assert all("tf_complexity" in p for p in saved["patterns"])
        assert saved["count_pearson"]["peaks"]["n_regions"] > 0
        assert ("No motif database" in (tmp_path / "qc" / "qc.html").read_text()) is not checked
    # The tiny data are shallow: the QC, its page, the dataset report and the summary say so.
    insertions = load_model(out / "tiny_atac.bias.torch").metadata["background_insertions"]
    assert saved["background_insertions"] == insertions < saved["min_background_insertions"]
    assert f"from {insertions:,} insertions" in saved["warnings"][0]
    # A bias model none of whose patterns is the enzyme's may not have learnt it: said, not flagged.
    learnt = any(p["kind"] == "bias" for p in saved["patterns"])
    assert any("is an enzyme motif" in w for w in saved["warnings"]) is not learnt
    assert len(saved["warnings"]) == 1 + (not learnt)
    assert "Warning:</b> shallow data" in (tmp_path / "qc" / "qc.html").read_text()


def _motif_counter(consensus: str, weight: float) -> BPNet:
    """A bias model whose counts rise with each near-match (at most one mismatch) of `consensus`, either strand.

    Weight 0: a flat model. Planted TF motifs open the simulated peaks, so
    counting them predicts the peaks' enrichment: accessibility, not the enzyme.
    """
    model = BPNet(n_filters=2, n_layers=1, n_outputs=1, n_control_tracks=0, trimming=53)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        for k, motif in enumerate((consensus, consensus[::-1].translate(str.maketrans("ACGT", "TGCA")))):
            for i, base in enumerate(motif):
                model.iconv.weight[k, "ACGT".index(base), 7 + i] = 1.0
            model.iconv.bias[k] = 1.5 - len(motif)
        model.linear.weight[0, :2] = weight
        model.linear.bias[0] = 2.0
    return model.eval()


def test_bias_qc_flags_a_bias_model_that_predicts_the_peaks_enrichment(atac, tmp_path):
    from bpnet_core.bias_qc import MAX_ENRICHMENT_SHARE, count_pearson, count_verdict
    from bpnet_core.config import BiasQCConfig
    from bpnet_core.models import save_model

    shares = {}
    for name, weight in (("leaky", 1000.0), ("flat", 0.0)):
        save_model(_motif_counter("TGACTCA", weight), tmp_path / f"{name}.torch", {"in_window": 206, "out_window": 100})
        config = BiasQCConfig(model=str(tmp_path / f"{name}.torch"), sequences=str(atac["sequences"]),
                              loci=str(atac["peaks"]), negatives=str(atac["negatives"]),
                              signals=[str(atac["signal"])], chroms=["chr1", "chr2"], in_window=206,
                              out_window=100, device="cpu")
        pearson = count_pearson(config)
        reasons, enrichment = count_verdict(pearson, config.chroms)
        observed = pearson["peaks"]["mean_observed"] - pearson["negatives"]["mean_observed"]
        assert enrichment["observed"] == pytest.approx(observed) and observed > 1
        shares[name] = enrichment["share"]
        flagged = [r for r in reasons if "enrichment" in r]
        assert bool(flagged) is (name == "leaky"), reasons
    assert shares["flat"] == pytest.approx(0.0, abs=1e-6)
    assert shares["leaky"] > MAX_ENRICHMENT_SHARE
    # Unenriched "peaks" give no share, and flag nothing by it.
    same = {"mean_predicted": 1.0, "mean_observed": 2.0, "pearson": 0.5, "n_regions": 10}
    reasons, enrichment = count_verdict({"peaks": same, "negatives": same}, ["chr2"])
    assert enrichment["share"] is None and reasons == []


def test_shallow_bias_data_show_in_the_report_and_the_summary(tmp_path):
    from bpnet_core.chrombpnet import MIN_BIAS_INSERTIONS, depth_warning
    from bpnet_core.report import write_dataset_report
    from bpnet_core.summary import summary_html, summarize_datasets

    assert depth_warning(MIN_BIAS_INSERTIONS, 100) is None
    for name, insertions in (("shallow", 4_000), ("deep", 40_000)):
        qc = {"flagged": name == "shallow", "accept": True, "reasons": ["r"], "tf_motif_check": True,
              "patterns": [], "min_pearson": {},
              "count_pearson": {}, "background_insertions": insertions,
              "warnings": [w for w in [depth_warning(insertions, 500)] if w]}
        (tmp_path / name / "bias_qc").mkdir(parents=True)
        (tmp_path / name / "bias_qc" / "qc.json").write_text(json.dumps(qc))
        write_dataset_report(tmp_path / name, name, tmp_path / name / "report.html")
    assert "Warning:</b> shallow data" in (tmp_path / "shallow" / "report.html").read_text()
    assert "shallow data" not in (tmp_path / "deep" / "report.html").read_text()
    table = summarize_datasets({"shallow": "s.json", "deep": "d.json"}, tmp_path)
    assert table.set_index("dataset")["bias_insertions"].to_dict() == {"shallow": 4_000, "deep": 40_000}
    assert "1 with a bias model trained on shallow data" in summary_html(table, "batch")
    assert table.set_index("dataset")["bias_qc"].to_dict() == {"shallow": "FLAGGED (accepted)", "deep": "passed"}
    assert "1 with a bias model that its QC flagged (bias_qc)" in summary_html(table, "batch")


def test_fit_refuses_a_flagged_bias_model_before_training(atac, trained, tmp_path):
    from bpnet_core.chrombpnet import fit_chrombpnet

    out, config = trained
    qc = tmp_path / "qc.json"
    qc.write_text(json.dumps({"flagged": True, "reasons": ["pattern p0 matches the TF motif AP1_like (q = 0.001)"]}))
    paths = [tmp_path / name for name in ("full.torch", "acc.torch", "history.tsv")]
    with pytest.raises(InputError, match="AP1_like.*Lower `beta`"):
        fit_chrombpnet(config, out / "tiny_atac.bias.torch", *paths, qc_path=qc)
    assert not any(path.exists() for path in paths)
    fit_chrombpnet(config, out / "tiny_atac.bias.torch", *paths, qc_path=qc, accept=True)
    assert all(path.exists() for path in paths)


def test_bias_qc_warns_when_no_pattern_is_the_enzymes_or_the_data_are_shallow():
    from bpnet_core.bias_qc import bias_warnings
    from bpnet_core.chrombpnet import MIN_BIAS_INSERTIONS

    tn5, poly_a = {"kind": "bias"}, {"kind": "low-complexity"}
    deep = MIN_BIAS_INSERTIONS
    assert bias_warnings([tn5, poly_a], "motifs.meme", deep, 1000) == []
    assert bias_warnings([poly_a], None, deep, 1000) == []  # nothing matched: nothing to say of the kinds
    only_poly_a = bias_warnings([poly_a, poly_a], "motifs.meme", deep, 1000)
    assert only_poly_a == ["no TF-MoDISco pattern of the bias model is an enzyme motif of motifs.meme (2 pattern(s): "
                           "low-complexity): it may not have learnt the enzyme's preference, and the accessibility "
                           "model may keep it"]
    shallow = bias_warnings([tn5], "motifs.meme", deep - 1, 1000)
    assert len(shallow) == 1 and shallow[0].startswith(f"shallow data: the bias model learns the enzyme's "
                                                       f"preference from {deep - 1:,} insertions in 1,000")
    assert bias_warnings([], "motifs.meme", None, 0)[0].startswith("no TF-MoDISco pattern")
