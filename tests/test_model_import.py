"""Models of other programs: official ChromBPNet/BPNet Keras files and bpnet-lite files (``bpnet_core.model_import``).

The Keras files are written here with h5py in the layout Keras gives the
official models (kundajelab/chrombpnet ``bpnet_model.py`` and
``chrombpnet_with_bias_model.py``): ``model_weights/<layer>/<layer>/kernel:0``,
nested models under their own name, and the model config that records the
input width and the profile cropping. Their predictions are checked against
a NumPy forward pass written from the official Keras code (unpadded
convolutions, cropped residuals, a global average over the whole dilated
stack for the count head). The bpnet-lite files are pickled from stand-in
classes of the same module path and attributes (no bpnetlite needed) and
checked against bpnet-lite's forward, written out here; with bpnetlite
installed, also against bpnetlite itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from bpnet_core.errors import InputError
from bpnet_core.model_import import import_model, model_file_kind
from bpnet_core.models import BPNet, ChromBPNet, load_model, set_compute

from conftest import REPO, planned_jobs, snakemake, write_json

TOL = dict(rtol=1e-4, atol=1e-4)


def _one_hot(n, length, seed=0):
    rng = np.random.default_rng(seed)
    return np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))]  # (N, L, 4), Keras' layout


# --------------------------------------------------------------------------
# official Keras files, written in their layout


def keras_weights(n_filters, n_layers, seed, n_outputs=1):
    """Random weights of an official BPNet, in Keras' shapes: Conv1D (width, in, out), Dense (in, out)."""
    rng = np.random.default_rng(seed)

    def normal(*shape, scale=0.2):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    weights = {"first": (normal(21, 4, n_filters), normal(n_filters)),
               "profile": (normal(75, n_filters, n_outputs, scale=0.05), normal(n_outputs)),
               "counts": (normal(n_filters, 1), normal(1))}
    for i in range(1, n_layers + 1):
        weights[i] = (normal(3, n_filters, n_filters), normal(n_filters))
    return weights


def _names(prefix: str, n_layers: int) -> dict:
    """Layer names of chrombpnet's bpnet_model.py (prefix '') and of its accessibility model ('wo_bias_')."""
    head = "bpnet_" if prefix else ""
    names = {"first": f"{prefix}bpnet_1st_conv", "profile": f"{prefix}{head}prof_out_precrop",
             "counts": f"{prefix}{head}logcount_predictions",
             "crop": "wo_bias_bpnet_logitt_before_flatten" if prefix else "logits_profile_predictions_preflatten"}
    names.update({i: f"{prefix}bpnet_{i}conv" for i in range(1, n_layers + 1)})
    return names


def _layer_configs(prefix, n_layers, in_window, out_window):
    """The model config's layers (the parts this package reads), with the official cropping."""
    names = _names(prefix, n_layers)
    reach = 10 + sum(2 ** i for i in range(1, n_layers + 1)) + 37
    crop = (in_window - 2 * reach - out_window) // 2
    conv = lambda name, d: {"class_name": "Conv1D", "config": {"name": name, "padding": "valid",  # noqa: E731
                                                               "dilation_rate": [d], "activation": "relu"}}
    return [{"class_name": "InputLayer", "config": {"name": "sequence", "batch_input_shape": [None, in_window, 4]}},
            conv(names["first"], 1), *(conv(names[i], 2 ** i) for i in range(1, n_layers + 1)),
            conv(names["profile"], 1),
            {"class_name": "Cropping1D", "config": {"name": names["crop"], "cropping": [crop, crop]}},
            {"class_name": "GlobalAveragePooling1D", "config": {"name": "gap"}},
            {"class_name": "Dense", "config": {"name": names["counts"]}}]


def _write_layers(group, prefix, weights, nested: bool):
    """Datasets of one BPNet under `group`: <layer>/<layer>/kernel:0, or <model>/<layer>/kernel:0 when nested."""
    names = _names(prefix, sum(isinstance(k, int) for k in weights))
    for part, (kernel, bias) in weights.items():
        layer = names[part]
        where = group if nested else group.create_group(layer)
        if not nested:
            where.attrs["weight_names"] = [f"{layer}/kernel:0".encode(), f"{layer}/bias:0".encode()]
        where.create_dataset(f"{layer}/kernel:0", data=kernel)
        where.create_dataset(f"{layer}/bias:0", data=bias)


