"""precision "auto": bf16 where the device computes it natively, fp32 elsewhere, recorded per run."""

from __future__ import annotations

import pytest
import torch

from bpnet_core import precision
from bpnet_core.config import FitConfig
from bpnet_core.models import BPNet, load_model, set_compute
from bpnet_core.precision import cpu_flags, resolve_precision

INTEL_AMX = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n\nprocessor\t: 1\n"
AMD_ZEN3 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"


@pytest.fixture
def cpu(monkeypatch, tmp_path):
    """Pretend the CPU is the one described by a /proc/cpuinfo text."""
    def use(text: str) -> None:
        path = tmp_path / f"cpuinfo.{abs(hash(text))}"  # a file per text: cpu_flags is cached by path
        path.write_text(text)
        monkeypatch.setattr(precision, "cpu_flags", lambda: cpu_flags(path))
    return use


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    (tmp_path / "cpuinfo").write_text(INTEL_AMX)
    assert {"avx512_bf16", "amx_bf16"} <= cpu_flags(tmp_path / "cpuinfo")
    assert cpu_flags(tmp_path / "absent") == frozenset()


def test_auto_is_bf16_only_where_the_cpu_has_native_bf16(cpu):
    cpu(INTEL_AMX)
    assert resolve_precision("auto", "cpu") == "bf16"
    cpu(AMD_ZEN3)
    assert resolve_precision("auto", "cpu") == "fp32"
    # An explicit choice is kept on any machine.
    assert resolve_precision("bf16", "cpu") == "bf16"
    cpu(INTEL_AMX)
    assert resolve_precision("fp32", "cpu") == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16", "cpu")


@pytest.mark.parametrize("capability, expected", [((7, 0), "fp32"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_auto_on_cuda_follows_the_compute_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert resolve_precision("auto", "cuda") == expected


def test_set_compute_resolves_auto_and_says_so(cpu, caplog):
    model = BPNet(n_filters=4, n_layers=2, n_outputs=1)
    cpu(AMD_ZEN3)
    with caplog.at_level("INFO", logger="bpnet_core"):
        set_compute(model, precision="auto")
    assert model.precision == "fp32" and not model.bf16
    assert "precision: fp32 (auto: no native bf16 on cpu)" in caplog.text
    cpu(INTEL_AMX)
    set_compute(model, precision="auto")
    assert model.precision == "bf16" and model.bf16


def test_the_config_keeps_auto_and_the_model_file_records_what_was_used(cpu, tiny_data, tmp_path):
    """Nodes that resolve "auto" differently see the same stage parameters (no rerun)."""
    from bpnet_core.train import fit_model

    config = FitConfig(sequences=str(tiny_data["sequences"]), signals=[str(tiny_data["signal_plus"])],
                       loci=str(tiny_data["peaks"]), training_chroms=["chr1"], validation_chroms=["chr2"],
                       in_window=400, out_window=200, n_filters=4, n_layers=2, max_epochs=1,
                       validation_iter=1000)
    assert config.precision == "auto" and config.to_params()["precision"] == "auto"
    cpu(AMD_ZEN3)
    fit_model(config, tmp_path / "m.torch", tmp_path / "m.tsv")
    metadata = load_model(tmp_path / "m.torch").metadata
    assert metadata["precision"] == "fp32" and metadata["config"]["precision"] == "auto"
