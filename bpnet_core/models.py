"""The BPNet and ChromBPNet architectures, and model files that outlive code versions."""

from __future__ import annotations

import logging
import os
import pickle
import struct
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import InputError
from .io import atomic_output
from .precision import resolve_precision

log = logging.getLogger("bpnet_core")

# Version 2: a BPNet may store `count_trimming` (models imported from the
# official ChromBPNet, whose count head averages a wider window). Files
# without it are written as version 1, which every version reads.
MODEL_FORMAT_VERSION = 2

# What `torch.load(path, map_location="cpu", weights_only=True)` raises for a
# file that is not a whole torch file of plain data: random bytes or another
# program's file (UnpicklingError, KeyError, IndexError, UnicodeDecodeError),
# an archive cut short or damaged (RuntimeError of the archive reader,
# EOFError, OSError, ValueError, struct.error, BadZipFile; AssertionError in
# the legacy format's reader), a pickled module (UnpicklingError). Loaded onto
# the CPU, no CUDA error can arise; anything else is not the file's fault.
NOT_A_TORCH_FILE = (pickle.UnpicklingError, EOFError, RuntimeError, KeyError, IndexError, ValueError, OSError,
                    struct.error, zipfile.BadZipFile, AssertionError)

# Half-widths of the first conv (k=21) and the profile head (k=75).
_FIRST_HALF = 10
_PROFILE_HALF = 37


def receptive_field_half_width(n_layers: int) -> int:
    """Bases on each side of an output position that can affect it.

    10 (first conv) + sum of dilations 2^1..2^n_layers + 37 (profile head);
    557 for 8 layers, which is why 2114 -> 1000 trims 557 on each side.
    """
    return _FIRST_HALF + sum(2 ** i for i in range(1, n_layers + 1)) + _PROFILE_HALF