def write_keras_bpnet(path, weights, in_window, out_window, prefix=""):
    """A standalone official BPNet file: bias_model_scaled.h5 (prefix '') or chrombpnet_nobias.h5 ('wo_bias_')."""
    n_layers = sum(isinstance(k, int) for k in weights)
    config = {"class_name": "Functional", "config": {"name": "model_wo_bias" if prefix else "model",
                                                      "layers": _layer_configs(prefix, n_layers, in_window,
                                                                               out_window)}}
    with h5py.File(path, "w") as h5:
        h5.attrs["keras_version"] = "2.8.0"
        h5.attrs["backend"] = "tensorflow"
        h5.attrs["model_config"] = json.dumps(config)
        _write_layers(h5.create_group("model_weights"), prefix, weights, nested=False)
    return path


def write_keras_chrombpnet(path, bias, accessibility, in_window, out_window):
    """The full official model (chrombpnet.h5): the bias model nested as 'model_1', the other as 'model_wo_bias'."""
    n_bias, n_acc = (sum(isinstance(k, int) for k in w) for w in (bias, accessibility))
    config = {"class_name": "Functional", "config": {"name": "model_2", "layers": [
        {"class_name": "InputLayer", "config": {"name": "sequence", "batch_input_shape": [None, in_window, 4]}},
        {"class_name": "Functional", "config": {"name": "model_1", "layers": _layer_configs(
            "", n_bias, in_window, out_window)}},
        {"class_name": "Functional", "config": {"name": "model_wo_bias", "layers": _layer_configs(
            "wo_bias_", n_acc, in_window, out_window)}},
        {"class_name": "Add", "config": {"name": "logits_profile_predictions"}},
        {"class_name": "Lambda", "config": {"name": "logcount_predictions"}}]}}
    with h5py.File(path, "w") as h5:
        h5.attrs["keras_version"] = "2.8.0"
        h5.attrs["model_config"] = json.dumps(config)
        root = h5.create_group("model_weights")
        for name in ("sequence", "logits_profile_predictions", "concatenate", "logcount_predictions"):
            root.create_group(name).attrs["weight_names"] = []  # layers without weights
        _write_layers(root.create_group("model_1"), "", bias, nested=True)
        _write_layers(root.create_group("model_wo_bias"), "wo_bias_", accessibility, nested=True)
    return path


def numpy_keras_bpnet(X, weights, out_window):
    """The official BPNet's forward pass in NumPy, from chrombpnet's bpnet_model.py.

    Parameters
    ----------
    X : ndarray, shape (N, L, 4)

    Returns
    -------
    profile : ndarray, shape (N, n_outputs, out_window)
    counts : ndarray, shape (N, 1)
    """
    def conv(h, kernel, bias, dilation=1):  # padding='valid'
        width = h.shape[1] - dilation * (kernel.shape[0] - 1)
        return sum(h[:, j * dilation:j * dilation + width] @ kernel[j] for j in range(kernel.shape[0])) + bias

    relu = lambda x: np.maximum(x, 0)  # noqa: E731
    X = X.astype(np.float64)
    h = relu(conv(X, *weights["first"]))
    for i in range(1, sum(isinstance(k, int) for k in weights) + 1):
        c = relu(conv(h, *weights[i], dilation=2 ** i))
        crop = (h.shape[1] - c.shape[1]) // 2  # Cropping1D of the residual
        h = h[:, crop:h.shape[1] - crop] + c
    profile = conv(h, *weights["profile"])
    crop = profile.shape[1] // 2 - out_window // 2
    profile = profile[:, crop:crop + out_window]
    counts = h.mean(axis=1) @ weights["counts"][0] + weights["counts"][1]  # GlobalAvgPool1D, Dense
    return profile.transpose(0, 2, 1), counts


def numpy_keras_chrombpnet(X, bias, accessibility, out_window):
    """chrombpnet_with_bias_model.py: profile logits add; log counts by logsumexp."""
    bias_profile, bias_counts = numpy_keras_bpnet(X, bias, out_window)
    acc_profile, acc_counts = numpy_keras_bpnet(X, accessibility, out_window)
    return bias_profile + acc_profile, np.logaddexp(bias_counts, acc_counts)


