"""Fold ensembles: fold construction, config checks, the {fold} DAG, averages, reruns."""

from __future__ import annotations

import copy
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bpnet_core import layout
from bpnet_core.config import fold_splits, fold_stages, parse_config, pipeline_stages
from bpnet_core.errors import InputError
from bpnet_core.folds import average_contributions, average_predictions, balanced_folds, common_rows
from bpnet_core.simulate.chip import simulate_demo
from bpnet_core.simulate.atac import simulate_atac_demo
from conftest import planned_jobs, snakemake, tiny_pipeline_config, with_interpretation, write_json

DEMO_SIZES = {"chr1": 2_000_000, "chr2": 1_200_000, "chr3": 1_600_000, "chr4": 1_200_000}
FOLD_SIZES = {"chr1": 120_000, "chr2": 100_000, "chr3": 80_000, "chr4": 60_000}
TWO_FOLDS = [
    {"training_chroms": ["chr1", "chr2"], "validation_chroms": ["chr3"], "test_chroms": ["chr4"]},
    {"training_chroms": ["chr3", "chr4"], "validation_chroms": ["chr1"], "test_chroms": ["chr2"]},
]


# --------------------------------------------------------------------------
# Fold construction


def test_balanced_folds_follow_the_stated_rule():
    # By decreasing length: chr1 (2.0) -> group 0, chr3 (1.6) -> 1, chr2 (1.2) -> 2,
    # chr4 (1.2, tie with chr2 broken by order) -> the lightest group, 2.
    folds = balanced_folds(DEMO_SIZES, 3)
    assert folds == [
        {"training_chroms": ["chr2", "chr4"], "validation_chroms": ["chr3"], "test_chroms": ["chr1"]},
        {"training_chroms": ["chr1"], "validation_chroms": ["chr2", "chr4"], "test_chroms": ["chr3"]},
        {"training_chroms": ["chr3"], "validation_chroms": ["chr1"], "test_chroms": ["chr2", "chr4"]},
    ]
    assert balanced_folds(dict(DEMO_SIZES), 3) == folds  # deterministic


@pytest.mark.parametrize("n", [3, 5, 7])
def test_balanced_folds_are_disjoint_cover_every_chromosome_and_balance_lengths(n):
    # hg38's autosomes (Mb, rounded)
    sizes = dict(zip([f"chr{i}" for i in range(1, 23)],
                     [249, 242, 198, 190, 181, 171, 159, 145, 138, 134, 135, 133, 114, 107, 102, 90, 83, 80,
                      59, 64, 47, 51]))
    folds = balanced_folds(sizes, n)
    assert len(folds) == n
    tested = Counter(chrom for fold in folds for chrom in fold["test_chroms"])
    assert set(tested) == set(sizes) and set(tested.values()) == {1}  # each chromosome tested once
    for fold in folds:
        parts = [set(fold[key]) for key in ("training_chroms", "validation_chroms", "test_chroms")]
        assert all(parts) and set.union(*parts) == set(sizes) and sum(map(len, parts)) == len(sizes)
    totals = [sum(sizes[c] for c in fold["test_chroms"]) for fold in folds]
    assert max(totals) - min(totals) <= max(sizes.values())
    assert balanced_folds(sizes, n) == folds


def test_too_few_or_too_many_folds():
    with pytest.raises(ValueError, match="at least 3"):
        balanced_folds(DEMO_SIZES, 2)
    with pytest.raises(ValueError, match="5 folds need at least 5 chromosomes, and there are 4"):
        balanced_folds(DEMO_SIZES, 5)


# --------------------------------------------------------------------------
# Config


@pytest.fixture(scope="module")
def fold_data(tmp_path_factory):
    """Simulated ChIP-like data on four chromosomes."""
    return simulate_demo(tmp_path_factory.mktemp("fold_data"), seed=1, chrom_sizes=FOLD_SIZES)


