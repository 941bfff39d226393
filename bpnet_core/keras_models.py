"""Official ChromBPNet / BPNet Keras ``.h5`` files, read with h5py (no TensorFlow).

The layers of kundajelab/chrombpnet's ``training/models/bpnet_model.py`` (the
bias model, and any BPNet without controls: ``bpnet_1st_conv``,
``bpnet_<i>conv``, ``prof_out_precrop``, ``logcount_predictions``) and of
the accessibility model of ``chrombpnet_with_bias_model.py`` (the same with
the prefix ``wo_bias_``), alone (``bias_model_scaled.h5``,
``chrombpnet_nobias.h5``) or nested in the full model (``chrombpnet.h5``).
Conversion to this package's models: `bpnet_core.model_import`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .model_import import (
    DEFAULT_WINDOWS,
    KERNELS,
    PROFILE_HALF,
    Imported,
    Part,
    reach,
    trimmings,
    unusable,
)

# Layer names of the two BPNets of chrombpnet's models/*.py: the bias model
# (and any BPNet of bpnet_model.py) and the accessibility model.
_KERAS_NAMES = {
    "bias": {"first": "bpnet_1st_conv", "dilated": "bpnet_{}conv", "profile": "prof_out_precrop",
             "counts": ("logcount_predictions", "logcounts"), "crop": "logits_profile_predictions_preflatten"},
    "accessibility": {"first": "wo_bias_bpnet_1st_conv", "dilated": "wo_bias_bpnet_{}conv",
                      "profile": "wo_bias_bpnet_prof_out_precrop",
                      "counts": ("wo_bias_bpnet_logcount_predictions",),
                      "crop": "wo_bias_bpnet_logitt_before_flatten"},
}


def _keras_weights(h5) -> dict[str, dict[str, Any]]:
    """Layer name -> weight name (``kernel``, ``bias``) -> its h5py dataset, however models nest.

    A Keras file keeps layer L's weights at ``model_weights/L/L/kernel:0``;
    a nested model M's at ``model_weights/M/L/kernel:0``; a file of
    ``save_weights`` has no ``model_weights`` level.
    """
    import h5py

    root = h5["model_weights"] if "model_weights" in h5 else h5
    layers: dict[str, dict[str, Any]] = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset) and "/" in name:
            *_, layer, weight = name.split("/")
            layers.setdefault(layer, {})[weight.split(":")[0]] = item

    root.visititems(visit)
    return layers


def _keras_config(h5) -> dict[str, dict]:
    """Layer name -> its Keras config, every nested model's layers included ({} without a model config)."""
    raw = h5.attrs.get("model_config")
    if raw is None:
        return {}
    config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    layers = {}

    def walk(node):
        if isinstance(node, dict):
            if "class_name" in node and isinstance(node.get("config"), dict) and "name" in node["config"]:
                layers.setdefault(node["config"]["name"], node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return layers


def _input_width(configs: dict[str, dict]) -> int | None:
    for node in configs.values():
        if node["class_name"] == "InputLayer":
            shape = node["config"].get("batch_input_shape") or node["config"].get("batch_shape")
            if shape and len(shape) == 3 and shape[1]:
                return int(shape[1])
    return None


def _keras_part(path: str, key: str, part: str, layers: dict, configs: dict, in_window: int | None,
                weights: bool) -> tuple[Part, int | None]:
    """One BPNet of an official Keras model; also its output window, when the file says."""
    names = _KERAS_NAMES[part]
    n_layers = 0
    while names["dilated"].format(n_layers + 1) in layers:
        n_layers += 1
    counts = next((name for name in names["counts"] if name in layers), None)
    wanted = {"first": names["first"], "profile": names["profile"], "counts": counts or names["counts"][0]}
    missing = [name for name in wanted.values() if name not in layers or "kernel" not in layers[name]]
    if missing or n_layers == 0:
        missing += [] if n_layers else [names["dilated"].format(1)]
        raise unusable(path, key, f"a Keras model without the layer(s) {', '.join(missing)} of an official "
                       f"ChromBPNet {part} model (truncated, or another architecture?)")

    def shape(name, weight="kernel"):
        return tuple(layers[name][weight].shape) if weight in layers[name] else None

    first = shape(names["first"])
    n_filters = first[2] if len(first) == 3 else -1
    profile = shape(names["profile"])
    n_outputs = profile[2] if len(profile) == 3 else -1
    # Layer -> (kernel shape, dilation, whether a bias is required).
    expected = {names["first"]: ((KERNELS["first"], 4, n_filters), 1, True)}
    expected.update({names["dilated"].format(i): ((KERNELS["dilated"], n_filters, n_filters), 2 ** i, True)
                     for i in range(1, n_layers + 1)})
    expected[names["profile"]] = ((KERNELS["profile"], n_filters, n_outputs), 1, False)
    expected[wanted["counts"]] = ((n_filters, 1), None, False)
    for name, (want, dilation, needs_bias) in expected.items():
        bias = shape(name, "bias")
        if shape(name) != want or bias not in ((want[-1],), *(() if needs_bias else (None,))):
            raise unusable(path, key, f"a Keras model whose layer {name} has kernel {shape(name)} and bias "
                           f"{bias}; this package's BPNet needs kernel {want} (kernel widths 21, 3 and 75, "
                           "one count output)")
        node = configs.get(name, {}).get("config", {})
        if dilation and node and (node.get("padding") != "valid" or list(node.get("dilation_rate", [1]))[0] != dilation):
            raise unusable(path, key, f"a Keras model whose layer {name} has padding '{node.get('padding')}' "
                           f"and dilation {node.get('dilation_rate')}; the official BPNet's are 'valid' and "
                           f"{dilation}")
    half_width = reach(n_layers)
    crop = configs.get(names["crop"], {}).get("config", {}).get("cropping")
    out_window = None
    if in_window is not None and crop is not None:
        crop = crop[0] if isinstance(crop, (list, tuple)) else crop
        out_window = in_window - 2 * half_width - 2 * int(crop)
        trimming = half_width + int(crop)
    else:
        trimming = max((DEFAULT_WINDOWS[0] - DEFAULT_WINDOWS[1]) // 2, half_width)
    # The official count head: a global average over everything the
    # unpadded dilated stack computes, reach - 37 bp in from each edge.
    hyperparameters = dict(n_filters=n_filters, n_layers=n_layers, n_outputs=n_outputs, n_control_tracks=0,
                           profile_output_bias="bias" in layers[names["profile"]],
                           count_output_bias="bias" in layers[wanted["counts"]],
                           **trimmings(trimming, half_width - PROFILE_HALF))
    result = Part(hyperparameters)
    if weights:
        result.weights = _keras_arrays(layers, names, wanted, n_layers)
    return result, out_window


def _keras_arrays(layers: dict, names: dict, wanted: dict, n_layers: int) -> dict[str, np.ndarray]:
    """This package's parameters from Keras weights: Conv1D (w, in, out) -> (out, in, w); Dense (in, out) -> (out, in)."""
    def conv(name, prefix):
        out = {f"{prefix}.weight": np.asarray(layers[name]["kernel"][()], dtype=np.float32).transpose(2, 1, 0)}
        if "bias" in layers[name]:
            out[f"{prefix}.bias"] = np.asarray(layers[name]["bias"][()], dtype=np.float32)
        return out

    arrays = conv(names["first"], "iconv")
    for i in range(1, n_layers + 1):
        arrays.update(conv(names["dilated"].format(i), f"rconvs.{i - 1}"))
    arrays.update(conv(names["profile"], "fconv"))
    dense = layers[wanted["counts"]]
    arrays["linear.weight"] = np.asarray(dense["kernel"][()], dtype=np.float32).T
    if "bias" in dense:
        arrays["linear.bias"] = np.asarray(dense["bias"][()], dtype=np.float32)
    return arrays


def read_keras(path: str | os.PathLike, key: str = "model", weights: bool = True) -> Imported:
    """An official ChromBPNet or BPNet Keras ``.h5`` file (h5py only, no TensorFlow).

    Parameters
    ----------
    path : str or PathLike
        ``bias_model_scaled.h5`` (or any BPNet of chrombpnet's
        ``bpnet_model.py``), ``chrombpnet_nobias.h5`` or ``chrombpnet.h5``.
    key : str
        The config key that named it, for messages.
    weights : bool
        Read the weights too (False: only the structure, for the load-time check).

    Returns
    -------
    Imported
        One part (``"model"``) for a BPNet, ``"bias"`` and ``"accessibility"``
        for a full ChromBPNet. The windows come from the file's model
        config (its input layer and profile cropping); a file of weights
        alone is taken to map 2114 -> 1000 bp.
    """
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            layers = _keras_weights(h5)
            configs = _keras_config(h5)
            version = h5.attrs.get("keras_version", b"?")
            in_window = _input_width(configs)
            found = {part for part, names in _KERAS_NAMES.items() if names["first"] in layers}
            if not found:
                raise unusable(path, key, _unknown_keras(layers))
            parts, out_windows = {}, set()
            for part in ("bias", "accessibility"):
                if part in found:
                    parts[part], out_window = _keras_part(str(path), key, part, layers, configs, in_window,
                                                          weights)
                    out_windows.add(out_window)
    except OSError as err:
        raise unusable(path, key, f"an HDF5 file that h5py cannot read (truncated or damaged? {err})") from None
    version = version.decode() if isinstance(version, bytes) else str(version)
    if len(parts) == 1:
        parts = {"model": next(iter(parts.values()))}
    out_window = next(iter(out_windows)) if len(out_windows) == 1 else None
    windows = (in_window, out_window) if in_window and out_window else None
    notes = [] if windows else [f"the file records no input/output widths: taken as {DEFAULT_WINDOWS[0]} -> "
                                f"{DEFAULT_WINDOWS[1]} bp, the ENCODE models' windows"]
    return Imported(parts, f"official ChromBPNet/BPNet Keras file (Keras {version})", windows, notes)


def _unknown_keras(layers: dict) -> str:
    """What an HDF5 file that is not an official ChromBPNet/BPNet model holds, for the message."""
    names = sorted(layers)
    if not names:
        return "an HDF5 file without Keras model weights (a TF-MoDISco or other results file?)"
    if any(name.startswith(("main_dil_conv", "dil_conv_")) for name in names):
        return ("a Keras BPNet of basepairmodels / bpnet-refactor (layers main_dil_conv_*): its residual "
                "layers and control inputs differ from the official ChromBPNet's and this package's BPNet")
    if any(name.startswith("conv1d_") for name in names):
        return ("a Keras model with unnamed layers (conv1d_*), as chrombpnet-lite wrote (kernel widths 25 "
                "and padding 'same'): not the official ChromBPNet architecture")
    return f"a Keras model of other layers ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})"
