"""A newcomer's first hour: mistakes caught at load, configs as users write them.

Each test is one of the mistakes of issue 25, made as a user makes it, and
checks that `bpnet-core validate --files` and the workflow's load say so
before any job runs, naming the key where the user wrote it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bpnet_core.batch import load_dataset
from bpnet_core.config import parse_config, pipeline_stages, planned_stages, read_config
from bpnet_core.errors import InputError
from conftest import REPO, planned_jobs, snakemake, tiny_pipeline_config, with_interpretation, write_json


def validate(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "bpnet_core", "validate", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True)


def load_error(data: dict, source: str = "my.json") -> str:
    with pytest.raises(InputError) as err:
        load_dataset(data, source)
    return str(err.value)


def test_windows_set_only_for_the_fit_reach_every_model_stage(tiny_data):
    data = tiny_pipeline_config(tiny_data)
    for key in ("in_window", "out_window"):
        data["fit_parameters"][key] = data.pop(key)
    stages = pipeline_stages(parse_config(with_interpretation(data, tiny_data)))
    for stage in ("predict", "evaluate", "attribute", "marginalize"):
        assert (stages[stage].in_window, stages[stage].out_window) == (206, 100), stage
        assert stages[stage].key_name("in_window") == "fit_parameters.in_window"


def test_windows_a_trained_model_cannot_map_fail_at_load(tiny_data):
    data = tiny_pipeline_config(tiny_data)
    data["predict_parameters"].update(in_window=2114, out_window=1000)
    message = load_error(data)
    assert message.startswith("my.json: predict_parameters.in_window, predict_parameters.out_window: "
                              "predict would run the model that fit trains with 2114 -> 1000 bp, but "
                              "that model maps 206 -> 100 bp (in_window, out_window)")
    # Evaluate and attribute take predict's loci, not its windows: one problem.
    assert "problems" not in message


def test_windows_of_the_two_chrombpnet_models_must_agree(tiny_data):
    data = tiny_pipeline_config(tiny_data, negatives=str(tiny_data["negatives"]), controls=None)
    data["bias_fit_parameters"] = {"in_window": 306}
    message = load_error(data)
    assert "bias_fit_parameters.in_window, out_window: the bias model would map 306 -> 100 bp" in message


def test_errors_name_the_key_where_it_was_written(tiny_data):
    data = tiny_pipeline_config(tiny_data, out_window=300, max_jitter=-1)
    message = str(pytest.raises(InputError, parse_config, data, "my.json").value)
    assert "key 'max_jitter': Input should be greater than or equal to 0" in message
    assert "in_window, out_window: in_window (206) must be at least out_window (300)" in message
    assert "fit_parameters" not in message  # neither key is in a block
    # Every stage that inherits them says the same: once.
    assert message.startswith("my.json: 2 problems:")


def test_every_stage_problem_at_once(tiny_data, tmp_path):
    empty = tmp_path / "empty.bed"
    empty.write_text("")
    data = with_interpretation(tiny_pipeline_config(tiny_data), tiny_data)
    data["predict_parameters"]["loci"] = str(empty)
    data["modisco_report_parameters"]["motifs"] = str(tmp_path / "absent.meme")
    data["attribute_parameters"]["n_shuffles"] = 0
    message = str(pytest.raises(InputError, parse_config, data, "my.json").value)
    assert "key 'attribute_parameters.n_shuffles'" in message
    data["attribute_parameters"]["n_shuffles"] = 3
    message = load_error(data)
    assert message.startswith("my.json: 2 problems:")
    assert f"{empty} (config key 'predict_parameters.loci'): the file holds no intervals" in message
    assert "absent.meme: file not found (config key 'modisco_report_parameters.motifs')" in message


def test_peaks_of_a_chrombpnet_bias_fit_are_named_as_written(tiny_data, tmp_path):
    empty = tmp_path / "empty.bed"
    empty.write_text("")
    data = tiny_pipeline_config(tiny_data, negatives=str(tiny_data["negatives"]), controls=None)
    data["fit_parameters"]["loci"] = str(empty)
    message = load_error(data)
    assert message == f"my.json: {empty} (config key 'fit_parameters.loci'): the file holds no intervals"


def test_loci_on_none_of_the_stage_chromosomes(tiny_data):
    data = tiny_pipeline_config(tiny_data)
    data["predict_parameters"]["chroms"] = ["chr1"]
    data["predict_parameters"]["loci"] = str(tiny_data["negatives"])
    assert load_dataset(data, "ok.json")  # chr1 has background regions
    data["predict_parameters"]["loci"] = str(tiny_data["peaks"])
    only_chr2 = tiny_data["peaks"].parent / "chr2_peaks.bed"
    only_chr2.write_text("chr2\t1000\t1200\n")
    data["predict_parameters"]["loci"] = str(only_chr2)
    assert "(config key 'predict_parameters.loci'): no interval on the chromosomes of " \
           "'predict_parameters.chroms' (chr1): the file has chr2" in load_error(data)


def test_a_missing_model_is_trained_and_said(tiny_data, tmp_path, capsys):
    data = tiny_pipeline_config(tiny_data, model="/data/typo_existing_model.torch")
    dataset = load_dataset(data, "my.json")
    assert dataset.trains("model")
    assert dataset.warnings == (
        "my.json: config key 'model': /data/typo_existing_model.torch does not exist (looked for "
        "/data/typo_existing_model.torch); a new model will be trained into results/tiny/fit/tiny.torch",)
    assert dataset.plan() == "tiny (my.json): trains model"
    # A model the pipeline writes itself is no mistake.
    assert load_dataset(tiny_pipeline_config(tiny_data, model="results/tiny/fit/tiny.torch"), "a").warnings == ()
    given = tmp_path / "given.torch"
    given.write_bytes(b"")
    assert load_dataset(tiny_pipeline_config(tiny_data, model=str(given)), "b").plan() == \
        f"tiny (b): uses the given model {given}"

    config = write_json(tmp_path / "typo.json", data)
    result = validate("--files", config)
    assert result.returncode == 0, result.stderr
    assert "warning: " in result.stderr and "config key 'model'" in result.stderr
    assert "plan: tiny (" in result.stderr


def test_workflow_start_prints_plan_and_warning(tiny_data, tmp_path):
    config = write_json(tmp_path / "typo.json", tiny_pipeline_config(tiny_data, model="/data/typo.torch"))
    result = snakemake(tmp_path, config, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "warning: " in result.stderr and "config key 'model': /data/typo.torch does not exist" in result.stderr
    assert "plan: tiny (" in result.stderr and "trains model" in result.stderr


def test_a_dry_run_without_config_explains_itself(tmp_path):
    result = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
                             "--directory", str(tmp_path), "--dry-run"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "No config given, so there is nothing to run" in result.stderr
    assert "make demo" in result.stderr and "--configfile config/<dataset>.json" in result.stderr
    assert not (tmp_path / "results").exists()


COMMENTED = """{
  "name": "tiny",   # results/tiny/
  # the genome
  "sequences": "%s"
}
"""


def test_commented_json_and_yaml_read_as_snakemake_reads_them(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(COMMENTED % "g.fa")
    assert read_config(path) == {"name": "tiny", "sequences": "g.fa"}
    tabs = tmp_path / "tabs.json"
    tabs.write_text('{\n\t"name": "x",  # a comment\n\t"n_layers": 2\n}\n')
    message = str(pytest.raises(InputError, read_config, tabs).value)
    assert message.startswith(f"{tabs}: not valid YAML at line 2, column 1:")
    assert "indent with spaces" in message
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x",, }')
    assert str(pytest.raises(InputError, read_config, broken).value).startswith(
        f"{broken}: not valid JSON at line 1, column 14")
    # The workflow (Snakemake's own loader) refuses the tab-indented file too.
    result = snakemake(tmp_path, tabs, "--dry-run")
    assert result.returncode != 0


def test_validate_reads_a_yaml_batch(tmp_path):
    result = validate(REPO / "config" / "demos.yaml", cwd=REPO)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kind"] == "batch"
    assert {r["kind"] for r in report["datasets"].values()} == {"bpnet_pipeline", "chrombpnet_pipeline"}


def test_relative_path_not_found_names_the_absolute_path(tmp_path, tiny_data):
    data = tiny_pipeline_config(tiny_data, sequences="data/genome.fa")
    message = str(pytest.raises(InputError, load_dataset, data, "my.json").value)
    assert "data/genome.fa: file not found (config key 'sequences'; looked for " in message
    assert str((REPO / "data" / "genome.fa")) in message or "/data/genome.fa)" in message


def test_validate_into_a_closed_pipe_is_quiet():
    script = (f"{sys.executable} -m bpnet_core validate {REPO / 'config' / 'ENCSR000BGQ.json'} | head -1")
    result = subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True, text=True)
    assert result.stdout == "{\n"
    assert result.stderr == ""
    assert result.returncode == 0


@pytest.mark.parametrize("template", ["bpnet", "chrombpnet"])
def test_a_template_with_ones_own_paths_validates_and_plans(template, tiny_data, tmp_path):
    """The newcomer path: copy a template, edit its paths, validate, dry run."""
    text = (REPO / "config" / "templates" / f"{template}.json").read_text()
    data = read_config(REPO / "config" / "templates" / f"{template}.json")
    # Every path a user edits is in the template's first block.
    assert data["sequences"].startswith("data/") and data["loci"].startswith("data/")
    mine = {"sequences": str(tiny_data["sequences"]), "loci": str(tiny_data["peaks"]),
            "motifs": str(tiny_data["motifs"]), "training_chroms": ["chr1"], "validation_chroms": ["chr2"]}
    if template == "bpnet":
        mine.update(negatives=str(tiny_data["negatives"]),
                    signals=[str(tiny_data["signal_plus"]), str(tiny_data["signal_minus"])],
                    controls=[str(tiny_data["control_plus"]), str(tiny_data["control_minus"])])
    else:
        mine.update(signals=[str(tiny_data["signal_plus"])], exclusion_lists=None)
    data.update(mine)
    for block in ("predict_parameters", "attribute_parameters"):
        data[block]["chroms"] = ["chr2"]
    assert "#" in text  # the template explains itself
    config = write_json(tmp_path / "mine.json", data)
    result = validate("--files", config)
    assert result.returncode == 0, result.stderr
    jobs = planned_jobs(tmp_path, config)
    assert jobs["report_motifs"] == 1 and jobs["marginalize_motifs"] == 1
    assert (jobs["fit_chrombpnet"] if template == "chrombpnet" else jobs["fit_model"]) == 1


def test_interpretation_stages_run_when_their_block_is_there(tiny_data):
    data = tiny_pipeline_config(tiny_data, motifs=str(tiny_data["motifs"]))
    assert planned_stages(parse_config(data)) == ["fit", "predict", "evaluate"]
    assert set(pipeline_stages(parse_config(data))) == {"fit", "predict", "evaluate"}
    # The report reads TF-MoDISco's results, which read the attributions.
    data["modisco_report_parameters"] = {}
    assert set(pipeline_stages(parse_config(data))) == {"fit", "predict", "evaluate", "attribute",
                                                        "modisco_motifs", "modisco_report"}


def test_an_evaluate_config_is_one(tmp_path):
    result = validate(REPO / "config" / "bpnet_evaluate.json")
    assert json.loads(result.stdout)["kind"] == "EvaluateConfig"
    data = json.loads((REPO / "config" / "bpnet_evaluate.json").read_text())
    del data["performance_filename"]
    assert type(parse_config(data)).__name__ == "EvaluateConfig"
