"""Variant effect scores, against models whose answer is known.

The motif model reads exact AP1_like sites on both strands (the simulator
plants AP1_like instances in the peaks): a variant that breaks one loses
AP1_EFFECT of predicted log counts, a variant in background sequence
changes nothing.
"""

from __future__ import annotations

import gzip
import math

import numpy as np
import pandas as pd
import pyfaidx
import pytest
import torch

from bpnet_core.batch import load_dataset
from bpnet_core.cli import main
from bpnet_core.config import parse_config, pipeline_stages
from bpnet_core.errors import InputError
from bpnet_core.models import BPNet, ChromBPNet, save_model
from bpnet_core.simulate.chip import PLANTED_MOTIFS
from bpnet_core.variant_files import read_variants
from bpnet_core.variants import (
    FLIPPED,
    INVALID_ALLELE,
    OFF_CHROMOSOME,
    REF_MISMATCH,
    SCORED,
    UNKNOWN_CHROMOSOME,
    allele_windows,
    empirical_pvalues,
    encode,
    finish_variant_scores,
    read_scores,
    score_variant_chunk,
    score_variant_table,
    score_variants,
)

from conftest import TINY_MODEL, planned_jobs, snakemake, tiny_pipeline_config, write_json

AP1 = PLANTED_MOTIFS["AP1_like"][0]  # TGACTCA
AP1_RC = AP1[::-1].translate(str.maketrans("ACGT", "TGCA"))  # TGAGTCA
AP1_EFFECT = 2.0  # predicted log counts per exact site in the pooled window
IN_WINDOW, OUT_WINDOW = TINY_MODEL["in_window"], TINY_MODEL["out_window"]
OTHER = {"A": "C", "C": "G", "G": "T", "T": "A"}


