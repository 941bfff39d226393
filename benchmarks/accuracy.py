"""Held-out accuracy against bpnet-lite: same data, same config, same seeds, trained to the end.

The reference is bpnet-lite 1.1's ``bpnet fit`` (a benchmark-only
dependency, ``pip install --no-deps bpnet-lite==1.1.0``), run as its command
runs it: ``PeakGenerator`` over the peaks and, sampled afresh each epoch at
``negative_ratio`` 0.333, the background regions (profile loss masked on
them), Adam with ``ReduceLROnPlateau``, validation on the validation peaks
at the end of each epoch, the best model kept. This project runs
``bpnet_core.train.fit_model`` on the same JSON keys, in the two forms a user
writes: ``loci`` holding the peaks and the background regions (the
parameter reference's pipeline example), and ``loci`` the peaks with
``negatives`` the background regions.

Both are scored by the same code on the same held-out peaks (unjittered
windows of the validation chromosome): count Pearson, Spearman, MSE and mean
bias (predicted minus observed log(1 + counts)); profile MNLL, JSD and
Pearson; each with and without averaging the forward and reverse-complement
predictions.

Datasets (simulated; `bpnet_core.simulate.chip.simulate_demo`):

- ``wide``: shaped like a real ChIP experiment: 3,800 peaks whose totals
  span two orders of magnitude (log-normal noise of sd 1 per motif
  instance), sparse background reads, controls, GC-matched background
  regions; 15 Mb of training chromosome, 4 Mb of validation chromosome.
- ``demo``: the BPNet demo (``make demo``'s data).

ATAC datasets (simulated; `bpnet_core.simulate.atac.simulate_atac_demo`), trained
with ``config/demo_atac.json``'s settings, as ChromBPNet (bias model, then
the accessibility model through the full model) and as a plain BPNet on the
same peaks and background regions; scored on the held-out chr2 peaks with
the count Pearson the planted motifs allow (`motif_count_ceiling`):

- ``atac-demo``: ``make demo-atac``'s data (1,200 peaks on 6 Mb);
- ``atac-large``: 4,000 peaks on 20 Mb, the same simulation.

    python benchmarks/accuracy.py [--datasets wide demo atac-demo] [--seeds 0 1 2] [--epochs 12]
    python benchmarks/accuracy.py --datasets wide demo --tools bpnet_core:negatives:fp32 bpnet_core:negatives:bf16
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bpnet_core.chrombpnet import fit_bias_model, fit_chrombpnet
from bpnet_core.config import FitConfig, parse_config, pipeline_stages
from bpnet_core.data import load_windows
from bpnet_core.simulate.chip import simulate_demo
from bpnet_core.simulate.atac import motif_count_ceiling, simulate_atac_demo
from bpnet_core.metrics import performance
from bpnet_core.models import load_model
from bpnet_core.runtime import set_threads
from bpnet_core.predict import predict_windows
from bpnet_core.train import fit_model

sys.path.insert(0, str(Path(__file__).parent))
from speed import machine  # noqa: E402

# The benchmark config, for both tools.
MODEL = {"n_filters": 32, "n_layers": 6, "in_window": 1000, "out_window": 500, "batch_size": 32,
         "max_jitter": 64, "lr": 0.004, "alpha": 50.0}
DATASETS = {
    "wide": {"chrom_sizes": {"chr1": 15_000_000, "chr2": 4_000_000}, "n_peaks": 3800,
             "reads_per_strength": 40.0, "log_reads_sd": 1.0, "signal_background": 0.002,
             "sticky_rate": 0.02, "train": ["chr1"], "valid": ["chr2"]},
    "demo": {"train": ["chr1", "chr3", "chr4"], "valid": ["chr2"]},
}
ATAC_DATASETS = {
    "atac-demo": {},
    "atac-large": {"chrom_sizes": {"chr1": 7_000_000, "chr2": 4_000_000, "chr3": 5_000_000, "chr4": 4_000_000},
                   "n_peaks": 4000},
}
ATAC_CONFIG = Path(__file__).resolve().parents[1] / "config" / "demo_atac.json"
ATAC_TOOLS = ["chrombpnet", "bpnet"]


def simulate(name: str, folder: Path, seed: int) -> tuple[dict, dict]:
    spec = dict(DATASETS[name])
    train, valid = spec.pop("train"), spec.pop("valid")
    paths = simulate_demo(folder, seed=100 + seed, **spec)
    data = {key: str(path) for key, path in paths.items()}
    return data, {"training_chroms": train, "validation_chroms": valid}


def fit_config(data: dict, chroms: dict, seed: int, epochs: int, form: str, precision: str = "auto") -> dict:
    """This project's Fit JSON: `form` is "loci" (peaks + background in loci) or "negatives"."""
    config = {**MODEL, **chroms, "name": form, "max_epochs": epochs, "random_state": seed, "precision": precision,
              "early_stopping": None, "validation_iter": 100, "sequences": data["sequences"],
              "signals": [data["signal_plus"], data["signal_minus"]],
              "controls": [data["control_plus"], data["control_minus"]]}
    if form == "loci":
        return {**config, "loci": [data["peaks"], data["negatives"]]}
    return {**config, "loci": data["peaks"], "negatives": data["negatives"]}


