# Config loading, validation and input functions: the only place that reads
# `config`. The pipeline JSON becomes a validated pydantic config; each rule
# gets its stage's effective parameters as plain, key-sorted data, so that
# changing one block reruns that stage and what depends on it, and nothing else.
import os
import re
import sys

from bpnet_core.checks import check_files
from bpnet_core.config import (
    BPNetPipelineConfig,
    ChromBPNetPipelineConfig,
    model_path,
    parse_config,
    pipeline_name,
    pipeline_stages,
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
        if isinstance(pipeline, ChromBPNetPipelineConfig):
            raise InputError(
                f"{CONFIG_SOURCE}: ChromBPNet pipelines are validated but not yet run by this workflow"
            )
        if not isinstance(pipeline, BPNetPipelineConfig):
            raise InputError(
                f"{CONFIG_SOURCE}: the workflow needs a pipeline config (with fit_parameters, "
                "predict_parameters, ...); run single-step configs with `bpnet-core fit -p ...`"
            )
        model = model_path(pipeline)
        stages = pipeline_stages(pipeline, model=model, source=CONFIG_SOURCE)
        for stage in ("fit", "predict", "evaluate", "attribute", "modisco_report", "marginalize"):
            if stage in stages:
                check_files(stages[stage], where=f"{CONFIG_SOURCE}: {stage}")
    except InputError as err:
        sys.exit(f"error: {err}")
    return pipeline_name(pipeline), model, stages


NAME, MODEL, STAGES = _load_pipeline()
FIT_MODEL = f"results/{NAME}/fit/{NAME}.torch"


wildcard_constraints:
    name=re.escape(NAME),
    track=r"\d+",


def stage_params(stage):
    """The effective parameters of a stage, as plain data with sorted keys."""
    return STAGES[stage].to_params()


def _fasta(stage):
    path = STAGES[stage].sequences
    return {"sequences": path, "fai": f"{path}.fai"}


def fit_inputs(wildcards):
    fit = STAGES["fit"]
    return {
        **_fasta("fit"),
        "loci": as_list(fit.loci),
        "signals": fit.signals,
        "controls": as_list(fit.controls),
    }


def predict_inputs(wildcards):
    stage = STAGES["predict"]
    return {
        **_fasta("predict"),
        "model": MODEL,
        "loci": as_list(stage.loci),
        "controls": as_list(stage.controls),
    }


def evaluate_inputs(wildcards):
    stage = STAGES["evaluate"]
    return {**predict_inputs(wildcards), "loci": as_list(stage.loci), "signals": stage.signals}


def attribute_inputs(wildcards):
    stage = STAGES["attribute"]
    return {**_fasta("attribute"), "model": MODEL, "loci": as_list(stage.loci), "controls": as_list(stage.controls)}


def report_inputs(wildcards):
    motifs = STAGES["modisco_report"].motifs
    return {"motifs": motifs} if motifs else {}


def marginalize_inputs(wildcards):
    stage = STAGES["marginalize"]
    return {
        **_fasta("marginalize"),
        "model": MODEL,
        "loci": as_list(stage.loci),
        "controls": as_list(stage.controls),
        "motifs": stage.motifs,
    }


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
    if MODEL == FIT_MODEL:
        outputs.append(FIT_MODEL)
    return outputs


def final_outputs():
    return expand("results/{name}/{name}.report.html", name=NAME)
