"""Command line: run any single-step JSON of the parameter reference.

    bpnet-core fit -p fit.json          train a model
    bpnet-core predict -p predict.json  predicted profiles, counts, bigWigs
    bpnet-core evaluate -p eval.json    performance TSV
    bpnet-core attribute -p attr.json   DeepLIFT/SHAP npz (for `modisco motifs`) and bigWig
    bpnet-core marginalize -p marg.json motif insertion effects: summary TSV, HTML report
    bpnet-core variants -p var.json     variant effect scores: tabix-indexed TSV, HTML page
    bpnet-core validate CONFIG.json     check any config, print each stage's parameters
    bpnet-core demo-data DIR [--assay atac]   write a demo dataset
    bpnet-core bigwig READS... --sequences FA -o PLUS.bw [MINUS.bw]   reads (BAM, fragments) to count bigWigs
    bpnet-core peaks READS... --sequences FA -o peaks.narrowPeak        MACS3 peaks from reads
    bpnet-core negatives --loci PEAKS --sequences FA -o negatives.bed  GC-matched background regions
    bpnet-core import-model IN OUT      an official ChromBPNet Keras .h5 or bpnet-lite file as a model file
    bpnet-core schema                   print the JSON Schema of the configs

`python -m bpnet_core` is the same command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__, layout
from .checks import check_files
from .config import (
    PIPELINE_MODELS,
    ChromBPNetFitConfig,
    fold_stages,
    json_schema,
    load_config,
    model_paths,
    parse_config,
    pipeline_name,
    pipeline_stages,
    read_config,
    with_fold_stages,
)
from .errors import InputError, warn
from .runtime import run_logged


def _fit(args) -> None:
    from .train import fit_model

    config = load_config(args.parameters, kind="fit")
    if isinstance(config, ChromBPNetFitConfig):
        from .chrombpnet import fit_chrombpnet_step

        fit_chrombpnet_step(config, args.output_dir, source=args.parameters)
        return
    out = Path(args.output_dir)
    fit_model(config, out / f"{config.name}.torch", out / f"{config.name}.history.tsv")


def _predict(args) -> None:
    from .predict import predict_model

    predict_model(load_config(args.parameters, kind="predict"))


def _evaluate(args) -> None:
    from .evaluate import evaluate_model

    config = load_config(args.parameters, kind="evaluate")
    regions = Path(config.performance_filename).with_suffix(".regions.tsv")
    evaluate_model(config, regions_path=regions)


def _attribute(args) -> None:
    from .attribute import attribute_model

    config = load_config(args.parameters, kind="attribute")
    attribute_model(config, bigwig_path=str(Path(config.attr_filename).with_suffix(".bw")))


def _marginalize(args) -> None:
    from .marginalize import marginalize_motifs

    marginalize_motifs(load_config(args.parameters, kind="marginalize"))


def _variants(args) -> None:
    from .variants import score_variants

    score_variants(load_config(args.parameters, kind="variants"))


def _validate_one(path: str, data: dict, kind: str | None, files: bool) -> dict:
    """Check one config (dict from `path`); its report: kind, models, each stage's parameters."""
    from .batch import load_dataset

    config = parse_config(data, source=path, kind=kind)
    kind = next((k for k, m in PIPELINE_MODELS.items() if isinstance(config, m)), None)
    report = {"config": path, "kind": kind or type(config).__name__}
    if kind is None:
        if files:
            check_files(config, where=path)
        report["stages"] = {type(config).__name__: config.to_params()}
        return report
    if files:
        # The workflow's own check: every stage's problems at once.
        dataset = load_dataset(data, path)
        for warning in dataset.warnings:
            warn(warning)
        print(f"plan: {dataset.plan()}", file=sys.stderr)
        stages = dataset.all_stages()
    else:
        stages = with_fold_stages(pipeline_stages(config, source=path), fold_stages(config, source=path, files=False))
    report["models"] = model_paths(config)
    report["stages"] = {stage: c.to_params() for stage, c in stages.items()}
    return report


def _validate(args) -> None:
    from .batch import BATCH_KEY, batch_configs

    data = read_config(args.config)
    if BATCH_KEY in data:
        problems, reports = [], {}
        for path in batch_configs(data, args.config):
            try:
                reports[path] = _validate_one(path, read_config(path), args.kind, args.files)
            except InputError as err:
                problems.append(str(err))
        if problems:
            raise InputError(f"{len(problems)} of the configs listed in {args.config} are invalid:\n"
                             + "\n".join(problems))
        report = {"config": args.config, "kind": "batch", "datasets": reports}
    else:
        report = _validate_one(args.config, data, args.kind, args.files)
    json.dump(report, sys.stdout, indent=2)
    print()