def fold_config(data, folds=None, interpretation=False, **overrides) -> dict:
    config = tiny_pipeline_config(data, **overrides)
    config["fit_parameters"].update(training_chroms=["chr1", "chr3", "chr4"], validation_chroms=["chr2"])
    if interpretation:
        config = with_interpretation(config, data)
    if folds is not None:
        config["folds"] = copy.deepcopy(folds)
    return config


def test_a_number_of_folds_balances_the_fits_chromosomes(fold_data):
    config = parse_config(fold_config(fold_data, 3))
    splits = fold_splits(config)
    assert list(splits) == ["fold_0", "fold_1", "fold_2"]
    assert [split.test_chroms for split in splits.values()] == [["chr1"], ["chr2"], ["chr3", "chr4"]]
    folds = fold_stages(config)
    fit, evaluate, predict = (folds["fold_0"][stage] for stage in ("fit", "evaluate", "predict"))
    assert fit.training_chroms == ["chr3", "chr4"] and fit.validation_chroms == ["chr2"]
    assert evaluate.chroms == ["chr1"]  # each fold is evaluated on its held-out chromosomes
    assert predict.chroms == ["chr2"]  # every fold predicts the same loci
    assert predict.model == evaluate.model == fit_path("model", "fold_0") == \
        pipeline_stages(config)["predict"].model
    assert folds["fold_2"]["predict"].model == fit_path("model", "fold_2")


def fit_path(key, fold, name="tiny"):
    return layout.fold_path(key, name, fold)


def test_variants_average_every_folds_model(fold_data):
    data = fold_config(fold_data, TWO_FOLDS, variants_parameters={"variants": str(fold_data["variants"])})
    step = pipeline_stages(parse_config(data))["variants"]
    assert step.model == [fit_path("model", "fold_0"), fit_path("model", "fold_1")]


@pytest.mark.parametrize("folds, message", [
    (5, "config key 'folds': 5 folds need at least 5 chromosomes, and there are 4"),
    (2, "config key 'folds': 2 folds: at least 3 are needed"),
    ([], "config key 'folds' is an empty list"),
    ([{**TWO_FOLDS[0], "test_chroms": ["chrX"]}], "folds[0].test_chroms: chrX not in the FASTA"),
])
def test_bad_folds_are_named(fold_data, folds, message):
    with pytest.raises(InputError) as error:
        pipeline_stages(parse_config(fold_config(fold_data, folds), source="my.json"), source="my.json")
    assert message in str(error.value) and str(error.value).startswith("my.json: ")


def test_overlapping_chromosome_sets_are_refused(fold_data):
    folds = [{**TWO_FOLDS[0], "validation_chroms": ["chr3", "chr4"]}]
    with pytest.raises(InputError) as error:
        parse_config(fold_config(fold_data, folds), source="my.json")
    assert "validation_chroms and test_chroms overlap: chr4" in str(error.value)
    assert "folds" in str(error.value)


def test_a_given_model_and_folds_are_refused(fold_data, tmp_path):
    with pytest.raises(InputError, match="config keys 'model' and 'folds'"):
        pipeline_stages(parse_config(fold_config(fold_data, TWO_FOLDS, model=str(tmp_path / "m.torch"))))


# --------------------------------------------------------------------------
# Averages over one set of regions


def _npz(path, chroms, starts, values):
    starts = np.asarray(starts)
    np.savez(path, arr_0=np.asarray(values, dtype=np.float32), chrom=np.asarray(chroms), start=starts,
             end=starts + 10)
    return path


