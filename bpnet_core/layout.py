"""Where a pipeline run puts every file: the one place that spells the results layout.

A dataset's results are under ``<results>/<name>/`` (`dataset_dir`), each
file at the path `FILES` gives under it; a batch run's cross-dataset
summary is under ``<results>/summary/`` (`batch_summary`). ``<results>`` is
``results`` in the workflow's working directory.

Every function returns a plain string. Arguments left at their defaults
stay as Snakemake wildcards: ``path("model")`` is the pattern
``results/{name}/fit/{name}.torch``, ``path("model", "spi1")`` the file
``results/spi1/fit/spi1.torch``. The workflow's rules
(``workflow/rules/*.smk``), the config planner (`bpnet_core.config.pipeline`),
the dataset report (`bpnet_core.report`) and the batch summary
(`bpnet_core.summary`) all ask here.

What a stage writes inside its own output folder (the TF-MoDISco report's
``logos/``, marginalization's ``figures/``) is the stage module's business.
"""

from __future__ import annotations

import os
from pathlib import Path

RESULTS = "results"

# File (or folder) -> its path under a dataset's folder. Placeholders:
# {name} the dataset, {role} "signals" or "controls", {track} an output
# track's index, {rule} a workflow rule, {chrom} a chromosome, {model_key} a model
# key (model, bias_model, accessibility_model).
FILES = {
    # Model inputs made from raw files (`bpnet_core.config.pipeline.prepare_inputs`).
    "inputs": "inputs",
    "reads_bigwig": "inputs/{role}.bw",
    "reads_bigwig_plus": "inputs/{role}.plus.bw",
    "reads_bigwig_minus": "inputs/{role}.minus.bw",
    "peaks": "inputs/peaks.narrowPeak",
    "negatives": "inputs/negatives.bed",
    "negatives_gc": "inputs/negatives.gc.tsv",
    # Models and their training histories.
    "bias_fit": "bias_fit",
    "bias_model": "bias_fit/{name}.bias.torch",
    "bias_history": "bias_fit/{name}.bias.history.tsv",
    "fit": "fit",
    "model": "fit/{name}.torch",
    "accessibility_model": "fit/{name}.accessibility.torch",
    "history": "fit/{name}.history.tsv",
    # Given model files of other programs, converted once ({key}: the model key).
    "imported": "imported",
    "imported_model": "imported/{model_key}.torch",
    # ChromBPNet's checks of its two models.
    "bias_qc": "bias_qc",
    "bias_qc_ohe": "bias_qc/{name}.bias.ohe.npz",
    "bias_qc_attr": "bias_qc/{name}.bias.attr.npz",
    "bias_qc_modisco": "bias_qc/{name}.bias.modisco.h5",
    "bias_qc_json": "bias_qc/qc.json",
    "bias_qc_html": "bias_qc/qc.html",
    "bias_qc_motifs": "bias_qc/motifs/motifs.tsv",
    "bias_free_qc": "bias_free_qc",
    "bias_free_qc_json": "bias_free_qc/qc.json",
    "bias_free_qc_html": "bias_free_qc/qc.html",
    "bias_free_qc_footprints": "bias_free_qc/footprints.tsv",
    "bias_free_qc_figure": "bias_free_qc/footprints.png",
    # Predictions and their evaluation.
    "profile": "predict/{name}.profile.npz",
    "counts": "predict/{name}.counts.npz",
    "predicted_bigwig": "predict/{name}.predicted.{track}.bw",
    "performance": "evaluate/{name}.performance.tsv",
    "regions": "evaluate/{name}.regions.tsv",
    # Interpretation.
    "ohe": "attribute/{name}.ohe.npz",
    "attr": "attribute/{name}.attr.npz",
    "attributed_loci": "attribute/{name}.loci.tsv",
    "contrib_bigwig": "attribute/{name}.contrib.bw",
    "modisco": "modisco/{name}.modisco.h5",
    "motifs_meme": "modisco/{name}.motifs.meme",
    "modisco_report": "modisco/report",
    "modisco_report_table": "modisco/report/motifs.tsv",
    "modisco_report_html": "modisco/report/report.html",
    "marginalize": "marginalize",
    "marginalize_summary": "marginalize/summary.tsv",
    "marginalize_html": "marginalize/report.html",
    # Motif instances (Fi-NeMo); its own outputs and report under finemo/.
    "motif_hits": "motif_hits",
    "hits": "motif_hits/{name}.hits.tsv",
    "hits_bed": "motif_hits/{name}.hits.bed",
    "hit_counts": "motif_hits/{name}.hit_counts.tsv",
    "hit_cooccurrence": "motif_hits/{name}.cooccurrence.tsv",
    "hit_positions": "motif_hits/{name}.hit_positions.png",
    "finemo": "motif_hits/finemo",
    "finemo_report": "motif_hits/finemo/report/report.html",
    # Variant effects: one chunk per chromosome, merged into one tabix-indexed table.
    "variants": "variants",
    "variant_chunk": "variants/chunks/{chrom}.tsv",
    "variant_chunk_null": "variants/chunks/{chrom}.null.tsv",
    "variant_scores": "variants/{name}.variants.tsv.gz",
    "variant_scores_index": "variants/{name}.variants.tsv.gz.tbi",
    "variant_null": "variants/{name}.variants.null.tsv",
    "variant_html": "variants/report.html",
    # Fold ensembles: each fold's held-out metrics, their mean and sd (the
    # per-fold results mirror this layout under FOLD_DIR, see `fold_path`).
    "fold_table": "evaluate/{name}.folds.tsv",
    "folds": "folds",
    # The run: its report, the stage parameters it used, logs and benchmarks.
    "report": "{name}.report.html",
    "params": "{name}.params.json",
    "logs": "logs",
    "log": "logs/{rule}.log",
    "benchmarks": "benchmarks",
    "benchmark": "benchmarks/{rule}.tsv",
}
# The folder of a batch run's summaries, under <results>/.
SUMMARY = "summary"
# A fold's own results, under a dataset's folder: the keys of FOLD_FILES at
# their single-model paths below this folder ({fold}: fold_0, fold_1, ...).
FOLD_DIR = "folds/{fold}"
FOLD_FILES = ("model", "accessibility_model", "history", "profile", "counts", "performance", "regions",
              "ohe", "attr", "attributed_loci", "contrib_bigwig", "marginalize", "marginalize_summary",
              "marginalize_html")


