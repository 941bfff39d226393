# Config loading, validation and input functions: the only place that reads
# `config`. The config is one dataset's pipeline JSON, or a batch config
# `{"datasets": <sheet.tsv | folder | [paths]>}`; every dataset becomes a
# validated pipeline (bpnet_core.batch.Dataset) before any job is planned.
# Each rule gets its stage's effective parameters as plain, key-sorted data,
# so that changing one block reruns that stage and what depends on it, and
# nothing else. Every results path comes from `bpnet_core.layout` (`layout.path`,
# `layout.log`, ...), in the rules too.
import functools
import os
import re
import sys

from bpnet_core import layout
from bpnet_core.batch import batch_name, load_datasets
from bpnet_core.config import StageParams
from bpnet_core.errors import InputError
from bpnet_core.io import as_list


def _config_source():
    files = getattr(workflow, "overwrite_configfiles", None) or []
    if not files:
        return "config"
    return os.path.relpath(files[-1])


CONFIG_SOURCE = _config_source()


NO_CONFIG = """\
No config given, so there is nothing to run. This workflow runs the datasets of a config:
  make demo                                             the simulated demo, end to end
  snakemake --cores 8 --configfile config/<dataset>.json   one dataset (README: "Your own data")
  snakemake --cores 8 --configfile config/demos.yaml       a batch: a sheet of datasets
  bpnet-core validate --files config/<dataset>.json        check a config and its files first
Examples: config/*.json; every key: config/README.md and docs/configuration.md."""


def _load_datasets():
    if not config:
        print(NO_CONFIG, file=sys.stderr)
        return {}
    try:
        return load_datasets(dict(config), source=CONFIG_SOURCE)
    except InputError as err:
        sys.exit(f"error: {err}")


DATASETS = _load_datasets()


def _say_plan():
    """Which models each dataset trains or takes as given, and likely mistakes; once per run."""
    if not workflow.is_main_process:
        return
    for dataset in DATASETS.values():
        for warning in dataset.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"plan: {dataset.plan()}", file=sys.stderr)


_say_plan()
# A batch run also writes a cross-dataset summary, named after its sheet.
BATCH = batch_name(config, CONFIG_SOURCE)


def _names(select):
    """A regex matching the names of the datasets for which `select(dataset)` holds."""
    names = [re.escape(name) for name, dataset in DATASETS.items() if select(dataset)]
    return "|".join(names) if names else "(?!)"  # (?!) never matches


# The datasets served by each of the alternative rules that write one file
# (e.g. fit/{name}.torch by fit_model, fit_chrombpnet or
# assemble_chrombpnet_model), so that they never compete for a dataset.
BPNET = _names(lambda d: not d.chrombpnet)
CHROMBPNET = _names(lambda d: d.chrombpnet)
# Fold ensembles (`folds`): one model per fold ({fold} wildcard, folds.smk),
# whose outputs are averaged into the files that single-model datasets write
# with predict_peaks, evaluate_model, attribute_peaks and marginalize_motifs.
FOLDS = _names(lambda d: d.folds)
SINGLE = _names(lambda d: not d.folds)
FITS_BPNET = _names(lambda d: not d.chrombpnet and not d.folds)
FITS_BPNET_FOLDS = _names(lambda d: not d.chrombpnet and d.folds)
FITS_CHROMBPNET = _names(
    lambda d: d.chrombpnet and not d.folds and d.trains("model") and d.trains("accessibility_model"))
FITS_CHROMBPNET_FOLDS = _names(lambda d: d.chrombpnet and d.folds)
EXTRACTS_ACCESSIBILITY = _names(
    lambda d: d.chrombpnet and not d.trains("model") and d.trains("accessibility_model"))
ASSEMBLES_CHROMBPNET = _names(
    lambda d: d.chrombpnet and d.trains("model") and not d.trains("accessibility_model"))
EXTRACTS_BIAS = _names(lambda d: d.chrombpnet and d.trains("bias_model") and not d.trains("model"))
FITS_BIAS = _names(lambda d: d.chrombpnet and d.trains("bias_model") and d.trains("model"))
# Datasets given a model file of another program, converted once (import_model).
IMPORTS = _names(lambda d: d.imports)
# Datasets whose config names raw files or leaves inputs out (see inputs.smk).
CONVERTS_READS = _names(lambda d: {"signals_bigwig", "controls_bigwig"} & d.stages.keys())
CALLS_PEAKS = _names(lambda d: "call_peaks" in d.stages)
DRAWS_NEGATIVES = _names(lambda d: "negatives" in d.stages)