def test_averages_are_the_mean_over_the_regions_every_fold_has(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 2, 10)), rng.normal(size=(3, 2, 10))
    # fold 1 lists the regions in another order and lacks chr1:20 but has chr2:0 that fold 0 lacks
    paths = [_npz(tmp_path / "p0.npz", ["chr1", "chr1", "chr1"], [0, 10, 20], a),
             _npz(tmp_path / "p1.npz", ["chr1", "chr2", "chr1"], [10, 0, 0], b)]
    counts = [_npz(tmp_path / "c0.npz", ["chr1"] * 3, [0, 10, 20], [[1.0], [2.0], [3.0]]),
              _npz(tmp_path / "c1.npz", ["chr1", "chr2", "chr1"], [10, 0, 0], [[4.0], [5.0], [6.0]])]
    dropped = average_predictions(paths, counts, tmp_path / "p.npz", tmp_path / "c.npz")
    assert dropped == 2
    with np.load(tmp_path / "p.npz") as profile, np.load(tmp_path / "c.npz") as count:
        assert list(profile["start"]) == [0, 10] and list(profile["chrom"]) == ["chr1", "chr1"]
        np.testing.assert_allclose(profile["arr_0"], (a[[0, 1]] + b[[2, 0]]) / 2, rtol=1e-6)
        np.testing.assert_allclose(count["arr_0"].ravel(), [(1 + 6) / 2, (2 + 4) / 2])
        assert int(count["n_dropped"]) == 2 and int(count["n_folds"]) == 2


def test_common_rows_keep_the_first_folds_order():
    tables = [pd.DataFrame({"chrom": ["a", "b", "c"], "start": [1, 2, 3]}),
              pd.DataFrame({"chrom": ["c", "b"], "start": [3, 2]})]
    rows, dropped = common_rows(tables)
    assert [list(r) for r in rows] == [[1, 2], [1, 0]] and dropped == 1


def test_contributions_of_other_sequences_are_refused(tmp_path):
    loci = pd.DataFrame({"chrom": ["chr1"], "start": [0], "end": [4], "center": [2]})
    for fold in (0, 1):
        loci.to_csv(tmp_path / f"l{fold}.tsv", sep="\t", index=False)
        ohe = np.eye(4, dtype=np.float32)[None] if fold == 0 else np.eye(4, dtype=np.float32)[None, ::-1]
        np.savez(tmp_path / f"o{fold}.npz", arr_0=ohe)
        np.savez(tmp_path / f"a{fold}.npz", arr_0=np.ones((1, 4, 4), dtype=np.float32))
    with pytest.raises(InputError, match="the sequences differ"):
        average_contributions(*([tmp_path / f"{kind}{fold}.{ext}" for fold in (0, 1)]
                                for kind, ext in (("o", "npz"), ("a", "npz"), ("l", "tsv"))),
                              tmp_path / "o.npz", tmp_path / "a.npz", tmp_path / "l.tsv")


# --------------------------------------------------------------------------
# The workflow


SINGLE = {"fit_model": 1, "predict_peaks": 1, "evaluate_model": 1, "export_predicted_bigwig": 2,
          "write_report": 1, "all": 1}


def test_dry_run_plans_one_fit_per_fold_and_the_averages_once(fold_data, tmp_path):
    assert planned_jobs(tmp_path, write_json(tmp_path / "single.json", fold_config(fold_data))) == Counter(SINGLE)
    jobs = planned_jobs(tmp_path, write_json(tmp_path / "folds.json", fold_config(fold_data, TWO_FOLDS)))
    assert jobs == Counter({"fit_fold_model": 2, "predict_fold_peaks": 2, "evaluate_fold_model": 2,
                            "average_predictions": 1, "tabulate_fold_metrics": 1, "export_predicted_bigwig": 2,
                            "write_report": 1, "all": 1})
    jobs = planned_jobs(tmp_path, write_json(tmp_path / "three.json", fold_config(fold_data, 3, interpretation=True)))
    assert {rule: jobs[rule] for rule in ("fit_fold_model", "attribute_fold_peaks", "marginalize_fold_motifs",
                                          "average_contributions", "average_marginalization", "discover_motifs")} == \
        {"fit_fold_model": 3, "attribute_fold_peaks": 3, "marginalize_fold_motifs": 3, "average_contributions": 1,
         "average_marginalization": 1, "discover_motifs": 1}