def _demo_data(args) -> None:
    if args.assay == "atac":
        from .simulate.atac import simulate_atac_demo

        if args.reads:
            raise InputError("--reads: the ATAC demo has no reads files; use the ChIP demo (no --assay)")
        paths = simulate_atac_demo(args.output_dir, seed=args.seed)
    else:
        from .simulate.chip import simulate_demo

        paths = simulate_demo(args.output_dir, seed=args.seed, reads=args.reads)
    for key, path in paths.items():
        print(f"{key}\t{path}")


def _summarize(args) -> None:
    from .batch import read_sheet
    from .summary import write_summary

    datasets = {pipeline_name(parse_config(read_config(path), source=path)): path
                for path in read_sheet(args.sheet)}
    prefix = args.output or layout.batch_summary_prefix(Path(args.sheet).stem, args.results)
    table = write_summary(datasets, f"{prefix}.tsv", f"{prefix}.html", results_dir=args.results)
    for row in table.itertuples():
        print(f"{row.dataset}\t{row.status}\t{row.detail}")
    print(f"\n{prefix}.tsv\n{prefix}.html")


def _negatives(args) -> None:
    from .negatives import write_negatives

    write_negatives(args.loci, args.sequences, args.output, in_window=args.in_window, chroms=args.chroms,
                    exclude=args.exclude, random_state=args.seed, per_peak=args.per_peak)


def _bigwig(args) -> None:
    from .reads import reads_to_bigwig

    if len(args.output) > 2:
        raise InputError("-o: one bigWig (both strands) or two (plus, minus)")
    reads_to_bigwig(args.reads, args.sequences, args.output, shift=args.shift)


def _peaks(args) -> None:
    from .peaks import call_peaks

    options = {"sequences": args.sequences, "signals": args.reads, "controls": args.controls,
               "stranded": not args.unstranded, "peak_qvalue": args.qvalue,
               "genome_size": args.genome_size, "output_filename": args.output}
    call_peaks({key: value for key, value in options.items() if value is not None})


def _import_model(args) -> None:
    from .model_import import import_model

    import_model(args.input, args.output, key=args.key, trimming=args.trimming)


