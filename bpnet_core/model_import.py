"""Models trained elsewhere, as this package's models: official ChromBPNet Keras files and bpnet-lite files.

Three kinds of model file are read, told apart by their content
(`model_file_kind`), not their name:

- this package's files (`bpnet_core.models.save_model`);
- Keras ``.h5`` files of the official ChromBPNet (kundajelab/chrombpnet,
  read with h5py, no TensorFlow): ``bias_model_scaled.h5`` and other
  BPNets of ``bpnet_model.py`` (layers ``bpnet_1st_conv``,
  ``bpnet_<i>conv``, ``prof_out_precrop``, ``logcount_predictions``),
  ``chrombpnet_nobias.h5`` (the same with the prefix ``wo_bias_``) and
  ``chrombpnet.h5``, which nests both (the bias model and ``model_wo_bias``)
  and combines them as this package's `ChromBPNet` does: profile logits
  add, log counts by logsumexp;
- bpnet-lite files, whole pickled modules (``torch.save(model)``) of its
  ``BPNet`` and ``ChromBPNet``, read by a restricted unpickler that needs
  no bpnetlite and runs none of the file's code.

The architectures are this package's `BPNet` with the same weights: Keras
Conv1D kernels (width, in, out) become (out, in, width), Dense kernels
(in, out) become (out, in). The official model's unpadded ("valid")
convolutions give the same profile in the output window as this package's
padded ones; its count head averages every position the dilated stack
computes, kept as `BPNet`'s ``count_trimming`` where that differs from the
output window widened by 37 bp (the 4-layer bias model at 2114 -> 1000 bp).
A bpnet-lite bias model (trimming 77) inside a ChromBPNet is cropped to the
accessibility model's output window, as bpnet-lite does.

Detection and the structure checks need neither torch nor h5py's data
reads, so the config planner runs them when it loads a config; the
conversion (`import_model`) is a workflow rule, so that an imported model
is made once and cached like a trained one.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import pickletools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

log = logging.getLogger(__name__)

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTOCOL = b"\x80"
KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
#: Kinds that `import_model` converts (`model_file_kind` may also say
#: ``"bpnet_core"``, or ``"unknown"`` for a file left to `load_model`).
FOREIGN_KINDS = ("keras", "bpnetlite")
EXPECTED = ("a model file of bpnet_core, an official ChromBPNet/BPNet Keras .h5 (bias_model_scaled.h5, "
            "chrombpnet_nobias.h5, chrombpnet.h5) or a bpnet-lite .torch file")

# Half-widths of the first convolution (k=21) and of the profile head (k=75).
_FIRST_HALF, _PROFILE_HALF = 10, 37
_KERNELS = {"first": 21, "dilated": 3, "profile": 75}
# Input and output windows of the ENCODE models, when a file does not say.
_DEFAULT_WINDOWS = (2114, 1000)

# The classes of bpnet-lite this module reads, and its own that it cannot.
_BPNETLITE_MODELS = {"bpnetlite.bpnet.BPNet": "BPNet", "bpnetlite.chrombpnet.ChromBPNet": "ChromBPNet"}


def _reach(n_layers: int) -> int:
    """Bases on each side of an output position that can affect it (as `models.receptive_field_half_width`)."""
    return _FIRST_HALF + sum(2 ** i for i in range(1, n_layers + 1)) + _PROFILE_HALF


def _problem(path: str | os.PathLike, key: str, found: str) -> InputError:
    """The one message for a model file this package cannot read."""
    return InputError(f"{path} (config key '{key}'): not a model file of bpnet_core, nor one it can import "
                      f"({EXPECTED}): found {found}")


def _describe(head: bytes) -> str:
    """What the first bytes of a file look like, for messages."""
    if not head:
        return "an empty file"
    if head.startswith(HDF5_MAGIC):
        return "an HDF5 file"
    if head.startswith(ZIP_MAGIC):
        return "a zip archive"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip file"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data"
    return "a text file"


# --------------------------------------------------------------------------
# what a file is


def model_file_kind(path: str | os.PathLike, key: str = "model") -> str:
    """What kind of model file `path` is, from its content.

    Returns
    -------
    str
        ``"bpnet_core"``, ``"keras"`` (an official ChromBPNet/BPNet model),
        ``"bpnetlite"``, or ``"unknown"`` (none of these containers; left to
        `bpnet_core.models.load_model`, which says what is wrong).

    Raises
    ------
    InputError
        Naming `key`, for a file that is one of these containers but
        cannot be used: an HDF5 file that is not an official model (a
        TF-MoDISco file, a basepairmodels BPNet), a damaged or truncated
        file, a pickled bpnet-lite class other than BPNet and ChromBPNet,
        or a file named ``.h5`` that is not HDF5.
    """
    path = Path(path)
    stat = path.stat()
    return _kind(str(path), key, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _kind(path: str, key: str, size: int, mtime: int) -> str:
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(HDF5_MAGIC):
        read_keras(path, key, weights=False)  # raises for what cannot be imported
        return "keras"
    if head.startswith(ZIP_MAGIC):
        return _torch_zip_kind(path, key)
    if head.startswith(PICKLE_PROTOCOL):  # torch's legacy format: a pickle, then the tensors
        with open(path, "rb") as handle:
            if b"bpnetlite" in handle.read(1 << 20):
                return "bpnetlite"
    if path.lower().endswith(KERAS_SUFFIXES):
        raise _problem(path, key, f"{_describe(head)}, named like a Keras file but not HDF5")
    return "unknown"


def _pickle_globals(data: bytes) -> list[str]:
    """The classes and functions a pickle names ("module.name"), in order, without running it."""
    names, strings = [], []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == "GLOBAL":
            names.append(arg.replace(" ", "."))
        elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
            names.append(f"{strings[-2]}.{strings[-1]}")
        elif isinstance(arg, str):
            strings.append(arg)
    return names


def _torch_zip_kind(path: str, key: str) -> str:
    """``"bpnet_core"`` or ``"bpnetlite"`` for a torch file (a zip archive with a ``data.pkl``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") or name == "data.pkl"]
            if not pickles:
                raise _problem(path, key, "a zip archive without the data.pkl of a torch file")
            data = archive.read(pickles[0])
        names = _pickle_globals(data)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as err:
        raise _problem(path, key, f"a damaged zip archive (a torch file cut short? {err})") from None
    if any(name.startswith("bpnetlite.") for name in names):
        root = names[0]
        if root not in _BPNETLITE_MODELS:
            raise _problem(path, key, f"a bpnet-lite file of {root}; bpnet-lite's BPNet and ChromBPNet "
                           "are read (BasePairNet's residual layers and control inputs differ)")
        return "bpnetlite"
    if b"bpnet_core." in data:
        return "bpnet_core"
    classes = [name for name in dict.fromkeys(names) if not name.startswith(("torch.", "collections.", "builtins."))]
    if not classes:
        raise _problem(path, key, "a torch file of plain tensors (a state dict? bpnet-lite's and this "
                       "package's files hold the whole model, architecture included)")
    raise _problem(path, key, f"a torch file of another program ({', '.join(classes[:4])})")


# --------------------------------------------------------------------------
# the imported model, before it is a torch module


@dataclass
class Part:
    """One BPNet of an imported model: hyperparameters and weights by this package's parameter names.

    Attributes
    ----------
    hyperparameters : dict
        Keyword arguments of `bpnet_core.models.BPNet`.
    weights : dict
        Parameter name (``iconv.weight``, ``rconvs.0.bias``, ``linear.weight``,
        ...) -> array in torch's layout (Conv1d (out, in, width), Linear
        (out, in)); None until read (`read_keras` with ``weights=False``).
    """

    hyperparameters: dict[str, Any]
    weights: dict[str, np.ndarray] | None = None


@dataclass
class Imported:
    """A model read from another program's file: one BPNet, or a bias and an accessibility BPNet.

    Attributes
    ----------
    parts : dict
        ``{"model": Part}`` for a BPNet; ``{"bias": Part, "accessibility":
        Part}`` for a ChromBPNet.
    source : str
        The file's program and layout, for the model's metadata.
    windows : tuple of int or None
        (in_window, out_window) the file records, if any.
    notes : list of str
        What the reader assumed, for the log (e.g. the windows of a file
        that records none).
    """

    parts: dict[str, Part]
    source: str
    windows: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def chrombpnet(self) -> bool:
        return "bias" in self.parts


def _trimmings(trimming: int, count_trimming: int | None) -> dict[str, int]:
    """``trimming`` and, where it is not the default ``trimming - 37``, ``count_trimming``."""
    if count_trimming is None or max(count_trimming, 0) == max(trimming - _PROFILE_HALF, 0):
        return {"trimming": trimming}
    return {"trimming": trimming, "count_trimming": max(count_trimming, 0)}


# --------------------------------------------------------------------------
# official ChromBPNet / BPNet Keras files

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
        raise _problem(path, key, f"a Keras model without the layer(s) {', '.join(missing)} of an official "
                       f"ChromBPNet {part} model (truncated, or another architecture?)")

    def shape(name, weight="kernel"):
        return tuple(layers[name][weight].shape) if weight in layers[name] else None

    first = shape(names["first"])
    n_filters = first[2] if len(first) == 3 else -1
    profile = shape(names["profile"])
    n_outputs = profile[2] if len(profile) == 3 else -1
    # Layer -> (kernel shape, dilation, whether a bias is required).
    expected = {names["first"]: ((_KERNELS["first"], 4, n_filters), 1, True)}
    expected.update({names["dilated"].format(i): ((_KERNELS["dilated"], n_filters, n_filters), 2 ** i, True)
                     for i in range(1, n_layers + 1)})
    expected[names["profile"]] = ((_KERNELS["profile"], n_filters, n_outputs), 1, False)
    expected[wanted["counts"]] = ((n_filters, 1), None, False)
    for name, (want, dilation, needs_bias) in expected.items():
        bias = shape(name, "bias")
        if shape(name) != want or bias not in ((want[-1],), *(() if needs_bias else (None,))):
            raise _problem(path, key, f"a Keras model whose layer {name} has kernel {shape(name)} and bias "
                           f"{bias}; this package's BPNet needs kernel {want} (kernel widths 21, 3 and 75, "
                           "one count output)")
        node = configs.get(name, {}).get("config", {})
        if dilation and node and (node.get("padding") != "valid" or list(node.get("dilation_rate", [1]))[0] != dilation):
            raise _problem(path, key, f"a Keras model whose layer {name} has padding '{node.get('padding')}' "
                           f"and dilation {node.get('dilation_rate')}; the official BPNet's are 'valid' and "
                           f"{dilation}")
    reach = _reach(n_layers)
    crop = configs.get(names["crop"], {}).get("config", {}).get("cropping")
    out_window = None
    if in_window is not None and crop is not None:
        crop = crop[0] if isinstance(crop, (list, tuple)) else crop
        out_window = in_window - 2 * reach - 2 * int(crop)
        trimming = reach + int(crop)
    else:
        trimming = max((_DEFAULT_WINDOWS[0] - _DEFAULT_WINDOWS[1]) // 2, reach)
    # The official count head: a global average over everything the
    # unpadded dilated stack computes, reach - 37 bp in from each edge.
    hyperparameters = dict(n_filters=n_filters, n_layers=n_layers, n_outputs=n_outputs, n_control_tracks=0,
                           profile_output_bias="bias" in layers[names["profile"]],
                           count_output_bias="bias" in layers[wanted["counts"]],
                           **_trimmings(trimming, reach - _PROFILE_HALF))
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
                raise _problem(path, key, _unknown_keras(layers))
            parts, out_windows = {}, set()
            for part in ("bias", "accessibility"):
                if part in found:
                    parts[part], out_window = _keras_part(str(path), key, part, layers, configs, in_window,
                                                          weights)
                    out_windows.add(out_window)
    except OSError as err:
        raise _problem(path, key, f"an HDF5 file that h5py cannot read (truncated or damaged? {err})") from None
    version = version.decode() if isinstance(version, bytes) else str(version)
    if len(parts) == 1:
        parts = {"model": next(iter(parts.values()))}
    out_window = next(iter(out_windows)) if len(out_windows) == 1 else None
    windows = (in_window, out_window) if in_window and out_window else None
    notes = [] if windows else [f"the file records no input/output widths: taken as {_DEFAULT_WINDOWS[0]} -> "
                                f"{_DEFAULT_WINDOWS[1]} bp, the ENCODE models' windows"]
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


# --------------------------------------------------------------------------
# bpnet-lite files


class _Stub:
    """An object of a class the unpickler does not trust: its state is kept, none of its code runs."""

    _qualname = "?"

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        self.__dict__["_args"] = args

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)


@functools.cache
def _stub(qualname: str) -> type:
    return type(qualname.rsplit(".", 1)[-1], (_Stub,), {"_qualname": qualname})


# What a pickled torch module may name and get the real thing: the
# functions that rebuild tensors and parameters, and plain containers.
_TRUSTED = {
    ("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice"),
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch", "Size"), ("torch", "device"),
}


def _restricted_pickle_module():
    """A stand-in for the `pickle` module whose Unpickler trusts only `_TRUSTED` (see `read_bpnetlite`)."""
    import pickle
    import types

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) in _TRUSTED or (module == "torch" and name.endswith("Storage")):
                return super().find_class(module, name)
            if module == "torch" and name in ("float32", "float64", "float16", "bfloat16"):
                return super().find_class(module, name)
            return _stub(f"{module}.{name}")

    return types.SimpleNamespace(Unpickler=Unpickler, load=lambda f, **kw: Unpickler(f, **kw).load(),
                                 __name__="bpnet_core_restricted_pickle")


