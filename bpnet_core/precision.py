"""The `precision` a model computes in: a config key (`bpnet_core.config`) and a
model setting (`bpnet_core.models.set_compute`), defined once for both.

"auto", the default, is bfloat16 autocast where the device computes bf16
natively (CPUs with AVX-512 BF16 or AMX; CUDA GPUs of compute capability 8.0
or newer: A100, H100, ...) and float32 elsewhere, where bf16 is emulated and
several times slower. The config keeps "auto", so a batch whose jobs land on
different machines reruns nothing; what a job used is logged and recorded in
the model file (``metadata["precision"]``).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:  # torch is imported where a device is resolved, not at config load
    import torch

log = logging.getLogger("bpnet_core")

# Extension: "bf16" computes the model under bfloat16 autocast (see
# `bpnet_core.models.set_compute`); DeepLIFT/SHAP always runs in float32.
Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS = get_args(Precision)
# CPU flags (Linux /proc/cpuinfo) of native bf16 arithmetic.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The feature flags of the first CPU in `cpuinfo`; empty where there is no such file."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16(device: torch.device | str) -> bool:
    """Whether `device` computes bfloat16 natively (see the module docstring)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 0)
    if device.type == "cpu":
        return bool(BF16_CPU_FLAGS & cpu_flags())
    return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """The precision a model computes in on `device`: "fp32" or "bf16" ("auto" resolved)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"