def predict(model, X, **compute):
    set_compute(model, **compute)
    with torch.no_grad():
        profile, counts = model(torch.from_numpy(X.transpose(0, 2, 1).copy()))
    return profile.numpy(), counts.numpy()


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """Tiny official files at 200 -> 78 bp: a 2-layer bias model (count head over 184 bp, not 152)
    and a 3-layer accessibility model (whose valid output is exactly the window)."""
    out = tmp_path_factory.mktemp("official")
    bias, accessibility = keras_weights(6, 2, seed=1), keras_weights(8, 3, seed=2)
    return {
        "bias": bias, "accessibility": accessibility, "windows": (200, 78),
        "bias_model_scaled.h5": write_keras_bpnet(out / "bias_model_scaled.h5", bias, 200, 78),
        "chrombpnet_nobias.h5": write_keras_bpnet(out / "chrombpnet_nobias.h5", accessibility, 200, 78,
                                                  prefix="wo_bias_"),
        "chrombpnet.h5": write_keras_chrombpnet(out / "chrombpnet.h5", bias, accessibility, 200, 78),
    }


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("name, part", [("bias_model_scaled.h5", "bias"),
                                        ("chrombpnet_nobias.h5", "accessibility")])
def test_official_bpnet_predicts_as_the_keras_model(official, name, part, fast_path):
    model = load_model(official[name])
    assert isinstance(model, BPNet) and model.n_control_tracks == 0
    assert model.metadata["in_window"] == 200 and model.metadata["out_window"] == 78
    X = _one_hot(5, 200)
    want = numpy_keras_bpnet(X, official[part], 78)
    got = predict(model, X, fast_path=fast_path)
    assert got[0].shape == (5, 1, 78)
    np.testing.assert_allclose(got[0], want[0], **TOL)
    np.testing.assert_allclose(got[1], want[1], **TOL)


def test_a_file_of_weights_alone_is_taken_as_2114_to_1000(official, tmp_path):
    """`model.save_weights` writes no model config: the ENCODE windows are assumed (and logged)."""
    with h5py.File(tmp_path / "weights.h5", "w") as h5:
        _write_layers(h5, "", official["bias"], nested=False)
    model = load_model(tmp_path / "weights.h5")
    assert model.trimming == 557 and model.hyperparameters["count_trimming"] == 16
    assert "in_window" not in model.metadata
    X = _one_hot(2, 2114, seed=8)
    want = numpy_keras_bpnet(X, official["bias"], 1000)
    got = predict(model, X)
    np.testing.assert_allclose(got[0], want[0], **TOL)
    np.testing.assert_allclose(got[1], want[1], **TOL)


def test_the_bias_model_keeps_the_official_count_pooling(official):
    """2 layers at 200 -> 78: the official count head averages 200 - 2 * 16 bp, not 78 + 74."""
    bias = load_model(official["bias_model_scaled.h5"])
    assert bias.hyperparameters["trimming"] == 61 and bias.hyperparameters["count_trimming"] == 16
    assert "count_trimming" not in load_model(official["chrombpnet_nobias.h5"]).hyperparameters
    default = BPNet(**{**bias.hyperparameters, "count_trimming": None})
    default.load_state_dict(bias.state_dict())
    X = _one_hot(4, 200, seed=3)
    assert np.abs(predict(default, X)[1] - predict(bias, X)[1]).max() > 1e-3  # it matters


@pytest.mark.parametrize("fast_path", [True, False])
def test_official_chrombpnet_predicts_as_the_keras_model(official, fast_path):
    model = load_model(official["chrombpnet.h5"])
    assert isinstance(model, ChromBPNet) and model.metadata["kind"] == "chrombpnet"
    X = _one_hot(5, 200, seed=4)
    want = numpy_keras_chrombpnet(X, official["bias"], official["accessibility"], 78)
    got = predict(model, X, fast_path=fast_path)
    np.testing.assert_allclose(got[0], want[0], **TOL)
    np.testing.assert_allclose(got[1], want[1], **TOL)