def train_ours(data, chroms, seed, epochs, tool: str, folder: Path) -> torch.nn.Module:
    """`tool` is ``bpnet_core:<form>[:<precision>]``, e.g. ``bpnet_core:negatives:bf16``."""
    _, form, *precision = tool.split(":")
    path = folder / f"{'_'.join([form, *precision])}.torch"
    fit_model(fit_config(data, chroms, seed, epochs, form, *precision), path, path.with_suffix(".history.tsv"))
    return load_model(path, device="cpu")


def train_lite(data, chroms, seed, epochs, folder: Path) -> torch.nn.Module:
    """bpnet-lite 1.1's `bpnet fit`, its body with this benchmark's JSON."""
    from bpnetlite.bpnet import BPNet
    from bpnetlite.io import PeakGenerator
    from tangermeme.io import extract_loci

    torch.manual_seed(seed)
    signals = [data["signal_plus"], data["signal_minus"]]
    controls = [data["control_plus"], data["control_minus"]]
    training = PeakGenerator(peaks=data["peaks"], negatives=data["negatives"], sequences=data["sequences"],
                             signals=signals, controls=controls, chroms=chroms["training_chroms"],
                             in_window=MODEL["in_window"], out_window=MODEL["out_window"],
                             max_jitter=MODEL["max_jitter"], negative_ratio=0.333, reverse_complement=True,
                             random_state=seed, batch_size=MODEL["batch_size"], pin_memory=False)
    X, y, X_ctl = extract_loci(sequences=data["sequences"], signals=signals, in_signals=controls,
                               loci=data["peaks"], chroms=chroms["validation_chroms"],
                               in_window=MODEL["in_window"], out_window=MODEL["out_window"], max_jitter=0,
                               ignore=list("QWERYUIOPSDFHJKLZXVBNM"))
    model = BPNet(n_filters=MODEL["n_filters"], n_layers=MODEL["n_layers"], n_outputs=2, n_control_tracks=2,
                  count_loss_weight=MODEL["alpha"], trimming=(MODEL["in_window"] - MODEL["out_window"]) // 2,
                  name=str(folder / "lite"), verbose=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=MODEL["lr"])
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=5,
                                                           threshold=0.0001, min_lr=0.0001)
    model.fit(training, optimizer, scheduler, X_valid=X, X_ctl_valid=X_ctl, y_valid=y, max_epochs=epochs,
              batch_size=MODEL["batch_size"], device="cpu")
    return torch.load(folder / "lite.torch", weights_only=False)


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Log probabilities of one multinomial over both strands and all positions, shape (N, S, L)."""
    return logits.reshape(len(logits), -1).log_softmax(-1).reshape(logits.shape)


@torch.no_grad()
def predict(model, X: torch.Tensor, X_ctl: torch.Tensor, rc_average: bool) -> tuple[np.ndarray, np.ndarray]:
    """Profile logits (N, 2, L) and log counts (N,); with `rc_average`, the mean of both strands' predictions."""
    model.eval()
    logits, counts = [], []
    for i in range(0, len(X), 256):
        x, c = X[i:i + 256].float(), X_ctl[i:i + 256].float()
        profile, count = model(x, c)
        if rc_average:
            # Reverse complement: flip bases and positions; stranded tracks swap.
            rc_profile, rc_count = model(x.flip(1, 2), c.flip(1, 2))
            profile = torch.logsumexp(torch.stack([_log_softmax(profile), _log_softmax(rc_profile.flip(1, 2))]), 0)
            count = (count + rc_count) / 2
        logits.append(profile.float())
        counts.append(count.float().reshape(-1))
    return torch.cat(logits).numpy(), torch.cat(counts).numpy()


def score(model, windows, rc_average: bool) -> dict:
    logits, log_counts = predict(model, windows.X, windows.X_ctl, rc_average)
    return metrics(logits, log_counts, windows.y.numpy())


def metrics(logits: np.ndarray, log_counts: np.ndarray, y: np.ndarray) -> dict:
    """The benchmark's held-out metrics of predictions against observed counts (N, S, L)."""
    summary, per_region = performance(logits, log_counts, y)
    bias = per_region["predicted_log_counts"] - per_region["observed_log_counts"]
    return {"count_pearson": summary["count_pearson"], "count_spearman": summary["count_spearman"],
            "count_mse": summary["count_mse"], "count_bias": float(bias.mean()),
            "profile_mnll": summary["profile_mnll"], "profile_jsd": summary["profile_jsd"],
            "profile_pearson": summary["profile_pearson"]}


