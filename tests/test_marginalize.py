"""Marginalization: the effect of each motif, against a model whose answer is known."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import torch

from bpnet_core import marginalize
from bpnet_core.simulate.chip import PLANTED_MOTIFS
from bpnet_core.errors import InputError
from bpnet_core.marginalize import MINIMAL_COLUMNS, SUMMARY_COLUMNS, marginalize_motifs
from bpnet_core.models import BPNet, save_model

from conftest import TINY_MODEL

AP1 = PLANTED_MOTIFS["AP1_like"][0]
# Each exact AP1_like site in the pooled window adds this to the log counts.
AP1_EFFECT = 2.0


def ap1_detector() -> BPNet:
    """A BPNet whose counts and profile respond to exact AP1_like sites only.

    The one first-layer filter scores +1 per base matching TGACTCA and -1
    per other base, minus 6: 1 at an exact site, 0 (after the ReLU) at any
    site with a mismatch. The count head turns the mean filter output over
    its pooled window into AP1_EFFECT per site; the profile head puts a peak
    12 bp downstream of a site on the plus strand and upstream on the minus
    strand. Control tracks are inputs with zero weight.
    """
    trimming = (TINY_MODEL["in_window"] - TINY_MODEL["out_window"]) // 2
    model = BPNet(n_filters=1, n_layers=0, n_outputs=2, n_control_tracks=2, trimming=trimming)
    pooled = TINY_MODEL["out_window"] + 2 * 37
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        weights = -torch.ones(4, len(AP1))
        weights[["ACGT".index(b) for b in AP1], range(len(AP1))] = 1
        model.iconv.weight[0, :, 10 - len(AP1) // 2:10 - len(AP1) // 2 + len(AP1)] = weights
        model.iconv.bias.fill_(1 - len(AP1))
        model.fconv.weight[0, 0, 37 - 12] = 3
        model.fconv.weight[1, 0, 37 + 12] = 3
        model.linear.weight[0, 0] = AP1_EFFECT * pooled
        model.linear.bias.fill_(3)
    return model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("marginalize") / "ap1.torch"
    save_model(ap1_detector(), path, {"in_window": TINY_MODEL["in_window"],
                                      "out_window": TINY_MODEL["out_window"]})
    return path


def config(tiny_data, model_path, **overrides) -> dict:
    return {
        "model": str(model_path),
        "sequences": str(tiny_data["sequences"]),
        # Negatives: backgrounds without planted AP1_like sites to destroy.
        "loci": str(tiny_data["negatives"]),
        "controls": [str(tiny_data["control_plus"]), str(tiny_data["control_minus"])],
        "motifs": str(tiny_data["motifs"]),
        "in_window": TINY_MODEL["in_window"],
        "out_window": TINY_MODEL["out_window"],
        "batch_size": 8,
        "device": "cpu",
        # The detector reads one strand; see test_reverse_complement_average_halves_a_one_strand_effect.
        "reverse_complement_average": False,
        "n_loci": 100,
        **overrides,
    }


@pytest.fixture
def predictions(monkeypatch):
    """The windows of every call of predict_windows: (loci, X)."""
    calls = []
    real = marginalize.predict_windows

    def spy(model, windows, batch_size, device, *args):
        calls.append((windows.loci.copy(), windows.X.clone()))
        return real(model, windows, batch_size, device, *args)

    monkeypatch.setattr(marginalize, "predict_windows", spy)
    return calls


@pytest.fixture(scope="module")
def full_run(tiny_data, model_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    summary = marginalize_motifs(config(tiny_data, model_path, minimal=False, verbose=True), out)
    return out, summary


def test_summary_table(full_run, tiny_data):
    out, summary = full_run
    written = pd.read_csv(out / "summary.tsv", sep="\t")
    assert list(written.columns) == SUMMARY_COLUMNS
    assert len(written) == 6 and set(written["motif"]) == {
        "AP1_like", "GATA_like", "CEBP_like", "ETS_like", "NRF1_like", "TEAD_like"}
    pd.testing.assert_frame_equal(written, summary, check_dtype=False, rtol=1e-5)
    assert written["delta_log_counts"].is_monotonic_decreasing
    assert (written["n_loci"] == written["n_loci"].iloc[0]).all() and written["n_loci"].iloc[0] > 10
    assert written.set_index("motif").loc["GATA_like", "consensus"] == "AGATAAGA"  # R: A before G


def test_detected_motif_first_and_decoys_near_zero(full_run):
    _, summary = full_run
    top = summary.iloc[0]
    assert top["motif"] == "AP1_like" and top["consensus"] == AP1
    # Every background gains exactly one site, unless it already had one
    # that the insertion overwrote.
    assert top["delta_log_counts"] == pytest.approx(AP1_EFFECT, abs=0.1)
    assert top["delta_log_counts_se"] < 0.1
    assert top["profile_l1"] > 0.1 and top["max_delta_reads"] > 0
    # AP1's effect is its order: its bases shuffled do little.
    assert abs(top["delta_log_counts_shuffled"]) < 0.2 * top["delta_log_counts"]
    assert top["motif_delta_log_counts"] == pytest.approx(top["delta_log_counts"] - top["delta_log_counts_shuffled"])
    others = summary.iloc[1:]
    assert (others["delta_log_counts"].abs() < 0.2).all()
    assert (others["profile_l1"] < 0.2 * top["profile_l1"]).all()


def test_background_predicted_once(tiny_data, model_path, tmp_path, predictions):
    summary = marginalize_motifs(config(tiny_data, model_path, n_loci=5, shuffled_controls=0), tmp_path)
    assert len(predictions) == 1 + len(summary)
    background = predictions[0][1]
    unedited = [X for _, X in predictions if torch.equal(X, background)]
    assert len(unedited) == 1
    # Each edit is the motif's width at the centre, and nothing else.
    for _, X in predictions[1:]:
        changed = (X != background).any(dim=(0, 1)).nonzero().flatten()
        assert len(changed) and abs(changed.float().mean().item() - X.shape[2] / 2) <= 6
        assert changed.max() - changed.min() < 10


def test_reverse_complement_average_halves_a_one_strand_effect(tiny_data, model_path, tmp_path):
    # The reverse complement of an inserted TGACTCA reads TGAGTCA, which the
    # detector ignores: the mean of the two predictions gains half the effect.
    summary = marginalize_motifs(config(tiny_data, model_path, n_loci=20, shuffled_controls=0,
                                        reverse_complement_average=True), tmp_path)
    top = summary.set_index("motif").loc["AP1_like"]
    assert top["delta_log_counts"] == pytest.approx(AP1_EFFECT / 2, abs=0.05)


def test_minimal_report(tiny_data, model_path, tmp_path):
    summary = marginalize_motifs(config(tiny_data, model_path, minimal=True, n_loci=5), tmp_path)
    assert list(summary.columns) == MINIMAL_COLUMNS
    assert list(pd.read_csv(tmp_path / "summary.tsv", sep="\t").columns) == MINIMAL_COLUMNS
    figures = _figures(tmp_path / "report.html")
    assert figures == ["figures/delta_log_counts.png"]
    assert (tmp_path / figures[0]).is_file()


def _figures(report):
    return re.findall(r'<img src="([^"]+)"', report.read_text())


def test_full_report_references_a_figure_per_motif(full_run):
    out, summary = full_run
    figures = _figures(out / "report.html")
    assert len(figures) == 1 + len(summary)
    assert all((out / figure).is_file() and (out / figure).stat().st_size > 1000 for figure in figures)
    assert not any(out.glob(".*.tmp")) and not any((out / "figures").glob(".*.tmp"))


def test_shuffle_is_reproducible(tiny_data, model_path, tmp_path, predictions):
    for i, overrides in enumerate([
        {"shuffle": True, "random_state": 3}, {"shuffle": True, "random_state": 3},
        {"shuffle": True, "random_state": 4}, {"shuffle": False},
    ]):
        marginalize_motifs(config(tiny_data, model_path, n_loci=6, shuffled_controls=0, **overrides),
                           tmp_path / str(i))
    backgrounds = [loci for loci, _ in predictions[::7]]  # 1 background + 6 motifs per run
    assert all(len(loci) == 6 for loci in backgrounds)
    same_seed, other_seed, first = backgrounds[1], backgrounds[2], backgrounds[3]
    pd.testing.assert_frame_equal(backgrounds[0], same_seed)
    assert not backgrounds[0].equals(other_seed)
    assert not backgrounds[0].equals(first)


def test_more_loci_than_available_uses_all(tiny_data, model_path, tmp_path, predictions, caplog):
    summary = marginalize_motifs(config(tiny_data, model_path, n_loci=10_000), tmp_path / "all")
    available = len(predictions[0][0])
    assert (summary["n_loci"] == available).all() and available < 10_000
    assert f"only {available} loci are available" in caplog.text


def test_default_output_folder(tiny_data, model_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marginalize_motifs(config(tiny_data, model_path, n_loci=3, output_filename="by_filename/"))
    marginalize_motifs(config(tiny_data, model_path, n_loci=3, output_filename="unused/",
                              output_folder="by_folder"))
    assert (tmp_path / "by_filename" / "report.html").is_file()
    assert (tmp_path / "by_folder" / "summary.tsv").is_file()
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize("text, fragment", [
    ("MOTIF m1\nletter-probability matrix: alength= 4 w= 2\n0.5 0.5 0 0\n", "has 1 matrix rows"),
    ("MOTIF m1\nletter-probability matrix: alength= 4 w= 300\n" + "0.25 0.25 0.25 0.25\n" * 300,
     "wider than in_window"),
])
def test_bad_motif_file(tiny_data, model_path, tmp_path, predictions, text, fragment):
    motifs = tmp_path / "bad.meme"
    motifs.write_text(text)
    with pytest.raises(InputError) as info:
        marginalize_motifs(config(tiny_data, model_path, motifs=str(motifs)), tmp_path / "out")
    assert str(info.value).startswith(f"{motifs} (config key 'motifs'): ")
    assert fragment in str(info.value)
    assert not predictions and not (tmp_path / "out").exists()