def test_a_part_of_the_full_official_model(official, tmp_path):
    """`bias_model` / `accessibility_model` naming chrombpnet.h5 take that part of it."""
    X = _one_hot(3, 200, seed=5)
    for key, part in (("bias_model", "bias"), ("accessibility_model", "accessibility")):
        import_model(official["chrombpnet.h5"], tmp_path / f"{part}.torch", key=key)
        model = load_model(tmp_path / f"{part}.torch")
        assert isinstance(model, BPNet) and model.metadata["kind"] == part
        np.testing.assert_allclose(predict(model, X)[1], numpy_keras_bpnet(X, official[part], 78)[1], **TOL)


def test_import_writes_a_model_file_of_this_package(official, tmp_path):
    metadata = import_model(official["chrombpnet.h5"], tmp_path / "full.torch")
    assert metadata["imported_from"] == str(official["chrombpnet.h5"])
    assert model_file_kind(tmp_path / "full.torch") == "bpnet_core"
    payload = torch.load(tmp_path / "full.torch", weights_only=True)
    assert payload["format"] == "bpnet_core.ChromBPNet" and payload["format_version"] == 2
    X = _one_hot(3, 200, seed=6)
    np.testing.assert_allclose(predict(load_model(tmp_path / "full.torch"), X)[1],
                               predict(load_model(official["chrombpnet.h5"]), X)[1], rtol=0, atol=0)


def test_with_bpnetlite_official_files_read_as_bpnetlite_reads_them(official):
    """bpnet-lite's own loader of the official files (its default trimming pools as the official model)."""
    bpnetlite = pytest.importorskip("bpnetlite")
    X = _one_hot(3, 200, seed=7)
    for name in ("bias_model_scaled.h5", "chrombpnet_nobias.h5"):
        lite = bpnetlite.BPNet.from_chrombpnet(str(official[name])).eval()
        with torch.no_grad():
            profile, counts = lite(torch.from_numpy(X.transpose(0, 2, 1).copy()))
        width = (profile.shape[-1] - 78) // 2
        got = predict(load_model(official[name]), X)
        np.testing.assert_allclose(got[0], profile[:, :, width:profile.shape[-1] - width].numpy(), **TOL)
        np.testing.assert_allclose(got[1], counts.numpy(), **TOL)


# --------------------------------------------------------------------------
# bpnet-lite files


class _LiteBPNet(torch.nn.Module):
    """bpnet-lite 1.1's BPNet: its attributes and forward (bpnetlite/bpnet.py), under its module path."""

    def __init__(self, n_filters=8, n_layers=2, n_outputs=2, n_control_tracks=2, trimming=None,
                 profile_output_bias=True, count_output_bias=True):
        super().__init__()
        self.n_filters, self.n_layers, self.n_outputs = n_filters, n_layers, n_outputs
        self.n_control_tracks = n_control_tracks
        self.trimming = trimming if trimming is not None else 47 + sum(2 ** i for i in range(1, n_layers + 1))
        self.iconv = torch.nn.Conv1d(4, n_filters, kernel_size=21, padding=10)
        self.irelu = torch.nn.ReLU()
        self.rconvs = torch.nn.ModuleList(torch.nn.Conv1d(n_filters, n_filters, kernel_size=3, padding=2 ** i,
                                                          dilation=2 ** i) for i in range(1, n_layers + 1))
        self.rrelus = torch.nn.ModuleList(torch.nn.ReLU() for _ in range(n_layers))
        self.fconv = torch.nn.Conv1d(n_filters + n_control_tracks, n_outputs, kernel_size=75, padding=37,
                                     bias=profile_output_bias)
        self.linear = torch.nn.Linear(n_filters + (1 if n_control_tracks else 0), 1, bias=count_output_bias)

    def forward(self, X, X_ctl=None):
        start, end = self.trimming, X.shape[2] - self.trimming
        X = self.irelu(self.iconv(X))
        for i in range(self.n_layers):
            X = torch.add(X, self.rrelus[i](self.rconvs[i](X)))
        X_w_ctl = X if X_ctl is None else torch.cat([X, X_ctl], dim=1)
        y_profile = self.fconv(X_w_ctl)[:, :, start:end]
        X = torch.mean(X[:, :, max(start - 37, 0):end + 37], dim=2)
        if X_ctl is not None:
            X_ctl = torch.sum(X_ctl[:, :, max(start - 37, 0):end + 37], dim=(1, 2)).unsqueeze(-1)
            X = torch.cat([X, torch.log(X_ctl + 1)], dim=-1)
        return y_profile, self.linear(X).reshape(X.shape[0], 1)


