# Config loading, validation and input functions: the only place that reads
# `config`. The pipeline JSON becomes a validated pydantic config; each rule
# gets its stage's effective parameters as plain, key-sorted data, so that
# changing one block reruns that stage and what depends on it, and nothing else.
import os
import re
import sys

from bpnet_core.checks import check_files
from bpnet_core.config import (
    PIPELINE_MODELS,
    is_chrombpnet,
    model_paths,
    parse_config,
    pipeline_name,
    pipeline_stages,
    trained_model_paths,
)
from bpnet_core.errors import InputError
from bpnet_core.io import as_list


def _config_source():
    files = getattr(workflow, "overwrite_configfiles", None) or []
    if not files:
        return "config"
    return os.path.relpath(files[-1])


CONFIG_SOURCE = _config_source()


def _load_pipeline():
    if not config:
        sys.exit("error: no config given; run with --configfile config/<dataset>.json")
    try:
        pipeline = parse_config(dict(config), source=CONFIG_SOURCE)
        if not isinstance(pipeline, tuple(PIPELINE_MODELS.values())):
            raise InputError(
                f"{CONFIG_SOURCE}: the workflow needs a pipeline config (with fit_parameters, "
                "predict_parameters, ...); run single-step configs with `bpnet-core fit -p ...`"
            )
        stages = pipeline_stages(pipeline, source=CONFIG_SOURCE)
        for stage in ("fit", "bias_fit", "bias_qc", "predict", "evaluate", "attribute",
                      "modisco_report", "marginalize"):
            if stage in stages:
                check_files(stages[stage], where=f"{CONFIG_SOURCE}: {stage}")
    except InputError as err:
        sys.exit(f"error: {err}")
    return (pipeline_name(pipeline), is_chrombpnet(pipeline), model_paths(pipeline),
            trained_model_paths(pipeline), stages)


# MODELS: the model files in use; TRAINED: where the pipeline writes the ones it trains.
NAME, CHROMBPNET, MODELS, TRAINED, STAGES = _load_pipeline()


def trains(key):
    """Whether the pipeline writes its `key` model rather than using a given file."""
    return key in TRAINED and MODELS[key] == TRAINED[key]


wildcard_constraints:
    name=re.escape(NAME),
    track=r"\d+",


def gpu_mem_mb(wildcards, attempt):
    """Host memory of a GPU job, MB: more on each retry (the profiles retry failed jobs)."""
    return 16000 * attempt


def stage_params(stage):
    """The effective parameters of a stage, as plain data with sorted keys.

    Empty for a stage that is off: its rule is then never part of the DAG.
    """
    return STAGES[stage].to_params() if stage in STAGES else {}


def _fasta(stage):
    path = STAGES[stage].sequences
    return {"sequences": path, "fai": f"{path}.fai"}


def _data(stage, loci="loci"):
    """FASTA, loci, signals and controls of a stage, as rule inputs."""
    step = STAGES[stage]
    inputs = {**_fasta(stage), "loci": as_list(getattr(step, loci))}
    for key in ("signals", "controls"):
        if getattr(step, key, None):
            inputs[key] = as_list(getattr(step, key))
    return inputs


def fit_inputs(wildcards):
    inputs = _data("fit")
    if CHROMBPNET:
        inputs["negatives"] = as_list(STAGES["fit"].negatives)
        inputs["bias_model"] = MODELS["bias_model"]
        inputs["bias_qc"] = "results/{name}/bias_qc/qc.json"
    return inputs


def bias_fit_inputs(wildcards):
    return {**_data("bias_fit"), "peaks": as_list(STAGES["bias_fit"].peaks)}


def bias_qc_inputs(wildcards):
    inputs = {**_data("bias_qc"), "negatives": as_list(STAGES["bias_qc"].negatives),
              "model": MODELS["bias_model"]}
    if STAGES["bias_qc"].motifs:
        inputs["motifs"] = STAGES["bias_qc"].motifs
    return inputs


def predict_inputs(wildcards):
    return {**_data("predict"), "model": STAGES["predict"].model}


def evaluate_inputs(wildcards):
    return {**_data("evaluate"), "model": STAGES["evaluate"].model}


def attribute_inputs(wildcards):
    return {**_data("attribute"), "model": STAGES["attribute"].model}


def report_inputs(wildcards):
    motifs = STAGES["modisco_report"].motifs
    return {"motifs": motifs} if motifs else {}


def marginalize_inputs(wildcards):
    return {**_data("marginalize"), "model": STAGES["marginalize"].model,
            "motifs": STAGES["marginalize"].motifs}


def n_tracks():
    return len(STAGES["fit"].signals)


def all_stage_params():
    """Every stage's effective parameters, for the dataset report."""
    return {stage: stage_params(stage) for stage in STAGES}


def dataset_outputs(wildcards):
    """Every result of a dataset but its report."""
    patterns = [
        "results/{name}/predict/{name}.profile.npz",
        "results/{name}/predict/{name}.counts.npz",
        "results/{name}/evaluate/{name}.performance.tsv",
    ]
    if "attribute" in STAGES:
        patterns.append("results/{name}/attribute/{name}.contrib.bw")
        if "modisco_motifs" in STAGES:
            patterns.append("results/{name}/modisco/{name}.motifs.meme")
            if "modisco_report" in STAGES:
                patterns.append("results/{name}/modisco/report/report.html")
    if "marginalize" in STAGES:
        patterns.append("results/{name}/marginalize/summary.tsv")
    outputs = expand(patterns, name=wildcards.name)
    outputs += expand("results/{name}/predict/{name}.predicted.{track}.bw", name=wildcards.name,
                      track=range(n_tracks()))
    outputs += [path for key, path in MODELS.items() if trains(key)]
    if CHROMBPNET:
        outputs.append(f"results/{wildcards.name}/bias_qc/qc.html")
    return outputs


def final_outputs():
    return expand("results/{name}/{name}.report.html", name=NAME)
