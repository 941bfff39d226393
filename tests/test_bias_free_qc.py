"""The accessibility model's QC: a model that has learned the enzyme's motif is caught."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from bpnet_core.bias_free_qc import marginal_footprint, qc_accessibility_model
from bpnet_core.errors import InputError
from bpnet_core.models import BPNet, ChromBPNet, save_model

ENZYME = "GCACAGTGCA"  # the "TN5_test" motif of the database below
IN_WINDOW, OUT_WINDOW = 206, 100


def _model(responds_to: str | None) -> BPNet:
    """A one-filter BPNet whose profile spikes (and counts rise) where `responds_to` is; flat for None."""
    model = BPNet(n_filters=1, n_layers=1, n_outputs=1, n_control_tracks=0,
                  trimming=(IN_WINDOW - OUT_WINDOW) // 2)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        if responds_to is not None:
            # +1 for each base of the motif, -1 otherwise: only an exact match
            # scores len(motif), and the bias lets only that through the ReLU.
            offset = (21 - len(responds_to)) // 2
            model.iconv.weight[0, :, offset:offset + len(responds_to)] = -1.0
            for i, base in enumerate(responds_to):
                model.iconv.weight[0, "ACGT".index(base), offset + i] = 1.0
            model.iconv.bias[0] = 0.5 - len(responds_to)
            model.fconv.weight[0, 0, 37] = 8.0  # a spike in the profile at the motif
            model.linear.weight[0, 0] = 50.0  # and more reads
        model.linear.bias[0] = 3.0
    return model.eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for name, model in (("leaky", _model(ENZYME)), ("clean", _model(None)),
                        ("full", ChromBPNet(bias=_model(ENZYME), accessibility=_model(None)))):
        save_model(model, folder / f"{name}.torch", {"in_window": IN_WINDOW, "out_window": OUT_WINDOW})
        paths[name] = str(folder / f"{name}.torch")
    motifs = folder / "motifs.meme"
    rows = "\n".join(" ".join("1.0" if b == base else "0.0" for b in "ACGT") for base in ENZYME)
    tf = "\n".join(" ".join("1.0" if b == base else "0.0" for b in "ACGT") for base in "TGACTCA")
    motifs.write_text("MEME version 4\n\nALPHABET= ACGT\n\nstrands: + -\n\n"
                      f"MOTIF TN5_test\nletter-probability matrix: alength= 4 w= {len(ENZYME)}\n{rows}\n\n"
                      f"MOTIF AP1_like\nletter-probability matrix: alength= 4 w= 7\n{tf}\n")
    paths["motifs"] = str(motifs)
    return paths


def _config(tiny_data, models, model, **overrides) -> dict:
    return {"model": models[model], "full_model": models["full"], "sequences": str(tiny_data["sequences"]),
            "loci": str(tiny_data["negatives"]), "chroms": ["chr2"], "motifs": models["motifs"],
            "in_window": IN_WINDOW, "out_window": OUT_WINDOW, "n_loci": 20, "device": "cpu", **overrides}


def test_footprint_of_a_model_that_knows_the_motif_is_its_spike():
    X = torch.zeros(8, 4, IN_WINDOW, dtype=torch.int8)
    X[:, 0] = 1  # poly-A: no match anywhere
    insert = torch.zeros(1, 4, len(ENZYME), dtype=torch.int8)
    insert[0, ["ACGT".index(b) for b in ENZYME], torch.arange(len(ENZYME))] = 1
    flat, _ = marginal_footprint(_model(ENZYME), X, None, 4, torch.device("cpu"))
    footprint, counts = marginal_footprint(_model(ENZYME), X, insert, 4, torch.device("cpu"))
    np.testing.assert_allclose(flat, 1 / OUT_WINDOW, rtol=1e-6)
    assert footprint.sum() == pytest.approx(1.0)
    assert footprint.max() * OUT_WINDOW > 10 and abs(int(footprint.argmax()) - OUT_WINDOW // 2) <= 2


def test_leaky_accessibility_model_is_flagged(tiny_data, models, tmp_path):
    qc = qc_accessibility_model(_config(tiny_data, models, "leaky"), None, tmp_path)
    assert not qc["bias_free"]
    assert "enzyme motifs leave a footprint in the accessibility model" in qc["reasons"][0]
    assert qc["mean_footprint_fold"]["accessibility"] > 3
    table = pd.read_csv(tmp_path / "footprints.tsv", sep="\t").set_index(["model", "motif"])
    assert list(table.index.get_level_values("motif").unique()) == ["TN5_test"]  # AP1_like is no enzyme motif
    row = table.loc[("accessibility", "TN5_test")]
    # the count rise is the motif's own: its shuffled bases match nothing
    assert row["delta_log_counts"] > 0.05 and row["delta_log_counts_shuffled"] == pytest.approx(0, abs=1e-6)
    assert row["motif_delta_log_counts"] == pytest.approx(row["delta_log_counts"], abs=1e-6)
    assert (tmp_path / "footprints.png").stat().st_size > 0
    assert "NOT bias-free" in (tmp_path / "qc.html").read_text()
    assert json.loads((tmp_path / "qc.json").read_text())["bias_free"] is False


def test_clean_accessibility_model_passes_and_the_full_model_shows_the_bias(tiny_data, models, tmp_path):
    qc = qc_accessibility_model(_config(tiny_data, models, "clean"), None, tmp_path)
    assert qc["bias_free"] and qc["reasons"] == []
    assert qc["mean_footprint_fold"]["accessibility"] == pytest.approx(1.0, abs=1e-3)
    assert qc["mean_footprint_fold"]["full"] > 3
    assert not qc["modisco_check"]


def _one_hot(sequence: str) -> np.ndarray:
    return np.array([[float(b == base) for b in "ACGT"] for base in sequence])


def write_modisco_h5(path, patterns: dict[str, str]) -> str:
    """A TF-MoDISco results file holding one positive pattern per (name, core sequence)."""
    import h5py

    with h5py.File(path, "w") as handle:
        for name, core in patterns.items():
            ppm = np.vstack([np.full((8, 4), 0.25), _one_hot(core), np.full((8, 4), 0.25)])
            cwm = np.vstack([np.zeros((8, 4)), _one_hot(core), np.zeros((8, 4))])
            group = handle.create_group(f"pos_patterns/{name}")
            group.create_dataset("sequence", data=ppm)
            group.create_dataset("contrib_scores", data=cwm)
            group.create_dataset("seqlets/n_seqlets", data=[40])
    return str(path)


@pytest.mark.parametrize("core, kind, bias_free", [
    (ENZYME, "bias", False),  # the enzyme motif itself
    ("TGACTCA", "TF", True),  # a TF motif
    ("AAAAAATTTTTAAAAA", "low-complexity", True),  # a poly(dA:dT) tract, whatever it matches
])
def test_an_enzyme_pattern_in_tf_modisco_flags_the_model(tiny_data, models, tmp_path, core, kind, bias_free):
    h5 = write_modisco_h5(tmp_path / "modisco.h5", {"pattern_0": core})
    qc = qc_accessibility_model(_config(tiny_data, models, "clean"), h5, tmp_path / "qc")
    assert qc["modisco_check"] and qc["bias_free"] is bias_free
    assert [p["kind"] for p in qc["patterns"]] == [kind]
    if not bias_free:
        assert "pattern pos_patterns.pattern_0 (40 seqlets)" in qc["reasons"][0]


def test_strict_fails_after_writing_the_verdict(tiny_data, models, tmp_path):
    with pytest.raises(InputError, match="is not bias-free \\(strict\\)"):
        qc_accessibility_model(_config(tiny_data, models, "leaky", strict=True), None, tmp_path)
    assert json.loads((tmp_path / "qc.json").read_text())["bias_free"] is False


def test_a_database_without_enzyme_motifs_is_refused(tiny_data, models, tmp_path):
    with pytest.raises(InputError, match="no enzyme-bias motif"):
        qc_accessibility_model(_config(tiny_data, models, "clean", motifs=str(tiny_data["motifs"])), None,
                               tmp_path)


def test_a_dataset_that_is_not_bias_free_says_so_in_its_report_and_the_summary(tiny_data, models, tmp_path):
    from bpnet_core.report import write_dataset_report
    from bpnet_core.summary import summary_html, summarize_datasets

    for name, model in (("leaky", "leaky"), ("clean", "clean")):
        qc_accessibility_model(_config(tiny_data, models, model), None, tmp_path / name / "bias_free_qc")
        sections = write_dataset_report(tmp_path / name, name, tmp_path / name / f"{name}.report.html")
        assert "bias_free_qc" in sections
    leaky = (tmp_path / "leaky" / "leaky.report.html").read_text()
    assert "<b>Accessibility model: NOT bias-free.</b>" in leaky.split('<h2')[0]  # above every section
    assert "<b>Accessibility model: bias-free</b>" in (tmp_path / "clean" / "clean.report.html").read_text()
    table = summarize_datasets({"leaky": "l.json", "clean": "c.json"}, tmp_path).set_index("dataset")
    assert table.loc["leaky", "bias_free"] == "NO" and table.loc["clean", "bias_free"] == "yes"
    assert "1 with an accessibility model that is NOT bias-free" in summary_html(table.reset_index(), "batch")
