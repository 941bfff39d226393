"""Motif hits of a finished demo run against the instances the simulator planted.

    python benchmarks/motif_hits.py [--results results/demo] [--data resources/demo] [--lambdas 0.7 0.8]

Reads the run's attributions and TF-MoDISco results, calls Fi-NeMo at each
`global_lambda` (into a temporary folder; the run's own hits are not
touched) and prints, per planted motif, precision and recall of the hits
within 5 bp of a planted instance (`bpnet_core.simulate.truth.hit_recovery`),
and the recall of the planted instances that the model attributes (summed
projected contribution > 0.3).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from bpnet_core.motif_hits import call_motif_hits, load_regions
from bpnet_core.simulate.truth import hit_recovery, instance_contributions

ATTRIBUTED = 0.3  # summed projected contribution over an instance that counts as used by the model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results/demo"))
    parser.add_argument("--data", type=Path, default=Path("resources/demo"))
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.7, 0.8])
    parser.add_argument("--region-width", type=int, default=400)
    parser.add_argument("--cwm-trim-threshold", type=float, default=0.3)
    args = parser.parse_args()
    name = args.results.name
    attributed = args.results / "attribute"
    inputs = [attributed / f"{name}.{kind}" for kind in ("ohe.npz", "attr.npz", "loci.tsv")]
    sequences, contributions, regions = load_regions(*inputs, args.region_width)
    planted = pd.read_csv(args.data / "planted_motifs.tsv", sep="\t")
    used = planted[instance_contributions(planted, sequences, contributions, regions) > ATTRIBUTED]
    database = args.data / "motifs.meme"
    for global_lambda in args.lambdas:
        with tempfile.TemporaryDirectory() as folder:
            outputs = {key: Path(folder) / key for key in ("hits", "bed", "counts", "cooccurrence", "positions",
                                                             "finemo")}
            config = {"region_width": args.region_width, "global_lambda": global_lambda,
                      "cwm_trim_threshold": args.cwm_trim_threshold, "finemo_report": False}
            call_motif_hits(config, *inputs, args.results / "modisco" / f"{name}.modisco.h5", outputs, database)
            hits = pd.read_csv(outputs["hits"], sep="\t")
        table = hit_recovery(hits, planted, regions)
        table["recall_attributed"] = hit_recovery(hits, used, regions)["recall"]
        print(f"\nglobal_lambda {global_lambda}: {len(hits)} hits in {len(regions)} regions; "
              f"{len(used)} planted instances attributed > {ATTRIBUTED}")
        print(table.to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