def motif_model(n_control_tracks: int = 2) -> BPNet:
    """A BPNet whose counts and profile respond to exact AP1_like sites on either strand.

    Filter 0 scores TGACTCA, filter 1 its reverse complement: +1 per
    matching base, -1 otherwise, minus 6, so only an exact site passes the
    ReLU (with 1). The count head turns each site into AP1_EFFECT; the
    profile head puts reads 12 bp from a site. Control tracks have zero weight.
    """
    model = BPNet(n_filters=2, n_layers=0, n_outputs=2, n_control_tracks=n_control_tracks,
                  trimming=(IN_WINDOW - OUT_WINDOW) // 2)
    pooled = OUT_WINDOW + 2 * 37
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        for f, motif in enumerate((AP1, AP1_RC)):
            weights = -torch.ones(4, len(motif))
            weights[["ACGT".index(b) for b in motif], range(len(motif))] = 1
            model.iconv.weight[f, :, 10 - len(motif) // 2:10 - len(motif) // 2 + len(motif)] = weights
            model.iconv.bias[f] = 1 - len(motif)
            model.fconv.weight[0, f, 37 - 12] = 3
            model.fconv.weight[1, f, 37 + 12] = 3
            model.linear.weight[0, f] = AP1_EFFECT * pooled
        model.linear.bias.fill_(3)
    return model.eval()


def random_model(seed: int = 0, n_control_tracks: int = 2) -> BPNet:
    """A BPNet with random weights (2 layers), whose every output depends on every input base."""
    torch.manual_seed(seed)
    model = BPNet(n_filters=8, n_layers=2, n_outputs=2, n_control_tracks=n_control_tracks,
                  trimming=(IN_WINDOW - OUT_WINDOW) // 2)
    return model.eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("variant_models")
    windows = {"in_window": IN_WINDOW, "out_window": OUT_WINDOW}
    paths = {}
    for name, model in (("motif", motif_model()), ("random", random_model()),
                        ("chrombpnet", ChromBPNet(bias=random_model(1, 0), accessibility=motif_model(0))),
                        ("accessibility", motif_model(0))):
        save_model(model, folder / f"{name}.torch", windows)
        paths[name] = str(folder / f"{name}.torch")
    return paths


@pytest.fixture(scope="module")
def genome(tiny_data):
    fasta = pyfaidx.Fasta(str(tiny_data["sequences"]), sequence_always_upper=True)
    yield fasta
    fasta.close()


def config(tiny_data, models, variants, model="motif", **overrides) -> dict:
    controls = {} if model in ("chrombpnet", "accessibility") else {
        "controls": [str(tiny_data["control_plus"]), str(tiny_data["control_minus"])]}
    return {"variants": str(variants), "model": models[model], "sequences": str(tiny_data["sequences"]),
            "loci": str(tiny_data["peaks"]), **controls, "in_window": IN_WINDOW, "out_window": OUT_WINDOW,
            "batch_size": 64, "device": "cpu", "n_shuffles": 200, "n_top": 0, **overrides}


def write_variants(path, rows) -> str:
    pd.DataFrame(rows).to_csv(path, sep="\t", header=False, index=False)
    return str(path)


def exact_sites(tiny_data, genome) -> pd.DataFrame:
    """Planted AP1_like instances in peaks whose bases are an exact site (the model reads no other)."""
    planted = pd.read_csv(tiny_data["planted"], sep="\t")
    sites = planted[(planted["motif"] == "AP1_like") & planted["in_peak"]]
    exact = [genome[r.chrom][r.position:r.position + len(AP1)].seq in (AP1, AP1_RC) for r in sites.itertuples()]
    return sites[exact].reset_index(drop=True)


# --------------------------------------------------------------------------
# Motif-breaking variants against background ones


@pytest.fixture(scope="module")
def motif_run(tiny_data, models, genome, tmp_path_factory):
    """Scores of SNVs breaking planted AP1_like sites (ids ap1_*) and of background SNVs (bg_*)."""
    folder = tmp_path_factory.mktemp("motif_run")
    sites = exact_sites(tiny_data, genome)
    assert len(sites) >= 20
    rows = []
    for i, site in enumerate(sites.itertuples()):
        pos0 = site.position + 1  # the G of TGACTCA / TGAGTCA: no other site arises
        base = genome[site.chrom][pos0:pos0 + 1].seq
        rows.append((site.chrom, pos0 + 1, base, OTHER[base], f"ap1_{i}"))
    rng = np.random.default_rng(0)
    negatives = pd.read_csv(tiny_data["negatives"], sep="\t", header=None)
    # 60 positions in background regions (several per region: the tiny genome has few).
    for i, region in enumerate(negatives.sample(60, replace=True, random_state=0).itertuples()):
        pos0 = int(rng.integers(region[2] + 10, region[3] - 10))
        base = genome[region[1]][pos0:pos0 + 1].seq
        rows.append((region[1], pos0 + 1, base, OTHER[base], f"bg_{i}"))
    variants = write_variants(folder / "variants.tsv", rows)
    table = score_variants(config(tiny_data, models, variants, n_top=2), folder)
    return folder, table


def auroc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting half."""
    greater = (positives[:, None] > negatives[None, :]).mean()
    ties = (positives[:, None] == negatives[None, :]).mean()
    return greater + ties / 2


def test_motif_breaking_variants_stand_out(motif_run):
    _, table = motif_run
    assert (table["status"] == SCORED).all()
    broken = table[table["id"].str.startswith("ap1_")]
    background = table[table["id"].str.startswith("bg_")]
    # Each site is read on both strands (reverse-complement averaging keeps the whole effect).
    assert broken["logfc"].to_numpy() == pytest.approx(-AP1_EFFECT / math.log(2), abs=1e-4)
    assert auroc(-broken["logfc"].to_numpy(), -background["logfc"].to_numpy()) > 0.9
    assert auroc(broken["jsd"].to_numpy(), background["jsd"].to_numpy()) > 0.9
    # The shuffled contexts almost never hold a site: the null is near 0.
    assert (broken["logfc_pval"] < 0.02).all() and (broken["jsd_pval"] < 0.02).all()
    assert (background["logfc_pval"] > 0.5).mean() > 0.9
    assert background["logfc"].abs().median() < 1e-6
    # Peaks hold sites, backgrounds rarely: an allele with a site ranks high among the peaks.
    assert broken["active_allele_quantile"].min() > background["active_allele_quantile"].median()


def test_outputs_and_page(motif_run):
    folder, table = motif_run
    written = read_scores(folder / "variants.tsv.gz")
    assert (folder / "variants.tsv.gz.tbi").is_file()
    pd.testing.assert_frame_equal(written[["chrom", "pos", "id", "status"]], table[["chrom", "pos", "id", "status"]])
    assert np.allclose(written["logfc"], table["logfc"], atol=1e-5)
    # Sorted by chromosome and position, as tabix needs.
    assert list(written["chrom"]) == sorted(written["chrom"])
    assert all(g["pos"].is_monotonic_increasing for _, g in written.groupby("chrom"))
    page = (folder / "report.html").read_text()
    assert page.count("<img") == 2 and "Strongest variants" in page
    top = written.sort_values(["logfc_pval", "abs_logfc"], ascending=[True, False]).iloc[0]
    assert top["id"] in page and top["id"].startswith("ap1_")
    null = pd.read_csv(folder / "null.tsv", sep="\t")
    assert len(null) == 200 and list(null.columns) == ["abs_logfc", "jsd"]


def test_tabix_region_query(motif_run):
    import pysam

    folder, table = motif_run
    row = table.iloc[0]
    with pysam.TabixFile(str(folder / "variants.tsv.gz")) as tabix:
        lines = list(tabix.fetch(row["chrom"], row["pos"] - 1, row["pos"]))
    assert any(line.split("\t")[4] == row["id"] for line in lines)


# --------------------------------------------------------------------------
# Agreement with tangermeme's variant_effect computation


def test_scores_equal_tangermeme_substitution_effect(tiny_data, models, genome, tmp_path):
    from scipy.spatial.distance import jensenshannon
    from scipy.special import softmax
    from tangermeme.io import extract_loci
    from tangermeme.predict import predict
    from tangermeme.variant_effect import substitution_effect

    from bpnet_core.data import reverse_complement_tracks
    from bpnet_core.models import load_model

    rng = np.random.default_rng(1)
    positions = np.sort(rng.integers(2000, 90_000, 12))
    rows = []
    for i, pos0 in enumerate(positions):
        base = genome["chr2"][int(pos0):int(pos0) + 1].seq
        rows.append(("chr2", int(pos0) + 1, base, "ACGT"[(("ACGT".index(base)) + 1 + i % 3) % 4], f"v{i}"))
    variants = write_variants(tmp_path / "v.tsv", rows)
    table, _ = score_variant_table(config(tiny_data, models, variants, model="random", n_shuffles=0))

    model = load_model(models["random"])
    intervals = pd.DataFrame({"chrom": "chr2", "start": positions, "end": positions + 1})
    X, X_ctl = extract_loci(intervals, str(tiny_data["sequences"]),
                            in_signals=[str(tiny_data["control_plus"]), str(tiny_data["control_minus"])],
                            in_window=IN_WINDOW)
    alt = torch.tensor(["ACGT".index(row[3]) for row in rows])
    centre = IN_WINDOW // 2
    forward = substitution_effect(model, X.float(), torch.stack([torch.arange(len(rows)), torch.full_like(alt, centre),
                                                               alt], 1), args=(X_ctl,), func=predict, batch_size=8)
    # The reverse strand: the variant's base at the mirrored position, complemented.
    reverse = substitution_effect(model, X.float().flip(dims=(1, 2)),
                                  torch.stack([torch.arange(len(rows)), torch.full_like(alt, IN_WINDOW - 1 - centre),
                                               3 - alt], 1),
                                  args=(reverse_complement_tracks(X_ctl),), func=predict, batch_size=8)

    def averaged(fwd, rev):
        logits = (fwd[0] + reverse_complement_tracks(rev[0])) / 2
        return logits.reshape(len(logits), -1).double().numpy(), ((fwd[1] + rev[1]) / 2).reshape(-1).double().numpy()

    ref_logits, ref_counts = averaged(forward.y_before, reverse.y_before)
    alt_logits, alt_counts = averaged(forward.y_after, reverse.y_after)
    logfc = np.log2(np.exp(alt_counts) / np.exp(ref_counts))
    jsd = jensenshannon(softmax(ref_logits, axis=1), softmax(alt_logits, axis=1), base=2, axis=1)
    assert (table["status"] == SCORED).all()
    assert np.abs(logfc).max() > 1e-3  # the random model does respond
    np.testing.assert_allclose(table["logfc"], logfc, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(table["jsd"], jsd, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(table["ref_log_counts"], ref_counts, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------
# Alleles: orientation, mismatches, indels, chromosome ends


def test_allele_cases(tiny_data, models, genome, tmp_path):
    site = exact_sites(tiny_data, genome).iloc[0]
    chrom, start = site["chrom"], int(site["position"])
    snv0 = start + 1
    base = genome[chrom][snv0:snv0 + 1].seq
    anchor = genome[chrom][start - 1:start].seq  # the base before the site: VCF's indel anchor
    site_bases = genome[chrom][start:start + len(AP1)].seq
    far = 50_000
    far_base = genome["chr1"][far:far + 1].seq
    third = next(b for b in "ACGT" if b not in (base, OTHER[base]))
    size = len(genome["chr1"])
    rows = [
        (chrom, snv0 + 1, base, OTHER[base], "ok"),
        (chrom, snv0 + 1, OTHER[base], base, "flipped"),  # given on the other orientation
        (chrom, snv0 + 1, third, OTHER[base], "mismatch"),  # neither allele is the genome's
        (chrom, start, anchor + site_bases, anchor, "deletion"),  # deletes the whole site
        (chrom, start, anchor, anchor + "GATTACA", "insertion"),
        (chrom, start + 3, "-", "GG", "dash_insertion"),  # empty ref (variant-scorer): GG before site base 3
        ("chr1", 20, genome["chr1"][19:20].seq, "A" if genome["chr1"][19:20].seq != "A" else "C", "start_edge"),
        ("chr1", size - 5, genome["chr1"][size - 6:size - 5].seq, "N", "not_a_base"),
        ("chr1", size - 5, genome["chr1"][size - 6:size - 5].seq, "<DEL>", "symbolic"),
        ("chrUn", 100, "A", "C", "unknown"),
        ("chr1", far + 1, far_base, OTHER[far_base], "background"),
    ]
    variants = write_variants(tmp_path / "v.tsv", rows)
    table, _ = score_variant_table(config(tiny_data, models, variants, n_shuffles=50))
    by_id = table.set_index("id")
    assert by_id["status"].to_dict() == {
        "ok": SCORED, "flipped": FLIPPED, "mismatch": REF_MISMATCH, "deletion": SCORED, "insertion": SCORED,
        "dash_insertion": SCORED, "start_edge": OFF_CHROMOSOME, "not_a_base": INVALID_ALLELE,
        "symbolic": INVALID_ALLELE, "unknown": UNKNOWN_CHROMOSOME, "background": SCORED}
    assert list(table["id"]) == [row[4] for row in rows]  # one row per input variant, in file order
    # A flipped variant is scored in the genome's orientation: the same as when given so.
    assert (by_id.loc["flipped", "ref"], by_id.loc["flipped", "alt"]) == (base, OTHER[base])
    assert by_id.loc["flipped", "logfc"] == pytest.approx(by_id.loc["ok", "logfc"])
    assert by_id.loc["ok", "logfc"] == pytest.approx(-AP1_EFFECT / math.log(2), abs=1e-4)
    skipped = table["status"].isin([REF_MISMATCH, OFF_CHROMOSOME, INVALID_ALLELE, UNKNOWN_CHROMOSOME])
    assert table.loc[skipped, "logfc"].isna().all() and table.loc[~skipped, "logfc"].notna().all()
    # Deleting the site loses it; inserting 7 bases beside it or 2 inside it does what it does to the site.
    assert by_id.loc["deletion", "logfc"] == pytest.approx(-AP1_EFFECT / math.log(2), abs=1e-4)
    assert by_id.loc["insertion", "logfc"] == pytest.approx(0, abs=1e-4)
    assert by_id.loc["dash_insertion", "ref"] == "-" and by_id.loc["dash_insertion", "logfc"] < -1
    assert by_id.loc["background", "logfc"] == pytest.approx(0, abs=1e-6)


def test_indel_windows_as_variant_scorer():
    """Fixed-length windows, centred: left flank, allele, right flank from after the ref allele."""
    rng = np.random.default_rng(0)
    in_window, centre = 20, 10
    genome = "".join(rng.choice(list("ACGT"), 40))
    for ref_length, alt in ((1, "T"), (4, "A"), (1, "ACGTACG"), (0, "GG")):
        ref = genome[centre:centre + ref_length]
        context = encode(genome[:in_window + max(0, ref_length - len(alt))])
        ref_window, alt_window = allele_windows(context, ref, alt, in_window)
        expected_alt = (genome[:centre] + alt + genome[centre + ref_length:])[:in_window]
        assert ref_window.tolist() == encode(genome[:in_window]).tolist()
        assert alt_window.tolist() == encode(expected_alt).tolist()


def test_empirical_pvalues():
    null = np.array([0.0, 0.0, 1.0, 2.0])
    assert empirical_pvalues(np.array([3.0, 2.0, 0.5, 0.0]), null).tolist() == [1 / 5, 2 / 5, 3 / 5, 1.0]
    assert np.isnan(empirical_pvalues(np.array([1.0]), np.array([]))).all()


# --------------------------------------------------------------------------
# Files


def test_read_vcf_gz_and_tsv_with_header(tmp_path):
    vcf = tmp_path / "v.vcf.gz"
    with gzip.open(vcf, "wt") as handle:
        handle.write("##fileformat=VCFv4.2\n##contig=<ID=chr1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                     "chr1\t100\trs1\tA\tC,T\t.\tPASS\t.\nchr2\t5\t.\tAG\tA\t.\tPASS\t.\n")
    table = read_variants(vcf)
    assert table.to_dict("records") == [
        {"chrom": "chr1", "pos": 100, "ref": "A", "alt": "C", "id": "rs1"},
        {"chrom": "chr1", "pos": 100, "ref": "A", "alt": "T", "id": "rs1"},
        {"chrom": "chr2", "pos": 5, "ref": "AG", "alt": "A", "id": "chr2:5:AG:A"}]
    tsv = tmp_path / "v.tsv"
    tsv.write_text("chrom\tpos\tref\talt\n1\t7\ta\t-\n")
    assert read_variants(tsv).to_dict("records") == [{"chrom": "1", "pos": 7, "ref": "A", "alt": "", "id": "1:7:A:"}]
    bad = tmp_path / "bad.tsv"
    bad.write_text("chr1\t7\tA\tC\nchr1\tx7\tA\tC\n")
    with pytest.raises(InputError, match=r"bad.tsv \(config key 'variants'\): position 'x7'"):
        read_variants(bad)


def test_step_config_problems(tiny_data, models, tmp_path):
    variants = write_variants(tmp_path / "v.tsv", [("chr1", 5000, "A", "C", "x")])
    with pytest.raises(InputError, match="n_shuffle"):
        parse_config({**config(tiny_data, models, variants), "n_shuffle": 3}, kind="variants")
    assert type(parse_config(config(tiny_data, models, variants))).__name__ == "VariantsConfig"


def pipeline(tiny_data, variants, **block) -> dict:
    return tiny_pipeline_config(tiny_data, variants_parameters={"variants": str(variants), **block})


def test_pipeline_file_problems_name_file_and_key(tiny_data, tmp_path):
    missing = tmp_path / "missing.vcf"
    with pytest.raises(InputError) as info:
        load_dataset(pipeline(tiny_data, missing), "tiny.json")
    assert f"{missing}: file not found (config key 'variants_parameters.variants'" in str(info.value)
    other_genome = write_variants(tmp_path / "ensembl.tsv", [("1", 5000, "A", "C"), ("2", 700, "G", "T")])
    with pytest.raises(InputError) as info:
        load_dataset(pipeline(tiny_data, other_genome), "tiny.json")
    message = str(info.value)
    assert f"{other_genome} (config key 'variants_parameters.variants'): no variant on a chromosome" in message
    assert "the file has 1, 2" in message and "tiny.json" in message
    with pytest.raises(InputError, match="variants_parameters.n_shufles"):
        load_dataset(pipeline(tiny_data, other_genome, n_shufles=3), "tiny.json")


def test_pipeline_stage_wiring(tiny_data, tmp_path):
    variants = write_variants(tmp_path / "v.tsv", [("chr1", 5000, "A", "C")])
    stages = pipeline_stages(parse_config(pipeline(tiny_data, variants)))
    step = stages["variants"]
    assert step.model == "results/tiny/fit/tiny.torch" and step.full_model is None
    assert step.loci == str(tiny_data["peaks"])  # predict's peaks, not the fit's negatives
    assert (step.in_window, step.out_window) == (IN_WINDOW, OUT_WINDOW)
    assert step.controls == [str(tiny_data["control_plus"]), str(tiny_data["control_minus"])]
    assert "variants" not in pipeline_stages(parse_config(tiny_pipeline_config(tiny_data)))


def test_chrombpnet_pipeline_scores_the_accessibility_and_full_models(tiny_data, tmp_path):
    variants = write_variants(tmp_path / "v.tsv", [("chr1", 5000, "A", "C")])
    data = {"name": "atac", **{k: TINY_MODEL[k] for k in ("in_window", "out_window")},
            "sequences": str(tiny_data["sequences"]), "signals": [str(tiny_data["signal_plus"])],
            "loci": str(tiny_data["peaks"]), "negatives": str(tiny_data["negatives"]),
            "training_chroms": ["chr1"], "validation_chroms": ["chr2"],
            "fit_parameters": {}, "variants_parameters": {"variants": variants}}
    step = pipeline_stages(parse_config(data, kind="chrombpnet_pipeline"))["variants"]
    assert step.model == "results/atac/fit/atac.accessibility.torch"
    assert step.full_model == "results/atac/fit/atac.torch"


# --------------------------------------------------------------------------
# ChromBPNet models, several models, chunks, the command line


def test_chrombpnet_model_gets_full_scores(tiny_data, models, genome, tmp_path):
    site = exact_sites(tiny_data, genome).iloc[0]
    pos0 = int(site["position"]) + 1
    base = genome[site["chrom"]][pos0:pos0 + 1].seq
    variants = write_variants(tmp_path / "v.tsv", [(site["chrom"], pos0 + 1, base, OTHER[base], "ap1")])
    full, _ = score_variant_table(config(tiny_data, models, variants, model="chrombpnet", n_shuffles=20))
    alone, _ = score_variant_table(config(tiny_data, models, variants, model="accessibility", n_shuffles=20))
    assert {"full_logfc", "full_jsd", "full_logfc_pval", "full_active_allele_quantile"} <= set(full.columns)
    assert full["logfc"].iloc[0] == pytest.approx(alone["logfc"].iloc[0])
    assert full["logfc"].iloc[0] == pytest.approx(-AP1_EFFECT / math.log(2), abs=1e-4)
    # The bias model adds reads that the variant does not change: a smaller fold change.
    assert abs(full["full_logfc"].iloc[0]) < abs(full["logfc"].iloc[0])
    # Given the full model's file, the same.
    given = config(tiny_data, models, variants, model="accessibility", n_shuffles=20, full_model=models["chrombpnet"])
    both, _ = score_variant_table(given)
    assert both["full_logfc"].iloc[0] == pytest.approx(full["full_logfc"].iloc[0])


def test_models_are_averaged(tiny_data, models, tmp_path, genome):
    base = genome["chr2"][30_000:30_001].seq
    variants = write_variants(tmp_path / "v.tsv", [("chr2", 30_001, base, OTHER[base], "v")])
    single = {name: score_variant_table(config(tiny_data, models, variants, model=name, n_shuffles=0))[0]
              for name in ("motif", "random")}
    both = config(tiny_data, models, variants, n_shuffles=0)
    both["model"] = [models["motif"], models["random"]]
    averaged, _ = score_variant_table(both)
    expected = (single["motif"]["alt_log_counts"] + single["random"]["alt_log_counts"]) / 2
    assert averaged["alt_log_counts"].iloc[0] == pytest.approx(expected.iloc[0], rel=1e-6)


def test_chunks_merge_into_one_table(motif_run, tiny_data, models, tmp_path):
    folder, table = motif_run
    variants = str(folder / "variants.tsv")
    chunks, nulls = [], []
    for chrom in ("chr2", "chr1"):
        chunks.append(tmp_path / f"{chrom}.tsv")
        nulls.append(tmp_path / f"{chrom}.null.tsv")
        score_variant_chunk(config(tiny_data, models, variants, chroms=[chrom], n_shuffles=100), chunks[-1], nulls[-1])
    merged = finish_variant_scores(config(tiny_data, models, variants, n_top=0), chunks, nulls,
                                   tmp_path / "all.tsv.gz", tmp_path / "null.tsv", tmp_path / "report.html")
    assert len(pd.read_csv(tmp_path / "null.tsv", sep="\t")) == 200  # the chunks' nulls, pooled
    assert sorted(merged["id"]) == sorted(table["id"])
    assert list(merged["chrom"].unique()) == ["chr1", "chr2"]  # the FASTA's order
    np.testing.assert_allclose(merged.set_index("id").loc[table["id"], "logfc"], table["logfc"], atol=1e-5)
    broken = merged[merged["id"].str.startswith("ap1_")]
    assert (broken["logfc_pval"] < 0.02).all()
    assert (tmp_path / "all.tsv.gz.tbi").is_file() and (tmp_path / "report.html").is_file()


def test_command_line(tiny_data, models, tmp_path, monkeypatch, genome):
    base = genome["chr2"][30_000:30_001].seq
    variants = write_variants(tmp_path / "v.tsv", [("chr2", 30_001, base, OTHER[base], "v")])
    parameters = write_json(tmp_path / "variants.json", config(tiny_data, models, variants, n_shuffles=10,
                                                              output_folder=str(tmp_path / "out")))
    main(["variants", "-p", str(parameters)])
    assert read_scores(tmp_path / "out" / "variants.tsv.gz")["id"].tolist() == ["v"]
    assert (tmp_path / "out" / "report.html").is_file()


# --------------------------------------------------------------------------
# The workflow


def test_workflow_plans_one_job_per_chromosome(tiny_data, tmp_path, genome):
    rows = [("chr1", 5001, genome["chr1"][5000:5001].seq, "A"), ("chr2", 7001, genome["chr2"][7000:7001].seq, "A")]
    variants = write_variants(tmp_path / "v.tsv", rows)
    config_path = write_json(tmp_path / "tiny.json", pipeline(tiny_data, variants))
    jobs = planned_jobs(tmp_path, config_path)
    assert jobs["score_variants"] == 2 and jobs["merge_variant_scores"] == 1
    chroms = write_json(tmp_path / "chr2.json", pipeline(tiny_data, variants, chroms=["chr2"]))
    assert planned_jobs(tmp_path, chroms)["score_variants"] == 1


def test_workflow_scores_variants_with_a_given_model(tiny_data, models, tmp_path, genome):
    """The whole stage under Snakemake: chunks, merge, page, and the dataset report's link."""
    site = exact_sites(tiny_data, genome).iloc[0]
    pos0 = int(site["position"]) + 1
    base = genome[site["chrom"]][pos0:pos0 + 1].seq
    rows = [(site["chrom"], pos0 + 1, base, OTHER[base], "ap1"),
            ("chr2", 30_001, genome["chr2"][30_000:30_001].seq, "A", "bg")]
    variants = write_variants(tmp_path / "v.tsv", rows)
    data = pipeline(tiny_data, variants, n_shuffles=50, n_top=1)
    data["model"] = models["motif"]  # given: nothing to train
    config_path = write_json(tmp_path / "tiny.json", data)
    result = snakemake(tmp_path, config_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "results" / "tiny"
    scores = read_scores(out / "variants" / "tiny.variants.tsv.gz").set_index("id")
    assert scores.loc["ap1", "logfc"] == pytest.approx(-AP1_EFFECT / math.log(2), abs=1e-4)
    assert (out / "variants" / "report.html").is_file()
    report = (out / "tiny.report.html").read_text()
    assert 'href="variants/report.html"' in report and "Variant effects" in report
    assert (out / "logs" / f"score_variants.{site['chrom']}.log").is_file()
    assert (out / "benchmarks" / "merge_variant_scores.tsv").is_file()