class _LiteChromBPNet(torch.nn.Module):
    """bpnet-lite 1.1's ChromBPNet: the bias profile cropped to the accessibility model's window."""

    def __init__(self, bias, accessibility):
        super().__init__()
        self.bias, self.accessibility = bias, accessibility
        self.n_control_tracks, self.n_outputs = accessibility.n_control_tracks, 1

    def forward(self, X, X_ctl=None):
        acc_profile, acc_counts = self.accessibility(X)
        bias_profile, bias_counts = self.bias(X)
        w = (bias_profile.shape[-1] - acc_profile.shape[-1]) // 2
        return (acc_profile + bias_profile[:, :, w:bias_profile.shape[-1] - w],
                torch.log(torch.exp(acc_counts) + torch.exp(bias_counts)))


class _LiteBasePairNet(_LiteBPNet):
    """bpnet-lite's BasePairNet (basepairmodels' architecture), which is not read."""


def save_as_bpnetlite(model, path):
    """torch.save(model) as bpnet-lite writes it: the pickle names bpnetlite.bpnet.BPNet (and
    bpnetlite.chrombpnet.ChromBPNet); bpnetlite need not be installed to write or read it."""
    classes = {_LiteBPNet: ("bpnetlite.bpnet", "BPNet"), _LiteChromBPNet: ("bpnetlite.chrombpnet", "ChromBPNet"),
               _LiteBasePairNet: ("bpnetlite.bpnet", "BasePairNet")}
    modules = {name: types.ModuleType(name) for name in ("bpnetlite", "bpnetlite.bpnet", "bpnetlite.chrombpnet")}
    missing = object()
    previous = {name: sys.modules.get(name, missing) for name in modules}
    names = {cls: (cls.__module__, cls.__qualname__) for cls in classes}
    try:
        for cls, (module, name) in classes.items():
            cls.__module__, cls.__qualname__ = module, name
            setattr(modules[module], name, cls)
        sys.modules.update(modules)
        torch.save(model, path)
    finally:
        for cls, (module, name) in names.items():
            cls.__module__, cls.__qualname__ = module, name
        for name, module in previous.items():
            if module is missing:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return path


def _randomize(model, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.2)
    return model.eval()


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("options", [
    {"n_control_tracks": 2, "trimming": 53},                       # stranded ChIP, controls, 206 -> 100
    {"n_control_tracks": 0, "n_outputs": 1, "trimming": 70},       # trimming above the receptive field
    {"n_control_tracks": 2, "trimming": 20, "count_output_bias": False},  # below it: padding is seen
])
def test_bpnetlite_bpnet_predicts_as_bpnetlite(tmp_path, options, fast_path):
    lite = _randomize(_LiteBPNet(**options), seed=1)
    path = save_as_bpnetlite(lite, tmp_path / "lite.torch")
    assert model_file_kind(path) == "bpnetlite"
    model = load_model(path)
    assert isinstance(model, BPNet) and model.n_control_tracks == options["n_control_tracks"]
    set_compute(model, fast_path=fast_path)
    X = torch.from_numpy(_one_hot(4, 206, seed=2).transpose(0, 2, 1).copy())
    X_ctl = torch.rand(4, 2, 206) * 3 if options["n_control_tracks"] else None
    with torch.no_grad():
        want, got = lite(X, X_ctl), model(X, X_ctl)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.numpy(), b.numpy(), **TOL)


