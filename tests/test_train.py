"""Training: outputs, learning, reproducibility."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from bpnet_core.config import FitConfig
from bpnet_core.models import load_model
from bpnet_core.train import fit_model

from conftest import tiny_fit_config


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    # float32 on every machine: these tests compare computations to float rounding
    # ("auto" is bf16 on CPUs with native bf16; see test_precision.py).
    config = FitConfig.model_validate(tiny_fit_config(tiny_data, max_epochs=20, validation_iter=10,
                                                      precision="fp32"))
    metadata = fit_model(config, out / "a.torch", out / "a.history.tsv")
    return config, out, metadata


def test_writes_model_and_history(trained):
    config, out, metadata = trained
    model = load_model(out / "a.torch")
    assert model.hyperparameters["n_outputs"] == 2 and model.n_control_tracks == 2
    assert model.metadata["config"] == config.to_params()
    history = pd.read_csv(out / "a.history.tsv", sep="\t")
    assert list(history.columns[:5]) == ["iteration", "epoch", "train_loss", "train_profile_loss", "train_count_loss"]
    assert {"valid_loss", "valid_count_pearson", "valid_profile_pearson", "valid_profile_jsd",
            "elapsed_s", "examples_per_s"} <= set(history.columns)
    assert history["iteration"].is_monotonic_increasing
    # the saved model is the best by the selection loss: with the refit (the default),
    # the validation loss with the count MSE taken about its mean bias
    best = history.loc[history["selection_loss"].idxmin()]
    centred = best["valid_profile_loss"] + config.alpha * (best["valid_count_loss"] - best["valid_count_bias"] ** 2)
    assert best["selection_loss"] == pytest.approx(centred, rel=1e-5)  # the TSV keeps 6 digits
    assert metadata["best_iteration"] == best["iteration"]
    assert metadata["validation"]["valid_loss"] == pytest.approx(best["valid_loss"], rel=1e-5)


def test_validation_loss_decreases(trained):
    _, out, _ = trained
    history = pd.read_csv(out / "a.history.tsv", sep="\t")
    assert history["iteration"].iloc[0] == 0  # the untrained baseline
    # Tiny data and 20 epochs: the profile shape is learnt, counts barely.
    assert history["valid_loss"].min() < 0.92 * history["valid_loss"].iloc[0]
    assert history["valid_profile_loss"].min() < 0.95 * history["valid_profile_loss"].iloc[0]


def test_same_seed_same_weights(tiny_data, tmp_path, trained):
    config, out, _ = trained
    fit_model(config, tmp_path / "b.torch", tmp_path / "b.history.tsv")
    a, b = load_model(out / "a.torch").state_dict(), load_model(tmp_path / "b.torch").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_reference_computation_trains_to_the_same_validation_loss(tiny_data, tmp_path, trained):
    """The guard of the fast path (on by default): the same run with
    ``"fast_path": false`` follows the same validation curve."""
    config, out, _ = trained
    fit_model(config.model_copy(update={"fast_path": False}), tmp_path / "r.torch", tmp_path / "r.history.tsv")
    fast = pd.read_csv(out / "a.history.tsv", sep="\t")
    reference = pd.read_csv(tmp_path / "r.history.tsv", sep="\t")
    assert len(fast) == len(reference) > 5
    assert fast["valid_loss"].to_numpy() == pytest.approx(reference["valid_loss"].to_numpy(), rel=1e-3)
    assert fast["valid_loss"].min() < 0.92 * fast["valid_loss"].iloc[0]


def test_bf16_training_reaches_the_fp32_validation_loss(tmp_path, trained):
    """precision "bf16" (what "auto" picks on GPUs and CPUs with bf16 units):
    the run ends within 2% of the float32 run's best validation loss."""
    config, _, fp32 = trained
    bf16 = fit_model(config.model_copy(update={"precision": "bf16"}), tmp_path / "b.torch", tmp_path / "b.tsv")
    history = pd.read_csv(tmp_path / "b.tsv", sep="\t")
    assert bf16["validation"]["valid_loss"] < 0.92 * history["valid_loss"].iloc[0]  # it learnt
    assert bf16["validation"]["valid_loss"] == pytest.approx(fp32["validation"]["valid_loss"], rel=0.02)
    assert bf16["validation"]["valid_loss"] != fp32["validation"]["valid_loss"]  # it did compute in bf16