def test_chrombpnet_folds_share_one_bias_model(tmp_path):
    atac = simulate_atac_demo(tmp_path / "atac", seed=2, chrom_sizes={"chr1": 150_000, "chr2": 100_000,
                                                                       "chr3": 80_000})
    config = {"name": "tiny_atac", "n_filters": 8, "n_layers": 2, "in_window": 206, "out_window": 100,
              "training_chroms": ["chr1", "chr3"], "validation_chroms": ["chr2"],
              "sequences": str(atac["sequences"]), "loci": str(atac["peaks"]),
              "negatives": str(atac["negatives"]), "signals": [str(atac["signal"])],
              "bias_fit_parameters": {"n_layers": 2}, "fit_parameters": {}, "predict_parameters": {},
              "folds": 3}
    jobs = planned_jobs(tmp_path, write_json(tmp_path / "atac.json", config))
    assert jobs["fit_bias_model"] == 1 and jobs["qc_bias_model"] == 1
    assert jobs["fit_fold_chrombpnet"] == 3 and jobs["evaluate_fold_model"] == 3
    assert "fit_chrombpnet" not in jobs and "predict_peaks" not in jobs


@pytest.fixture(scope="module")
def fold_run(fold_data, tmp_path_factory):
    """The tiny pipeline with two folds and interpretation, run: (workdir, config dict)."""
    workdir = tmp_path_factory.mktemp("fold_run")
    data = fold_config(fold_data, TWO_FOLDS, interpretation=True)
    # The count head is refit per fold, so its contributions differ between folds even where
    # two-epoch models keep their (same-seed) initial profile head.
    data["attribute_parameters"]["output"] = "counts"
    result = snakemake(workdir, write_json(workdir / "folds.json", data))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir, data


def _fold_arrays(out: Path, key: str) -> list[np.ndarray]:
    return [np.load(layout.fold_under(out, key, "tiny", fold))["arr_0"] for fold in ("fold_0", "fold_1")]


def test_averaged_outputs_are_the_mean_of_the_folds(fold_run):
    workdir, _ = fold_run
    out = workdir / "results" / "tiny"
    for key in ("profile", "counts", "attr"):
        folds = _fold_arrays(out, key)
        assert folds[0].shape == folds[1].shape
        assert key == "profile" or not np.allclose(folds[0], folds[1])
        np.testing.assert_allclose(np.load(layout.under(out, key, "tiny"))["arr_0"], np.mean(folds, axis=0),
                                   rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.load(layout.under(out, "ohe", "tiny"))["arr_0"], _fold_arrays(out, "ohe")[0])
    for key in ("predicted_bigwig", "contrib_bigwig", "motifs_meme", "modisco_report_html", "marginalize_html"):
        assert Path(layout.under(out, key, "tiny", track=0)).is_file(), key
    with np.load(layout.under(out, "counts", "tiny")) as counts:
        assert int(counts["n_dropped"]) == 0 and set(counts["chrom"]) == {"chr2"}


def test_fold_metrics_table_and_the_held_out_performance(fold_run):
    workdir, _ = fold_run
    out = workdir / "results" / "tiny"
    table = pd.read_csv(layout.under(out, "fold_table", "tiny"), sep="\t")
    assert list(table["fold"]) == ["fold_0", "fold_1", "mean", "sd"]
    assert list(table["test_chroms"][:2]) == ["chr4", "chr2"]
    folds = table.iloc[:2]
    assert table.loc[2, "count_pearson"] == pytest.approx(folds["count_pearson"].mean(), rel=1e-4)
    assert table.loc[3, "count_pearson"] == pytest.approx(folds["count_pearson"].std(), rel=1e-4)
    performance = pd.read_csv(layout.under(out, "performance", "tiny"), sep="\t")
    assert performance["n_regions"][0] == folds["n_regions"].sum()
    regions = pd.read_csv(layout.under(out, "regions", "tiny"), sep="\t")
    assert set(regions.groupby("fold")["chrom"].unique().map(tuple)) == {("chr4",), ("chr2",)}
    report = layout.under(out, "report", "tiny").read_text()
    assert '<h2 id="folds">Folds</h2>' in report and "Model, fold_1" in report
    assert "TF-MoDISco on the contributions averaged over the 2 folds" in report
    marginalized = pd.read_csv(layout.under(out, "marginalize_summary", "tiny"), sep="\t")
    assert {"delta_log_counts", "delta_log_counts_sd", "n_folds"} <= set(marginalized.columns)