def test_bpnetlite_chrombpnet_predicts_as_bpnetlite(tmp_path):
    """A bias model of bpnet-lite's default trimming (77 for 4 layers, here 53 for 2) inside a
    ChromBPNet whose accessibility model trims more: cropped, its count window kept."""
    bias = _randomize(_LiteBPNet(n_filters=6, n_layers=2, n_outputs=1, n_control_tracks=0), seed=3)
    accessibility = _randomize(_LiteBPNet(n_filters=8, n_layers=3, n_outputs=1, n_control_tracks=0,
                                          trimming=70), seed=4)
    lite = _LiteChromBPNet(bias, accessibility).eval()
    path = save_as_bpnetlite(lite, tmp_path / "chrombpnet.torch")
    model = load_model(path)
    assert isinstance(model, ChromBPNet) and model.bias.trimming == model.accessibility.trimming == 70
    assert model.bias.hyperparameters["count_trimming"] == 16
    X = torch.from_numpy(_one_hot(4, 200, seed=5).transpose(0, 2, 1).copy())
    with torch.no_grad():
        want, got = lite(X), model(X)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.numpy(), b.numpy(), **TOL)


def test_bpnetlite_files_are_read_without_running_their_code(tmp_path):
    """The restricted unpickler builds only tensors and containers: a pickled call of os.system is a stub."""
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    lite = _randomize(_LiteBPNet(n_control_tracks=0, n_outputs=1), seed=1)
    lite.logger = Evil()
    path = save_as_bpnetlite(lite, tmp_path / "lite.torch")
    load_model(path)
    assert not (tmp_path / "ran").exists()


def test_with_bpnetlite_its_own_models_import(tmp_path):
    bpnetlite = pytest.importorskip("bpnetlite")
    torch.manual_seed(0)
    lite = _randomize(bpnetlite.BPNet(n_filters=8, n_layers=2, n_outputs=2, n_control_tracks=2, trimming=53,
                                      verbose=False), seed=2)
    torch.save(lite, tmp_path / "bpnet.torch")
    bias = _randomize(bpnetlite.BPNet(n_filters=6, n_layers=2, n_outputs=1, n_control_tracks=0, verbose=False), 3)
    acc = _randomize(bpnetlite.BPNet(n_filters=8, n_layers=3, n_outputs=1, n_control_tracks=0, trimming=70,
                                     verbose=False), 4)
    full = bpnetlite.ChromBPNet(bias, acc).eval()
    torch.save(full, tmp_path / "chrombpnet.torch")
    X = torch.from_numpy(_one_hot(3, 206, seed=5).transpose(0, 2, 1).copy())
    X_ctl = torch.rand(3, 2, 206)
    with torch.no_grad():
        for got, want in ((load_model(tmp_path / "bpnet.torch")(X, X_ctl), lite(X, X_ctl)),
                          (load_model(tmp_path / "chrombpnet.torch")(X), full(X))):
            for a, b in zip(got, want):
                np.testing.assert_allclose(a.numpy(), b.numpy(), **TOL)


# --------------------------------------------------------------------------
# files that cannot be used: one message naming the key and what was found


def _error(path, key="bias_model") -> str:
    with pytest.raises(InputError) as info:
        model_file_kind(path, key)
    message = str(info.value)
    assert message.startswith(f"{path} (config key '{key}'): not a model file of bpnet_core, nor one it can import")
    return message