class BPNet(nn.Module):
    """BPNet as published (Avsec et al. 2021) and built by the reference code.

    A first convolution (kernel 21), `n_layers` residual dilated convolutions
    (kernel 3, dilation 2^i for i = 1..n_layers), a profile head (kernel 75)
    that sees the control tracks as extra channels, and a count head: a
    linear layer over the features averaged across the output window widened
    by 37 bp on each side, plus log(1 + total control counts) when there are
    controls. Every ReLU is its own module so that DeepLIFT/SHAP can hook it.

    Parameters
    ----------
    n_filters : int
    n_layers : int
    n_outputs : int
        Profile tracks predicted (one per bigWig in `signals`).
    n_control_tracks : int
        Control tracks taken as input (0 for none).
    profile_output_bias, count_output_bias : bool
        Whether the heads have a bias term.
    trimming : int
        Bases cut from each side of the input to give the output window.
    count_trimming : int, optional
        Bases cut from each side of the input to give the window the count
        head averages the features (and sums the controls) over. None: the
        output window widened by 37 bp on each side (``trimming - 37``), as
        this package and bpnet-lite train. The official ChromBPNet averages
        every position its unpadded convolutions compute
        (``receptive_field_half_width(n_layers) - 37`` bp from each edge),
        which differs when the trimming exceeds the receptive field, as for
        its 4-layer bias model at 2114 -> 1000 bp (40 instead of 520).

    Attributes
    ----------
    fast_path : bool
        Compute with `forward_fast` where it gives the same outputs (on by
        default; see `set_compute`).
    bf16 : bool
        Compute under bfloat16 autocast, returning float32 (off by default;
        see `set_compute`).
    """

    def __init__(self, n_filters: int = 64, n_layers: int = 8, n_outputs: int = 2,
                 n_control_tracks: int = 0, profile_output_bias: bool = True,
                 count_output_bias: bool = True, trimming: int = 557, count_trimming: int | None = None):
        super().__init__()
        self.hyperparameters = dict(
            n_filters=n_filters, n_layers=n_layers, n_outputs=n_outputs,
            n_control_tracks=n_control_tracks, profile_output_bias=profile_output_bias,
            count_output_bias=count_output_bias, trimming=trimming,
        )
        if count_trimming is not None:  # stored only when set: other files stay version 1
            self.hyperparameters["count_trimming"] = count_trimming
        self.n_control_tracks = n_control_tracks
        self.trimming = trimming
        self.count_trimming = trimming - _PROFILE_HALF if count_trimming is None else count_trimming
        self.iconv = nn.Conv1d(4, n_filters, kernel_size=21, padding=_FIRST_HALF)
        self.irelu = nn.ReLU()
        self.rconvs = nn.ModuleList(
            nn.Conv1d(n_filters, n_filters, kernel_size=3, padding=2 ** i, dilation=2 ** i)
            for i in range(1, n_layers + 1)
        )
        self.rrelus = nn.ModuleList(nn.ReLU() for _ in range(n_layers))
        self.fconv = nn.Conv1d(n_filters + n_control_tracks, n_outputs, kernel_size=75,
                               padding=_PROFILE_HALF, bias=profile_output_bias)
        self.linear = nn.Linear(n_filters + (1 if n_control_tracks else 0), 1,
                                bias=count_output_bias)
        self.fast_path = True
        self.bf16 = False

    @property
    def reach(self) -> int:
        """Bases on each side of an output position that can affect it."""
        return receptive_field_half_width(len(self.rconvs))

    @classmethod
    def from_hyperparameters(cls, **hyperparameters) -> "BPNet":
        return cls(**hyperparameters)

    @property
    def n_outputs(self) -> int:
        return self.hyperparameters["n_outputs"]

    def forward(self, X: torch.Tensor, X_ctl: torch.Tensor | None = None):
        """Predict profile logits and log counts.

        Computed by `forward_fast` when `fast_path` is on and the trimming
        covers the receptive field, else by `forward_reference`; under
        bfloat16 autocast when `bf16` is on.

        Parameters
        ----------
        X : torch.Tensor, shape (N, 4, in_window)
            One-hot sequence.
        X_ctl : torch.Tensor, shape (N, n_control_tracks, in_window), optional
            Control counts per base; required when the model has controls.

        Returns
        -------
        y_profile : torch.Tensor, shape (N, n_outputs, in_window - 2 * trimming)
            Logits; softmax over the flattened (track, position) axes gives
            the predicted distribution of reads.
        y_counts : torch.Tensor, shape (N, 1)
            Predicted log(1 + total counts) over all tracks.
        """
        fast = self.fast_path and self.trimming >= self.reach and self.count_trimming >= self.reach - _PROFILE_HALF
        forward = self.forward_fast if fast else self.forward_reference
        if not self.bf16:
            return forward(X, X_ctl)
        with torch.autocast(X.device.type, dtype=torch.bfloat16):
            y_profile, y_counts = forward(X, X_ctl)
        return y_profile.float(), y_counts.float()

    def forward_reference(self, X: torch.Tensor, X_ctl: torch.Tensor | None = None):
        """`forward` as the reference implementations compute it.

        Every convolution is zero-padded to the input's length ("same")
        and the profile is cropped to the output window at the end.
        """
        start, end = self.trimming, X.shape[2] - self.trimming
        # The count head pools the output window widened by the profile
        # kernel's half-width (or `count_trimming`), clipped to the input
        # when trimming < 37.
        lo, hi = max(self.count_trimming, 0), min(X.shape[2] - self.count_trimming, X.shape[2])
        h = self.irelu(self.iconv(X))
        for conv, relu in zip(self.rconvs, self.rrelus):
            h = h + relu(conv(h))

        if self.n_control_tracks:
            if X_ctl is None:
                raise ValueError("this model was trained with control tracks; pass X_ctl")
            y_profile = self.fconv(torch.cat([h, X_ctl], dim=1))[:, :, start:end]
            ctl = X_ctl[:, :, lo:hi].sum(dim=(1, 2))
            pooled = torch.cat([
                h[:, :, lo:hi].mean(dim=2),
                torch.log1p(ctl).unsqueeze(1),
            ], dim=1)
        else:
            y_profile = self.fconv(h)[:, :, start:end]
            pooled = h[:, :, lo:hi].mean(dim=2)
        return y_profile, self.linear(pooled)

    def forward_fast(self, X: torch.Tensor, X_ctl: torch.Tensor | None = None):
        """`forward` computing only the positions that the outputs depend on.

        When trimming is at least the receptive field's half-width, no
        output position sees the zero padding of the reference computation,
        so each convolution can be unpadded ("valid"): every layer computes
        2 x dilation fewer positions than the one before, and the profile
        head computes out_window positions instead of in_window. The
        convolutions run as 2-D convolutions of height 1 in channels-last
        memory layout, which oneDNN computed fastest on the CPU. The outputs
        equal `forward_reference`'s to float rounding.

        Measured on 2 CPU cores for 64 filters x 8 layers, 2114 -> 1000
        (benchmarks/speed.py, README "Speed"): 2.4x the training and 3.1x
        the prediction throughput of the reference computation. In a
        prototype of the convolutions alone, this layout ran 6.4x faster
        forward and 2.9x forward + backward than the padded Conv1d, plain
        unpadded Conv1d 2.8x and 2.3x, and an im2col matmul 2.5x and 1.6x.
        """
        # Crop what no output position can see, so that unpadded
        # convolutions end exactly on the widest window needed: the profile
        # head's input (the output window widened by _PROFILE_HALF on each
        # side) or the count head's pooling window, when that is wider.
        profile_edge = self.trimming - _PROFILE_HALF
        first = min(profile_edge, self.count_trimming)
        excess = first - (self.reach - _PROFILE_HALF)
        if excess:
            X = X[:, :, excess:X.shape[2] - excess]
            X_ctl = None if X_ctl is None else X_ctl[:, :, excess:X_ctl.shape[2] - excess]
        x = X.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        h = self.irelu(F.conv2d(x, self.iconv.weight.unsqueeze(2), self.iconv.bias))
        for conv, relu in zip(self.rconvs, self.rrelus):
            d = conv.dilation[0]
            h = h[:, :, :, d:h.shape[3] - d] + relu(
                F.conv2d(h, conv.weight.unsqueeze(2), conv.bias, dilation=(1, d)))
        # h spans the input less `first` on each side; the profile head and
        # the count head each take their window of it (all of it by default).
        pool_crop, profile_crop = self.count_trimming - first, profile_edge - first
        pooled = _crop(h, pool_crop).mean(dim=(2, 3))
        h = _crop(h, profile_crop)
        if self.n_control_tracks:
            if X_ctl is None:
                raise ValueError("this model was trained with control tracks; pass X_ctl")
            X_ctl = X_ctl[:, :, self.reach - _PROFILE_HALF:X_ctl.shape[2] - self.reach + _PROFILE_HALF]
            ctl = _crop(X_ctl, profile_crop)
            h = torch.cat([h, ctl.unsqueeze(2).contiguous(memory_format=torch.channels_last)], dim=1)
            pooled = torch.cat([pooled, torch.log1p(_crop(X_ctl, pool_crop).sum(dim=(1, 2))).unsqueeze(1)], dim=1)
        y_profile = F.conv2d(h, self.fconv.weight.unsqueeze(2), self.fconv.bias).squeeze(2)
        return y_profile, self.linear(pooled)


