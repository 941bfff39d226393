"""Motif hits: Fi-NeMo on attributed windows, in genome coordinates.

Synthetic contributions carry exact copies of two TF-MoDISco patterns at
known places; Fi-NeMo must find them there, once each, with the genomic
coordinates of the attributed windows.
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from bpnet_core.config import parse_config, pipeline_stages
from bpnet_core.errors import InputError
from bpnet_core.motif_hits import call_motif_hits, cooccurrence, hit_counts, load_regions
from bpnet_core.simulate.truth import hit_recovery, instance_contributions
from conftest import planned_jobs, tiny_pipeline_config, with_interpretation, write_json

BASES = "ACGT"
PATTERNS = {"pattern_0": "TGACTCA", "pattern_1": "GATAAGC"}  # a palindrome and a non-palindrome
FLANK = 4  # bases of near-zero contribution on each side of a pattern's core
IN_WINDOW, REGION = 160, 120


def one_hot(sequence: str) -> np.ndarray:
    """(4, L) float32."""
    return np.eye(4, dtype=np.float32)[[BASES.index(b) for b in sequence]].T


def reverse_complement(sequence: str) -> str:
    return sequence[::-1].translate(str.maketrans("ACGT", "TGCA"))


def write_database(path, motifs: dict[str, str]) -> None:
    """A MEME file of `motifs` (name line -> IUPAC consensus), as the simulator writes its motifs."""
    from bpnet_core.simulate.chip import iupac_to_ppm

    text = "MEME version 4\n\nALPHABET= ACGT\n\nstrands: + -\n\n"
    for name, consensus in motifs.items():
        ppm = iupac_to_ppm(consensus)
        text += (f"MOTIF {name}\nletter-probability matrix: alength= 4 w= {len(ppm)}\n"
                 + "".join(" ".join(f"{v:.4f}" for v in row) + "\n" for row in ppm) + "\n")
    path.write_text(text)


def write_modisco(path, patterns: dict[str, str]) -> None:
    """A modisco-lite h5 of `patterns`: CWMs of their consensus with weak flanks, and their sequences."""
    with h5py.File(path, "w") as f:
        for name, consensus in patterns.items():
            core = one_hot(consensus).T  # (W, 4)
            flank = np.full((FLANK, 4), 0.01, dtype=np.float32)
            cwm = np.concatenate([flank, core, flank])
            group = f.create_group(f"pos_patterns/{name}")
            for key in ("contrib_scores", "hypothetical_contribs"):
                group.create_dataset(key, data=cwm)
            uniform = np.full((FLANK, 4), 0.25, dtype=np.float32)
            group.create_dataset("sequence", data=np.concatenate([uniform, core, uniform]))
            group.create_dataset("seqlets/n_seqlets", data=[10])


@pytest.fixture(scope="module")
def attributed(tmp_path_factory):
    """Windows on two chromosomes with planted instances: files and the truth."""
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("hits")
    n = 12
    sequences, planted = [], []
    chroms = ["chr1" if i % 2 else "chr2" for i in range(n)]
    starts = 1000 + 500 * np.arange(n)
    for i in range(n):
        sequence = list(rng.choice(list(BASES), IN_WINDOW))
        for k, (name, consensus) in enumerate(PATTERNS.items()):
            strand = "+" if (i + k) % 2 else "-"
            site = consensus if strand == "+" else reverse_complement(consensus)
            offset = 30 + 50 * k + i  # inside the central REGION bases
            sequence[offset:offset + len(site)] = site
            planted.append({"chrom": chroms[i], "position": starts[i] + offset, "pattern": name,
                            "strand": strand, "window": i, "offset": offset})
        sequences.append("".join(sequence))
    ohe = np.stack([one_hot(s) for s in sequences])
    attr = 0.005 * rng.standard_normal(ohe.shape).astype(np.float32)
    for p in planted:
        width = len(PATTERNS[p["pattern"]])
        attr[p["window"], :, p["offset"]:p["offset"] + width] += ohe[p["window"], :, p["offset"]:p["offset"] + width]
    np.savez(folder / "ohe.npz", arr_0=ohe)
    np.savez(folder / "attr.npz", arr_0=attr)
    pd.DataFrame({"chrom": chroms, "start": starts, "end": starts + IN_WINDOW,
                  "center": starts + IN_WINDOW // 2}).to_csv(folder / "loci.tsv", sep="\t", index=False)
    write_modisco(folder / "modisco.h5", PATTERNS)
    write_database(folder / "db.meme", {"AP1_like AP-1 family": "TGACTCA", "ETS_like": "ACCGGAAGT",
                                        "NRF1_like": "GCGCATGCGC", "TEAD_like": "ACATTCCA"})
    outputs = {key: folder / "out" / name for key, name in [
        ("hits", "hits.tsv"), ("bed", "hits.bed"), ("counts", "counts.tsv"),
        ("cooccurrence", "cooc.tsv"), ("positions", "positions.png"), ("finemo", "finemo")]}
    summary = call_motif_hits({"region_width": REGION, "finemo_report": False}, folder / "ohe.npz",
                              folder / "attr.npz", folder / "loci.tsv", folder / "modisco.h5", outputs,
                              folder / "db.meme")
    return {"folder": folder, "outputs": outputs, "planted": pd.DataFrame(planted), "sequences": sequences,
            "starts": starts, "chroms": chroms, "summary": summary}


def test_every_planted_instance_is_hit_once_where_it_is(attributed):
    hits = pd.read_csv(attributed["outputs"]["hits"], sep="\t")
    planted = attributed["planted"]
    assert attributed["summary"] == {"n_regions": 12, "n_hits": len(hits)}
    assert len(hits) == len(planted)  # no spurious hit; the palindrome's two strands are one hit
    for p in planted.itertuples():
        hit = hits[(hits["chrom"] == p.chrom) & (hits["pattern"] == f"pos_patterns.{p.pattern}")
                   & (hits["start"] == p.position)]
        assert len(hit) == 1, p
        assert hit["end"].iloc[0] - hit["start"].iloc[0] == len(PATTERNS[p.pattern])
        if p.pattern == "pattern_1":  # not a palindrome: the strand is the planted one
            assert hit["strand"].iloc[0] == p.strand


def test_hit_coordinates_read_the_motif_back(attributed):
    """The bases under each hit, read from the window at the hit's genomic start, are the motif."""
    hits = pd.read_csv(attributed["outputs"]["hits"], sep="\t")
    for hit in hits.itertuples():
        region_chrom, span = hit.region.split(":")
        region_start = int(span.split("-")[0])
        window = next(i for i, (c, s) in enumerate(zip(attributed["chroms"], attributed["starts"]))
                      if c == region_chrom and s + (IN_WINDOW - REGION) // 2 == region_start)
        offset = hit.start - attributed["starts"][window]
        bases = attributed["sequences"][window][offset:offset + hit.end - hit.start]
        consensus = PATTERNS[hit.pattern.split(".")[1]]
        assert bases in (consensus, reverse_complement(consensus))
        assert abs(hit.summit_offset - ((hit.start + hit.end) / 2 - attributed["starts"][window]
                                        - IN_WINDOW // 2)) < 1e-9


def test_names_tables_and_bed(attributed):
    out = attributed["outputs"]
    hits = pd.read_csv(out["hits"], sep="\t")
    # Named by the database motif that classifies it as a TF's (none for pattern_1's GATAAGC).
    assert set(zip(hits["pattern"], hits["motif"], hits["kind"])) == {
        ("pos_patterns.pattern_0", "AP1_like", "TF"), ("pos_patterns.pattern_1", "pos_patterns.pattern_1", "unmatched")}
    # ... and by the database's TF name where it has one; the BED shows that name.
    named = hits.set_index("pattern")["motif_name"].fillna("").groupby(level=0).first().to_dict()
    assert named == {"pos_patterns.pattern_0": "AP-1 family", "pos_patterns.pattern_1": ""}
    counts = pd.read_csv(out["counts"], sep="\t")
    assert counts.set_index("pattern")["regions"].to_dict() == {f"pos_patterns.{p}": 12 for p in PATTERNS}
    assert (counts["fraction_of_regions"] == 1).all()
    cooc = pd.read_csv(out["cooccurrence"], sep="\t").set_index("pattern")
    assert (cooc.to_numpy() == 12).all()
    bed = pd.read_csv(out["bed"], sep="\t", header=None)
    assert bed.shape == (len(hits), 7) and bed[1].tolist() == hits["start"].tolist()
    assert set(bed[3]) == {"AP-1_family", "pos_patterns.pattern_1"}
    assert bed[4].between(0, 1000).all()
    assert (out["finemo"] / "hits.tsv").is_file() and (out["finemo"] / "peaks_qc.tsv").is_file()
    assert out["positions"].stat().st_size > 1000


def test_count_tables_of_no_hits():
    empty = pd.DataFrame(columns=["pattern", "motif", "kind", "region"])
    assert hit_counts(empty, 5).empty
    assert list(cooccurrence(empty).columns) == ["pattern"]


def test_no_patterns_writes_empty_tables(attributed, tmp_path):
    folder = attributed["folder"]
    with h5py.File(tmp_path / "none.h5", "w"):
        pass
    outputs = {key: tmp_path / key for key in ("hits", "bed", "counts", "cooccurrence", "positions", "finemo")}
    summary = call_motif_hits({"region_width": REGION}, folder / "ohe.npz", folder / "attr.npz",
                              folder / "loci.tsv", tmp_path / "none.h5", outputs)
    assert summary == {"n_regions": 12, "n_hits": 0}
    assert pd.read_csv(outputs["hits"], sep="\t").empty and outputs["finemo"].is_dir()


def test_region_wider_than_the_windows_is_an_input_error(attributed, tmp_path):
    folder = attributed["folder"]
    with pytest.raises(InputError, match=r"motif_hits_parameters.region_width: 200 bp is wider"):
        load_regions(folder / "ohe.npz", folder / "attr.npz", folder / "loci.tsv", 200)


def test_recovery_against_planted_instances(attributed):
    """`hit_recovery` counts a hit as right within the tolerance, and instances outside the regions not at all."""
    hits = pd.DataFrame({"chrom": ["chr1", "chr1", "chr1"], "start": [100, 300, 520], "end": [107, 307, 527],
                         "motif": ["AP1_like", "AP1_like", "GATA_like"]})
    planted = pd.DataFrame({"chrom": ["chr1"] * 4, "position": [103, 600, 518, 5000],
                            "motif": ["AP1_like", "AP1_like", "GATA_like", "GATA_like"]})
    regions = pd.DataFrame({"chrom": ["chr1"], "start": [0], "end": [1000]})
    table = hit_recovery(hits, planted, regions, tolerance=5).set_index("motif")
    assert table.loc["AP1_like", ["hits", "matched_hits", "planted", "recovered"]].tolist() == [2, 1, 2, 1]
    assert table.loc["GATA_like", ["precision", "recall"]].tolist() == [1.0, 1.0]  # 5000 is outside
    assert table.loc["all", "precision"] == pytest.approx(2 / 3)
    ohe = np.zeros((1, 4, 1000), np.float32)
    ohe[0, 0] = 1
    attr = np.ones_like(ohe)
    contributions = instance_contributions(planted, ohe, attr, regions)
    assert contributions[:3].tolist() == [7, 7, 8] and np.isnan(contributions[3])


def test_pipeline_plans_hits_after_modisco(tiny_data, tmp_path):
    data = {**with_interpretation(tiny_pipeline_config(tiny_data), tiny_data), "motif_hits_parameters": {}}
    stages = pipeline_stages(parse_config(data))
    assert stages["motif_hits"].region_width == 100  # TF-MoDISco's window
    assert stages["motif_hits"].modisco_region_width == 100
    only_hits = {**tiny_pipeline_config(tiny_data), "motif_hits_parameters": {"global_lambda": 0.8}}
    planned = pipeline_stages(parse_config(only_hits))
    assert {"attribute", "modisco_motifs", "motif_hits"} <= set(planned)
    jobs = planned_jobs(tmp_path, write_json(tmp_path / "tiny.json", data))
    assert jobs["call_motif_hits"] == 1 and jobs["discover_motifs"] == 1
    with pytest.raises(InputError, match="motif_hits_parameters.region_width"):
        pipeline_stages(parse_config({**data, "motif_hits_parameters": {"region_width": 101}}))
    with pytest.raises(InputError, match=r"motif_hits_parameters.global_lamda' \(did you mean 'global_lambda'"):
        parse_config({**data, "motif_hits_parameters": {"global_lamda": 1}})