class _Wildcards(dict):
    """Format fields: a field not given stays a wildcard (``{track}``)."""

    def __missing__(self, key: str) -> str:
        return f"{{{key}}}"


def _fill(template: str, **fields: str | int) -> str:
    return template.format_map(_Wildcards(fields))


def relative(key: str, name: str = "{name}", **fields: str | int) -> str:
    """The path of `key` (a key of `FILES`) under a dataset's folder.

    >>> relative("model", "spi1")
    'fit/spi1.torch'
    >>> relative("predicted_bigwig")
    'predict/{name}.predicted.{track}.bw'
    """
    try:
        template = FILES[key]
    except KeyError:
        raise KeyError(f"no results file '{key}'; known: {', '.join(FILES)}") from None
    return _fill(template, name=name, **fields)


def dataset_dir(name: str = "{name}", results: str | os.PathLike = RESULTS) -> str:
    """A dataset's results folder, ``<results>/<name>``."""
    return f"{os.fspath(results)}/{name}"


def path(key: str, name: str = "{name}", results: str | os.PathLike = RESULTS, **fields: str | int) -> str:
    """The file `key` of dataset `name`: ``<results>/<name>/<relative(key)>``.

    >>> path("model", "spi1")
    'results/spi1/fit/spi1.torch'
    >>> path("log", rule="fit_model")
    'results/{name}/logs/fit_model.log'
    """
    return f"{dataset_dir(name, results)}/{relative(key, name, **fields)}"


def under(folder: str | os.PathLike, key: str, name: str = "{name}", **fields: str | int) -> Path:
    """The file `key` in `folder`, a dataset's results folder (``results/<name>/``), as a Path."""
    return Path(folder) / relative(key, name, **fields)


def fold_relative(key: str, name: str = "{name}", fold: str = "{fold}") -> str:
    """The path of one fold's `key` (a key of `FOLD_FILES`) under a dataset's folder.

    >>> fold_relative("model", "spi1", "fold_0")
    'folds/fold_0/fit/spi1.torch'
    """
    if key not in FOLD_FILES:
        raise KeyError(f"no per-fold results file '{key}'; known: {', '.join(FOLD_FILES)}")
    return f"{_fill(FOLD_DIR, fold=fold)}/{relative(key, name)}"


def fold_path(key: str, name: str = "{name}", fold: str = "{fold}", results: str | os.PathLike = RESULTS) -> str:
    """One fold's file `key` of dataset `name`: ``<results>/<name>/folds/<fold>/<relative(key)>``."""
    return f"{dataset_dir(name, results)}/{fold_relative(key, name, fold)}"


def fold_under(folder: str | os.PathLike, key: str, name: str, fold: str) -> Path:
    """One fold's file `key` in `folder`, a dataset's results folder, as a Path."""
    return Path(folder) / fold_relative(key, name, fold)


def existing_folds(folder: str | os.PathLike) -> list[str]:
    """The folds whose folders exist in `folder`, a dataset's results folder, in fold order."""
    folds = Path(folder) / FILES["folds"]
    names = [p.name for p in folds.glob("fold_*") if p.is_dir() and p.name[5:].isdigit()] if folds.is_dir() else []
    return sorted(names, key=lambda fold: int(fold[5:]))


def log(rule: str, name: str = "{name}", results: str | os.PathLike = RESULTS) -> str:
    """The log file of one job of workflow rule `rule` (which may hold wildcards)."""
    return path("log", name, results, rule=rule)


def benchmark(rule: str, name: str = "{name}", results: str | os.PathLike = RESULTS) -> str:
    """The benchmark TSV of one job of workflow rule `rule`."""
    return path("benchmark", name, results, rule=rule)


def trained_models(name: str, chrombpnet: bool, results: str | os.PathLike = RESULTS,
                   fold: str | None = None) -> dict[str, str]:
    """Model key -> where the pipeline writes that model when it trains it.

    ``model`` (BPNet, or ChromBPNet's full model); for ChromBPNet also
    ``bias_model`` and ``accessibility_model``. With `fold`, that fold's
    models (`fold_path`); the bias model is shared by the folds.
    """
    keys = ("model", "bias_model", "accessibility_model") if chrombpnet else ("model",)
    return {key: path(key, name, results) if fold is None or key == "bias_model"
            else fold_path(key, name, fold, results) for key in keys}


def batch_summary(batch: str = "{batch}", suffix: str = "tsv", results: str | os.PathLike = RESULTS) -> str:
    """A batch run's summary file: ``<results>/summary/<batch>.<suffix>`` (tsv, html or log)."""
    return f"{batch_summary_prefix(batch, results)}.{suffix}"


def batch_summary_prefix(batch: str = "{batch}", results: str | os.PathLike = RESULTS) -> str:
    """`batch_summary` without its suffix."""
    return f"{os.fspath(results)}/{SUMMARY}/{batch}"


def report_link(name: str) -> str:
    """The link from a batch summary page to dataset `name`'s report."""
    return f"../{name}/{relative('report', name)}"