def _crop(x: torch.Tensor, n: int) -> torch.Tensor:
    """`x` without `n` positions at each end of its last axis."""
    return x[..., n:x.shape[-1] - n] if n else x


class ChromBPNet(nn.Module):
    """A frozen enzyme-bias BPNet plus an accessibility BPNet (the official recipe).

    Profile logits add; log counts combine by logsumexp, i.e. the predicted
    reads are the sum of the reads each model predicts:
    log(1 + n) ~ log(exp(log_counts_accessibility) + exp(log_counts_bias)).
    The bias model's parameters are frozen (``requires_grad`` False).

    Parameters
    ----------
    bias : BPNet
        The enzyme-bias model, trained on background regions.
    accessibility : BPNet
        The model of the residual, bias-free accessibility signal; same
        outputs and trimming as `bias`, no control tracks.
    """

    def __init__(self, bias: BPNet, accessibility: BPNet):
        super().__init__()
        for key in ("n_outputs", "trimming"):
            if bias.hyperparameters[key] != accessibility.hyperparameters[key]:
                raise InputError(
                    f"the bias model has {key} {bias.hyperparameters[key]} but the accessibility "
                    f"model has {accessibility.hyperparameters[key]}; they must agree"
                )
        if bias.n_control_tracks or accessibility.n_control_tracks:
            raise InputError("ChromBPNet models take no control tracks")
        self.bias = bias
        self.accessibility = accessibility
        for parameter in self.bias.parameters():
            parameter.requires_grad_(False)
        self.hyperparameters = {"bias": dict(bias.hyperparameters),
                                "accessibility": dict(accessibility.hyperparameters)}
        self.n_control_tracks = 0
        self.trimming = accessibility.trimming

    @classmethod
    def from_hyperparameters(cls, bias: dict, accessibility: dict) -> "ChromBPNet":
        return cls(BPNet(**bias), BPNet(**accessibility))

    @property
    def n_outputs(self) -> int:
        return self.accessibility.hyperparameters["n_outputs"]

    def train(self, mode: bool = True) -> "ChromBPNet":
        super().train(mode)
        self.bias.eval()  # frozen: always in inference mode
        return self

    def forward(self, X: torch.Tensor, X_ctl: torch.Tensor | None = None):
        """Profile logits (N, S, out) and log counts (N, 1) of the full model."""
        acc_profile, acc_counts = self.accessibility(X)
        bias_profile, bias_counts = self.bias(X)
        counts = torch.logsumexp(torch.cat([acc_counts, bias_counts], dim=1), dim=1, keepdim=True)
        return acc_profile + bias_profile, counts


