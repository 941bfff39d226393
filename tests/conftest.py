"""Shared fixtures: a tiny simulated dataset and pipeline configs over it.

Every process of the suite computes on one thread: the two demo pipelines
run in the background (`demo_runs`) while the other tests run, and
multi-threaded torch processes sharing 2 cores slow each other down many
times over (their threads spin while waiting for each other).
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported, here and in subprocesses

import contextlib
import json
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bpnet_core.simulate.chip import simulate_demo
from bpnet_core.simulate.atac import simulate_atac_demo
from bpnet_core.runtime import set_threads

# In-process computations on one thread too, whatever numba does later.
set_threads(1)

REPO = Path(__file__).resolve().parents[1]

# The device of the tests that touch device code paths (test_device.py, the
# resume and out-of-memory tests): the CPU here and in CI; the GPU check
# (benchmarks/gpu_check.sh) runs them with BPNET_TEST_DEVICE=cuda.
DEVICE = os.environ.get("BPNET_TEST_DEVICE", "cpu")

# A model small enough to train in seconds: 2 layers -> receptive field
# half-width 10 + 2 + 4 + 37 = 53 bp, so 206 -> 100 trims exactly that.
TINY_MODEL = {
    "n_filters": 8,
    "n_layers": 2,
    "in_window": 206,
    "out_window": 100,
    "batch_size": 16,
    "max_jitter": 16,
    "max_epochs": 2,
    "validation_iter": 4,
    "lr": 0.004,
    "alpha": 10,
    "random_state": 0,
}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """Simulated ChIP-like data: chr1 (training) and chr2 (validation)."""
    out = tmp_path_factory.mktemp("tiny_data")
    return simulate_demo(out, seed=1, chrom_sizes={"chr1": 200_000, "chr2": 100_000})


def tiny_fit_config(data: dict[str, Path], **overrides) -> dict:
    """A BPNet Fit JSON (as a dict) over `data`."""
    return {
        **TINY_MODEL,
        "name": "tiny",
        "training_chroms": ["chr1"],
        "validation_chroms": ["chr2"],
        "sequences": str(data["sequences"]),
        "loci": [str(data["peaks"]), str(data["negatives"])],
        "signals": [str(data["signal_plus"]), str(data["signal_minus"])],
        "controls": [str(data["control_plus"]), str(data["control_minus"])],
        **overrides,
    }


def tiny_pipeline_config(data: dict[str, Path], **overrides) -> dict:
    """A BPNet pipeline JSON (as a dict) over `data`."""
    return {
        **TINY_MODEL,
        "name": "tiny",
        "sequences": str(data["sequences"]),
        "signals": [str(data["signal_plus"]), str(data["signal_minus"])],
        "controls": [str(data["control_plus"]), str(data["control_minus"])],
        "fit_parameters": {
            "training_chroms": ["chr1"],
            "validation_chroms": ["chr2"],
            "loci": [str(data["peaks"]), str(data["negatives"])],
        },
        "predict_parameters": {"chroms": ["chr2"], "loci": str(data["peaks"])},
        **overrides,
    }


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path


SNAKEFILE = REPO / "workflow" / "Snakefile"


def snakemake(workdir: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the workflow in `workdir` with `config`, one core (see the module docstring)."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
         "--configfile", str(config), "--cores", "1", *args],
        capture_output=True, text=True)


def planned_jobs(workdir: Path, config: Path) -> Counter:
    """Rule name -> number of jobs a dry run plans (empty when nothing to do)."""
    result = snakemake(workdir, config, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    table = re.search(r"Job stats:\n(.*?)\n\s*total", result.stdout, re.S)
    if table is None:
        assert "Nothing to be done" in result.stdout + result.stderr
        return Counter()
    rows = [line.split() for line in table.group(1).splitlines()[2:]]
    return Counter({rule: int(n) for rule, n in rows})


def with_interpretation(data: dict, tiny_data) -> dict:
    """The tiny pipeline plus attribute, TF-MoDISco and marginalize blocks."""
    return {
        **data,
        "attribute_parameters": {"n_shuffles": 3, "batch_size": 8},
        "modisco_motifs_parameters": {"n_seqlets": 500, "window": 100},
        "modisco_report_parameters": {"motifs": str(tiny_data["motifs"])},
        "marginalize_parameters": {"loci": str(tiny_data["negatives"]), "chroms": ["chr2"], "n_loci": 10},
    }


@pytest.fixture(scope="session")
def pipeline_run(tiny_data, tmp_path_factory):
    """One full run of the workflow on the tiny data: (workdir, config path, config dict).

    Shared by the workflow and report tests; they only read its results and
    dry-run edited copies of its config.
    """
    workdir = tmp_path_factory.mktemp("workflow")
    data = with_interpretation(tiny_pipeline_config(tiny_data), tiny_data)
    config = write_json(workdir / "tiny.json", data)
    result = snakemake(workdir, config)
    assert result.returncode == 0, result.stdout + result.stderr
    return workdir, config, data


# --------------------------------------------------------------------------
# The demos, run by the workflow in the background from the first test on,
# one core each; their tests run last (`pytest_collection_modifyitems`).


# The demo batch takes 4-6 min on 2 idle cores; past this it is stuck.
DEMO_TIMEOUT_S = 45 * 60


class DemoRun:
    """The demo pipelines, started as one batch run; `results(name)` waits for it."""

    def __init__(self, workdir: Path, process: subprocess.Popen):
        self.workdir, self.process = workdir, process

    def results(self, name: str) -> Path:
        try:
            self.process.wait(timeout=DEMO_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"the demo batch ran past {DEMO_TIMEOUT_S} s; log: {self.workdir / 'snakemake.log'}")
        log = (self.workdir / "snakemake.log").read_text()
        assert (self.workdir / "results" / name / f"{name}.report.html").is_file(), log[-6000:]
        return self.workdir / "results" / name

    def stop(self) -> None:
        """Kill the batch and every job it started (its own process group)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start_demos(workdir: Path, demos: dict[str, tuple]) -> DemoRun:
    """Simulate each demo's data into `workdir`; run the workflow on all of them as one batch.

    Two jobs at a time, one thread each (`--max-threads 1`), and on past a
    failed dataset (`--keep-going`), so that each demo's tests see its own result.
    """
    configs = []
    for name, (simulate, edit) in demos.items():
        simulate(workdir / "resources" / name)
        # The demo configs name resources/<name>/..., relative to the working directory.
        config = edit(json.loads((REPO / "config" / f"{name}.json").read_text()))
        configs.append(str(write_json(workdir / f"{name}.json", config)))
    batch = write_json(workdir / "demos.json", {"datasets": configs})
    with open(workdir / "snakemake.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
             "--configfile", str(batch), "--cores", "2", "--max-threads", "1", "--keep-going"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return DemoRun(workdir, process)


def _bpnet_demo(config: dict) -> dict:
    return config


def _atac_demo(config: dict) -> dict:
    """`config/demo_atac.json` scaled down to a 2.6 Mb genome and fewer epochs."""
    config.update(max_epochs=16, validation_iter=100, training_chroms=["chr1", "chr3"])
    config["bias_fit_parameters"].update(max_epochs=3)
    config["bias_qc_parameters"].update(n_loci=200, n_shuffles=6)
    # Motifs from more peaks than chr2 alone has (chr3 is seen in training).
    config["attribute_parameters"].update(chroms=["chr2", "chr3"], n_shuffles=6)
    return config


ATAC_CHROM_SIZES = {"chr1": 1_200_000, "chr2": 600_000, "chr3": 800_000}
# Peaks and background regions whose windows run off both ends of chr1
# (training) and chr2 (validation, prediction, attribution, marginalization),
# as MACS3 calls them near telomeres: every stage drops and counts them.
EDGE_LOCI = {chrom: [(0, 300, 40), (size - 300, size, 260)]
             for chrom, size in ATAC_CHROM_SIZES.items() if chrom in ("chr1", "chr2")}


def with_edge_loci(paths: dict[str, Path]) -> dict[str, Path]:
    """Append `EDGE_LOCI` to a simulated dataset's peaks (with summits) and negatives."""
    import gzip

    with gzip.open(paths["peaks"], "at") as peaks, gzip.open(paths["negatives"], "at") as negatives:
        for chrom, loci in EDGE_LOCI.items():
            for i, (start, end, summit) in enumerate(loci):
                peaks.write(f"{chrom}\t{start}\t{end}\tedge{i}\t0\t.\t1\t1\t1\t{summit}\n")
                negatives.write(f"{chrom}\t{start}\t{end}\n")
    return paths


# Demo -> (simulator, config edit).
DEMOS = {
    "demo": (simulate_demo, _bpnet_demo),
    "demo_atac": (lambda out: with_edge_loci(simulate_atac_demo(out, chrom_sizes=ATAC_CHROM_SIZES)),
                  _atac_demo),
}
# Test module -> the demos it reads; these modules run last.
DEMO_MODULES = {
    "test_demo_acceptance": ["demo"],
    "test_chrombpnet_acceptance": ["demo_atac"],
    "test_batch_acceptance": ["demo", "demo_atac"],
}


@pytest.fixture(scope="session", autouse=True)
def demo_runs(request, tmp_path_factory) -> DemoRun | None:
    """The demos that the selected tests need, started at once as one batch run."""
    selected = {item.module.__name__ for item in request.session.items}
    names = sorted({name for module, names in DEMO_MODULES.items() if module in selected for name in names})
    if not names:
        yield None
        return
    run = start_demos(tmp_path_factory.mktemp("demos"), {name: DEMOS[name] for name in names})
    yield run
    run.stop()


def pytest_collection_modifyitems(session, config, items):
    """Run the tests that wait for a background demo last."""
    items.sort(key=lambda item: item.module.__name__ in DEMO_MODULES)


def fast_and_reference_outputs(model, X, X_ctl) -> dict[str, list]:
    """Outputs and gradients (profile, counts, d/dX, d/dparameters) of `forward` and `forward_reference`.

    The gradients are of one function of both heads, so they go through every layer.
    """
    import torch

    X = X.detach().clone().requires_grad_(True)
    outputs = {}
    for name, forward in (("fast", model.forward), ("reference", model.forward_reference)):
        model.zero_grad()
        X.grad = None
        profile, counts = forward(X, X_ctl)
        (torch.log_softmax(profile.flatten(1), 1)[:, ::7].sum() + counts.square().sum()).backward()
        outputs[name] = [profile.detach(), counts.detach(), X.grad.clone(),
                         *(p.grad.clone() for p in model.parameters())]
    return outputs

