"""bpnet-lite model files (``torch.save(model)`` of its BPNet or ChromBPNet), read without bpnetlite.

The pickle is read by an unpickler that builds only tensors, parameters and
plain containers; every other class (bpnet-lite's, torch's modules) becomes
a stub that records its state, so nothing in the file runs and bpnetlite
need not be installed. Conversion to this package's models:
`bpnet_core.model_import`.
"""

from __future__ import annotations

import functools
import os

from .model_import import KERNELS, Imported, Part, retrim, unusable


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
        raise unusable(path, key, f"a bpnet-lite model whose {name} is a {qualname}, not a bpnet-lite BPNet")
    children = _children(module)
    convs = _children(children.get("rconvs"))
    layers = [convs[str(i)] for i in range(len(convs))]
    n_layers = len(layers)
    expected = [("iconv", children.get("iconv"), KERNELS["first"], 1)]
    expected += [(f"rconvs.{i}", conv, KERNELS["dilated"], 2 ** (i + 1)) for i, conv in enumerate(layers)]
    expected.append(("fconv", children.get("fconv"), KERNELS["profile"], 1))
    for label, conv, width, dilation in expected:
        found = (tuple(_attr(conv, "kernel_size", ())), tuple(_attr(conv, "dilation", ())),
                 tuple(_attr(conv, "padding", ())))
        if found != ((width,), (dilation,), (dilation * (width // 2),)):
            raise unusable(path, key, f"a bpnet-lite {name} whose {label} has kernel, dilation and padding "
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
            raise unusable(path, key, f"a bpnet-lite {name} whose {label} is stored as "
                           f"{getattr(type(value), '_qualname', type(value).__name__)}, not a tensor")
        weights[label] = value.detach().float().numpy()
    if "iconv.weight" not in weights or "linear.weight" not in weights:
        raise unusable(path, key, f"a bpnet-lite {name} without its weights")
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
        raise unusable(path, key, f"a bpnet-lite file that cannot be read ({err.__class__.__name__}: {err})") from None
    qualname = getattr(type(root), "_qualname", type(root).__name__)
    if qualname == "bpnetlite.bpnet.BPNet":
        part, _ = _bpnetlite_part(str(path), key, root, "model")
        return Imported({"model": part}, "bpnet-lite BPNet")
    if qualname != "bpnetlite.chrombpnet.ChromBPNet":
        raise unusable(path, key, f"a pickled {qualname}; bpnet-lite's BPNet and ChromBPNet are read")
    children = _children(root)
    bias, bias_trim = _bpnetlite_part(str(path), key, children.get("bias"), "bias model")
    accessibility, trim = _bpnetlite_part(str(path), key, children.get("accessibility"), "accessibility model")
    if bias_trim > trim or accessibility.hyperparameters["n_control_tracks"] or bias.hyperparameters["n_control_tracks"]:
        raise unusable(path, key, f"a bpnet-lite ChromBPNet whose bias model trims {bias_trim} bp and "
                       f"accessibility model {trim} bp (with controls "
                       f"{accessibility.hyperparameters['n_control_tracks']}): cannot be combined")
    retrim(bias, trim)
    return Imported({"bias": bias, "accessibility": accessibility}, "bpnet-lite ChromBPNet")