def set_compute(model: nn.Module, fast_path: bool = True, precision: str = "fp32") -> nn.Module:
    """How every BPNet of `model` computes; returns `model`.

    Parameters
    ----------
    fast_path : bool
        `BPNet.forward_fast` where it applies, else the reference computation.
    precision : {"auto", "fp32", "bf16"}
        "bf16" runs the convolutions under bfloat16 autocast (float32
        outputs): about 3 significant digits, for devices with bf16 units;
        on CPUs without native bf16 it is several times slower than fp32.
        "auto" is "bf16" where the model's device has native bf16, else
        "fp32" (`bpnet_core.precision.resolve_precision`); the precision
        used is in ``model.precision``.
    """
    device = next(model.parameters()).device
    used = resolve_precision(precision, device)
    for module in model.modules():
        if isinstance(module, BPNet):
            module.fast_path = fast_path
            module.bf16 = used == "bf16"
    model.precision = used
    if precision == "auto":
        log.info("precision: %s (auto: %s bf16 on %s)", used,
                 "native" if used == "bf16" else "no native", device.type)
    return model


# File format tag -> architecture; the tag is stored in every model file.
MODEL_FORMATS = {"bpnet_core.BPNet": BPNet, "bpnet_core.ChromBPNet": ChromBPNet}
_FORMAT_OF = {cls: tag for tag, cls in MODEL_FORMATS.items()}


def save_model(model: BPNet | ChromBPNet, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Save a model as a state dict plus hyperparameters, atomically.

    No pickled module is stored, so later versions of this package load
    the file as long as the architecture's parameter names stay.

    Parameters
    ----------
    model : BPNet or ChromBPNet
    path : str or PathLike
    metadata : dict, optional
        Plain data stored alongside (training config, signal names, ...).
    """
    # Version 1 unless the file needs version 2's `count_trimming`, so that
    # older versions of this package read every file they can.
    version = 2 if any("count_trimming" in m.hyperparameters for m in model.modules() if isinstance(m, BPNet)) else 1
    payload = {
        "format": _FORMAT_OF[type(model)],
        "format_version": version,
        "hyperparameters": dict(model.hyperparameters),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": metadata or {},
    }
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_model(path: str | os.PathLike, key: str = "model", device: str | torch.device = "cpu"
               ) -> BPNet | ChromBPNet:
    """Load a model saved by `save_model` (either architecture), in eval mode.

    The file's metadata is on ``model.metadata``. An official ChromBPNet/BPNet
    Keras file or a bpnet-lite file is converted as it is read
    (`bpnet_core.model_import`; the workflow converts such files once, with
    its rule ``import_model``).

    Raises
    ------
    InputError
        When the file is missing or is not a model of this package nor one
        it can import.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: model file not found (config key '{key}')")
    from .model_import import FOREIGN_KINDS, load_foreign, model_file_kind  # it imports this module

    if model_file_kind(path, key) in FOREIGN_KINDS:
        return load_foreign(path, key).to(device).eval()
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except NOT_A_TORCH_FILE as err:
        raise InputError(f"{path} (config key '{key}'): not a model file of bpnet_core ({err.__class__.__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") not in MODEL_FORMATS:
        raise InputError(f"{path} (config key '{key}'): not a model file of bpnet_core")
    if payload.get("format_version", 0) > MODEL_FORMAT_VERSION:
        raise InputError(f"{path} (config key '{key}'): written by a newer bpnet_core; upgrade to read it")
    model = MODEL_FORMATS[payload["format"]].from_hyperparameters(**payload["hyperparameters"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise InputError(f"{path} (config key '{key}'): weights do not fit the stored architecture ({err})") from None
    model.metadata = payload.get("metadata", {})
    return model.to(device).eval()