def test_other_seed_other_weights(tiny_data, tmp_path, trained):
    config, out, _ = trained
    fit_model(config.model_copy(update={"random_state": 1, "max_epochs": 1}), tmp_path / "c.torch",
              tmp_path / "c.history.tsv")
    a, c = load_model(out / "a.torch").state_dict(), load_model(tmp_path / "c.torch").state_dict()
    assert not torch.equal(a["iconv.weight"], c["iconv.weight"])


def test_no_output_when_input_is_bad(tiny_data, tmp_path):
    from bpnet_core.errors import InputError

    config = FitConfig.model_validate(tiny_fit_config(tiny_data, validation_chroms=["chr3"]))
    with pytest.raises(InputError, match="chr3"):
        fit_model(config, tmp_path / "x.torch", tmp_path / "x.history.tsv")
    assert list(tmp_path.iterdir()) == []


def test_negatives_are_sampled_each_epoch_and_left_out_of_validation(tiny_data, tmp_path):
    """`negatives` (bpnet-lite 1.1's key): the peaks every epoch, plus negative_ratio x
    n_peaks background regions drawn afresh; validation on the peaks alone."""
    from bpnet_core.data import load_windows

    config = tiny_fit_config(tiny_data, loci=str(tiny_data["peaks"]), negatives=str(tiny_data["negatives"]),
                             negative_ratio=0.5, max_epochs=2, validation_iter=1000, batch_size=8)
    metadata = fit_model(config, tmp_path / "n.torch", tmp_path / "n.history.tsv")
    common = dict(sequences=config["sequences"], signals=config["signals"], controls=config["controls"],
                  in_window=config["in_window"], out_window=config["out_window"])
    n_peaks = len(load_windows(config["loci"], chroms=["chr1"], max_jitter=config["max_jitter"], **common))
    n_valid = len(load_windows(config["loci"], chroms=["chr2"], **common))
    assert metadata["n_valid"] == n_valid
    history = pd.read_csv(tmp_path / "n.history.tsv", sep="\t")
    per_epoch = (n_peaks + round(0.5 * n_peaks)) // 8
    assert history["iteration"].iloc[-1] == 2 * per_epoch


def test_count_head_is_refit_by_least_squares_on_the_training_loci(trained, tmp_path):
    """After training the count head is the least-squares read-out of its features; nothing else changes."""
    from bpnet_core.train import _count_head_inputs, load_training_windows

    config, out, metadata = trained
    refit = metadata["count_head_refit"]
    assert refit["mse_after"] < refit["mse_before"]
    model = load_model(out / "a.torch")
    peaks = load_training_windows(config).centered(config.in_window, config.out_window)
    assert refit["n_regions"] == len(peaks)
    features, _ = _count_head_inputs(model, peaks, 7, torch.device("cpu"))  # rows line up across batches
    A = torch.cat([features.double(), torch.ones(len(features), 1, dtype=torch.float64)], dim=1)
    y = torch.log1p(peaks.y.sum(dim=(1, 2)).double()).repeat(2)
    w = torch.cat([model.linear.weight.double().reshape(-1), model.linear.bias.double()]).detach()
    # The least-squares optimum (up to float32 storage of the weights): no read-out fits better.
    best = torch.linalg.lstsq(A, y.unsqueeze(1), driver="gelsd").solution.reshape(-1)
    mse = float(((A @ w - y) ** 2).mean())
    assert mse == pytest.approx(float(((A @ best - y) ** 2).mean()), rel=1e-4)
    assert mse == pytest.approx(refit["mse_after"], rel=1e-4)
    # Off: the same training, the head as gradient descent left it, every other weight the same.
    fit_model(config.model_copy(update={"refit_count_head": False}), tmp_path / "b.torch", tmp_path / "b.tsv")
    kept = load_model(tmp_path / "b.torch")
    assert kept.metadata["count_head_refit"] is None
    for name, value in model.state_dict().items():
        assert torch.equal(value, kept.state_dict()[name]) is (not name.startswith("linear.")), name


