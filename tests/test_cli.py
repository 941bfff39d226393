"""The command line: single-step JSONs, validate, clean errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyBigWig
import pytest

from conftest import REPO, tiny_fit_config, write_json


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "bpnet_core", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True)


def test_validate_prints_effective_stages():
    result = run_cli("validate", REPO / "config" / "ENCSR000BGQ.json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kind"] == "bpnet_pipeline"
    assert report["models"]["model"] == "results/spi1/fit/spi1.torch"
    assert set(report["stages"]) == {"fit", "predict", "evaluate", "attribute", "modisco_motifs",
                                     "modisco_report", "marginalize"}
    assert report["stages"]["attribute"]["batch_size"] == 1


def test_validate_single_step_and_chrombpnet():
    for name, kind in [("bpnet_fit", "FitConfig"), ("chrombpnet_fit", "ChromBPNetFitConfig"),
                       ("ENCSR637XSC", "chrombpnet_pipeline")]:
        result = run_cli("validate", REPO / "config" / f"{name}.json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["kind"] == kind


def test_validate_files_flags_placeholder_paths():
    result = run_cli("validate", "--files", REPO / "config" / "bpnet_fit.json")
    assert result.returncode == 1
    assert "file not found (config key 'sequences'; looked for " in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_is_one_message_without_traceback(tmp_path):
    config = write_json(tmp_path / "bad.json", {"batch_sise": 3, "model": "m.torch", "sequences": "x",
                                                "loci": "y"})
    result = run_cli("predict", "-p", config)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr == f"error: {config}: unknown key 'batch_sise' (did you mean 'batch_size'?)\n"


@pytest.fixture(scope="module")
def cli_model(tiny_data, tmp_path_factory):
    """A model trained by `bpnet-core fit` (one epoch, with both control tracks), shared by the tests."""
    out = tmp_path_factory.mktemp("cli_fit")
    fit = write_json(out / "fit.json", tiny_fit_config(tiny_data, max_epochs=1))
    result = run_cli("fit", "-p", fit, "-o", out)
    assert result.returncode == 0, result.stderr
    return out / "tiny.torch"


def test_fit_predict_evaluate_from_single_step_jsons(tiny_data, cli_model, tmp_path):
    model = cli_model
    assert model.is_file() and model.with_suffix(".history.tsv").is_file()

    common = {"model": str(model), "sequences": str(tiny_data["sequences"]), "loci": str(tiny_data["peaks"]),
              "controls": [str(tiny_data["control_plus"]), str(tiny_data["control_minus"])],
              "in_window": 206, "out_window": 100, "chroms": ["chr2"]}
    predict = write_json(tmp_path / "predict.json", {**common, "profile_filename": "p.npz",
                                                     "counts_filename": "c.npz"})
    result = run_cli("predict", "-p", predict, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "p.npz") as profile, np.load(tmp_path / "c.npz") as counts:
        n = len(profile["chrom"])
        assert profile["arr_0"].shape == (n, 2, 100) and counts["arr_0"].shape == (n, 1)
        assert set(profile["chrom"]) == {"chr2"}
        assert (profile["end"] - profile["start"] == 100).all()
        first = (str(profile["chrom"][0]), int(profile["start"][0]))
        expected = np.exp(counts["arr_0"][0, 0]) - 1
    for track in (0, 1):
        assert (tmp_path / f"p.{track}.bw").is_file()
    # the two bigWigs hold softmax x predicted total counts
    totals = 0.0
    for track in (0, 1):
        bw = pyBigWig.open(str(tmp_path / f"p.{track}.bw"))
        totals += np.nansum(bw.values(first[0], first[1], first[1] + 100))
        bw.close()
    assert totals == pytest.approx(expected, rel=0.05)  # other windows may overlap and be averaged

    evaluate = write_json(tmp_path / "evaluate.json", {
        **common, "signals": [str(tiny_data["signal_plus"]), str(tiny_data["signal_minus"])],
        "performance_filename": "perf.tsv"})
    result = run_cli("evaluate", "-p", evaluate, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    perf = pd.read_csv(tmp_path / "perf.tsv", sep="\t")
    assert list(perf.columns) == ["n_regions", "profile_mnll", "profile_jsd", "profile_pearson",
                                  "profile_spearman", "count_pearson", "count_spearman", "count_mse"]
    assert perf["n_regions"][0] == n
    regions = pd.read_csv(tmp_path / "perf.regions.tsv", sep="\t")
    assert len(regions) == n and (regions["profile_jsd"].between(0, 1)).all()


def test_predict_rejects_controls_mismatch(tiny_data, cli_model, tmp_path):
    predict = write_json(tmp_path / "predict.json", {
        "model": str(cli_model), "sequences": str(tiny_data["sequences"]),
        "loci": str(tiny_data["peaks"]), "controls": [str(tiny_data["control_plus"])],
        "in_window": 206, "out_window": 100})
    result = run_cli("predict", "-p", predict, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "config key 'controls': 1 control track(s) given, but the model" in result.stderr
    assert "was trained with 2" in result.stderr
    assert not (tmp_path / "y_profile.npz").exists()


def test_python_m_and_entry_point_agree():
    from pathlib import Path

    entry = Path(sys.executable).parent / "bpnet-core"
    a = subprocess.run([sys.executable, "-m", "bpnet_core", "--version"], capture_output=True, text=True)
    b = subprocess.run([str(entry), "--version"], capture_output=True, text=True)
    assert a.stdout == b.stdout and a.stdout.startswith("bpnet-core ")


def test_attribute_and_marginalize_from_single_step_jsons(tiny_data, cli_model, tmp_path):
    common = {"model": str(cli_model), "sequences": str(tiny_data["sequences"]),
              "controls": [str(tiny_data["control_plus"]), str(tiny_data["control_minus"])],
              "in_window": 206, "out_window": 100, "chroms": ["chr2"]}
    attribute = write_json(tmp_path / "attribute.json", {**common, "loci": str(tiny_data["peaks"]),
                                                         "n_shuffles": 2, "attr_filename": "a.npz"})
    result = run_cli("attribute", "-p", attribute, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "ohe.npz") as ohe, np.load(tmp_path / "a.npz") as attr:
        assert ohe["arr_0"].shape == attr["arr_0"].shape and ohe["arr_0"].shape[1:] == (4, 206)
    assert (tmp_path / "a.bw").is_file() and (tmp_path / "a.loci.tsv").is_file()

    marginalize = write_json(tmp_path / "marginalize.json", {
        **common, "loci": str(tiny_data["negatives"]), "motifs": str(tiny_data["motifs"]), "n_loci": 5,
        "output_filename": "marg/"})
    result = run_cli("marginalize", "-p", marginalize, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(tmp_path / "marg" / "summary.tsv", sep="\t")
    assert len(summary) == 6 and (tmp_path / "marg" / "report.html").is_file()