wildcard_constraints:
    name="|".join(re.escape(name) for name in DATASETS),
    track=r"\d+",
    chrom=r"[^/]+",
    model_key="model|bias_model|accessibility_model",
    fold=r"fold_\d+",
    batch=re.escape(BATCH or "") or "(?!)",


# CPU threads of a compute job (training, prediction, attribution, TF-MoDISco):
# on a cluster its cpus-per-task, so that a GPU is not left waiting on one
# CPU's batch loading; locally scaled down to --cores. A profile's
# `set-threads` changes it per rule (see profiles/slurm/config.yaml).
JOB_THREADS = 8


def gpu_mem_mb(wildcards, attempt):
    """Host memory of a GPU job, MB: more on each retry (the profiles retry failed jobs)."""
    return 16000 * attempt


def _stage(wildcards, stage):
    return DATASETS[wildcards.name].stages[stage]


@functools.cache
def _stage_params(name, stage):
    return StageParams(DATASETS[name].stages[stage].to_params())


def stage_params(stage):
    """Params function: a stage's effective parameters, as plain data with sorted keys.

    `StageParams` keeps `verbose` and `device` out of Snakemake's rerun check.
    Cached: Snakemake asks for a job's params several times while planning.
    """
    return lambda wildcards: _stage_params(wildcards.name, stage)


def stage_value(stage, key):
    """Params function: one key of a stage's config."""
    return lambda wildcards: getattr(_stage(wildcards, stage), key)


def model_file(key):
    """Input function: the file of a dataset's `key` model (given or trained)."""
    return lambda wildcards: DATASETS[wildcards.name].models[key]


def imported_model_source(wildcards):
    """Input function: the given file of another program that becomes a dataset's {model_key} model."""
    return DATASETS[wildcards.name].imports[wildcards.model_key]


def import_trimming(wildcards):
    """Params function: the trimming a given bias model's output is cropped to (the ChromBPNet
    fit's, which the accessibility model has), or None: the model's own."""
    dataset = DATASETS[wildcards.name]
    if not (dataset.chrombpnet and wildcards.model_key == "bias_model"):
        return None
    fit = dataset.stages["fit"]
    return (fit.in_window - fit.out_window) // 2


def _fasta(wildcards, stage):
    path = _stage(wildcards, stage).sequences
    return {"sequences": path, "fai": f"{path}.fai"}


def _data(wildcards, stage, loci="loci", step=None):
    """FASTA, loci, signals and controls of a stage (or of `step`, a fold's stage), as rule inputs."""
    step = step or _stage(wildcards, stage)
    inputs = {"sequences": step.sequences, "fai": f"{step.sequences}.fai", "loci": as_list(getattr(step, loci))}
    for key in ("signals", "controls"):
        if getattr(step, key, None):
            inputs[key] = as_list(getattr(step, key))
    return inputs


def reads_params(wildcards):
    """Params function of the reads conversion, whose stage is named by the {role} wildcard."""
    return _stage_params(wildcards.name, f"{wildcards.role}_bigwig")


def reads_inputs(wildcards):
    stage = f"{wildcards.role}_bigwig"
    return {**_fasta(wildcards, stage), "reads": _stage(wildcards, stage).reads}


def call_peaks_inputs(wildcards):
    step = _stage(wildcards, "call_peaks")
    return {**_fasta(wildcards, "call_peaks"), "signals": step.signals, "controls": step.controls or []}


def negatives_inputs(wildcards):
    step = _stage(wildcards, "negatives")
    return {**_fasta(wildcards, "negatives"), "loci": as_list(step.loci),
            "exclusion_lists": step.exclusion_lists or []}


def fit_inputs(wildcards):
    inputs = _data(wildcards, "fit")
    dataset = DATASETS[wildcards.name]
    if dataset.chrombpnet:
        inputs["negatives"] = as_list(dataset.stages["fit"].negatives)
        inputs["bias_model"] = dataset.models["bias_model"]
        inputs["bias_qc"] = layout.path("bias_qc_json", wildcards.name)
    return inputs


