"""The `precision` a model computes in: a config key (`bpnet_core.config`) and a
model setting (`bpnet_core.models.set_compute`), defined once for both."""

from __future__ import annotations

from typing import Literal, get_args

# Extension: "bf16" computes the model under bfloat16 autocast (see
# `bpnet_core.models.set_compute`); DeepLIFT/SHAP always runs in float32.
Precision = Literal["fp32", "bf16"]
PRECISIONS = get_args(Precision)