def run(dataset: str, seed: int, epochs: int, tools: list[str], workdir: Path) -> list[dict]:
    folder = workdir / f"{dataset}_{seed}"
    data, chroms = simulate(dataset, folder / "data", seed)
    held_out = load_windows(data["peaks"], data["sequences"], [data["signal_plus"], data["signal_minus"]],
                            [data["control_plus"], data["control_minus"]], chroms=chroms["validation_chroms"],
                            in_window=MODEL["in_window"], out_window=MODEL["out_window"])
    rows = []
    for tool in tools:
        start = time.perf_counter()
        model = (train_lite(data, chroms, seed, epochs, folder) if tool == "bpnet-lite"
                 else train_ours(data, chroms, seed, epochs, tool, folder))
        seconds = time.perf_counter() - start
        for rc in (False, True):
            rows.append({"dataset": dataset, "seed": seed, "tool": tool, "rc_average": rc,
                         "n_peaks": len(held_out), "train_s": round(seconds), **score(model, held_out, rc)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def atac_stages(data: dict, seed: int) -> dict:
    """The bias-fit and fit stages of ``config/demo_atac.json`` over `data`, with `random_state` = `seed`."""
    config = json.loads(ATAC_CONFIG.read_text())
    config.update(sequences=str(data["sequences"]), signals=[str(data["signal"])], loci=str(data["peaks"]),
                  negatives=str(data["negatives"]), random_state=seed)
    return pipeline_stages(parse_config(config, str(ATAC_CONFIG)), str(ATAC_CONFIG))


def run_atac(dataset: str, seed: int, tools: list[str], workdir: Path) -> list[dict]:
    """ChromBPNet and a plain BPNet on a simulated ATAC set: held-out chr2 peaks, with the motif ceiling."""
    folder = workdir / f"{dataset}_{seed}"
    data = simulate_atac_demo(folder / "data", seed=seed, **ATAC_DATASETS[dataset])
    stages = atac_stages(data, seed)
    fit = stages["fit"]
    held_out = load_windows(fit.loci, fit.sequences, fit.signals, None, chroms=fit.validation_chroms,
                            in_window=fit.in_window, out_window=fit.out_window)
    ceiling = motif_count_ceiling(data, fit.validation_chroms, fit.out_window)["pearson"]
    rows = []
    for tool in tools:
        start = time.perf_counter()
        if tool == "chrombpnet":
            bias = folder / "bias.torch"
            fit_bias_model(stages["bias_fit"], bias, folder / "bias.history.tsv")
            fit_chrombpnet(fit, bias, folder / "full.torch", folder / "accessibility.torch", folder / "history.tsv")
            models = {"full": folder / "full.torch", "accessibility": folder / "accessibility.torch"}
        else:
            plain = fit.model_dump(include=set(FitConfig.model_fields)) | {"name": "bpnet"}
            fit_model(plain, folder / "bpnet.torch", folder / "bpnet.history.tsv")
            models = {"bpnet": folder / "bpnet.torch"}
        seconds = time.perf_counter() - start
        for part, path in models.items():
            model = load_model(path, device="cpu")
            logits, log_counts = predict_windows(model, held_out, 64, torch.device("cpu"), rc_average=True)
            rows.append({"dataset": dataset, "seed": seed, "tool": f"bpnet_core:{tool}", "model": part,
                         "n_peaks": len(held_out), "train_s": round(seconds), "count_ceiling": ceiling,
                         **metrics(logits, log_counts, held_out.y.numpy())})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=[*DATASETS, *ATAC_DATASETS])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--tools", nargs="+", default=["bpnet_core:loci", "bpnet_core:negatives", "bpnet-lite"],
                        help="for the ChIP datasets: bpnet-lite, or bpnet_core:<loci|negatives>[:<fp32|bf16|auto>] "
                             "(precision default auto); the ATAC datasets run ChromBPNet and a plain BPNet")
    parser.add_argument("--workdir", help="keep data and models here (default: a temporary folder)")
    parser.add_argument("--output", default="accuracy.tsv")
    args = parser.parse_args()
    set_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp)
        rows = [row for dataset in args.datasets if dataset in DATASETS for seed in args.seeds
                for row in run(dataset, seed, args.epochs, args.tools, workdir)]
        atac = [row for dataset in args.datasets if dataset in ATAC_DATASETS for seed in args.seeds
                for row in run_atac(dataset, seed, ATAC_TOOLS, workdir)]
    if atac:
        report_atac(pd.DataFrame(atac), args.seeds, Path(args.output).with_suffix(".atac.tsv"))
    if not rows:
        return
    table = pd.DataFrame(rows)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.output, sep="\t", index=False)
    metrics = ["count_pearson", "count_spearman", "count_mse", "count_bias", "profile_mnll", "profile_jsd",
               "profile_pearson", "train_s"]
    mean = table.groupby(["dataset", "rc_average", "tool"], sort=False)[metrics].mean()
    print(f"\nHeld-out peaks, mean over seeds {args.seeds} ({args.epochs} epochs):")
    print(mean.round(3).to_string())


def report_atac(table: pd.DataFrame, seeds: list[int], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, sep="\t", index=False)
    metrics = ["count_ceiling", "count_pearson", "count_spearman", "count_mse", "count_bias", "profile_jsd",
               "profile_pearson", "train_s"]
    mean = table.groupby(["dataset", "tool", "model"], sort=False)[metrics].mean()
    print(f"\nATAC, held-out peaks, mean over seeds {seeds} (config/demo_atac.json, RC-averaged):")
    print(mean.round(3).to_string())


if __name__ == "__main__":
    main()
