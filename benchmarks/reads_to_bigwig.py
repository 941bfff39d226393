"""Reads to count bigWigs: `bpnet_core.reads` against the `bam2bw` script, same files, same machine.

Two inputs, both over the 6 Mb BPNet demo genome:

1. the demo's signal BAM (stranded: plus and minus bigWigs);
2. a fragment file (tsv.gz, 10x layout) of random fragments, unstranded,
   both ends of each fragment counted.

Each converter runs `--repeats` times on each input; the best time is kept.
Both outputs are compared base by base (they must agree). bam2bw is a
benchmark-only dependency: ``pip install --no-deps bam2bw`` (its other
dependencies come with this package's).

    python benchmarks/reads_to_bigwig.py [--fragments 2000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pyBigWig

from bpnet_core.simulate.chip import simulate_demo
from bpnet_core.io import fasta_chrom_sizes
from bpnet_core.reads import reads_to_bigwig


def write_fragments(path: Path, sizes: dict[str, int], n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    names = list(sizes)
    lengths = np.array([sizes[c] for c in names])
    chrom = rng.choice(len(names), n, p=lengths / lengths.sum())
    starts = (rng.random(n) * (lengths[chrom] - 1000)).astype(np.int64)
    ends = starts + rng.integers(40, 600, n)
    order = np.lexsort((starts, chrom))
    with gzip.open(path, "wt", compresslevel=1) as out:
        for i in range(0, n, 500_000):
            rows = order[i:i + 500_000]
            out.write("".join(f"{names[c]}\t{s}\t{e}\tBARCODE-1\t1\n"
                              for c, s, e in zip(chrom[rows], starts[rows], ends[rows])))


def best_time(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def same_tracks(a: Path, b: Path) -> bool:
    with pyBigWig.open(str(a)) as x, pyBigWig.open(str(b)) as y:
        return all(np.array_equal(np.nan_to_num(x.values(c, 0, n)), np.nan_to_num(y.values(c, 0, n)))
                   for c, n in y.chroms().items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bam2bw = shutil.which("bam2bw")
    if bam2bw is None:
        raise SystemExit("bam2bw is not installed: pip install --no-deps bam2bw")

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        data = simulate_demo(tmp / "demo", reads=True)
        genome = data["sequences"]
        fragments = tmp / "fragments.tsv.gz"
        write_fragments(fragments, fasta_chrom_sizes(genome), args.fragments)
        n_reads = sum(reads_to_bigwig([str(data["signal_reads"])], genome, [tmp / "count.bw"]))
        cases = [
            (f"BAM, stranded ({n_reads} reads)", [str(data["signal_reads"])],
             [tmp / "ours.plus.bw", tmp / "ours.minus.bw"], (0, 0), [],
             [tmp / "theirs.+.bw", tmp / "theirs.-.bw"]),
            (f"fragments, unstranded ({args.fragments} fragments)", [str(fragments)],
             [tmp / "ours.frag.bw"], (0, 0), ["-u", "-f"], [tmp / "theirs.bw"]),
        ]
        rows = []
        for label, inputs, ours, shift, flags, theirs in cases:
            ours_s = best_time(lambda: reads_to_bigwig(inputs, genome, ours, shift=shift), args.repeats)
            name = str(theirs[0]).split(".")[0] if len(theirs) == 2 else str(theirs[0])[:-3]
            command = [bam2bw, *inputs, "-s", str(genome), "-n", name, *flags]
            theirs_s = best_time(lambda: subprocess.run(command, check=True, capture_output=True), args.repeats)
            agree = all(same_tracks(a, b) for a, b in zip(ours, theirs))
            rows.append((label, ours_s, theirs_s, agree))

    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{'input':45s} {'bpnet_core (s)':>15s} {'bam2bw (s)':>11s} {'speed-up':>9s}  same tracks")
    for label, ours_s, theirs_s, agree in rows:
        print(f"{label:45s} {ours_s:15.2f} {theirs_s:11.2f} {theirs_s / ours_s:8.1f}x  {'yes' if agree else 'NO'}")


if __name__ == "__main__":
    main()
