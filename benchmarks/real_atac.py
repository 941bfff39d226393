"""Acceptance check on real data: the ChromBPNet pipeline from raw ATAC-seq fragments.

Runs the whole workflow as a user would, from a fragment file, a genome FASTA
and a motif database given by path (no peaks, no negatives: MACS3 calls the
peaks, GC-matched background regions are drawn), then prints what a user
reads first: the time of each stage, the held-out metrics, the bias QC and
the TF-MoDISco matches of the bias model and of the bias-free accessibility
model.

The default data, real yeast ATAC-seq (SRR1822137), lie outside the project
in ``../shared/data/yeast_atac_real/``; the test suite never needs them.

    python benchmarks/real_atac.py [--data DIR] [--workdir DIR] [--cores N]
        [--subsample FRACTION] [--set KEY=JSON ...]

``--subsample`` keeps that fraction of the fragments (seeded), to ask how the
pipeline fares on shallower data; ``--set`` overrides one key of the pipeline
JSON (dotted for blocks: ``--set beta=0.8 --set bias_fit_parameters.n_filters=64``),
to measure one lever at a time.

Training is chrI-XI, XIII, XIV (chrXII, with the rDNA repeat, is left out),
validation chrXV, and the held-out test chromosome chrXVI: predictions and
evaluation are of its peaks; attributions, for TF-MoDISco, of the peaks of
every chromosome but chrXII.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "yeast_atac_real"
FILES = {"fragments": "yeast_500k_SRR1822137.fragments.tsv.gz", "sequences": "sacCer_R64.fa",
         "motifs": "jaspar2024_fungi_and_tn5.meme"}
TRAINING = ["chrI", "chrII", "chrIII", "chrIV", "chrV", "chrVI", "chrVII", "chrVIII", "chrIX", "chrX",
            "chrXI", "chrXIII", "chrXIV"]
VALIDATION, TEST = ["chrXV"], ["chrXVI"]


def pipeline_config(data: Path, name: str, epochs: int) -> dict:
    """The ChromBPNet pipeline JSON of the run (32 x 6 accessibility, 32 x 4 bias model, 1000 -> 500 bp)."""
    return {
        "name": name,
        "n_filters": 32, "n_layers": 6, "in_window": 1000, "out_window": 500,
        "batch_size": 32, "max_jitter": 64, "reverse_complement": True,
        "max_epochs": epochs, "validation_iter": 50, "early_stopping": 5,
        "lr": 0.004, "alpha": 50, "beta": 0.5, "negative_ratio": 0.1, "random_state": 0,
        "sequences": str(data / FILES["sequences"]),
        "signals": [str(data / FILES["fragments"])],
        "negatives": None,
        "training_chroms": TRAINING,
        "validation_chroms": VALIDATION,
        "bias_fit_parameters": {"n_filters": 32, "n_layers": 4, "max_jitter": 0, "max_epochs": epochs},
        "bias_qc_parameters": {"n_loci": 1000, "n_shuffles": 10, "batch_size": 8, "n_seqlets": 5000,
                               "window": 400},
        "predict_parameters": {"chroms": TEST},
        "evaluate_parameters": {"chroms": TEST},
        # TF-MoDISco needs more seqlets than the held-out peaks alone give (about 130).
        "attribute_parameters": {"chroms": TRAINING + VALIDATION + TEST, "n_shuffles": 10, "batch_size": 8},
        "modisco_motifs_parameters": {"n_seqlets": 5000, "window": 400},
        "modisco_report_parameters": {"motifs": str(data / FILES["motifs"])},
        "motif_hits_parameters": {},
        # Motifs inserted into the drawn background regions of the validation
        # chromosome (the held-out one has none: they come from training and
        # validation chromosomes).
        "marginalize_parameters": {"loci": f"results/{name}/inputs/negatives.bed", "chroms": VALIDATION,
                                   "n_loci": 100},
    }


def override(config: dict, assignments: list[str]) -> dict:
    """`config` with each ``KEY=JSON`` assignment applied; dotted keys reach into blocks."""
    for assignment in assignments:
        key, _, text = assignment.partition("=")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        *blocks, last = key.split(".")
        target = config
        for block in blocks:
            target = target.setdefault(block, {})
        target[last] = value
    return config


def subsample_fragments(fragments: Path, fraction: float, output: Path, seed: int = 0) -> Path:
    """Keep each fragment of a fragment file with probability `fraction` (seeded); gzipped TSV."""
    import gzip

    rng = np.random.default_rng(seed)
    with gzip.open(fragments, "rt") as source, gzip.open(output, "wt") as sink:
        for line in source:
            if line.startswith("#") or rng.random() < fraction:
                sink.write(line)
    return output


def count_noise_ceiling(fragments: Path, peaks: Path, chroms: list[str], out_window: int = 500,
                        seed: int = 0) -> dict[str, float]:
    """The count Pearson that sampling noise allows in `peaks`, from two pseudo-replicates.

    The fragments are split at random into two halves; each half's Tn5
    insertions (both fragment ends) are counted in the `out_window` around
    each summit. With r the Pearson of log(1 + counts) between the halves,
    the full data's reliability is 2r / (1 + r) (Spearman-Brown), and its
    square root bounds the Pearson of any prediction with the observed log
    counts.
    """
    frames = pd.read_csv(fragments, sep="\t", header=None, usecols=[0, 1, 2], comment="#",
                         names=["chrom", "start", "end"])
    frames = frames[frames["chrom"].isin(chroms)]
    table = pd.read_csv(peaks, sep="\t", header=None, usecols=[0, 1, 9], names=["chrom", "start", "summit"])
    table = table[table["chrom"].isin(chroms)]
    half = np.random.default_rng(seed).random(len(frames)) < 0.5
    counts = np.zeros((len(table), 2))
    for chrom in chroms:
        here = (frames["chrom"] == chrom).to_numpy()
        rows = np.flatnonzero((table["chrom"] == chrom).to_numpy())
        lo = (table["start"] + table["summit"]).to_numpy()[rows] - out_window // 2
        for k, keep in enumerate((half, ~half)):
            chosen = frames[here & keep]
            cuts = np.sort(np.concatenate([chosen["start"].to_numpy(), chosen["end"].to_numpy() - 1]))
            counts[rows, k] = np.searchsorted(cuts, lo + out_window) - np.searchsorted(cuts, lo)
    r = float(np.corrcoef(np.log1p(counts[:, 0]), np.log1p(counts[:, 1]))[0, 1])
    return {"half_pearson": r, "ceiling": float(np.sqrt(2 * r / (1 + r))), "n_peaks": len(table)}


def _table(path: Path, columns: list[str] | None = None) -> str:
    if not path.is_file():
        return f"  (missing: {path})"
    frame = pd.read_csv(path, sep="\t")
    if columns:
        frame = frame[[c for c in columns if c in frame.columns]]
    return "\n".join("  " + line for line in frame.to_string(index=False, float_format="%.3g").splitlines())


def _patterns(patterns: list[dict]) -> None:
    if not patterns:
        print("  (none)")
    for p in patterns:
        best = f"{p['best_match']} (q {p['qvalue']:.1e})" if p.get("best_match") else ""
        print(f"  {p['pattern']:<24} {p['n_seqlets']:>5} {p['kind']:<15} {(p.get('consensus') or '')[:30]:<30} "
              f"{best}")


def report(results: Path, name: str, fragments: Path | None = None) -> None:
    """Print stage times, metrics, bias QC and motif matches of a finished (or stopped) run."""
    folder = results / name
    print("\nStage times (s, from Snakemake's benchmark files):")
    for path in sorted((folder / "benchmarks").glob("*.tsv")):
        seconds = pd.read_csv(path, sep="\t")["s"].iloc[-1]
        print(f"  {path.stem:<32} {seconds:8.1f}")

    for label, history in (("bias model", folder / "bias_fit" / f"{name}.bias.history.tsv"),
                           ("ChromBPNet", folder / "fit" / f"{name}.history.tsv")):
        if history.is_file():
            frame = pd.read_csv(history, sep="\t")
            best = frame.loc[frame.get("selection_loss", frame["valid_loss"]).idxmin()]
            print(f"\nBest validation ({label}, {','.join(VALIDATION)}): iteration {int(best['iteration'])}, "
                  f"loss {best['valid_loss']:.2f} (untrained {frame['valid_loss'].iloc[0]:.2f}), "
                  f"count r {best['valid_count_pearson']:.3f}, profile r {best['valid_profile_pearson']:.3f}, "
                  f"JSD {best['valid_profile_jsd']:.3f}")

    print(f"\nHeld-out performance of the full model ({','.join(TEST)} peaks):")
    print(_table(folder / "evaluate" / f"{name}.performance.tsv"))
    peaks = folder / "inputs" / "peaks.narrowPeak"
    if fragments is not None and peaks.is_file():
        noise = count_noise_ceiling(fragments, peaks, TEST)
        print(f"  count Pearson that sampling noise allows there: {noise['ceiling']:.3f} (two random halves "
              f"of the fragments agree with r {noise['half_pearson']:.3f} on {noise['n_peaks']} peaks)")

    qc_path = folder / "bias_qc" / "qc.json"
    if qc_path.is_file():
        qc = json.loads(qc_path.read_text())
        pearson = qc["count_pearson"]
        print(f"\nBias QC: {'FLAGGED' if qc['flagged'] else 'passed'}; count r "
              f"{pearson['negatives']['pearson']:.3f} on background, {pearson['peaks']['pearson']:.3f} on peaks")
        for reason in qc["reasons"]:
            print(f"  - {reason}")
    free_path = folder / "bias_free_qc" / "qc.json"
    free = json.loads(free_path.read_text()) if free_path.is_file() else None
    if qc_path.is_file():
        print("\nTF-MoDISco patterns of the bias model (bias_qc/qc.json):")
        _patterns(json.loads(qc_path.read_text())["patterns"])
    if free is not None:
        fold = free["mean_footprint_fold"]
        print(f"\nAccessibility model QC: {'bias-free' if free['bias_free'] else 'NOT bias-free'}; enzyme "
              f"motif footprints {fold['accessibility']:.2f} x flat (bound {free['max_footprint_fold']}), "
              f"full model {fold['full']:.2f} x")
        for reason in free["reasons"]:
            print(f"  - {reason}")
        print(_table(folder / "bias_free_qc" / "footprints.tsv",
                     ["motif", "model", "footprint_fold", "delta_log_counts", "delta_log_counts_shuffled",
                      "motif_delta_log_counts"]))
        print("\nTF-MoDISco patterns of the accessibility (bias-free) model (bias_free_qc/qc.json):")
        _patterns(free["patterns"])
    hit_counts = folder / "motif_hits" / f"{name}.hit_counts.tsv"
    if hit_counts.is_file():
        print(f"\nFi-NeMo motif hits in the attributed peaks (motif_hits/{name}.hit_counts.tsv):")
        print(_table(hit_counts))
    summary = folder / "marginalize" / "summary.tsv"
    if summary.is_file():
        frame = pd.read_csv(summary, sep="\t").sort_values("delta_log_counts", ascending=False)
        print("\nMarginalization with the accessibility model, largest effects (marginalize/summary.tsv):")
        print("\n".join("  " + line for line in frame.head(8).to_string(
            index=False, float_format="%.3g").splitlines()))
        tn5 = frame[frame["motif"].str.upper().str.startswith("TN5")]
        print(f"  Tn5 bias motifs: delta log counts {tn5['delta_log_counts'].min():+.3f} .. "
              f"{tn5['delta_log_counts'].max():+.3f}", end="")
        if "motif_delta_log_counts" in tn5:
            print(f"; beyond their shuffled bases {tn5['motif_delta_log_counts'].min():+.3f} .. "
                  f"{tn5['motif_delta_log_counts'].max():+.3f}", end="")
        print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"folder with {', '.join(FILES.values())} (default: {DEFAULT_DATA})")
    parser.add_argument("--workdir", type=Path, default=REPO / "results" / "real_atac",
                        help="where the config, results and log go (default: results/real_atac)")
    parser.add_argument("--name", default="yeast_atac")
    parser.add_argument("--epochs", type=int, default=20, help="max_epochs of both models")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--subsample", type=float, help="keep this fraction of the fragments (seeded)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="override one key of the pipeline JSON (dotted for blocks); repeatable")
    parser.add_argument("--report-only", action="store_true", help="print the report of an earlier run")
    args = parser.parse_args(argv)

    missing = [f for f in FILES.values() if not (args.data / f).is_file()]
    if missing:
        print(f"real_atac: the real-data folder {args.data} is absent or lacks {', '.join(missing)}; "
              "these data are not part of the project. Give the folder with --data.", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    fragments = args.data.resolve() / FILES["fragments"]
    if args.subsample is not None:
        fragments = args.workdir.resolve() / f"fragments.{args.subsample:g}.tsv.gz"
        if not fragments.is_file() and not args.report_only:
            subsample_fragments(args.data / FILES["fragments"], args.subsample, fragments)
    if not args.report_only:
        config = args.workdir / f"{args.name}.json"
        settings = pipeline_config(args.data.resolve(), args.name, args.epochs)
        settings["signals"] = [str(fragments)]
        config.write_text(json.dumps(override(settings, args.set), indent=2))
        log = args.workdir / "snakemake.log"
        print(f"running the ChromBPNet pipeline on {args.data} (log: {log}) ...", flush=True)
        started = time.perf_counter()
        with open(log, "w") as handle:
            run = subprocess.run(
                [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"),
                 "--directory", str(args.workdir), "--configfile", str(config), "--cores", str(args.cores)],
                stdout=handle, stderr=subprocess.STDOUT)
        print(f"{'finished' if run.returncode == 0 else 'FAILED'} in {time.perf_counter() - started:.0f} s")
        if run.returncode != 0:
            errors = [line for line in log.read_text().splitlines() if line.startswith(("error:", "Error"))]
            print("\n".join(errors[-5:]), file=sys.stderr)
    report(args.workdir / "results", args.name, fragments)
    return 0 if args.report_only or run.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
