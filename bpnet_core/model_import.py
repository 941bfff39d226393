"""Models trained elsewhere, as this package's models: official ChromBPNet Keras files and bpnet-lite files.

Three kinds of model file are read, told apart by their content
(`model_file_kind`), not their name:

- this package's files (`bpnet_core.models.save_model`);
- Keras ``.h5`` files of the official ChromBPNet (kundajelab/chrombpnet,
  read with h5py, no TensorFlow; `bpnet_core.keras_models`):
  ``bias_model_scaled.h5`` and other BPNets of ``bpnet_model.py`` (layers
  ``bpnet_1st_conv``, ``bpnet_<i>conv``, ``prof_out_precrop``,
  ``logcount_predictions``), ``chrombpnet_nobias.h5`` (the same with the
  prefix ``wo_bias_``) and ``chrombpnet.h5``, which nests both (the bias
  model and ``model_wo_bias``) and combines them as this package's
  `ChromBPNet` does: profile logits add, log counts by logsumexp;
- bpnet-lite files, whole pickled modules (``torch.save(model)``) of its
  ``BPNet`` and ``ChromBPNet``, read by a restricted unpickler that needs
  no bpnetlite and runs none of the file's code (`bpnet_core.bpnetlite_models`).

This module tells the kinds apart, holds what the two readers return
(`Imported`, `Part`) and converts it (`convert`, `import_model`).

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
FIRST_HALF, PROFILE_HALF = 10, 37
KERNELS = {"first": 21, "dilated": 3, "profile": 75}
# Input and output windows of the ENCODE models, when a file does not say.
DEFAULT_WINDOWS = (2114, 1000)

# The classes of bpnet-lite that are read (`bpnet_core.bpnetlite_models`).
BPNETLITE_MODELS = {"bpnetlite.bpnet.BPNet": "BPNet", "bpnetlite.chrombpnet.ChromBPNet": "ChromBPNet"}


def reach(n_layers: int) -> int:
    """Bases on each side of an output position that can affect it (`models.receptive_field_half_width`,
    without torch)."""
    return FIRST_HALF + sum(2 ** i for i in range(1, n_layers + 1)) + PROFILE_HALF


def unusable(path: str | os.PathLike, key: str, found: str) -> InputError:
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
        from .keras_models import read_keras  # it imports this module

        read_keras(path, key, weights=False)  # raises for what cannot be imported
        return "keras"
    if head.startswith(ZIP_MAGIC):
        return _torch_zip_kind(path, key)
    if head.startswith(PICKLE_PROTOCOL):  # torch's legacy format: a pickle, then the tensors
        with open(path, "rb") as handle:
            if b"bpnetlite" in handle.read(1 << 20):
                return "bpnetlite"
    if path.lower().endswith(KERAS_SUFFIXES):
        raise unusable(path, key, f"{_describe(head)}, named like a Keras file but not HDF5")
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
                raise unusable(path, key, "a zip archive without the data.pkl of a torch file")
            data = archive.read(pickles[0])
        names = _pickle_globals(data)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as err:
        raise unusable(path, key, f"a damaged zip archive (a torch file cut short? {err})") from None
    if any(name.startswith("bpnetlite.") for name in names):
        root = names[0]
        if root not in BPNETLITE_MODELS:
            raise unusable(path, key, f"a bpnet-lite file of {root}; bpnet-lite's BPNet and ChromBPNet "
                           "are read (BasePairNet's residual layers and control inputs differ)")
        return "bpnetlite"
    if b"bpnet_core." in data:
        return "bpnet_core"
    classes = [name for name in dict.fromkeys(names) if not name.startswith(("torch.", "collections.", "builtins."))]
    if not classes:
        raise unusable(path, key, "a torch file of plain tensors (a state dict? bpnet-lite's and this "
                       "package's files hold the whole model, architecture included)")
    raise unusable(path, key, f"a torch file of another program ({', '.join(classes[:4])})")


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


def trimmings(trimming: int, count_trimming: int | None) -> dict[str, int]:
    """``trimming`` and, where it is not the default ``trimming - 37``, ``count_trimming``."""
    if count_trimming is None or max(count_trimming, 0) == max(trimming - PROFILE_HALF, 0):
        return {"trimming": trimming}
    return {"trimming": trimming, "count_trimming": max(count_trimming, 0)}


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
    count_trimming = hp.pop("count_trimming", own - PROFILE_HALF)
    hp.update(trimmings(trimming, count_trimming))


# --------------------------------------------------------------------------
# conversion


def read_foreign(path: str | os.PathLike, key: str = "model") -> Imported:
    """An official Keras or a bpnet-lite model file, read into an `Imported` (see `model_file_kind`)."""
    from .bpnetlite_models import read_bpnetlite  # the readers import this module
    from .keras_models import read_keras

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
            raise unusable(path, key, f"weights that do not fit a BPNet ({err})") from None
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