def test_truncated_files_are_named(official, tmp_path):
    data = Path(official["chrombpnet.h5"]).read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[:len(data) // 2])
    assert "an HDF5 file that h5py cannot read (truncated or damaged?" in _error(tmp_path / "cut.h5")
    lite = save_as_bpnetlite(_randomize(_LiteBPNet(), 0), tmp_path / "lite.torch").read_bytes()
    (tmp_path / "cut.torch").write_bytes(lite[:len(lite) // 2])
    assert "a damaged zip archive (a torch file cut short?" in _error(tmp_path / "cut.torch")


def test_mislabelled_files_are_named(official, tmp_path):
    (tmp_path / "model.h5").write_text("chr1\t100\t200\n")
    assert "found a text file, named like a Keras file but not HDF5" in _error(tmp_path / "model.h5")
    with h5py.File(tmp_path / "modisco.h5", "w") as h5:
        h5.create_dataset("pos_patterns/pattern_0/sequence", data=np.zeros((3, 4)))
    assert "a Keras model of other layers (pattern_0)" in _error(tmp_path / "modisco.h5")
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    assert "an HDF5 file without Keras model weights" in _error(tmp_path / "empty.h5")
    with h5py.File(tmp_path / "bpm.h5", "w") as h5:
        h5.create_dataset("model_weights/main_dil_conv_1/main_dil_conv_1/kernel:0", data=np.zeros((3, 2, 2)))
    assert "basepairmodels" in _error(tmp_path / "bpm.h5")
    save_as_bpnetlite(_randomize(_LiteBPNet(), 0), tmp_path / "lite.h5")
    assert model_file_kind(tmp_path / "lite.h5") == "bpnetlite"  # the content decides, not the name
    save_as_bpnetlite(_randomize(_LiteBasePairNet(), 0), tmp_path / "bpn.torch")
    assert "a bpnet-lite file of bpnetlite.bpnet.BasePairNet" in _error(tmp_path / "bpn.torch")
    torch.save({"iconv.weight": torch.zeros(1)}, tmp_path / "state.torch")
    assert "a torch file of plain tensors (a state dict?" in _error(tmp_path / "state.torch")


def test_an_official_file_without_a_layer_is_named(official, tmp_path):
    weights = {k: v for k, v in official["bias"].items() if k != "counts"}
    with h5py.File(tmp_path / "no_counts.h5", "w") as h5:
        _write_layers(h5.create_group("model_weights"), "", weights, nested=False)
    assert "without the layer(s) logcount_predictions" in _error(tmp_path / "no_counts.h5")
    odd = {**official["bias"], "first": (np.zeros((19, 4, 6), np.float32), np.zeros(6, np.float32))}
    write_keras_bpnet(tmp_path / "odd.h5", odd, 200, 78)
    assert "layer bpnet_1st_conv has kernel (19, 4, 6)" in _error(tmp_path / "odd.h5")


def test_load_model_says_what_it_found(tmp_path):
    (tmp_path / "keras.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(InputError, match=r"keras.h5 \(config key 'model'\): not a model file of bpnet_core"):
        load_model(tmp_path / "keras.h5")


# --------------------------------------------------------------------------
# the workflow: given files of other programs are imported once, nothing is trained


@pytest.fixture(scope="module")
def atac(tmp_path_factory):
    from bpnet_core.simulate.atac import simulate_atac_demo

    return simulate_atac_demo(tmp_path_factory.mktemp("atac"), seed=2, chrom_sizes={"chr1": 150_000, "chr2": 80_000})


@pytest.fixture(scope="module")
def tiny_official(tmp_path_factory):
    """Official files for the tiny ATAC windows, 206 -> 100 bp: bias 1 layer, accessibility 2 layers."""
    out = tmp_path_factory.mktemp("tiny_official")
    bias, accessibility = keras_weights(4, 1, seed=5), keras_weights(6, 2, seed=6)
    return {"chrombpnet.h5": write_keras_chrombpnet(out / "chrombpnet.h5", bias, accessibility, 206, 100),
            "chrombpnet_nobias.h5": write_keras_bpnet(out / "chrombpnet_nobias.h5", accessibility, 206, 100,
                                                      prefix="wo_bias_"),
            "bias.torch": save_as_bpnetlite(_randomize(_LiteBPNet(n_filters=4, n_layers=1, n_outputs=1,
                                                                  n_control_tracks=0), 7), out / "bias.torch")}


def atac_pipeline(data, **overrides) -> dict:
    return {"n_filters": 8, "n_layers": 2, "in_window": 206, "out_window": 100, "batch_size": 16,
            "name": "imported", "training_chroms": ["chr1"], "validation_chroms": ["chr2"],
            "sequences": str(data["sequences"]), "loci": str(data["peaks"]), "negatives": str(data["negatives"]),
            "signals": [str(data["signal"])], "predict_parameters": {"chroms": ["chr2"]},
            "bias_qc_parameters": {"n_loci": 20, "n_shuffles": 2, "n_seqlets": 500, "window": 100},
            "attribute_parameters": {"n_shuffles": 2, "batch_size": 8},
            "modisco_motifs_parameters": {"n_seqlets": 500, "window": 100},
            "modisco_report_parameters": {"motifs": str(data["motifs"])},
            "marginalize_parameters": {"chroms": ["chr2"], "n_loci": 10}, **overrides}


TRAINING = {"fit_model", "fit_bias_model", "fit_chrombpnet"}


@pytest.mark.parametrize("given, imports, added", [
    ({"model": "chrombpnet.h5"}, 1, {"extract_bias_model", "extract_accessibility_model"}),
    ({"bias_model": "bias.torch", "accessibility_model": "chrombpnet_nobias.h5"}, 2, {"assemble_chrombpnet_model"}),
])
def test_the_workflow_imports_given_models_and_trains_none(atac, tiny_official, tmp_path, given, imports, added):
    config = atac_pipeline(atac, **{key: str(tiny_official[name]) for key, name in given.items()})
    config_path = write_json(tmp_path / "imported.json", config)
    jobs = planned_jobs(tmp_path, config_path)
    assert jobs["import_model"] == imports and added <= set(jobs), jobs
    assert not TRAINING & set(jobs), jobs
    for rule in ("predict_peaks", "attribute_peaks", "discover_motifs", "marginalize_motifs", "qc_bias_model"):
        assert jobs[rule] == 1, jobs
    result = snakemake(tmp_path, config_path, "--dry-run")
    assert "plan: imported (" in result.stderr and "imports " in result.stderr
    for key in given:
        assert f"results/imported/imported/{key}.torch" in result.stdout


def test_a_bad_given_model_stops_the_workflow_at_load(atac, tmp_path):
    (tmp_path / "bias_model_scaled.h5").write_text("not a model\n")
    config = write_json(tmp_path / "bad.json", atac_pipeline(atac, bias_model=str(tmp_path / "bias_model_scaled.h5")))
    result = snakemake(tmp_path, config, "--dry-run")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert (f"bad.json: {tmp_path / 'bias_model_scaled.h5'} (config key 'bias_model'): not a model file of "
            "bpnet_core, nor one it can import") in result.stderr
    assert "found a text file, named like a Keras file but not HDF5" in result.stderr


def test_the_import_rule_crops_a_bpnetlite_bias_model_to_the_pipeline(atac, tiny_official, tmp_path):
    """bpnet-lite's bias model trims its receptive field (49 bp for 1 layer); the pipeline's 53 is wider:
    the rule crops it, keeping its count window, so the full model can be assembled."""
    from bpnet_core.model_import import import_model

    import_model(tiny_official["bias.torch"], tmp_path / "bias.torch", "bias_model", trimming=53)
    bias = load_model(tmp_path / "bias.torch")
    assert bias.trimming == 53 and bias.hyperparameters["count_trimming"] == 12
    with pytest.raises(InputError, match="cannot predict the wider output window"):
        import_model(tiny_official["bias.torch"], tmp_path / "x.torch", "bias_model", trimming=40)


def test_bpnet_pipeline_with_a_bpnetlite_model(tiny_data, tmp_path):
    from conftest import tiny_pipeline_config

    path = save_as_bpnetlite(_randomize(_LiteBPNet(n_control_tracks=2, trimming=53), 1), tmp_path / "lite.torch")
    config = write_json(tmp_path / "tiny.json", tiny_pipeline_config(tiny_data, model=str(path)))
    jobs = planned_jobs(tmp_path, config)
    assert jobs["import_model"] == 1 and "fit_model" not in jobs and jobs["predict_peaks"] == 1, jobs


def test_import_model_command(official, tmp_path):
    from bpnet_core.cli import main

    assert main(["import-model", str(official["chrombpnet.h5"]), str(tmp_path / "full.torch")]) == 0
    assert isinstance(load_model(tmp_path / "full.torch"), ChromBPNet)
    result = subprocess.run([sys.executable, "-m", "bpnet_core", "import-model", str(official["chrombpnet.h5"]),
                             str(tmp_path / "bias.torch"), "--key", "bias_model"], capture_output=True, text=True,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert load_model(tmp_path / "bias.torch").metadata["kind"] == "bias"
    (tmp_path / "bad.h5").write_bytes(b"")
    result = subprocess.run([sys.executable, "-m", "bpnet_core", "import-model", str(tmp_path / "bad.h5"),
                             str(tmp_path / "x.torch")], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "found an empty file, named like a Keras file but not HDF5" in result.stderr
