"""The Snakemake workflow end to end on tiny data, and its incremental reruns."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from conftest import REPO, planned_jobs, snakemake, tiny_pipeline_config, write_json

def test_pipeline_writes_every_output(pipeline_run):
    workdir, _, _ = pipeline_run
    out = workdir / "results" / "tiny"
    for path in ["fit/tiny.torch", "fit/tiny.history.tsv", "predict/tiny.profile.npz",
                 "predict/tiny.counts.npz", "predict/tiny.predicted.0.bw", "predict/tiny.predicted.1.bw",
                 "evaluate/tiny.performance.tsv", "evaluate/tiny.regions.tsv",
                 "attribute/tiny.ohe.npz", "attribute/tiny.attr.npz", "attribute/tiny.loci.tsv",
                 "attribute/tiny.contrib.bw", "modisco/tiny.modisco.h5", "modisco/tiny.motifs.meme",
                 "modisco/report/motifs.tsv", "modisco/report/report.html",
                 "marginalize/summary.tsv", "marginalize/report.html", "tiny.report.html",
                 "logs/fit_model.log", "logs/predict_peaks.log", "logs/evaluate_model.log",
                 "benchmarks/fit_model.tsv"]:
        assert (out / path).is_file(), path
    with np.load(out / "predict" / "tiny.profile.npz") as profile:
        assert profile["arr_0"].shape[1:] == (2, 100)
        assert set(profile["chrom"]) == {"chr2"}
    perf = pd.read_csv(out / "evaluate" / "tiny.performance.tsv", sep="\t")
    assert perf["n_regions"][0] > 0 and np.isfinite(perf["count_mse"][0])
    assert "training on" in (out / "logs" / "fit_model.log").read_text()


def test_rerun_does_nothing(pipeline_run):
    workdir, config, _ = pipeline_run
    assert planned_jobs(workdir, config) == Counter()


def _edited(pipeline_run, name, edit) -> Path:
    workdir, _, data = pipeline_run
    data = copy.deepcopy(data)
    edit(data)
    return write_json(workdir / name, data)


def test_predict_block_change_reruns_only_prediction(pipeline_run):
    workdir = pipeline_run[0]
    config = _edited(pipeline_run, "predict_edit.json",
                     lambda d: d["predict_parameters"].update(batch_size=3))
    assert planned_jobs(workdir, config) == Counter(
        {"predict_peaks": 1, "export_predicted_bigwig": 2, "write_report": 1, "all": 1})


def test_verbose_and_device_changes_rerun_nothing(pipeline_run):
    def edit(d):
        d["verbose"] = True
        d["fit_parameters"].update(verbose=True, device="cpu")
        d["attribute_parameters"]["device"] = "cpu"

    workdir = pipeline_run[0]
    assert planned_jobs(workdir, _edited(pipeline_run, "verbose.json", edit)) == Counter()


INTERPRETATION = {"attribute_peaks": 1, "discover_motifs": 1, "report_motifs": 1, "export_motifs": 1}


def test_fit_block_change_reruns_fit_and_downstream(pipeline_run):
    workdir = pipeline_run[0]
    config = _edited(pipeline_run, "fit_edit.json", lambda d: d["fit_parameters"].update(lr=0.002))
    assert planned_jobs(workdir, config) == Counter(
        {"fit_model": 1, "predict_peaks": 1, "export_predicted_bigwig": 2, "evaluate_model": 1,
         **INTERPRETATION, "marginalize_motifs": 1, "write_report": 1, "all": 1})


def test_marginalize_motifs_change_reruns_only_marginalize(pipeline_run, tmp_path):
    workdir = pipeline_run[0]
    motifs = tmp_path / "other.meme"
    motifs.write_text(Path(pipeline_run[2]["modisco_report_parameters"]["motifs"]).read_text())
    config = _edited(pipeline_run, "marg_edit.json",
                     lambda d: d["marginalize_parameters"].update(motifs=str(motifs)))
    assert planned_jobs(workdir, config) == Counter({"marginalize_motifs": 1, "write_report": 1, "all": 1})


def test_report_motifs_change_reruns_only_the_report(pipeline_run, tmp_path):
    workdir = pipeline_run[0]
    motifs = tmp_path / "db.meme"
    motifs.write_text(Path(pipeline_run[2]["modisco_report_parameters"]["motifs"]).read_text())
    original = pipeline_run[2]["modisco_report_parameters"]["motifs"]

    def edit(d):
        d["modisco_report_parameters"]["motifs"] = str(motifs)
        # marginalize inherits the report's motifs; pinning them to the old
        # file leaves only the report depending on the change
        d["marginalize_parameters"]["motifs"] = original

    config = _edited(pipeline_run, "report_edit.json", edit)
    assert planned_jobs(workdir, config) == Counter({"report_motifs": 1, "write_report": 1, "all": 1})


def test_attribute_change_reruns_interpretation_never_fit(pipeline_run):
    workdir = pipeline_run[0]
    config = _edited(pipeline_run, "attr_edit.json",
                     lambda d: d["attribute_parameters"].update(n_shuffles=4))
    assert planned_jobs(workdir, config) == Counter({**INTERPRETATION, "write_report": 1, "all": 1})


def test_existing_model_skips_fit(pipeline_run, tmp_path):
    workdir = pipeline_run[0]
    given = workdir / "results" / "tiny" / "fit" / "tiny.torch"
    config = _edited(pipeline_run, "model_given.json", lambda d: d.update(model=str(given), name="given"))
    jobs = planned_jobs(workdir, config)
    assert "fit_model" not in jobs and jobs["predict_peaks"] == 1 and jobs["evaluate_model"] == 1


def test_bad_config_fails_before_any_job(pipeline_run):
    workdir = pipeline_run[0]
    config = _edited(pipeline_run, "typo.json", lambda d: d["fit_parameters"].update(lrr=0.1))
    result = snakemake(workdir, config, "--dry-run")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "error: typo.json: unknown key 'fit_parameters.lrr' (did you mean 'lr'?)" in output
    assert "Traceback" not in output


def test_missing_data_file_names_key(pipeline_run):
    workdir = pipeline_run[0]
    config = _edited(pipeline_run, "missing.json", lambda d: d.update(sequences="/nonexistent/genome.fa"))
    result = snakemake(workdir, config, "--dry-run")
    assert result.returncode != 0
    assert "/nonexistent/genome.fa: file not found (config key 'sequences')" in result.stderr
    assert "Traceback" not in result.stderr


BAD_PEAK_FILES = {  # name -> (lines, message)
    "empty": ([], "(config key 'predict_parameters.loci'): the file holds no intervals"),
    "words": (["chr1\t100\t300", "chr1\tstart\tend"],
              "(config key 'predict_parameters.loci'): line 2: start and end must be integers"),
    "ensembl": (["1\t100\t300"], "(config key 'predict_parameters.loci'): no interval on a chromosome of the FASTA"),
    "hg19": (["chr1\t100\t300", "chr1\t250000000\t250000200"],
             "(config key 'predict_parameters.loci'): 1 interval(s) end beyond their chromosome"),
}


def test_bad_peak_files_fail_the_dry_run(pipeline_run, tmp_path):
    # Caught when the workflow loads, before a batch of hundreds starts: one
    # batch of four bad datasets, each named with its file and key.
    workdir, _, data = pipeline_run
    configs = []
    for name, (lines, _) in BAD_PEAK_FILES.items():
        peaks = tmp_path / f"{name}.bed"
        peaks.write_text("".join(line + "\n" for line in lines))
        bad = copy.deepcopy(data)
        bad["name"] = name
        bad["predict_parameters"]["loci"] = str(peaks)
        configs.append(str(write_json(tmp_path / f"{name}.json", bad)))
    result = snakemake(workdir, write_json(tmp_path / "batch.json", {"datasets": configs}), "--dry-run")
    assert result.returncode != 0
    assert "4 of the configs listed in" in result.stderr and "Traceback" not in result.stderr
    for name, (_, message) in BAD_PEAK_FILES.items():
        assert f"{tmp_path / name}.bed {message}" in result.stderr, name
    # Each named once, under the key where it was written.
    for name in BAD_PEAK_FILES:
        assert result.stderr.count(f"{tmp_path / name}.bed (config key 'predict_parameters.loci')") == 1, name


def test_lint_is_clean(pipeline_run):
    workdir, config, _ = pipeline_run
    result = snakemake(workdir, config, "--lint")
    assert result.returncode == 0
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_make_lint_works_in_a_fresh_clone(tmp_path):
    # A fresh clone has no resources/: the target makes the demo data it lints with.
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    clone = tmp_path / "clone"
    for name in files:
        if (REPO / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, clone / name)
    assert not (clone / "resources").exists()
    # `-o install`: the clone shares this test run's environment.
    result = subprocess.run(["make", "-o", "install", "lint", f"VENV={sys.prefix}"], cwd=clone,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_slurm_profile_by_name_from_the_repository_root(tiny_data, tmp_path):
    """`snakemake --profile slurm` as users type it; a dry run needs no SLURM."""
    config = write_json(tmp_path / "tiny.json", tiny_pipeline_config(tiny_data))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "slurm", "--configfile", str(config),
         "--directory", str(tmp_path), "--dry-run"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = dict(re.findall(r"\nrule (\w+):.*?\n\s+resources: ([^\n]+)", result.stdout, re.S))
    assert "slurm_partition=gpu" in jobs["fit_model"]  # the profile's defaults are in force
    assert "gpu=1" in jobs["fit_model"] and "mem_mb=16000" in jobs["fit_model"]
    assert "gpu=1" not in jobs["predict_peaks"] and "mem_mb=4000" in jobs["predict_peaks"]


def test_cluster_jobs_ask_for_cpus_to_feed_the_gpu(tiny_data, tmp_path):
    """A compute job asks for 8 CPU threads (its cpus-per-task on SLURM), locally at most --cores.

    A SLURM run has no --cores and caps nothing; a dry run caps threads at its
    --cores (1 unless given), so 64 stands in for the cluster here. With
    `threads: workflow.cores`, as before, a SLURM run (no --cores) stopped at
    load: "Workflow requires a total number of cores to be defined".
    """
    config = write_json(tmp_path / "tiny.json", tiny_pipeline_config(tiny_data))

    def threads(*args):
        result = subprocess.run([sys.executable, "-m", "snakemake", "--configfile", str(config), "--directory",
                                 str(tmp_path), "--dry-run", *args], cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        blocks = re.findall(r"\nrule (\w+):(.*?)\n\n", result.stdout, re.S)
        return {rule: int(re.search(r"threads: (\d+)", block).group(1)) if "threads:" in block else 1
                for rule, block in blocks}

    cluster = threads("--profile", "slurm", "--cores", "64")
    assert cluster["fit_model"] == cluster["predict_peaks"] == cluster["evaluate_model"] == 8
    assert cluster["write_report"] == 1
    assert threads("--cores", "2")["fit_model"] == 2
    assert threads("--profile", "slurm", "--cores", "64", "--set-threads", "fit_model=16")["fit_model"] == 16


def test_trained_model_is_write_protected(pipeline_run):
    workdir, _, _ = pipeline_run
    model = workdir / "results" / "tiny" / "fit" / "tiny.torch"
    assert not model.stat().st_mode & 0o222  # Snakemake's protected(): no write bits
