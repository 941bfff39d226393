"""Time and peak memory of scoring many variants (``bpnet-core variants``) on the demo.

Random SNVs (uniform over the genome, at least a window from the ends; the
reference allele from the FASTA, a random other base as alternative) are
written as a TSV and scored by `bpnet_core.variants.score_variants` in this
process: reading, allele checks, both alleles on both strands, the
shuffled-context null, the peaks' quantiles, the table (bgzip + tabix) and
the page. Printed: wall seconds, variants per second and the peak RSS.

By default the model is the BPNet demo's architecture (32 filters x 6
layers, 846 -> 500 bp, two stranded outputs, two control tracks) with
random weights, on a freshly simulated demo genome: the compute does not
depend on the weights. ``--model`` scores a trained model instead (with
``--sequences``, ``--loci`` and, for BPNet, ``--controls``).

    python benchmarks/variants.py [--n 100000] [--n-shuffles 2000] [--device auto]
    python benchmarks/variants.py --model results/demo/fit/demo.torch --sequences resources/demo/genome.fa \\
        --loci resources/demo/peaks.narrowPeak.gz --controls resources/demo/control.plus.bw resources/demo/control.minus.bw
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def random_snvs(sequences: str, n: int, margin: int, seed: int = 0) -> pd.DataFrame:
    """`n` SNVs at random positions at least `margin` bp from the chromosome ends."""
    import pyfaidx

    rng = np.random.default_rng(seed)
    with pyfaidx.Fasta(sequences, sequence_always_upper=True) as fasta:
        sizes = {name: len(fasta[name]) for name in fasta.keys()}
        names = [name for name, size in sizes.items() if size > 2 * margin + 1]
        weights = np.array([sizes[name] - 2 * margin for name in names], dtype=float)
        chroms = rng.choice(names, n, p=weights / weights.sum())
        rows = []
        for chrom in names:
            picked = np.flatnonzero(chroms == chrom)
            positions = np.sort(rng.integers(margin, sizes[chrom] - margin, len(picked)))
            sequence = fasta[chrom][:].seq
            for pos0 in positions:
                ref = sequence[pos0]
                if ref not in "ACGT":
                    continue
                alt = rng.choice([base for base in "ACGT" if base != ref])
                rows.append((chrom, int(pos0) + 1, ref, alt, f"snv{len(rows)}"))
    return pd.DataFrame(rows, columns=["chrom", "pos", "ref", "alt", "id"])


def demo_inputs(folder: Path) -> dict:
    """The simulated BPNet demo and a model of its architecture with random weights."""
    import torch

    from bpnet_core.models import BPNet, save_model
    from bpnet_core.simulate.chip import simulate_demo

    paths = simulate_demo(folder / "demo", seed=0)
    demo = json.loads((Path(__file__).resolve().parents[1] / "config" / "demo.json").read_text())
    in_window, out_window = demo["in_window"], demo["out_window"]
    torch.manual_seed(0)
    model = BPNet(n_filters=demo["n_filters"], n_layers=demo["n_layers"], n_outputs=2, n_control_tracks=2,
                  trimming=(in_window - out_window) // 2)
    save_model(model, folder / "demo.torch", {"in_window": in_window, "out_window": out_window})
    return {"model": str(folder / "demo.torch"), "sequences": str(paths["sequences"]), "loci": str(paths["peaks"]),
            "controls": [str(paths["control_plus"]), str(paths["control_minus"])],
            "in_window": in_window, "out_window": out_window}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="variants (default 100000)")
    parser.add_argument("--n-shuffles", type=int, default=2000, help="null size (default 2000, the config default)")
    parser.add_argument("--n-top", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--model", nargs="+")
    parser.add_argument("--sequences")
    parser.add_argument("--loci")
    parser.add_argument("--controls", nargs="*")
    parser.add_argument("--in-window", type=int)
    parser.add_argument("--out-window", type=int)
    parser.add_argument("--workdir", help="keep inputs and outputs here (default: a temporary folder)")
    args = parser.parse_args()

    import torch

    from bpnet_core.runtime import run_logged
    from bpnet_core.variants import score_variants

    if args.threads:
        torch.set_num_threads(args.threads)
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="variants_benchmark_"))
    folder.mkdir(parents=True, exist_ok=True)
    if args.model:
        from bpnet_core.models import load_model

        metadata = load_model(args.model[0]).metadata
        inputs = {"model": args.model, "sequences": args.sequences, "loci": args.loci, "controls": args.controls or None,
                  "in_window": args.in_window or metadata["in_window"],
                  "out_window": args.out_window or metadata["out_window"]}
    else:
        inputs = demo_inputs(folder)
    start = time.perf_counter()
    variants = random_snvs(inputs["sequences"], args.n, inputs["in_window"])
    variants.to_csv(folder / "variants.tsv", sep="\t", header=False, index=False)
    setup_s = time.perf_counter() - start
    config = {**inputs, "variants": str(folder / "variants.tsv"), "n_shuffles": args.n_shuffles,
              "n_top": args.n_top, "batch_size": args.batch_size, "device": args.device}
    start = time.perf_counter()
    table = run_logged(score_variants, config, folder / "out")
    wall_s = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "variants": len(table), "scored": int(table["status"].isin(["scored", "flipped"]).sum()),
        "n_shuffles": args.n_shuffles, "model": inputs["model"], "in_window": inputs["in_window"],
        "device": str(args.device), "torch_threads": torch.get_num_threads(),
        "wall_s": round(wall_s, 1), "variants_per_s": round(len(table) / wall_s, 1),
        "peak_rss_mb": round(peak_mb), "setup_s": round(setup_s, 1), "output": str(folder / "out"),
    }, indent=2))


if __name__ == "__main__":
    main()
