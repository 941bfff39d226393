"""The device code paths, on the device of BPNET_TEST_DEVICE (the CPU unless the GPU check says cuda).

The model's fast path against its reference computation, bf16 autocast,
precision "auto" in a whole fit, and a model trained on the device that
loads on the CPU. The resume and out-of-memory tests of test_reliability.py
follow the same variable.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from bpnet_core.config import FitConfig
from bpnet_core.models import BPNet, load_model, set_compute
from bpnet_core.precision import resolve_precision
from bpnet_core.train import fit_model

from conftest import DEVICE, fast_and_reference_outputs, tiny_fit_config

device = torch.device(DEVICE)
if device.type == "cuda" and not torch.cuda.is_available():
    pytest.skip("BPNET_TEST_DEVICE=cuda, but torch sees no CUDA GPU", allow_module_level=True)


@pytest.fixture(autouse=True)
def exact_float32():
    """float32 convolutions and products as written: no TF32 on GPUs (PyTorch's default for convolutions)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _one_hot(n: int, length: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    bases = torch.randint(0, 4, (n, length), generator=g)
    return torch.nn.functional.one_hot(bases, 4).permute(0, 2, 1).float().contiguous().to(device)


def test_fast_path_gives_the_reference_outputs_and_gradients_on_the_device():
    torch.manual_seed(0)
    model = BPNet(n_filters=16, n_layers=3, n_outputs=2, n_control_tracks=2, trimming=69).to(device)
    X = _one_hot(4, 2 * 69 + 60)
    X_ctl = torch.rand(4, 2, X.shape[2], device=device) * 5
    outputs = fast_and_reference_outputs(model, X, X_ctl)
    assert outputs["fast"][0].device.type == device.type
    for fast, reference in zip(outputs["fast"], outputs["reference"]):
        torch.testing.assert_close(fast, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fast_path", [True, False])
def test_bf16_on_the_device_is_within_bf16_rounding_of_fp32(fast_path):
    torch.manual_seed(0)
    model = BPNet(n_filters=16, n_layers=3, n_outputs=2, n_control_tracks=2, trimming=69).to(device).eval()
    X, X_ctl = _one_hot(4, 240), torch.rand(4, 2, 240, device=device) * 5
    with torch.no_grad():
        profile, counts = set_compute(model, fast_path, "fp32")(X, X_ctl)
        profile16, counts16 = set_compute(model, fast_path, "bf16")(X, X_ctl)
    assert profile16.dtype == counts16.dtype == torch.float32
    torch.testing.assert_close(torch.softmax(profile16.flatten(1), 1), torch.softmax(profile.flatten(1), 1),
                               rtol=0.02, atol=0)
    torch.testing.assert_close(counts16, counts, rtol=0.02, atol=0.01)
    assert not torch.equal(counts16, counts)  # it did compute in bf16


def test_a_fit_on_the_device_learns_records_its_precision_and_loads_on_the_cpu(tiny_data, tmp_path):
    config = FitConfig.model_validate(tiny_fit_config(tiny_data, max_epochs=20, validation_iter=10, device=DEVICE))
    assert config.precision == "auto"
    metadata = fit_model(config, tmp_path / "m.torch", tmp_path / "m.tsv")
    history = pd.read_csv(tmp_path / "m.tsv", sep="\t")
    assert history["valid_loss"].min() < 0.95 * history["valid_loss"].iloc[0]
    model = load_model(tmp_path / "m.torch", device="cpu")
    assert model.metadata["device"].startswith(device.type)
    assert model.metadata["precision"] == resolve_precision("auto", device) == metadata["precision"]
    assert all(p.device.type == "cpu" for p in model.parameters())
