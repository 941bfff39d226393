"""Tests for the BPNet architecture and model files in ``bpnet_core.models``."""

import math
import os

import pytest
import torch

from bpnet_core.errors import InputError
from bpnet_core.models import (
    MODEL_FORMAT_VERSION,
    BPNet,
    ChromBPNet,
    load_model,
    receptive_field_half_width,
    save_model,
    set_compute,
)

from conftest import fast_and_reference_outputs


def _one_hot(n, length, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    bases = torch.randint(0, 4, (n, length), generator=g)
    return torch.nn.functional.one_hot(bases, 4).permute(0, 2, 1).to(dtype).contiguous()


def _model(seed=0, **kwargs):
    torch.manual_seed(seed)
    return BPNet(**kwargs).double().eval()


def _mutate(X, position):
    """X (1, 4, L) with the base at `position` changed to the next base."""
    X = X.clone()
    base = int(X[0, :, position].argmax())
    X[0, :, position] = 0
    X[0, (base + 1) % 4, position] = 1
    return X


class _Capture:
    """Inputs of the profile head (the features) and of the count head (pooled)."""

    def __init__(self, model):
        self.seen = {}
        model.fconv.register_forward_pre_hook(lambda m, inp: self.seen.__setitem__("fconv", inp[0]))
        model.linear.register_forward_pre_hook(lambda m, inp: self.seen.__setitem__("linear", inp[0]))


# --------------------------------------------------------------------------
# shapes and size


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_output_shapes_without_controls(n_outputs):
    model = BPNet(n_filters=8, n_layers=2, n_outputs=n_outputs, trimming=30).eval()
    with torch.no_grad():
        profile, counts = model(_one_hot(3, 100))
    assert profile.shape == (3, n_outputs, 40)
    assert counts.shape == (3, 1)
    assert torch.isfinite(profile).all() and torch.isfinite(counts).all()


def test_output_shapes_with_controls():
    model = BPNet(n_filters=8, n_layers=2, n_outputs=2, n_control_tracks=2, trimming=30).eval()
    X = _one_hot(3, 100)
    X_ctl = torch.rand(3, 2, 100)
    with torch.no_grad():
        profile, counts = model(X, X_ctl)
    assert profile.shape == (3, 2, 40)
    assert counts.shape == (3, 1)
    # the controls are used by both heads
    with torch.no_grad():
        profile2, counts2 = model(X, X_ctl * 3)
    assert not torch.allclose(profile, profile2)
    assert not torch.allclose(counts, counts2)


def test_model_with_controls_needs_them():
    model = BPNet(n_filters=8, n_layers=2, n_outputs=2, n_control_tracks=2, trimming=30)
    with pytest.raises(ValueError, match="X_ctl"):
        model(_one_hot(1, 100))


def test_parameter_count_of_default_architecture():
    model = BPNet(n_filters=64, n_layers=8, n_outputs=2, n_control_tracks=2)
    assert sum(p.numel() for p in model.parameters()) == 114224
    # without controls: the profile head loses 2 x 2 x 75 weights, the count head 1
    model = BPNet(n_filters=64, n_layers=8, n_outputs=2, n_control_tracks=0)
    assert sum(p.numel() for p in model.parameters()) == 114224 - 300 - 1
    assert model.trimming == 557
    assert model(_one_hot(1, 2114))[0].shape == (1, 2, 1000)


def test_no_bias_options():
    model = BPNet(n_filters=8, n_layers=1, n_outputs=2, profile_output_bias=False,
                  count_output_bias=False, trimming=10)
    assert model.fconv.bias is None and model.linear.bias is None


# --------------------------------------------------------------------------
# receptive field


def test_receptive_field_half_width():
    assert receptive_field_half_width(8) == 557
    assert receptive_field_half_width(3) == 10 + 2 + 4 + 8 + 37
    assert receptive_field_half_width(0) == 47


def _mutants(X, positions):
    """X (1, 4, L) followed by its single-base mutants at `positions`."""
    return torch.cat([X] + [_mutate(X, q) for q in positions])


# float64 dilated convolutions take a slow path on CPU: only the bases around
# the edges of the receptive fields (and a few inside) are mutated.


def test_profile_receptive_field_by_perturbation():
    n_layers = 3
    hw = receptive_field_half_width(n_layers)  # 61
    out = 6
    length = 2 * hw + out
    model = _model(n_filters=8, n_layers=n_layers, n_outputs=2, trimming=hw)
    X = _one_hot(1, length, seed=1, dtype=torch.float64)
    # output p sits at input p + hw and sees inputs p .. p + 2 * hw
    positions = sorted(set(range(0, out + 1)) | set(range(2 * hw - 1, length)) | {hw, hw + 3})
    with torch.no_grad():
        profile, _ = model(_mutants(X, positions))
    # diff[i, p]: largest change of output position p when base positions[i] changes
    diff = (profile[1:] - profile[:1]).abs().amax(dim=1)
    q = torch.tensor(positions).view(-1, 1)
    p = torch.arange(out).view(1, -1)
    inside = (q - (p + hw)).abs() <= hw
    assert (~inside).sum() >= 2 * out and inside.sum() >= 4 * out
    assert diff[~inside].max() < 1e-12
    assert diff[inside].min() > 1e-9


def test_count_head_reach_by_perturbation():
    # trimming wider than the receptive field, so that bases far out are ignored
    n_layers = 2
    hw = receptive_field_half_width(n_layers)  # 53
    trimming, out = 70, 20
    length = 2 * trimming + out
    start, end = trimming, trimming + out
    model = _model(seed=3, n_filters=8, n_layers=n_layers, n_outputs=1, trimming=trimming)
    X = _one_hot(1, length, seed=2, dtype=torch.float64)
    # pooled features cover [start - 37, end + 37); each sees hw - 37 bases further
    outside = [0, start - hw - 1, end + hw, length - 1]
    inside = [start - hw, start - hw + 1, length // 2, end + hw - 2, end + hw - 1]
    with torch.no_grad():
        _, counts = model(_mutants(X, outside + inside))
    diff = (counts[1:, 0] - counts[0, 0]).abs()
    assert diff[:len(outside)].max() < 1e-12
    assert diff[len(outside):].min() > 1e-12


def test_count_head_pools_output_window_plus_37():
    trimming, out = 60, 20
    length = 2 * trimming + out
    model = _model(n_filters=8, n_layers=2, n_outputs=2, trimming=trimming).float()
    capture = _Capture(model)
    with torch.no_grad():
        model.forward_reference(_one_hot(2, length))
    h = capture.seen["fconv"]
    assert h.shape == (2, 8, length)
    expected = h[:, :, trimming - 37:trimming + out + 37].mean(dim=2)
    torch.testing.assert_close(capture.seen["linear"], expected, rtol=1e-6, atol=1e-6)
    # and not the features of the whole input
    assert not torch.allclose(capture.seen["linear"], h.mean(dim=2), rtol=1e-3, atol=1e-3)


def test_count_head_adds_log_control_total():
    trimming, out = 60, 20
    length = 2 * trimming + out
    model = _model(n_filters=8, n_layers=2, n_outputs=2, n_control_tracks=2, trimming=trimming)
    X = _one_hot(2, length, dtype=torch.float64)
    X_ctl = torch.zeros(2, 2, length, dtype=torch.float64)
    X_ctl[0, 0, trimming - 37] = 3.0       # inside the count window
    X_ctl[0, 1, trimming + out + 36] = 4.0  # inside
    X_ctl[0, 0, trimming - 38] = 100.0     # just outside
    X_ctl[1, 1, trimming + out + 37] = 50.0  # just outside
    with torch.no_grad():
        model.linear.weight.zero_()
        model.linear.weight[0, -1] = 1.0
        model.linear.bias.fill_(0.5)
        _, counts = model(X, X_ctl)
    expected = torch.tensor([0.5 + math.log1p(3.0 + 4.0), 0.5], dtype=torch.float64)
    torch.testing.assert_close(counts[:, 0], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("trimming", [0, 20])
def test_count_head_pooling_with_small_trimming(trimming):
    out = 50
    length = 2 * trimming + out
    model = _model(n_filters=8, n_layers=2, n_outputs=1, trimming=trimming).float()
    capture = _Capture(model)
    with torch.no_grad():
        model(_one_hot(1, length))
    h = capture.seen["fconv"]
    expected = h[:, :, max(trimming - 37, 0):trimming + out + 37].mean(dim=2)
    torch.testing.assert_close(capture.seen["linear"], expected, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------
# the fast path (forward_fast) against the reference computation


@pytest.mark.parametrize("n_layers, trimming, n_controls", [
    (2, 53, 2),   # trimming = receptive field half-width (53)
    (2, 70, 0),   # wider: the input is cropped first
    (3, 69, 1),   # one unstranded control track
])
def test_fast_path_gives_the_reference_outputs_and_gradients(n_layers, trimming, n_controls):
    torch.manual_seed(0)
    model = BPNet(n_filters=8, n_layers=n_layers, n_outputs=2, n_control_tracks=n_controls,
                  trimming=trimming)
    assert model.fast_path and trimming >= model.reach
    length = 2 * trimming + 40
    X = _one_hot(3, length)
    X_ctl = torch.rand(3, n_controls, length) * 5 if n_controls else None
    outputs = fast_and_reference_outputs(model, X, X_ctl)
    assert outputs["fast"][0].shape == (3, 2, 40)
    for fast, reference in zip(outputs["fast"], outputs["reference"]):
        torch.testing.assert_close(fast, reference, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("count_trimming, n_controls", [
    (16, 2),   # the official ChromBPNet's: every position the unpadded stack computes (wider than 33)
    (24, 0),   # between that and the profile head's window
    (45, 2),   # narrower than the profile head's window
])
def test_fast_path_with_a_count_pooling_window_of_its_own(count_trimming, n_controls):
    """`count_trimming` (models imported from the official ChromBPNet): fast = reference, in float64,
    and the count head averages exactly its window."""
    model = _model(n_filters=8, n_layers=2, n_outputs=2, n_control_tracks=n_controls, trimming=70,
                   count_trimming=count_trimming)
    length = 2 * 70 + 40
    X = _one_hot(3, length, dtype=torch.float64)
    X_ctl = torch.rand(3, n_controls, length, dtype=torch.float64) * 5 if n_controls else None
    outputs = fast_and_reference_outputs(model, X, X_ctl)
    for fast, reference in zip(outputs["fast"], outputs["reference"]):
        torch.testing.assert_close(fast, reference, rtol=1e-9, atol=1e-9)
    capture = _Capture(model)
    with torch.no_grad():
        model.forward_reference(X, X_ctl)
    h = capture.seen["fconv"][:, :8]
    expected = h[:, :, count_trimming:length - count_trimming].mean(dim=2)
    torch.testing.assert_close(capture.seen["linear"][:, :8], expected)
    if n_controls:
        total = X_ctl[:, :, count_trimming:length - count_trimming].sum(dim=(1, 2))
        torch.testing.assert_close(capture.seen["linear"][:, 8], torch.log1p(total))


def test_fast_path_switch_and_fallback():
    torch.manual_seed(0)
    model = BPNet(n_filters=8, n_layers=2, n_outputs=1, trimming=53).eval()
    calls = []
    model.forward_fast = lambda *a: calls.append("fast") or BPNet.forward_fast(model, *a)
    with torch.no_grad():
        model(_one_hot(1, 146))
        set_compute(ChromBPNet(model, BPNet(n_filters=4, n_layers=1, n_outputs=1, trimming=53)), False)
        assert not model.fast_path
        model(_one_hot(1, 146))
        set_compute(model, True)
        short = BPNet(n_filters=8, n_layers=2, n_outputs=1, trimming=30).eval()
        # trimming below the receptive field: zero padding reaches the outputs,
        # so only the reference computation gives the model's outputs
        short.forward_reference = lambda *a: calls.append("reference") or BPNet.forward_reference(short, *a)
        short(_one_hot(1, 100))
    assert calls == ["fast", "reference"]


@pytest.mark.parametrize("fast_path", [True, False])
def test_bf16_predictions_are_within_bf16_rounding_of_fp32(fast_path):
    """precision "bf16": about 3 significant digits, float32 outputs."""
    torch.manual_seed(0)
    model = BPNet(n_filters=16, n_layers=3, n_outputs=2, n_control_tracks=2, trimming=69).eval()
    X, X_ctl = _one_hot(4, 240), torch.rand(4, 2, 240) * 5
    with torch.no_grad():
        profile, counts = set_compute(model, fast_path, "fp32")(X, X_ctl)
        profile16, counts16 = set_compute(model, fast_path, "bf16")(X, X_ctl)
    assert profile16.dtype == counts16.dtype == torch.float32
    probabilities = torch.softmax(profile.flatten(1), 1)
    probabilities16 = torch.softmax(profile16.flatten(1), 1)
    # bf16 keeps 8 bits of mantissa: 0.4% per rounding
    torch.testing.assert_close(probabilities16, probabilities, rtol=0.02, atol=0)
    torch.testing.assert_close(counts16, counts, rtol=0.02, atol=0.01)
    assert not torch.equal(counts16, counts)  # it did compute in bf16


# --------------------------------------------------------------------------
# model files


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = BPNet(n_filters=8, n_layers=2, n_outputs=2, n_control_tracks=2,
                  count_output_bias=False, trimming=25)
    metadata = {"signals": ["plus.bw", "minus.bw"], "best_iteration": 12, "valid_loss": 1.5}
    path = tmp_path / "sub" / "model.torch"
    save_model(model, path, metadata=metadata)
    assert path.is_file()
    assert os.listdir(path.parent) == ["model.torch"]  # no temporary file left

    loaded = load_model(path)
    assert isinstance(loaded, BPNet)
    assert not loaded.training
    assert loaded.metadata == metadata
    assert loaded.hyperparameters == model.hyperparameters
    assert loaded.trimming == 25 and loaded.n_control_tracks == 2
    assert loaded.linear.bias is None
    X, X_ctl = _one_hot(3, 90), torch.rand(3, 2, 90)
    model.eval()
    with torch.no_grad():
        a, b = model(X, X_ctl), loaded(X, X_ctl)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_save_without_metadata(tmp_path):
    path = tmp_path / "m.torch"
    save_model(BPNet(n_filters=4, n_layers=1, n_outputs=1, trimming=5), path)
    assert load_model(str(path)).metadata == {}


def test_load_missing_model(tmp_path):
    path = tmp_path / "absent.torch"
    with pytest.raises(InputError) as err:
        load_model(path, key="bias_model")
    assert str(path) in str(err.value)
    assert "not found" in str(err.value)
    assert "config key 'bias_model'" in str(err.value)


def test_load_random_bytes(tmp_path):
    path = tmp_path / "random.torch"
    path.write_bytes(os.urandom(2048))
    with pytest.raises(InputError) as err:
        load_model(path)
    assert str(path) in str(err.value)
    assert "not a model file of bpnet_core" in str(err.value)
    assert "config key 'model'" in str(err.value)


@pytest.mark.parametrize("payload", [
    {"weights": torch.zeros(3)},
    torch.zeros(2, 2),
    {"format": "something.else", "state_dict": {}},
])
def test_load_foreign_torch_file(tmp_path, payload):
    path = tmp_path / "foreign.pt"
    torch.save(payload, path)
    with pytest.raises(InputError) as err:
        load_model(path)
    assert str(path) in str(err.value)
    assert "not a model file of bpnet_core" in str(err.value)


def test_load_error_that_is_not_the_files_is_raised(tmp_path, monkeypatch):
    path = tmp_path / "m.torch"
    save_model(BPNet(n_filters=4, n_layers=1, n_outputs=1, trimming=5), path)

    def broken(*args, **kwargs):
        raise TypeError("a bug, not a bad file")

    monkeypatch.setattr(torch, "load", broken)
    with pytest.raises(TypeError, match="a bug"):
        load_model(path)


def test_load_pickled_module_is_refused(tmp_path):
    path = tmp_path / "whole_module.pt"
    torch.save(BPNet(n_filters=4, n_layers=1, n_outputs=1, trimming=5), path)
    with pytest.raises(InputError, match="not a model file of bpnet_core") as err:
        load_model(path)
    assert str(path) in str(err.value)


def test_load_newer_format_and_wrong_weights(tmp_path):
    model = BPNet(n_filters=4, n_layers=1, n_outputs=1, trimming=5)
    path = tmp_path / "m.torch"
    save_model(model, path)
    payload = torch.load(path, weights_only=True)

    assert payload["format_version"] == 1  # version 2 only for a model with `count_trimming`
    newer = dict(payload, format_version=MODEL_FORMAT_VERSION + 1)
    torch.save(newer, tmp_path / "newer.torch")
    with pytest.raises(InputError, match="newer bpnet_core") as err:
        load_model(tmp_path / "newer.torch")
    assert str(tmp_path / "newer.torch") in str(err.value)

    wrong = dict(payload, hyperparameters=dict(payload["hyperparameters"], n_filters=5))
    torch.save(wrong, tmp_path / "wrong.torch")
    with pytest.raises(InputError, match="do not fit") as err:
        load_model(tmp_path / "wrong.torch")
    assert str(tmp_path / "wrong.torch") in str(err.value)


def test_reverse_complement_average_is_strand_symmetric():
    """Averaged predictions of a sequence and of its reverse complement are mirror images."""
    import numpy as np
    import pandas as pd

    from bpnet_core.data import Windows, reverse_complement_sequence, reverse_complement_tracks
    from bpnet_core.predict import predict_windows

    torch.manual_seed(0)
    model = BPNet(n_filters=4, n_layers=2, n_outputs=2, n_control_tracks=2, trimming=53)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (3, 206)), 4).permute(0, 2, 1).to(torch.int8)
    X_ctl = torch.rand(3, 2, 206)
    loci = pd.DataFrame({"chrom": ["chr1"] * 3, "start": 0, "end": 1, "center": 0})
    forward = Windows(X=X, y=None, X_ctl=X_ctl, loci=loci)
    backward = Windows(X=reverse_complement_sequence(X), y=None, X_ctl=reverse_complement_tracks(X_ctl), loci=loci)
    cpu = torch.device("cpu")
    logits, counts = predict_windows(model, forward, 2, cpu, rc_average=True)
    rc_logits, rc_counts = predict_windows(model, backward, 2, cpu, rc_average=True)
    np.testing.assert_allclose(counts, rc_counts, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits, reverse_complement_tracks(torch.from_numpy(rc_logits)).numpy(),
                               rtol=1e-4, atol=1e-5)
    # Off, a random model is not symmetric: the test can fail.
    plain, _ = predict_windows(model, forward, 2, cpu)
    plain_rc, _ = predict_windows(model, backward, 2, cpu)
    assert not np.allclose(plain, reverse_complement_tracks(torch.from_numpy(plain_rc)).numpy(), atol=1e-3)
