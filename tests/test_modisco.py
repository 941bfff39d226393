"""TF-MoDISco steps on synthetic contributions with planted motifs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from bpnet_core.errors import InputError
from bpnet_core.io import read_meme
from bpnet_core.modisco import discover_motifs, discover_motifs_stage, export_meme, report_motifs

PLANTED = {"AP1": "TGACTCA", "GATA": "GATAAG"}
N_DECOYS = 28  # with the planted motifs, over tomtom-lite's minimum of 25 targets
LENGTH = 200


def revcomp(seq: str) -> str:
    return seq[::-1].translate(str.maketrans("ACGT", "TGCA"))


def write_inputs(folder: Path, n: int, planted: bool, seed: int = 0, scale: float = 0.01,
                 length: int = LENGTH) -> tuple[Path, Path]:
    """One-hot sequences and hypothetical contributions, (n, 4, length) each.

    With `planted`, 90% of the sequences carry AP1 or GATA near the centre,
    and the contribution of each planted base (the observed one) is 1;
    elsewhere contributions are Gaussian noise of sd `scale`.
    """
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n, length))
    hypothetical = rng.normal(0, scale, size=(n, 4, length))
    if planted:
        for i in range(n):
            draw = rng.random()
            if draw >= 0.9:
                continue
            motif = PLANTED["AP1"] if draw < 0.45 else PLANTED["GATA"]
            start = length // 2 - len(motif) // 2 + rng.integers(-20, 21)
            bases = np.array(["ACGT".index(c) for c in motif])
            codes[i, start:start + len(motif)] = bases
            hypothetical[i, bases, np.arange(start, start + len(motif))] += 1.0
    one_hot = np.zeros((n, 4, length), dtype=np.float32)
    one_hot[np.arange(n)[:, None], codes, np.arange(length)[None]] = 1
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "ohe.npz", one_hot)
    np.savez(folder / "attr.npz", hypothetical.astype(np.float32))
    return folder / "ohe.npz", folder / "attr.npz"


def write_database(path: Path) -> list[str]:
    """A MEME file of the planted motifs and random decoys sharing no 4-mer with them."""
    rng = np.random.default_rng(5)
    planted_kmers = {s[i:i + 4] for m in PLANTED.values() for s in (m, revcomp(m))
                     for i in range(len(s) - 3)}
    motifs = dict(PLANTED)
    while len(motifs) < len(PLANTED) + N_DECOYS:
        seq = "".join(rng.choice(list("ACGT"), size=rng.integers(6, 11)))
        if not any(seq[i:i + 4] in planted_kmers for i in range(len(seq) - 3)):
            motifs[f"decoy{len(motifs)}"] = seq
    lines = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "",
             "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for name, seq in motifs.items():
        lines += [f"MOTIF {name}", f"letter-probability matrix: alength= 4 w= {len(seq)} nsites= 20 E= 0"]
        lines += [" ".join("0.850" if base == c else "0.050" for base in "ACGT") for c in seq]
        lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return list(motifs)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("modisco")
    ohe, attr = write_inputs(folder, n=300, planted=True)
    h5 = folder / "modisco.h5"
    n_patterns = discover_motifs(ohe, attr, h5, n_seqlets=100000, window=400)
    database = folder / "motifs.meme"
    names = write_database(database)
    return {"folder": folder, "ohe": ohe, "attr": attr, "h5": h5, "n_patterns": n_patterns,
            "database": database, "names": names}


def test_discover_finds_patterns(planted):
    assert planted["n_patterns"] >= 1
    with h5py.File(planted["h5"], "r") as handle:
        assert "pos_patterns" in handle
        stored = sum(len(handle[group]) for group in ("pos_patterns", "neg_patterns") if group in handle)
        # The sequences (200 bp) are shorter than the window: used whole.
        assert handle.attrs["window_size"] == LENGTH
    assert stored == planted["n_patterns"]
    assert not [p.name for p in planted["folder"].iterdir() if p.name.startswith(".")]


def test_report_matches_planted_motifs(planted, tmp_path):
    table = report_motifs(planted["h5"], tmp_path / "report", planted["database"])
    on_disk = pd.read_csv(tmp_path / "report" / "motifs.tsv", sep="\t")
    assert list(on_disk.columns) == ["pattern", "n_seqlets"] + [
        f"{field}{i}" for i in range(3) for field in ("match", "pvalue", "qvalue")]
    assert len(table) == len(on_disk) == planted["n_patterns"]
    # Every pattern is one of the planted motifs, recognized as such.
    assert set(table["match0"]) <= set(PLANTED)
    assert (table["qvalue0"] < 0.05).all()
    assert not table["match0"].str.startswith("decoy").any()
    assert (table["n_seqlets"] > 0).all()
    np.testing.assert_allclose(on_disk["qvalue0"], table["qvalue0"], rtol=1e-5)


def test_qvalues_are_benjamini_hochberg(planted, tmp_path):
    m = len(planted["names"])
    table = report_motifs(planted["h5"], tmp_path / "report", planted["database"], top_n_matches=m)
    for _, row in table.iterrows():
        p = np.array([row[f"pvalue{i}"] for i in range(m)])
        q = np.array([row[f"qvalue{i}"] for i in range(m)])
        assert sorted(row[f"match{i}"] for i in range(m)) == sorted(planted["names"])
        assert (np.diff(p) >= 0).all()  # matches come in order of p-value
        # By hand: q_(k) = min over j >= k of m p_(j) / j, at most 1.
        expected = np.minimum(np.minimum.accumulate((m * p / np.arange(1, m + 1))[::-1])[::-1], 1)
        np.testing.assert_allclose(q, expected, rtol=1e-12)
        assert (q >= p).all()
        assert (np.diff(q) >= 0).all()


def test_report_html_references_existing_logos(planted, tmp_path):
    folder = tmp_path / "report"
    table = report_motifs(planted["h5"], folder, planted["database"])
    page = (folder / "report.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    # Two CWM logos per pattern and one per match.
    assert len(sources) == 5 * len(table)
    for source in sources:
        assert source.startswith("logos/") and (folder / source).is_file()
    for name in table["match0"]:
        assert name in page
    assert f"{table['qvalue0'].iloc[0]:.3g}" in page


def test_report_without_database(planted, tmp_path):
    folder = tmp_path / "report"
    table = report_motifs(planted["h5"], folder, motifs=None)
    assert len(table) == planted["n_patterns"]
    assert table[["match0", "pvalue0", "qvalue0"]].isna().all().all()
    on_disk = pd.read_csv(folder / "motifs.tsv", sep="\t")
    assert "match0" in on_disk.columns and on_disk["match0"].isna().all()
    sources = re.findall(r'<img src="([^"]+)"', (folder / "report.html").read_text())
    assert len(sources) == 2 * len(table)


def test_export_meme(planted, tmp_path):
    out = tmp_path / "patterns.meme"
    assert export_meme(planted["h5"], out) == planted["n_patterns"]
    motifs = read_meme(out)
    assert len(motifs) == planted["n_patterns"]
    first_name, first = next(iter(motifs.items()))
    assert first_name == "pos_patterns.pattern_0"
    np.testing.assert_allclose(first.sum(axis=1), 1, atol=1e-5)
    consensus = "".join("ACGT"[i] for i in first.argmax(axis=1))
    assert any(m in consensus or revcomp(m) in consensus for m in PLANTED.values())

    tangermeme_io = pytest.importorskip("tangermeme.io")
    assert list(tangermeme_io.read_meme(str(out))) == list(motifs)


@pytest.mark.parametrize("case", ["noise", "few", "zeros"])
def test_no_patterns_gives_empty_outputs(case, planted, tmp_path, caplog):
    if case == "noise":
        ohe, attr = write_inputs(tmp_path, n=300, planted=False, seed=1)
    elif case == "few":
        ohe, attr = write_inputs(tmp_path, n=5, planted=True, seed=1)
    else:
        ohe, attr = write_inputs(tmp_path, n=50, planted=False, seed=1, scale=0)
    h5 = tmp_path / "modisco.h5"
    with caplog.at_level(logging.WARNING, logger="bpnet_core.modisco"):
        assert discover_motifs(ohe, attr, h5) == 0
    assert "no patterns" in caplog.text
    with h5py.File(h5, "r") as handle:
        assert all(len(handle[group]) == 0 for group in ("pos_patterns", "neg_patterns") if group in handle)

    folder = tmp_path / "report"
    table = report_motifs(h5, folder, planted["database"])
    assert table.empty and "match0" in table.columns
    on_disk = pd.read_csv(folder / "motifs.tsv", sep="\t")
    assert on_disk.empty and list(on_disk.columns) == list(table.columns)
    assert "found no patterns" in (folder / "report.html").read_text()

    meme = tmp_path / "patterns.meme"
    assert export_meme(h5, meme) == 0
    assert meme.read_text().startswith("MEME version")
    with pytest.raises(InputError, match="no motifs"):
        read_meme(meme)


def test_window_and_stage_config(tmp_path):
    ohe, attr = write_inputs(tmp_path, n=5, planted=True)
    out = tmp_path / "stage.h5"
    assert discover_motifs_stage({"n_seqlets": 10, "window": 100}, ohe, attr, out) == 0
    with h5py.File(out, "r") as handle:
        assert handle.attrs["window_size"] == 100


def test_stage_config_of_bad_keys_is_one_input_error(tmp_path):
    with pytest.raises(InputError, match=r"^2 problems:\n  - key 'n_seqlets': .*\n  - unknown key 'windw' "
                                         r"\(did you mean 'window'\?\)$"):
        discover_motifs_stage({"n_seqlets": 0, "windw": 100}, tmp_path / "ohe.npz", tmp_path / "attr.npz")


def test_bad_inputs(planted, tmp_path):
    ohe, attr, out = planted["ohe"], planted["attr"], tmp_path / "out.h5"
    with pytest.raises(InputError, match=r"missing\.npz.*'ohe_filename'"):
        discover_motifs(tmp_path / "missing.npz", attr, out)
    with pytest.raises(InputError, match=r"missing\.npz.*'attr_filename'"):
        discover_motifs(ohe, tmp_path / "missing.npz", out)

    short_ohe, _ = write_inputs(tmp_path / "short", n=300, planted=False, length=100)
    with pytest.raises(InputError, match=r"\(300, 4, 100\).*\(300, 4, 200\)"):
        discover_motifs(short_ohe, attr, out)

    flat = tmp_path / "flat.npz"
    np.savez(flat, np.zeros((300, 200), dtype=np.float32))
    with pytest.raises(InputError, match=r"flat\.npz.*'attr_filename'.*\(N, 4, L\)"):
        discover_motifs(ohe, flat, out)

    named = tmp_path / "named.npz"
    np.savez(named, scores=np.zeros((300, 4, 200), dtype=np.float32))
    with pytest.raises(InputError, match=r"named\.npz.*'attr_filename'.*arr_0"):
        discover_motifs(ohe, named, out)

    nan = np.load(attr)["arr_0"].copy()
    nan[0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", nan)
    with pytest.raises(InputError, match=r"nan\.npz.*NaN"):
        discover_motifs(ohe, tmp_path / "nan.npz", out)

    tiny_ohe, tiny_attr = write_inputs(tmp_path / "tiny", n=5, planted=False, length=20)
    with pytest.raises(InputError, match="'window'"):
        discover_motifs(tiny_ohe, tiny_attr, out)
    assert not out.exists()

    bad_meme = tmp_path / "bad.meme"
    bad_meme.write_text("MOTIF x\nletter-probability matrix: alength= 4 w= 2\n0.5 0.5 0 0\n")
    with pytest.raises(InputError, match=r"bad\.meme.*'motifs'"):
        report_motifs(planted["h5"], tmp_path / "report", bad_meme)
    with pytest.raises(InputError, match=r"missing\.h5"):
        report_motifs(tmp_path / "missing.h5", tmp_path / "report")
    with pytest.raises(InputError, match=r"bad\.meme.*not an HDF5 file"):
        export_meme(bad_meme, tmp_path / "x.meme")