def _attr(obj, name, default=None):
    return obj.__dict__.get(name, default) if isinstance(obj, _Stub) else default


def _children(obj) -> dict:
    return dict(_attr(obj, "_modules", {}) or {})


def _parameters(obj) -> dict:
    return dict(_attr(obj, "_parameters", {}) or {})


def _bpnetlite_part(path: str, key: str, module, name: str) -> tuple[Part, int]:
    """A bpnet-lite BPNet (stub) as a Part; also its trimming."""
    qualname = getattr(type(module), "_qualname", type(module).__name__)
    if qualname != "bpnetlite.bpnet.BPNet":
        raise _problem(path, key, f"a bpnet-lite model whose {name} is a {qualname}, not a bpnet-lite BPNet")
    children = _children(module)
    convs = _children(children.get("rconvs"))
    layers = [convs[str(i)] for i in range(len(convs))]
    n_layers = len(layers)
    expected = [("iconv", children.get("iconv"), _KERNELS["first"], 1)]
    expected += [(f"rconvs.{i}", conv, _KERNELS["dilated"], 2 ** (i + 1)) for i, conv in enumerate(layers)]
    expected.append(("fconv", children.get("fconv"), _KERNELS["profile"], 1))
    for label, conv, width, dilation in expected:
        found = (tuple(_attr(conv, "kernel_size", ())), tuple(_attr(conv, "dilation", ())),
                 tuple(_attr(conv, "padding", ())))
        if found != ((width,), (dilation,), (dilation * (width // 2),)):
            raise _problem(path, key, f"a bpnet-lite {name} whose {label} has kernel, dilation and padding "
                           f"{found}; this package's BPNet needs {(width,), (dilation,), (dilation * (width // 2),)}")
    import torch

    found = {f"{label}.{parameter}": value for label in ("iconv", "fconv", "linear")
             for parameter, value in _parameters(children.get(label)).items()}
    found.update({f"rconvs.{i}.{parameter}": value for i, conv in enumerate(layers)
                  for parameter, value in _parameters(conv).items()})
    weights = {}
    for label, value in found.items():
        if value is None:  # a layer without a bias term
            continue
        if not isinstance(value, torch.Tensor):
            raise _problem(path, key, f"a bpnet-lite {name} whose {label} is stored as "
                           f"{getattr(type(value), '_qualname', type(value).__name__)}, not a tensor")
        weights[label] = value.detach().float().numpy()
    if "iconv.weight" not in weights or "linear.weight" not in weights:
        raise _problem(path, key, f"a bpnet-lite {name} without its weights")
    n_filters, n_outputs = weights["iconv.weight"].shape[0], weights["fconv.weight"].shape[0]
    n_controls = int(_attr(module, "n_control_tracks", 0) or 0)
    trimming = int(_attr(module, "trimming"))
    # bpnet-lite's count head: features averaged (controls summed) over the
    # output window widened by 37 bp, clipped to the input.
    hyperparameters = dict(n_filters=n_filters, n_layers=n_layers, n_outputs=n_outputs,
                           n_control_tracks=n_controls, profile_output_bias="fconv.bias" in weights,
                           count_output_bias="linear.bias" in weights, trimming=trimming)
    return Part(hyperparameters, weights), trimming


def read_bpnetlite(path: str | os.PathLike, key: str = "model") -> Imported:
    """A bpnet-lite model file (``torch.save(model)`` of its BPNet or ChromBPNet), without bpnetlite.

    The pickle is read by an unpickler that builds only tensors, parameters
    and plain containers; every other class (bpnet-lite's, torch's modules)
    becomes a stub that records its state, so nothing in the file runs.

    Returns
    -------
    Imported
        One part (``"model"``) for a BPNet, ``"bias"`` and ``"accessibility"``
        for a ChromBPNet; in a ChromBPNet the bias model's profile is
        cropped to the accessibility model's output window and its count
        head keeps its own pooling window (`BPNet`'s ``count_trimming``),
        as bpnet-lite computes them.
    """
    import torch

    try:
        root = torch.load(path, map_location="cpu", pickle_module=_restricted_pickle_module(),
                          weights_only=False)
    except Exception as err:  # a damaged archive or pickle: torch raises many kinds
        raise _problem(path, key, f"a bpnet-lite file that cannot be read ({err.__class__.__name__}: {err})") from None
    qualname = getattr(type(root), "_qualname", type(root).__name__)
    if qualname == "bpnetlite.bpnet.BPNet":
        part, _ = _bpnetlite_part(str(path), key, root, "model")
        return Imported({"model": part}, "bpnet-lite BPNet")
    if qualname != "bpnetlite.chrombpnet.ChromBPNet":
        raise _problem(path, key, f"a pickled {qualname}; bpnet-lite's BPNet and ChromBPNet are read")
    children = _children(root)
    bias, bias_trim = _bpnetlite_part(str(path), key, children.get("bias"), "bias model")
    accessibility, trim = _bpnetlite_part(str(path), key, children.get("accessibility"), "accessibility model")
    if bias_trim > trim or accessibility.hyperparameters["n_control_tracks"] or bias.hyperparameters["n_control_tracks"]:
        raise _problem(path, key, f"a bpnet-lite ChromBPNet whose bias model trims {bias_trim} bp and "
                       f"accessibility model {trim} bp (with controls "
                       f"{accessibility.hyperparameters['n_control_tracks']}): cannot be combined")
    retrim(bias, trim)
    return Imported({"bias": bias, "accessibility": accessibility}, "bpnet-lite ChromBPNet")


def retrim(part: Part, trimming: int, path: str = "", key: str = "model") -> None:
    """Crop a part's output window to `trimming`, keeping its count head's pooling window.

    The profile in the narrower window is the same, position by position,
    and the count head averages what it did before (`BPNet`'s
    ``count_trimming``), so predictions are those of the original model,
    profile cropped to the centre.
    """
    hp = part.hyperparameters
    own = hp["trimming"]
    if trimming == own:
        return
    if trimming < own:
        raise InputError(f"{path} (config key '{key}'): the model maps in_window - out_window = {2 * own} bp "
                         f"and cannot predict the wider output window of {2 * trimming} bp less than the input")
    count_trimming = hp.pop("count_trimming", own - _PROFILE_HALF)
    hp.update(_trimmings(trimming, count_trimming))


# --------------------------------------------------------------------------
# conversion


def read_foreign(path: str | os.PathLike, key: str = "model") -> Imported:
    """An official Keras or a bpnet-lite model file, read into an `Imported` (see `model_file_kind`)."""
    kind = model_file_kind(path, key)
    if kind == "keras":
        return read_keras(path, key)
    if kind == "bpnetlite":
        return read_bpnetlite(path, key)
    raise InputError(f"{path} (config key '{key}'): not an official ChromBPNet/BPNet Keras file or a "
                     "bpnet-lite file")


_PARTS = {"bias_model": "bias", "accessibility_model": "accessibility"}


def convert(imported: Imported, path: str | os.PathLike, key: str = "model", trimming: int | None = None):
    """This package's model of an `Imported`, with metadata saying where it came from.

    Parameters
    ----------
    imported : Imported
    path : str or PathLike
        The file it was read from, for the metadata and messages.
    key : str
        ``bias_model`` or ``accessibility_model`` take that part of a full
        ChromBPNet; ``model`` takes the whole.
    trimming : int, optional
        Crop the output window to this trimming (`retrim`): a bias model
        given with an accessibility model of a wider trimming.

    Returns
    -------
    BPNet or ChromBPNet
        In eval mode; ``model.metadata`` holds ``kind``, ``imported_from``,
        ``source_format`` and, when the file says, ``in_window`` and
        ``out_window``.
    """
    import torch

    from .models import BPNet, ChromBPNet

    parts = dict(imported.parts)
    if imported.chrombpnet and key in _PARTS:
        parts = {"model": parts[_PARTS[key]]}
    if trimming is not None:
        for part in parts.values():
            retrim(part, trimming, str(path), key)

    def build(part: Part) -> BPNet:
        model = BPNet(**part.hyperparameters)
        state = {name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in part.weights.items()}
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise _problem(path, key, f"weights that do not fit a BPNet ({err})") from None
        return model

    if "model" in parts:
        model = build(parts["model"])
        kind = {"bias_model": "bias", "accessibility_model": "accessibility"}.get(key, "bpnet")
    else:
        model = ChromBPNet(build(parts["bias"]), build(parts["accessibility"]))
        kind = "chrombpnet"
    windows = imported.windows
    if windows and (windows[0] - windows[1]) // 2 != model.trimming:
        windows = None  # cropped to another output window
    metadata = {"kind": kind, "imported_from": str(path), "source_format": imported.source}
    if windows:
        metadata.update(in_window=windows[0], out_window=windows[1])
    model.metadata = metadata
    return model.eval()


def load_foreign(path: str | os.PathLike, key: str = "model", trimming: int | None = None):
    """An official Keras or bpnet-lite model file as this package's model (`read_foreign`, `convert`)."""
    imported = read_foreign(path, key)
    for note in imported.notes:
        log.info("%s (config key '%s'): %s", path, key, note)
    return convert(imported, path, key, trimming)


def import_model(path: str | os.PathLike, output_path: str | os.PathLike, key: str = "model",
                 trimming: int | None = None) -> dict[str, Any]:
    """Convert a model file of another program into a model file of this package, once.

    Parameters
    ----------
    path : str or PathLike
        An official ChromBPNet/BPNet Keras ``.h5`` file or a bpnet-lite
        ``.torch`` file (see the module docstring); a file of this package
        is copied as it is.
    output_path : str or PathLike
        The model file to write (`bpnet_core.models.save_model`).
    key : str
        The config key that named `path` (``model``, ``bias_model``,
        ``accessibility_model``): for messages, and the part of a full
        ChromBPNet that ``bias_model`` and ``accessibility_model`` take.
    trimming : int, optional
        The output window's trimming (bp on each side) to crop to; the
        workflow passes the ChromBPNet pipeline's for a bias model.

    Returns
    -------
    dict
        The written model's metadata.
    """
    from .models import load_model, save_model

    if model_file_kind(path, key) not in FOREIGN_KINDS:
        model = load_model(path, key=key)
    else:
        model = load_foreign(path, key, trimming)
    save_model(model, output_path, model.metadata)
    hp = model.hyperparameters
    shape = (f"ChromBPNet (bias {hp['bias']['n_filters']} x {hp['bias']['n_layers']}, accessibility "
             f"{hp['accessibility']['n_filters']} x {hp['accessibility']['n_layers']})"
             if "bias" in hp else f"BPNet {hp['n_filters']} x {hp['n_layers']}, {hp['n_outputs']} output(s), "
             f"{hp['n_control_tracks']} control track(s)")
    log.info("%s (config key '%s'): %s imported as a %s, trimming %d bp, into %s", path, key,
             model.metadata.get("source_format", "bpnet_core model"), shape, model.trimming, output_path)
    return model.metadata

