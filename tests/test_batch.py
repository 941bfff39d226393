"""Batch runs: a sheet of dataset configs -> one DAG, a cross-dataset summary,
concurrent invocations in one folder."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from bpnet_core.batch import load_datasets, read_sheet
from bpnet_core.errors import InputError
from bpnet_core.summary import dataset_status, summarize_datasets
from conftest import SNAKEFILE, planned_jobs, snakemake, tiny_pipeline_config, write_json


def test_sheet_lists_configs_by_column_skipping_comments(tmp_path):
    sheet = tmp_path / "datasets.tsv"
    sheet.write_text("# ENCODE batch 1\ndataset\tconfig\nA\tconfig/a.json\n\nB\tconfig/b.json\n")
    assert read_sheet(sheet) == ["config/a.json", "config/b.json"]
    (tmp_path / "folder").mkdir()
    for name in ("b", "a"):
        (tmp_path / "folder" / f"{name}.json").write_text("{}")
    assert read_sheet(tmp_path / "folder") == [str(tmp_path / "folder" / f"{n}.json") for n in "ab"]


def test_sheet_without_config_column_is_named(tmp_path):
    sheet = tmp_path / "datasets.tsv"
    sheet.write_text("path\nconfig/a.json\n")
    with pytest.raises(InputError, match=r"datasets.tsv \(config key 'datasets'\): .*'config' column"):
        read_sheet(sheet)


def test_two_datasets_with_one_name_are_refused(tiny_data, tmp_path):
    a = write_json(tmp_path / "a.json", tiny_pipeline_config(tiny_data, name="same"))
    b = write_json(tmp_path / "b.json", tiny_pipeline_config(tiny_data, name="same"))
    with pytest.raises(InputError, match=rf"{b}: name 'same' is also the name of {a}"):
        load_datasets({"datasets": [str(a), str(b)]}, "batch.json")


def test_one_bad_config_fails_the_batch_before_any_job(tiny_data, tmp_path):
    good = write_json(tmp_path / "good.json", tiny_pipeline_config(tiny_data, name="good"))
    bad_data = tiny_pipeline_config(tiny_data, name="bad")
    bad_data["predict_parameters"]["batchsize"] = 8
    bad = write_json(tmp_path / "bad.json", bad_data)
    sheet = tmp_path / "datasets.tsv"
    sheet.write_text(f"config\n{good}\n{bad}\n")
    batch = write_json(tmp_path / "batch.json", {"datasets": str(sheet)})
    result = snakemake(tmp_path, batch)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "1 of the configs listed in" in output and "(nothing was run)" in output
    assert f"{bad}: unknown key 'predict_parameters.batchsize' (did you mean 'batch_size'?)" in output
    assert "Traceback" not in output
    assert not (tmp_path / "results").exists()


def test_a_configfile_takes_no_keys_from_another_config(tiny_data, tmp_path):
    """Snakemake deep-merges --configfile into a Snakefile's `configfile:`; the
    workflow has none, so a dataset without a marginalize block plans no
    marginalization (the demo config's block is not merged in)."""
    config = write_json(tmp_path / "plain.json", tiny_pipeline_config(tiny_data, name="plain"))
    jobs = planned_jobs(tmp_path, config)
    assert jobs["fit_model"] == 1 and "marginalize_motifs" not in jobs


def test_status_of_unfinished_and_failed_datasets(tmp_path):
    (tmp_path / "started" / "fit").mkdir(parents=True)
    (tmp_path / "started" / "fit" / "started.torch").write_bytes(b"")
    (tmp_path / "broken" / "logs").mkdir(parents=True)
    (tmp_path / "broken" / "logs" / "fit_model.log").write_text(
        "2026-11-24 10:00:00 INFO training on 10 loci\n"
        "2026-11-24 10:00:01 ERROR peaks.bed (config key 'loci'): no loci left\n")
    assert dataset_status(tmp_path, "started") == ("not done", "finished: fit")
    assert dataset_status(tmp_path, "never") == ("not done", "not started")
    assert dataset_status(tmp_path, "broken") == ("failed", "fit_model: peaks.bed (config key 'loci'): no loci left")
    table = summarize_datasets({"started": "s.json", "broken": "b.json"}, tmp_path)
    assert list(table["status"]) == ["not done", "failed"] and table["training_s"].isna().all()


def _tiny(tiny_data, name, **overrides):
    return tiny_pipeline_config(tiny_data, name=name, max_epochs=1, **overrides)


def test_concurrent_runs_then_a_failed_batch_summary(tiny_data, tmp_path):
    """Two invocations with different --configfile in one folder both finish
    (fit and evaluation only, to keep the test short); a batch that then fails on a
    third dataset still writes its summary."""
    configs = [write_json(tmp_path / f"{name}.json", _tiny(tiny_data, name)) for name in ("a", "b")]
    runs = [subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(tmp_path),
         "--configfile", str(config), "--cores", "1", f"results/{name}/evaluate/{name}.performance.tsv"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, config in zip("ab", configs)]
    for run in runs:
        output = run.communicate()[0]
        # Snakemake's own race: each run, finishing, removes .snakemake/locks; the later of
        # two that finish together can fail there after all its jobs are done.
        lock_race = "steps (100%) done" in output and ".snakemake/locks" in output
        assert run.returncode == 0 or lock_race, output
    for name in ("a", "b"):
        assert (tmp_path / "results" / name / "evaluate" / f"{name}.performance.tsv").is_file()

    # Peaks on no training chromosome pass validation and stop the fit.
    elsewhere = tmp_path / "chr2_only.bed"
    elsewhere.write_text("chr2\t50000\t50500\n")
    broken = _tiny(tiny_data, "c")
    broken["fit_parameters"]["loci"] = str(elsewhere)
    configs.append(write_json(tmp_path / "c.json", broken))
    batch = write_json(tmp_path / "batch.json", {"datasets": [str(c) for c in configs]})
    result = snakemake(tmp_path, batch, "results/c/c.report.html")
    assert result.returncode != 0
    summary = pd.read_csv(tmp_path / "results" / "summary" / "batch.tsv", sep="\t").set_index("dataset")
    assert list(summary["status"]) == ["not done", "not done", "failed"]
    assert summary.loc["a", "detail"] == "finished: fit, evaluate"
    assert summary.loc["c", "detail"].startswith("fit_model: ") and "no loci left" in summary.loc["c", "detail"]
    performance = pd.read_csv(tmp_path / "results" / "a" / "evaluate" / "a.performance.tsv", sep="\t")
    assert summary.loc["a", "count_pearson"] == pytest.approx(performance["count_pearson"][0], rel=1e-5)
    assert summary.loc["a", "training_s"] > 0
    page = (tmp_path / "results" / "summary" / "batch.html").read_text()
    assert "3 datasets: 0 done, 1 failed, 2 not done." in page


def test_summarize_command_reports_a_batch_at_any_time(tiny_data, tmp_path, capsys):
    from bpnet_core.cli import main

    config = write_json(tmp_path / "a.json", _tiny(tiny_data, "a"))
    (tmp_path / "results" / "a" / "fit").mkdir(parents=True)
    (tmp_path / "results" / "a" / "fit" / "a.torch").write_bytes(b"")
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"config\n{config}\n")
    assert main(["summarize", str(sheet), "--results", str(tmp_path / "results")]) == 0
    assert "a\tnot done\tfinished: fit\n" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "results" / "summary" / "sheet.tsv", sep="\t")
    assert table["dataset"].tolist() == ["a"] and table["config"].tolist() == [str(config)]
