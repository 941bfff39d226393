"""The demo, end to end: the model learns, TF-MoDISco finds the planted motifs,
marginalization ranks them above the decoys, variant scores single out the
SNVs that break planted motifs.

This runs `config/demo.json` as `make demo` does, on demo data simulated into
a temporary folder, in the background from the start of the session
(`conftest.demo_runs`).
"""

from __future__ import annotations

import pandas as pd
import pytest

from bpnet_core.simulate.chip import DECOY_MOTIFS, PLANTED_MOTIFS


@pytest.fixture(scope="module")
def demo_results(demo_runs):
    return demo_runs.results("demo")


def test_model_learns(demo_results):
    performance = pd.read_csv(demo_results / "evaluate" / "demo.performance.tsv", sep="\t").iloc[0]
    assert performance["count_pearson"] > 0.4
    assert performance["profile_pearson"] > 0.4
    history = pd.read_csv(demo_results / "fit" / "demo.history.tsv", sep="\t")
    assert history["valid_loss"].min() < 0.8 * history["valid_loss"].iloc[0]


def test_modisco_finds_every_planted_motif(demo_results):
    motifs = pd.read_csv(demo_results / "modisco" / "report" / "motifs.tsv", sep="\t")
    significant = motifs[motifs["qvalue0"] < 0.05]
    assert set(PLANTED_MOTIFS) <= set(significant["match0"])
    assert not set(DECOY_MOTIFS) & set(significant["match0"])


def test_marginalization_ranks_planted_above_decoys(demo_results):
    summary = pd.read_csv(demo_results / "marginalize" / "summary.tsv", sep="\t").set_index("motif")
    planted = summary.loc[list(PLANTED_MOTIFS), "delta_log_counts"]
    decoys = summary.loc[list(DECOY_MOTIFS), "delta_log_counts"]
    assert planted.min() > decoys.max()
    assert planted.min() > 0.1


def test_variants_that_break_planted_motifs_stand_out(demo_results):
    """SNVs at the centre of planted instances in chr2's peaks against SNVs in background regions.

    Measured on a demo model of the same config: AUROC 0.93 (JSD) and 0.88
    (-logfc); 67% of the motif-breaking SNVs had JSD p < 0.05, 4% of the
    background ones.
    """
    import numpy as np

    table = pd.read_csv(demo_results / "variants" / "demo.variants.tsv.gz", sep="\t")
    assert (table["status"] == "scored").all() and set(table["chrom"]) == {"chr2"}
    planted = table[table["id"].str.startswith("planted_")]
    background = table[table["id"].str.startswith("background_")]
    assert len(planted) > 100 and len(background) > 100

    def auroc(positives, negatives):
        positives, negatives = np.asarray(positives)[:, None], np.asarray(negatives)[None, :]
        return (positives > negatives).mean() + (positives == negatives).mean() / 2

    assert auroc(planted["jsd"], background["jsd"]) > 0.85
    assert auroc(-planted["logfc"], -background["logfc"]) > 0.75
    assert (planted["jsd_pval"] < 0.05).mean() > 3 * (background["jsd_pval"] < 0.05).mean()
    assert (demo_results / "variants" / "report.html").is_file()


def _mismatches(bases: str, consensus: str) -> int:
    """Mismatches of `bases` to the IUPAC `consensus` on its better strand."""
    from bpnet_core.simulate.chip import iupac_to_ppm

    ppm = iupac_to_ppm(consensus)  # (W, 4): the code's bases share CONSENSUS_MASS, the others a pseudocount
    allowed = ppm > 0.5 * ppm.max(axis=1, keepdims=True)
    index = ["ACGT".index(b) if b in "ACGT" else -1 for b in bases]
    forward = sum(i < 0 or not allowed[k, i] for k, i in enumerate(index))
    reverse = sum(i < 0 or not allowed[::-1, ::-1][k, i] for k, i in enumerate(index))
    return min(forward, reverse)


def test_motif_hits_fall_on_planted_instances(demo_results):
    """Fi-NeMo's hits against the planted instances in the attributed regions, within 5 bp.

    Measured on demo models of the same config (lambda 0.7): precision
    0.62-0.67, recall 0.74-0.81 of all planted instances, 0.98-1.00 of those
    that the model attributes (summed contribution > 0.3; a third of the
    planted instances get none). The other hits are near-consensus sites
    that the model uses.
    """
    import numpy as np
    import pyfaidx

    from bpnet_core.motif_hits import load_regions
    from bpnet_core.simulate.truth import hit_recovery, instance_contributions

    resources = demo_results.parent.parent / "resources" / "demo"
    hits = pd.read_csv(demo_results / "motif_hits" / "demo.hits.tsv", sep="\t")
    planted = pd.read_csv(resources / "planted_motifs.tsv", sep="\t")
    attributed = demo_results / "attribute"
    sequences, contributions, regions = load_regions(attributed / "demo.ohe.npz", attributed / "demo.attr.npz",
                                                     attributed / "demo.loci.tsv", 400)
    assert not set(DECOY_MOTIFS) & set(hits["motif"])
    recovery = hit_recovery(hits, planted, regions).set_index("motif")
    assert recovery.loc["all", "precision"] > 0.5 and recovery.loc["all", "recall"] > 0.6
    used = planted[instance_contributions(planted, sequences, contributions, regions) > 0.3]
    recovery_used = hit_recovery(hits, used, regions).set_index("motif")
    assert (recovery_used.loc[list(PLANTED_MOTIFS), "recall"] > 0.85).all(), recovery_used

    # Coordinates round-trip to the genome: the bases under a hit hold its motif,
    # up to a quarter of its bases mismatched (anywhere in the span, +-1 bp: a
    # pattern trimmed wide holds it off-centre).
    genome = pyfaidx.Fasta(str(resources / "genome.fa"))

    def holds(chrom: str, start: int, end: int, consensus: str) -> bool:
        bases = genome[chrom][max(start - 1, 0):end + 1].seq.upper()
        return min(_mismatches(bases[i:i + len(consensus)], consensus)
                   for i in range(max(len(bases) - len(consensus) + 1, 1))) <= len(consensus) // 4

    rng = np.random.default_rng(0)
    for motif, (consensus, _) in PLANTED_MOTIFS.items():
        own = hits[hits["motif"] == motif]
        held = np.mean([holds(h.chrom, h.start, h.end, consensus) for h in own.itertuples()])
        widths = rng.choice((own["end"] - own["start"]).to_numpy(), 1000)
        chance = np.mean([holds("chr2", int(s), int(s + w), consensus)
                          for s, w in zip(rng.integers(100, 500_000, 1000), widths)])
        assert held > 0.9 > 5 * chance, (motif, held, chance)  # measured: 0.98-1.0 against 0.006-0.07


def test_motif_hits_in_the_report_and_finemo_report(demo_results):
    page = (demo_results / "demo.report.html").read_text()
    assert 'id="motif_hits"' in page and "motif_hits/demo.hits.bed" in page
    assert (demo_results / "motif_hits" / "finemo" / "report" / "report.html").is_file()
    counts = pd.read_csv(demo_results / "motif_hits" / "demo.hit_counts.tsv", sep="\t")
    assert set(PLANTED_MOTIFS) <= set(counts["motif"])
