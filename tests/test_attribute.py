"""DeepLIFT/SHAP attributions: files, additivity, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import torch

from bpnet_core.attribute import CountHead, ProfileHead, attribute_model, deep_lift_shap
from bpnet_core.config import FitConfig
from bpnet_core.models import load_model, set_compute
from bpnet_core.train import fit_model

from conftest import tiny_fit_config


@pytest.fixture(scope="module")
def tiny_model(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("attr_model")
    fit_model(FitConfig.model_validate(tiny_fit_config(tiny_data, max_epochs=3)), out / "m.torch", out / "h.tsv")
    return out / "m.torch"


def _config(tiny_data, model, **overrides):
    return {"model": str(model), "sequences": str(tiny_data["sequences"]), "loci": str(tiny_data["peaks"]),
            "controls": [str(tiny_data["control_plus"]), str(tiny_data["control_minus"])],
            "chroms": ["chr2"], "in_window": 206, "out_window": 100, "n_shuffles": 4, "batch_size": 4,
            "random_state": 0, **overrides}


@pytest.fixture(scope="module")
def attributed(tiny_data, tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("attr")
    report = attribute_model(_config(tiny_data, tiny_model), out / "ohe.npz", out / "attr.npz",
                             out / "loci.tsv", out / "contrib.bw")
    return out, report


def test_heads_give_one_number_per_sequence(tiny_model):
    model = load_model(tiny_model)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (3, 206)), 4).permute(0, 2, 1).float()
    X_ctl = torch.rand(3, 2, 206)
    assert ProfileHead(model)(X, X_ctl).shape == (3, 1)
    counts = CountHead(model)(X, X_ctl)
    torch.testing.assert_close(counts, model(X, X_ctl)[1])


def test_files_have_modisco_shapes(attributed):
    out, report = attributed
    with np.load(out / "ohe.npz") as ohe, np.load(out / "attr.npz") as attr:
        assert list(ohe.keys()) == ["arr_0"] and list(attr.keys()) == ["arr_0"]
        X, A = ohe["arr_0"], attr["arr_0"]
    assert X.shape == A.shape == (report["n_sequences"], 4, 206)
    assert X.dtype == A.dtype == np.float32
    assert (X.sum(axis=1) == 1).all()
    # hypothetical: the bases not in the sequence have contributions too
    assert np.abs(A * (1 - X)).sum() > 0
    loci = pd.read_csv(out / "loci.tsv", sep="\t")
    assert len(loci) == len(X) and set(loci["chrom"]) == {"chr2"}
    assert (loci["end"] - loci["start"] == 206).all()


def test_contributions_add_up_to_the_prediction(attributed):
    _, report = attributed
    assert report["n_over_threshold"] == 0 and report["max_delta"] < 1e-3


@pytest.mark.parametrize("output", ["profile", "counts"])
def test_additivity_by_hand(tiny_model, output):
    """sum(contributions) = f(x) - mean f(references), both heads."""
    model = load_model(tiny_model)
    head = (ProfileHead if output == "profile" else CountHead)(model)
    g = torch.Generator().manual_seed(0)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 206), generator=g), 4).permute(0, 2, 1).float()
    X_ctl = torch.rand(2, 2, 206, generator=g)
    attributions, deltas = deep_lift_shap(head, X, X_ctl, n_shuffles=3, random_state=1, batch_size=6,
                                          device=torch.device("cpu"))
    assert attributions.shape == (2, 4, 206)
    assert deltas.max() < 1e-3


@pytest.mark.parametrize("output", ["profile", "counts"])
def test_fast_path_gives_the_reference_attributions_in_float32(tiny_model, output):
    """DeepLIFT/SHAP through `forward_fast` equals it through the reference computation, in float32.

    Both heads are well-conditioned: the profile head weights each reference
    by its sequence's softmax (see `ProfileHead`). The former z * softmax(z)
    nonlinearity's rescale rule divided by each logit's change and made
    the two paths' float32 profile contributions differ by about 1% of
    their largest value on this model.
    """
    model = load_model(tiny_model)
    g = torch.Generator().manual_seed(0)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (3, 206), generator=g), 4).permute(0, 2, 1).float()
    X_ctl = torch.rand(3, 2, 206, generator=g)
    attributions = {}
    for fast_path in (True, False):
        set_compute(model, fast_path)
        head = (ProfileHead if output == "profile" else CountHead)(model)
        attributions[fast_path], deltas = deep_lift_shap(head, X, X_ctl, 4, 1, 12, torch.device("cpu"))
        assert deltas.max() < 1e-4
    scale = np.abs(attributions[False]).max()
    assert scale > 1e-5
    np.testing.assert_allclose(attributions[True], attributions[False], rtol=1e-3, atol=1e-4 * scale)


def test_profile_contributions_explain_the_sequence_weighted_logit_change(tiny_model):
    """sum(contributions) = sum_j w_j (z_j - mean over references of z_ref_j), w = softmax(z) of the sequence."""
    from tangermeme.deep_lift_shap import deep_lift_shap as tangermeme_dls

    model = load_model(tiny_model)
    g = torch.Generator().manual_seed(3)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 206), generator=g), 4).permute(0, 2, 1).float()
    X_ctl = torch.rand(2, 2, 206, generator=g)
    attributions, _ = deep_lift_shap(ProfileHead(model), X, X_ctl, 3, 1, 6, torch.device("cpu"))
    _, references = tangermeme_dls(CountHead(model), X, args=(X_ctl,), n_shuffles=3, random_state=1,
                                   batch_size=6, hypothetical=True, return_references=True,
                                   warning_threshold=np.inf)

    def centred_logits(x, x_ctl):
        with torch.no_grad():
            z = model(x, x_ctl)[0].reshape(len(x), -1)
        return z - z.mean(dim=1, keepdim=True)

    z = centred_logits(X, X_ctl)
    z_ref = centred_logits(references.reshape(-1, 4, 206).float(), X_ctl.repeat_interleave(3, 0))
    expected = (torch.softmax(z, -1) * (z - z_ref.reshape(2, 3, -1).mean(1))).sum(1)
    total = (torch.from_numpy(attributions) * X).sum(dim=(1, 2))
    torch.testing.assert_close(total, expected, rtol=1e-4, atol=1e-5)


def test_fast_path_off_in_the_config_gives_the_same_files(tiny_data, tiny_model, tmp_path):
    files = {}
    for fast_path in (True, False):
        files[fast_path] = tmp_path / f"attr_{fast_path}.npz"
        attribute_model(_config(tiny_data, tiny_model, output="counts", fast_path=fast_path),
                        tmp_path / "ohe.npz", files[fast_path], tmp_path / "l.tsv")
    with np.load(files[True]) as fast, np.load(files[False]) as reference:
        scale = np.abs(reference["arr_0"]).max()
        np.testing.assert_allclose(fast["arr_0"], reference["arr_0"], rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.filterwarnings("ignore:Convergence deltas:RuntimeWarning")
def test_convergence_deltas_catch_an_operation_without_a_rule(tiny_model):
    """The deltas, computed from tangermeme's own forward pass, equal the ones
    recomputed from its references, and flag a head with a sine of its output
    (which DeepLIFT then treats as linear)."""
    from tangermeme.deep_lift_shap import deep_lift_shap as tangermeme_dls

    class SineOfCounts(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.counts = CountHead(model)

        def forward(self, X, X_ctl=None):
            return torch.sin(50 * self.counts(X, X_ctl))

    head = SineOfCounts(load_model(tiny_model))
    g = torch.Generator().manual_seed(0)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (3, 206), generator=g), 4).permute(0, 2, 1).float()
    X_ctl = torch.rand(3, 2, 206, generator=g)
    attributions, deltas = deep_lift_shap(head, X, X_ctl, 4, 1, 8, torch.device("cpu"))
    _, references = tangermeme_dls(head, X, args=(X_ctl,), n_shuffles=4, random_state=1, batch_size=8,
                                   hypothetical=True, return_references=True, warning_threshold=np.inf)
    with torch.no_grad():
        output = head(X, X_ctl)[:, 0]
        baseline = head(references.reshape(-1, 4, 206).float(), X_ctl.repeat_interleave(4, 0))[:, 0]
    expected = (torch.from_numpy(attributions) * X).sum(dim=(1, 2)) - (output - baseline.reshape(3, 4).mean(1))
    # sin(50 x) multiplies float32 rounding by 50: agreement to the 1e-3 the check flags at.
    np.testing.assert_allclose(deltas, expected.abs().numpy(), rtol=1e-3, atol=1e-3)
    assert deltas.max() > 1, deltas


def test_bigwig_holds_projected_contributions(attributed):
    out, _ = attributed
    with np.load(out / "ohe.npz") as ohe, np.load(out / "attr.npz") as attr:
        projected = (ohe["arr_0"] * attr["arr_0"]).sum(axis=1)
    loci = pd.read_csv(out / "loci.tsv", sep="\t")
    bw = pyBigWig.open(str(out / "contrib.bw"))
    # a window that overlaps no other one is written as it is
    starts = loci["start"].to_numpy()
    alone = [i for i in range(len(loci)) if (np.abs(starts - starts[i]) >= 206).sum() == len(loci) - 1]
    assert alone
    i = alone[0]
    values = np.array(bw.values(loci["chrom"][i], int(starts[i]), int(starts[i]) + 206))
    bw.close()
    np.testing.assert_allclose(values, projected[i], rtol=1e-5, atol=1e-6)


def test_same_seed_same_attributions(tiny_data, tiny_model, attributed, tmp_path):
    out, _ = attributed
    attribute_model(_config(tiny_data, tiny_model), tmp_path / "ohe.npz", tmp_path / "a.npz", tmp_path / "l.tsv")
    attribute_model(_config(tiny_data, tiny_model, random_state=5), tmp_path / "ohe.npz", tmp_path / "b.npz",
                    tmp_path / "l.tsv")
    with np.load(out / "attr.npz") as first, np.load(tmp_path / "a.npz") as again, np.load(tmp_path / "b.npz") as other:
        np.testing.assert_array_equal(first["arr_0"], again["arr_0"])
        assert not np.array_equal(first["arr_0"], other["arr_0"])


def test_out_of_memory_halves_the_batch(tiny_model, caplog):
    import logging

    class OutOfMemoryAbove(torch.nn.Module):
        def __init__(self, head, limit):
            super().__init__()
            self.head, self.limit = head, limit

        def forward(self, X, X_ctl=None):
            if len(X) > self.limit:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return self.head(X, X_ctl)

    head = CountHead(load_model(tiny_model))
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 206)), 4).permute(0, 2, 1).float()
    X_ctl = torch.rand(2, 2, 206)
    expected, _ = deep_lift_shap(head, X, X_ctl, 4, 0, 8, torch.device("cpu"))
    with caplog.at_level(logging.WARNING, logger="bpnet_core"):
        got, _ = deep_lift_shap(OutOfMemoryAbove(head, 8), X, X_ctl, 4, 0, 8, torch.device("cpu"))
    assert "out of memory with batches of 8; retrying with 4" in caplog.text
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