def bias_fit_inputs(wildcards):
    return {**_data(wildcards, "bias_fit"), "peaks": as_list(_stage(wildcards, "bias_fit").peaks)}


def bias_qc_inputs(wildcards):
    step = _stage(wildcards, "bias_qc")
    inputs = {**_data(wildcards, "bias_qc"), "negatives": as_list(step.negatives),
              "model": DATASETS[wildcards.name].models["bias_model"]}
    if step.motifs:
        inputs["motifs"] = step.motifs
    return inputs


def bias_free_qc_inputs(wildcards):
    step = _stage(wildcards, "bias_free_qc")
    inputs = {**_data(wildcards, "bias_free_qc"), "motifs": step.motifs, "model": step.model,
              "full_model": step.full_model}
    if {"attribute", "modisco_motifs"} <= DATASETS[wildcards.name].stages.keys():
        inputs["modisco_h5"] = layout.path("modisco", wildcards.name)
    return inputs


def predict_fasta(wildcards):
    return _fasta(wildcards, "predict")


def predict_inputs(wildcards):
    return {**_data(wildcards, "predict"), "model": _stage(wildcards, "predict").model}


def evaluate_inputs(wildcards):
    return {**_data(wildcards, "evaluate"), "model": _stage(wildcards, "evaluate").model}


def attribute_inputs(wildcards):
    return {**_data(wildcards, "attribute"), "model": _stage(wildcards, "attribute").model}


def report_inputs(wildcards):
    motifs = _stage(wildcards, "modisco_report").motifs
    return {"motifs": motifs} if motifs else {}


def motif_hits_inputs(wildcards):
    """The TF-MoDISco report's motif database, when there is one: it names and classifies the patterns."""
    stages = DATASETS[wildcards.name].stages
    motifs = stages["modisco_report"].motifs if "modisco_report" in stages else None
    return {"motifs": motifs} if motifs else {}


def marginalize_inputs(wildcards):
    step = _stage(wildcards, "marginalize")
    return {**_data(wildcards, "marginalize"), "model": step.model, "motifs": step.motifs}


def variant_chunks(name):
    """The chromosomes of a dataset's variants file (those of the stage's `chroms`, when set):
    one scoring job each. Read once per run, when the jobs are planned."""
    return _variant_chunks(name)


@functools.cache
def _variant_chunks(name):
    from bpnet_core.variant_files import variant_chroms

    step = DATASETS[name].stages["variants"]
    chroms = variant_chroms(step.variants, step.key_name("variants"))
    return [chrom for chrom in chroms if step.chroms is None or chrom in step.chroms]


def variant_chunk_params(wildcards):
    """Params function of one chunk: the variants stage's parameters on one chromosome."""
    return StageParams({**_stage_params(wildcards.name, "variants"), "chroms": [wildcards.chrom]})


def variants_inputs(wildcards):
    step = _stage(wildcards, "variants")
    inputs = {**_fasta(wildcards, "variants"), "variants": step.variants, "loci": as_list(step.loci),
              "model": as_list(step.model) + as_list(step.full_model)}
    if step.controls:
        inputs["controls"] = as_list(step.controls)
    return inputs


def variant_merge_inputs(wildcards):
    name = wildcards.name
    step = _stage(wildcards, "variants")
    chunks = variant_chunks(name)
    return {**_fasta(wildcards, "variants"), "model": as_list(step.model) + as_list(step.full_model),
            "chunks": [layout.path("variant_chunk", name, chrom=chrom) for chrom in chunks],
            "nulls": [layout.path("variant_chunk_null", name, chrom=chrom) for chrom in chunks]}


def all_stage_params(wildcards):
    """Every stage's effective parameters (each fold's too, as `<fold>/<stage>`), for the dataset report."""
    stages = DATASETS[wildcards.name].all_stages()
    return {stage: StageParams(step.to_params()) for stage, step in stages.items()}


# Fold ensembles: each fold's stages (`Dataset.folds`) and the per-fold files the averages read.


def _fold_stage(wildcards, stage):
    return DATASETS[wildcards.name].folds[wildcards.fold][stage]