def _schema(args) -> None:
    json.dump(json_schema(), sys.stdout, indent=2, sort_keys=True)
    print()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpnet-core", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def step(name, func, help):
        p = sub.add_parser(name, help=help)
        p.add_argument("-p", "--parameters", required=True, help="JSON parameter file")
        p.set_defaults(func=func, runs_models=True)
        return p

    step("fit", _fit, "train a model").add_argument(
        "-o", "--output-dir", default=".", help="where <name>.torch and <name>.history.tsv go")
    step("predict", _predict, "predict profiles and counts")
    step("evaluate", _evaluate, "evaluate a model against observed signal")
    step("attribute", _attribute, "DeepLIFT/SHAP contributions (npz for modisco, bigWig)")
    step("marginalize", _marginalize, "effect of inserting each motif into background loci")
    step("variants", _variants, "variant effect scores (VCF or TSV of variants)")

    p = sub.add_parser("validate", help="check a config and print each stage's effective parameters")
    p.add_argument("config")
    p.add_argument("--kind", help="config kind when detection from its keys is not wanted "
                   "(fit, predict, evaluate, attribute, marginalize, variants, bpnet_pipeline, ...)")
    p.add_argument("--files", action="store_true", help="also check the files the config names")
    p.set_defaults(func=_validate)

    p = sub.add_parser("demo-data", help="write the simulated demo dataset")
    p.add_argument("output_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reads", action="store_true",
                   help="also write the ChIP signal and control as BAM files (for config/demo_raw.json)")
    p.add_argument("--assay", choices=["chip", "atac"], default="chip",
                   help="chip: stranded ChIP-nexus-like BPNet demo; atac: Tn5-biased ChromBPNet demo")
    p.set_defaults(func=_demo_data)

    p = sub.add_parser("summarize", help="status, metrics and motifs of every dataset of a batch, "
                       "at any time (also written at the end of a batch run)")
    p.add_argument("sheet", help="the batch's sheet (TSV with a 'config' column) or folder of configs")
    p.add_argument("--results", default=layout.RESULTS, help="the workflow's results folder")
    p.add_argument("-o", "--output", help="output prefix (default: <results>/summary/<sheet name>)")
    p.set_defaults(func=_summarize)

    p = sub.add_parser("negatives", help="GC-matched background regions away from the peaks "
                       "(for `negatives` when a dataset has none)")
    p.add_argument("--loci", nargs="+", required=True, help="peak BED / narrowPeak file(s)")
    p.add_argument("--sequences", required=True, help="genome FASTA")
    p.add_argument("-o", "--output", required=True, help="BED file to write (.gz: gzipped)")
    p.add_argument("--in-window", type=int, default=2114, help="model input width, bp (default 2114)")
    p.add_argument("--chroms", nargs="+", help="chromosomes to draw from (default: those of the peaks)")
    p.add_argument("--exclude", nargs="+", help="BED file(s) of regions to avoid, e.g. the ENCODE blacklist")
    p.add_argument("--per-peak", type=int, default=2, help="regions per peak (default 2, as the official ChromBPNet)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_negatives)

    p = sub.add_parser("bigwig", help="base-resolution 5'-end count bigWigs of reads files (pooled)")
    p.add_argument("reads", nargs="+", help="BAM/SAM/CRAM, fragment TSV(.gz) or tagAlign(.gz) files")
    p.add_argument("--sequences", required=True, help="genome FASTA (the bigWigs' chromosomes)")
    p.add_argument("-o", "--output", nargs="+", required=True,
                   help="two bigWigs: plus and minus strand; one: both strands")
    p.add_argument("--shift", nargs=2, type=int, metavar=("PLUS", "MINUS"),
                   help="bp added to plus / minus 5' ends (default: none stranded; unstranded, the "
                   "Tn5 shift 4 -4 for reads, 0 1 for fragment files)")
    p.set_defaults(func=_bigwig)

    p = sub.add_parser("peaks", help="MACS3 peaks (narrowPeak with summits) from reads files")
    p.add_argument("reads", nargs="+", help="signal BAM/SAM, fragment or tagAlign files (pooled)")
    p.add_argument("--controls", nargs="+", help="control reads files")
    p.add_argument("--sequences", required=True, help="genome FASTA")
    p.add_argument("-o", "--output", required=True, help="narrowPeak file to write")
    p.add_argument("--unstranded", action="store_true",
                   help="ATAC/DNase: cut sites smoothed over 150 bp, no fragment-size model")
    p.add_argument("--qvalue", type=float, default=0.01, help="MACS3 -q (default 0.01)")
    p.add_argument("--genome-size", help="MACS3 -g: a number or hs/mm/ce/dm (default: the FASTA's non-N bases)")
    p.set_defaults(func=_peaks)

    p = sub.add_parser("import-model", help="convert an official ChromBPNet/BPNet Keras .h5 or a bpnet-lite "
                       ".torch model into a model file of this package")
    p.add_argument("input", help="bias_model_scaled.h5, chrombpnet_nobias.h5, chrombpnet.h5, or a bpnet-lite "
                   "BPNet / ChromBPNet saved with torch.save")
    p.add_argument("output", help="the model file to write (.torch)")
    p.add_argument("--key", default="model", choices=["model", "bias_model", "accessibility_model"],
                   help="bias_model / accessibility_model take that part of a full ChromBPNet (default: model, "
                   "the whole)")
    p.add_argument("--trimming", type=int, help="crop the output window to in_window - out_window = 2 x this "
                   "(bp); e.g. 557 for a bpnet-lite bias model used with a 2114 -> 1000 accessibility model")
    p.set_defaults(func=_import_model, runs_models=True)

    p = sub.add_parser("schema", help="print the JSON Schema of every config")
    p.set_defaults(func=_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    threads = None
    if getattr(args, "runs_models", False):
        import torch  # not for every command: `validate` and `schema` need no torch

        # torch's own count (OMP_NUM_THREADS, else every core), kept for the
        # whole run: see runtime.set_threads.
        threads = torch.get_num_threads()
    try:
        run_logged(args.func, args, threads=threads)
        sys.stdout.flush()
    except BrokenPipeError:
        # `bpnet-core validate CONFIG | head`: the reader has what it wanted.
        # Point stdout at /dev/null so that Python's exit flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
