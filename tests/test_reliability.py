"""Interrupted training resumes; nothing half-written; GPU out-of-memory retries."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest
import torch

from bpnet_core.config import FitConfig
from bpnet_core.data import load_windows
from bpnet_core.io import atomic_output
from bpnet_core.models import load_model
from bpnet_core.predict import predict_windows
from bpnet_core.train import checkpoint_path, fit_model

from conftest import DEVICE, tiny_fit_config, write_json

# Checkpoints every 2 iterations, long enough to be killed mid-run.
RESUMABLE = dict(max_epochs=25, validation_iter=2, early_stopping=None)


def _history(path):
    return pd.read_csv(path, sep="\t").drop(columns=["elapsed_s", "examples_per_s"])


# A `bpnet-core fit` that kills itself right after writing its 3rd checkpoint:
# the kill lands at the same place on every machine, however fast.
_KILLED_AFTER_3_CHECKPOINTS = """
import os, signal, sys
from bpnet_core import cli, train

save, saved = train._TrainingRun.save, []

def save_then_die(run, path):
    save(run, path)
    saved.append(path)
    if len(saved) == 3:
        os.kill(os.getpid(), signal.SIGKILL)

train._TrainingRun.save = save_then_die
sys.exit(cli.main(sys.argv[1:]))
"""


def test_killed_fit_resumes_to_the_same_model(tiny_data, tmp_path):
    config = tiny_fit_config(tiny_data, **RESUMABLE, device=DEVICE)
    params = write_json(tmp_path / "fit.json", config)

    def fit(out, *python):
        # Every run is a `bpnet-core fit` process of the same environment
        # (one thread: conftest), so all of them compute alike.
        return subprocess.run([sys.executable, *python, "fit", "-p", str(params), "-o", str(out)],
                              capture_output=True, text=True)

    reference = tmp_path / "reference"
    assert fit(reference, "-m", "bpnet_core").returncode == 0

    out = tmp_path / "killed"
    killed = fit(out, "-c", _KILLED_AFTER_3_CHECKPOINTS)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    checkpoint = checkpoint_path(out / "tiny.torch")
    assert checkpoint.exists()
    # nothing that looks like a result is left behind
    assert not (out / "tiny.torch").exists() and not (out / "tiny.history.tsv").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]

    result = fit(out, "-m", "bpnet_core")
    assert result.returncode == 0, result.stderr
    assert "resuming from checkpoint" in result.stderr and "at iteration 6 " in result.stderr
    assert not checkpoint.exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    a = load_model(reference / "tiny.torch").state_dict()
    b = load_model(out / "tiny.torch").state_dict()
    # Bit for bit here (one thread, one machine); a replay bug (other
    # batches, lost optimizer state) moves weights by orders of magnitude
    # more than any float rounding.
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-4)
    pd.testing.assert_frame_equal(_history(reference / "tiny.history.tsv"), _history(out / "tiny.history.tsv"),
                                  rtol=1e-4)


def test_a_checkpoint_cut_short_is_ignored(tiny_data, tmp_path, caplog):
    config = FitConfig.model_validate(tiny_fit_config(tiny_data, max_epochs=1))
    checkpoint_path(tmp_path / "m.torch").write_bytes(b"PK\x03\x04 cut short")
    half_written = tmp_path / f".{checkpoint_path(tmp_path / 'm.torch').name}.x1y2.tmp"
    half_written.write_bytes(b"PK\x03\x04 cut short")
    with caplog.at_level(logging.INFO, logger="bpnet_core"):
        fit_model(config, tmp_path / "m.torch", tmp_path / "h.tsv")
    assert "ignoring unreadable checkpoint" in caplog.text
    assert not half_written.exists()
    assert pd.read_csv(tmp_path / "h.tsv", sep="\t")["iteration"].iloc[0] == 0


def test_an_error_reading_a_checkpoint_that_is_not_the_files_is_raised(tiny_data, tmp_path, monkeypatch):
    config = FitConfig.model_validate(tiny_fit_config(tiny_data, max_epochs=1))
    checkpoint_path(tmp_path / "m.torch").write_bytes(b"PK\x03\x04")

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(torch, "load", out_of_memory)
    with pytest.raises(torch.OutOfMemoryError):
        fit_model(config, tmp_path / "m.torch", tmp_path / "h.tsv")
    assert checkpoint_path(tmp_path / "m.torch").exists()  # not trained over from the start


def test_stages_keep_their_thread_count_when_numba_starts():
    # numba's OpenMP layer, on its first start, sets every core; a stage
    # given 1 thread must stay on 1 (runtime.set_threads).
    code = ("import torch; from bpnet_core.runtime import run_logged\n"
            "def stage():\n"
            "    import numba; numba.set_num_threads(1); return torch.get_num_threads()\n"
            "print(run_logged(stage, threads=1))")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "NUMBA_NUM_THREADS": "2"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "1"


def test_checkpoint_of_another_config_is_ignored(tiny_data, tmp_path, caplog):
    config = FitConfig.model_validate(tiny_fit_config(tiny_data, max_epochs=1))
    other = config.model_copy(update={"lr": 0.1})
    torch.save({"config": other.to_params()}, checkpoint_path(tmp_path / "m.torch"))
    with caplog.at_level(logging.INFO, logger="bpnet_core"):
        fit_model(config, tmp_path / "m.torch", tmp_path / "h.tsv")
    assert "ignoring checkpoint" in caplog.text and "of another config" in caplog.text
    assert pd.read_csv(tmp_path / "h.tsv", sep="\t")["iteration"].iloc[0] == 0
    assert not checkpoint_path(tmp_path / "m.torch").exists()


def test_verbose_and_device_do_not_invalidate_a_checkpoint(tiny_data):
    from bpnet_core.train import _resumable

    config = FitConfig.model_validate(tiny_fit_config(tiny_data))
    same = config.model_copy(update={"verbose": True, "device": "cpu"})
    assert _resumable(config.to_params()) == _resumable(same.to_params())
    assert _resumable(config.to_params()) != _resumable(config.model_copy(update={"lr": 0.5}).to_params())


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "result.npz"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


class _OutOfMemoryAbove(torch.nn.Module):
    """Wraps a model; raises CUDA's out-of-memory error for batches above `limit`."""

    def __init__(self, model, limit):
        super().__init__()
        self.model, self.limit, self.calls = model, limit, []

    def forward(self, X, X_ctl=None):
        self.calls.append(len(X))
        if len(X) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.model(X, X_ctl)


def test_prediction_retries_with_smaller_batches(tiny_data, tmp_path, caplog):
    config = FitConfig.model_validate(tiny_fit_config(tiny_data, max_epochs=1))
    fit_model(config, tmp_path / "m.torch", tmp_path / "h.tsv")
    device = torch.device(DEVICE)
    model = load_model(tmp_path / "m.torch", device=device)
    windows = load_windows(config.loci, config.sequences, controls=config.controls, chroms=["chr2"],
                           in_window=config.in_window, out_window=config.out_window)
    expected = predict_windows(model, windows, 64, device)
    flaky = _OutOfMemoryAbove(model, limit=5)
    with caplog.at_level(logging.WARNING, logger="bpnet_core"):
        got = predict_windows(flaky, windows, 64, device)
    assert "out of memory with batches of 64; retrying with 32" in caplog.text
    assert max(flaky.calls[-3:]) <= 5
    torch.testing.assert_close(torch.from_numpy(got[0]), torch.from_numpy(expected[0]))
    torch.testing.assert_close(torch.from_numpy(got[1]), torch.from_numpy(expected[1]))