@functools.cache
def _fold_stage_params(name, fold, stage):
    return StageParams(DATASETS[name].folds[fold][stage].to_params())


def fold_stage_params(stage):
    """Params function: one fold's effective parameters of `stage` (the {fold} wildcard)."""
    return lambda wildcards: _fold_stage_params(wildcards.name, wildcards.fold, stage)


def fold_fit_inputs(wildcards):
    inputs = _data(wildcards, "fit", step=_fold_stage(wildcards, "fit"))
    dataset = DATASETS[wildcards.name]
    if dataset.chrombpnet:  # the bias model is shared by the folds
        inputs["negatives"] = as_list(_fold_stage(wildcards, "fit").negatives)
        inputs["bias_model"] = dataset.models["bias_model"]
        inputs["bias_qc"] = layout.path("bias_qc_json", wildcards.name)
    return inputs


def fold_model_inputs(stage):
    """Input function: the data and model of one fold's `stage`."""

    def inputs(wildcards):
        step = _fold_stage(wildcards, stage)
        return {**_data(wildcards, stage, step=step), "model": step.model}

    return inputs


def fold_files(key):
    """Input function: every fold's file `key` (a key of `layout.FOLD_FILES`), in fold order."""
    return lambda wildcards: [layout.fold_path(key, wildcards.name, fold) for fold in DATASETS[wildcards.name].folds]


def fold_test_chroms(wildcards):
    """Params function: fold -> its test chromosomes."""
    dataset = DATASETS[wildcards.name]
    return {fold: dataset.test_chroms(fold) for fold in dataset.folds}


def fold_names(wildcards):
    return list(DATASETS[wildcards.name].folds)


def dataset_outputs(wildcards):
    """Every result of a dataset but its report."""
    name = wildcards.name
    dataset = DATASETS[name]
    stages = dataset.stages
    outputs = [layout.path(key, name) for key in ("profile", "counts", "performance")]
    outputs += [layout.path("predicted_bigwig", name, track=track)
                for track in range(len(stages["fit"].signals))]
    if "attribute" in stages:
        outputs.append(layout.path("contrib_bigwig", name))
        if "modisco_motifs" in stages:
            outputs.append(layout.path("motifs_meme", name))
            if "modisco_report" in stages:
                outputs.append(layout.path("modisco_report_html", name))
            if "motif_hits" in stages:
                outputs += [layout.path("hits_bed", name), layout.path("hit_counts", name)]
    if "marginalize" in stages:
        outputs.append(layout.path("marginalize_summary", name))
    if "variants" in stages:
        outputs += [layout.path("variant_scores", name), layout.path("variant_html", name)]
    outputs += [path for key, path in dataset.models.items() if dataset.trains(key)]
    if dataset.folds:
        # Every fold's models: a fold whose job was lost is trained again.
        keys = ("model", "accessibility_model") if dataset.chrombpnet else ("model",)
        models = [layout.fold_path(key, name, fold) for fold in dataset.folds for key in keys]
        outputs += [path for path in models if path not in outputs] + [layout.path("fold_table", name)]
    if dataset.chrombpnet:
        outputs.append(layout.path("bias_qc_html", name))
        if "bias_free_qc" in stages:
            outputs.append(layout.path("bias_free_qc_html", name))
    return outputs


def dataset_reports(wildcards=None):
    return [layout.path("report", name) for name in DATASETS]


def dataset_sources():
    """Dataset name -> its config file, for the cross-dataset summary."""
    return {name: dataset.source for name, dataset in DATASETS.items()}


def final_outputs():
    outputs = dataset_reports()
    if BATCH:
        outputs += [layout.batch_summary(BATCH, "tsv"), layout.batch_summary(BATCH, "html")]
    return outputs


def write_failed_batch_summary():
    """After a failed batch run: the summary, with failed and unfinished datasets as such."""
    if BATCH and not workflow.dryrun:
        from bpnet_core.summary import write_summary

        write_summary(dataset_sources(), layout.batch_summary(BATCH, "tsv"),
                      layout.batch_summary(BATCH, "html"), results_dir=layout.RESULTS)
        print(f"summary of the datasets so far: {layout.batch_summary(BATCH, 'html')}", file=sys.stderr)