def test_summary_reports_mean_and_spread_of_the_held_out_metrics(fold_run):
    from bpnet_core.summary import summarize_datasets

    workdir, _ = fold_run
    row = summarize_datasets({"tiny": str(workdir / "folds.json")}, workdir / "results").iloc[0]
    table = pd.read_csv(layout.under(workdir / "results" / "tiny", "fold_table", "tiny"), sep="\t")
    assert row["status"] == "done" and row["n_folds"] == 2
    assert row["count_pearson_mean"] == pytest.approx(table.loc[2, "count_pearson"])
    assert row["count_pearson_sd"] == pytest.approx(table.loc[3, "count_pearson"])


def test_rerun_does_nothing(fold_run):
    workdir, _ = fold_run
    assert planned_jobs(workdir, workdir / "folds.json") == Counter()


AVERAGES = {"average_predictions": 1, "tabulate_fold_metrics": 1, "average_contributions": 1,
            "average_marginalization": 1, "export_predicted_bigwig": 2, "discover_motifs": 1,
            "report_motifs": 1, "export_motifs": 1, "write_report": 1, "all": 1}
ONE_FOLD = {"fit_fold_model": 1, "predict_fold_peaks": 1, "evaluate_fold_model": 1, "attribute_fold_peaks": 1,
            "marginalize_fold_motifs": 1}


def test_changing_one_fold_reruns_that_fold_and_the_averages(fold_run):
    workdir, data = fold_run
    edited = copy.deepcopy(data)
    edited["folds"][1]["training_chroms"] = ["chr3"]
    assert planned_jobs(workdir, write_json(workdir / "edit.json", edited)) == Counter({**ONE_FOLD, **AVERAGES})


def test_adding_a_fold_trains_only_that_fold(fold_run):
    workdir, data = fold_run
    edited = copy.deepcopy(data)
    edited["folds"].append({"training_chroms": ["chr2", "chr4"], "validation_chroms": ["chr1"],
                            "test_chroms": ["chr3"]})
    assert planned_jobs(workdir, write_json(workdir / "added.json", edited)) == Counter({**ONE_FOLD, **AVERAGES})


def test_a_killed_fold_job_resumes_without_touching_the_other_fold(fold_run):
    """The state a run killed in fold_1's fit leaves (fold_0 done; outputs are written atomically,
    so fold_1 has none, and nothing is averaged yet): the rerun does fold_1 and the averages only.

    The rerun goes as far as the averaged predictions and metrics (the
    interpretation stages after them are the same jobs the plan counts).
    """
    workdir, _ = fold_run
    out = workdir / "results" / "tiny"
    kept = {path: path.stat().st_mtime_ns for path in (out / "folds" / "fold_0").rglob("*") if path.is_file()}
    for folder in ("folds/fold_1", "predict", "evaluate", "attribute", "modisco", "marginalize"):
        shutil.rmtree(out / folder)
    layout.under(out, "report", "tiny").unlink()
    assert planned_jobs(workdir, workdir / "folds.json") == Counter({**ONE_FOLD, **AVERAGES})
    targets = [layout.path(key, "tiny") for key in ("counts", "performance")]
    result = snakemake(workdir, workdir / "folds.json", *targets)
    assert result.returncode == 0, result.stderr[-4000:]
    assert layout.fold_under(out, "model", "tiny", "fold_1").is_file()
    assert all((workdir / target).is_file() for target in targets)
    assert {path: path.stat().st_mtime_ns for path in kept} == kept
    rest = planned_jobs(workdir, workdir / "folds.json")
    assert "fit_fold_model" not in rest and "predict_fold_peaks" not in rest and "average_predictions" not in rest
    assert json.loads(layout.under(out, "params", "tiny").read_text())["fold_1/fit"]["training_chroms"] == \
        ["chr3", "chr4"]