def test_learning_rate_schedules(tiny_data):
    from bpnet_core.train import COSINE_FLOOR, learning_rate

    assert FitConfig(**tiny_fit_config(tiny_data)).lr_schedule == "constant"
    cosine = FitConfig(**tiny_fit_config(tiny_data, lr=0.004, lr_schedule="cosine"))
    assert learning_rate(cosine, 0, 100) == pytest.approx(0.004)
    assert learning_rate(cosine, 50, 100) == pytest.approx(0.004 * (1 + COSINE_FLOOR) / 2)
    assert learning_rate(cosine, 100, 100) == learning_rate(cosine, 150, 100) == pytest.approx(0.004 * COSINE_FLOOR)
    rates = [learning_rate(cosine, i, 100) for i in range(101)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    constant = FitConfig(**tiny_fit_config(tiny_data, lr=0.004, lr_schedule="constant"))
    assert {learning_rate(constant, i, 100) for i in (0, 50, 150)} == {0.004}


def test_training_follows_the_schedule(tiny_data, tmp_path):
    """The history's learning rate is the schedule's at each validation's last step."""
    from bpnet_core.train import COSINE_FLOOR, learning_rate

    config = FitConfig(**tiny_fit_config(tiny_data, max_epochs=3, validation_iter=5, lr_schedule="cosine",
                                         early_stopping=None))
    fit_model(config, tmp_path / "a.torch", tmp_path / "a.history.tsv")
    history = pd.read_csv(tmp_path / "a.history.tsv", sep="\t")
    steps = history[history["iteration"] > 0]
    assert history["epoch"].max() == config.max_epochs
    total = int(history["iteration"].max())  # max_epochs x batches per epoch
    expected = [learning_rate(config, i - 1, total) for i in steps["iteration"]]
    assert steps["lr"].tolist() == pytest.approx(expected, rel=1e-5)  # the TSV keeps 6 digits
    assert steps["lr"].is_monotonic_decreasing
    assert config.lr * COSINE_FLOOR < steps["lr"].iloc[-1] < 2 * config.lr * COSINE_FLOOR < steps["lr"].iloc[0]


def test_weight_average_is_the_bias_corrected_exponential_average():
    from bpnet_core.train import WeightAverage

    model = torch.nn.Linear(2, 1)
    average = WeightAverage(model, decay=0.5)
    assert torch.equal(average.state(model)["weight"], model.weight)  # no step yet: the model's own
    weights = []
    for value in (1.0, 2.0, 4.0):
        with torch.no_grad():
            model.weight.fill_(value)
        average.update()
        weights.append(value)
    # sum_i (1 - d) d^(t - i) w_i / (1 - d^t) with d = 0.5, t = 3: (0.125 + 0.5 + 2) / 0.875
    expected = (0.5 * 0.25 * 1 + 0.5 * 0.5 * 2 + 0.5 * 4) / (1 - 0.5 ** 3)
    assert average.state(model)["weight"] == pytest.approx(torch.full((1, 2), expected))
    assert torch.equal(model.weight, torch.full((1, 2), 4.0))  # the model keeps its own weights


def test_averaged_weights_are_the_kept_state(tiny_data, tmp_path):
    """The kept model is not the last step's weights, and switching averaging off changes it."""
    config = FitConfig(**tiny_fit_config(tiny_data, max_epochs=2, validation_iter=5, early_stopping=None,
                                         precision="fp32", refit_count_head=False))
    fit_model(config, tmp_path / "a.torch", tmp_path / "a.tsv")
    fit_model(config.model_copy(update={"average_weights": False}), tmp_path / "b.torch", tmp_path / "b.tsv")
    a, b = load_model(tmp_path / "a.torch").state_dict(), load_model(tmp_path / "b.torch").state_dict()
    assert not torch.equal(a["iconv.weight"], b["iconv.weight"])
    first = pd.read_csv(tmp_path / "a.tsv", sep="\t")
    assert first["valid_loss"].iloc[-1] < first["valid_loss"].iloc[0]
