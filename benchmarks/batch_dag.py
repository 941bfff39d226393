"""Workflow overhead at scale: one batch of many dataset configs.

Measures, on the machine it runs on:

1. the dry run of a batch of N datasets with no results yet: every config
   validated (files included) and the whole DAG planned;
2. the no-op rerun of the same batch once every result exists: Snakemake
   checks every output against its inputs and recorded provenance, and runs
   nothing.

One dataset (tiny simulated data, the full pipeline: fit, predict,
evaluate, attribute, TF-MoDISco, marginalize, report) is run for real; its
results are copied under the N - 1 other names (file names carry the
dataset name) along with their provenance records, the batch summary is
built, then both timings are taken.

    python benchmarks/batch_dag.py [--datasets 500] [--workdir DIR]

Prints a table with each time against the 30 s target.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bpnet_core.simulate.chip import simulate_demo

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "workflow" / "Snakefile"
TARGET_S = 30.0


def dataset_config(data: dict[str, Path], name: str) -> dict:
    """A full pipeline over the tiny data, small enough to run in about a minute."""
    return {
        "name": name, "n_filters": 8, "n_layers": 2, "in_window": 206, "out_window": 100,
        "batch_size": 16, "max_jitter": 16, "max_epochs": 1, "validation_iter": 4, "random_state": 0,
        "sequences": str(data["sequences"]),
        "signals": [str(data["signal_plus"]), str(data["signal_minus"])],
        "controls": [str(data["control_plus"]), str(data["control_minus"])],
        "fit_parameters": {"training_chroms": ["chr1"], "validation_chroms": ["chr2"],
                           "loci": [str(data["peaks"]), str(data["negatives"])]},
        "predict_parameters": {"chroms": ["chr2"], "loci": str(data["peaks"])},
        "attribute_parameters": {"chroms": ["chr2"], "n_shuffles": 2, "batch_size": 8},
        "modisco_motifs_parameters": {"n_seqlets": 500, "window": 100},
        "modisco_report_parameters": {"motifs": str(data["motifs"])},
        "marginalize_parameters": {"loci": str(data["negatives"]), "chroms": ["chr2"], "n_loci": 5,
                                   "motifs": str(data["motifs"])},
    }


def snakemake(workdir: Path, config: Path, *args: str) -> tuple[float, str]:
    """Run the workflow; (wall seconds, output). Fails loudly on a non-zero exit."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
         "--configfile", str(config), "--cores", "2", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    output = result.stdout + result.stderr
    if result.returncode != 0:
        sys.exit(f"snakemake failed:\n{output[-4000:]}")
    return seconds, output


def clone_results(results: Path, source: str, name: str) -> None:
    """Copy results/<source>/ to results/<name>/, renaming files, keeping modification times."""
    for path in sorted((results / source).rglob("*")):
        target = results / name / path.relative_to(results / source).as_posix().replace(source, name)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            shutil.copy2(path, target)


def clone_provenance(metadata: Path, source: str, names: list[str]) -> None:
    """Give the copied results the provenance records Snakemake wrote for `source`.

    So that the no-op rerun checks params, code and inputs of every job, as
    after real runs. Snakemake 9 keeps one JSON record per output file, named
    by the URL-safe base64 of its path (``snakemake/persistence/file.py``);
    ``snakemake --touch --forceall`` would write them too, but took over 10
    minutes for 5500 jobs here.
    """
    for record in list(metadata.iterdir()):
        path = base64.urlsafe_b64decode(record.name).decode()
        if f"results/{source}/" not in path:
            continue
        text = record.read_text()
        for name in names:
            target = base64.urlsafe_b64encode(path.replace(source, name).encode()).decode()
            (metadata / target).write_text(text.replace(source, name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=500)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="batch_dag."))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    data = simulate_demo(workdir / "resources", seed=1, chrom_sizes={"chr1": 200_000, "chr2": 100_000})
    names = [f"ds{i:04d}" for i in range(args.datasets)]
    (workdir / "configs").mkdir(exist_ok=True)
    sheet = workdir / "datasets.tsv"
    sheet.write_text("config\n" + "".join(f"configs/{name}.json\n" for name in names))
    for name in names:
        (workdir / "configs" / f"{name}.json").write_text(json.dumps(dataset_config(data, name)))
    batch = workdir / "batch.json"
    batch.write_text(json.dumps({"datasets": "datasets.tsv"}))

    dry_s, output = snakemake(workdir, batch, "--dry-run", "--quiet", "rules", "host")
    jobs = int(re.search(r"^total\s+(\d+)", output, re.M).group(1))

    print(f"running one dataset for real ({names[0]}) ...", file=sys.stderr)
    snakemake(workdir, workdir / "configs" / f"{names[0]}.json")
    for name in names[1:]:
        clone_results(workdir / "results", names[0], name)
    clone_provenance(workdir / ".snakemake" / "metadata", names[0], names[1:])
    summary_s, _ = snakemake(workdir, batch)  # only the summary is left to do
    noop_s, output = snakemake(workdir, batch)
    assert "Nothing to be done" in output, output[-2000:]

    print(f"\nbatch of {args.datasets} datasets ({jobs} jobs), {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{'measure':<40} {'seconds':>8} {'target':>8} {'ratio':>6}")
    for label, seconds in (("dry run, nothing done (validate + DAG)", dry_s),
                           ("no-op rerun, everything done", noop_s)):
        print(f"{label:<40} {seconds:8.1f} {TARGET_S:8.0f} {seconds / TARGET_S:6.2f}")
    print(f"{'(summary of the batch, built once)':<40} {summary_s:8.1f}")
    print(f"work folder: {workdir}")


if __name__ == "__main__":
    main()
