"""Training, prediction, attribution and loading speed against bpnet-lite, same machine, same data.

The reference is the PyTorch BPNet of the `bpnet-lite` package, a
benchmark-only dependency (``pip install --no-deps bpnet-lite``): its model,
the body of its ``BPNet.fit`` loop (``_mixture_loss``, gradients clipped at
norm 1, Adam as its ``bpnet fit`` command builds it), tangermeme's
``predict`` and ``deep_lift_shap`` with its ``ProfileWrapper``. This project
runs its own code paths: the training step of ``bpnet_core.train`` (AdamW,
clipping at 1), ``predict_windows`` and ``bpnet_core.attribute.deep_lift_shap``
(with its convergence check), each with the fast path on (the default) and
off (``"fast_path": false``).

Every model starts from the same initial weights (bpnet-lite's; the
parameter names are the same) and sees the same batches in the same order,
so the validation loss after the same examples shows whether speed was
bought with accuracy.

Data: the simulated BPNet demo (3 Mb genome, stranded signal and controls),
2114 -> 1000 bp windows around its peaks and background regions; training on
chr1, chr3, chr4, validation on the chr2 peaks. Model: 64 filters x 8
layers, two stranded outputs, two control tracks, batch 64, alpha 10.

Loading: examples/s that the training sampler delivers by itself (jitter
128, reverse complement), and the peak memory (RSS) of a fresh process that
loads 10k and 100k random windows with two signal and two control tracks.

    python benchmarks/speed.py [--steps 30] [--compile] [--predict 256] [--attribute 16] [--exact 2] [--load 10000 100000]
    python benchmarks/speed.py --device cuda --n-filters 512 --training-only     the official ChromBPNet size on a GPU

``--device cuda`` runs every model, both implementations, on the GPU (timings
synchronise the device); the float64 attributions stay on the CPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bpnet_core.attribute import CountHead, ProfileHead, deep_lift_shap, paired_references
from bpnet_core.config import FitConfig
from bpnet_core.data import TrainingSampler, load_windows
from bpnet_core.simulate.chip import simulate_demo
from bpnet_core.losses import bpnet_loss
from bpnet_core.models import BPNet, set_compute
from bpnet_core.precision import native_bf16
from bpnet_core.predict import predict_windows
from bpnet_core.train import _TrainingRun

IN_WINDOW, OUT_WINDOW, BATCH, ALPHA, LR, JITTER = 2114, 1000, 64, 10.0, 1e-3, 128
CPU = torch.device("cpu")
DEVICE = CPU  # --device


def machine() -> str:
    info = open("/proc/cpuinfo").read()
    cpu = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
               platform.processor() or platform.machine())
    bf16 = native_bf16("cpu")
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
            f"native CPU bf16: {'yes' if bf16 else 'no'}, {gpu}, torch {torch.__version__}")


def demo_windows(folder: Path):
    data = simulate_demo(folder / "demo")
    common = dict(sequences=str(data["sequences"]), signals=[str(data["signal_plus"]), str(data["signal_minus"])],
                  controls=[str(data["control_plus"]), str(data["control_minus"])],
                  in_window=IN_WINDOW, out_window=OUT_WINDOW)
    loci = [str(data["peaks"]), str(data["negatives"])]
    train = load_windows(loci, chroms=["chr1", "chr3", "chr4"], max_jitter=JITTER, **common)
    valid = load_windows(str(data["peaks"]), chroms=["chr2"], **common)
    config = FitConfig.model_validate({**common, "loci": loci, "training_chroms": ["chr1", "chr3", "chr4"],
                                       "validation_chroms": ["chr2"], "alpha": ALPHA, "lr": LR,
                                       "batch_size": BATCH, "max_jitter": JITTER})
    return data, train, valid, config


def timed(run) -> float:
    """Wall seconds of `run()`, the device's queued work included."""
    start = time.perf_counter()
    run()
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


# ---------------------------------------------------------------- training

def reference_step(model, optimizer, X, X_ctl, y, _always=None):
    """The body of bpnet-lite's `BPNet.fit` loop (autocast at its default float32 is a no-op)."""
    from bpnetlite.losses import _mixture_loss

    optimizer.zero_grad()
    model.train()
    X, X_ctl, y = X.to(DEVICE), X_ctl.to(DEVICE), y.to(DEVICE)
    y_hat_logits, y_hat_logcounts = model(X, X_ctl)
    _, _, loss = _mixture_loss(y, y_hat_logits, y_hat_logcounts, model.count_loss_weight)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1)
    optimizer.step()


def our_step(config):
    """`bpnet_core.train`'s training step."""
    def step(model, optimizer, X, X_ctl, y, _always=None):
        _TrainingRun(model, optimizer, None, None, config, DEVICE).step(X, X_ctl, y)
    return step


def validation_loss(model, valid) -> float:
    """Mean profile MNLL + alpha x count MSE over the validation windows."""
    logits, log_counts = predict_windows(model, valid, BATCH, DEVICE)
    return float(bpnet_loss(torch.from_numpy(logits), torch.from_numpy(log_counts)[:, None], valid.y, ALPHA)[0])


def train(model, step, batches, valid, optimizer_class, compile_model=False):
    """(examples/s after the first batch, validation loss after all, seconds of the first batch)."""
    model.to(DEVICE).train()
    optimizer = optimizer_class([p for p in model.parameters() if p.requires_grad], lr=LR)
    run = torch.compile(model) if compile_model else model
    first = timed(lambda: step(run, optimizer, *batches[0]))
    rest = timed(lambda: [step(run, optimizer, *batch) for batch in batches[1:]])
    return BATCH * (len(batches) - 1) / rest, validation_loss(model, valid), first


# ---------------------------------------------------------------- loading

def load_memory(n: int, data: dict, folder: Path) -> dict:
    """Seconds and peak RSS (GB) of a fresh process that loads `n` random training windows."""
    rng = np.random.default_rng(0)
    sizes = {line.split()[0]: int(line.split()[1]) for line in open(f"{data['sequences']}.fai")}
    names = list(sizes)
    lengths = np.array([sizes[c] for c in names])
    chrom = rng.choice(len(names), n, p=lengths / lengths.sum())
    half = IN_WINDOW // 2 + JITTER
    centers = (half + rng.random(n) * (lengths[chrom] - 2 * half - 1)).astype(int)
    bed = folder / f"random_{n}.bed"
    order = np.lexsort((centers, chrom))
    bed.write_text("".join(f"{names[c]}\t{p - 100}\t{p + 100}\n" for c, p in zip(chrom[order], centers[order])))
    script = f"""
import json, time
from bpnet_core.data import load_windows
start = time.perf_counter()
w = load_windows({str(bed)!r}, {str(data['sequences'])!r},
                 signals=[{str(data['signal_plus'])!r}, {str(data['signal_minus'])!r}],
                 controls=[{str(data['control_plus'])!r}, {str(data['control_minus'])!r}],
                 in_window={IN_WINDOW}, out_window={OUT_WINDOW}, max_jitter={JITTER})
seconds = time.perf_counter() - start
held = sum(t.numel() * t.element_size() for t in (w.X, w.y, w.X_ctl))
# VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's peak
# at fork, and this benchmark's parent holds gigabytes.
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({{"n": len(w), "seconds": seconds, "held_gb": held / 1e9, "rss_gb": peak / 1e6}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="training batches per variant (the first is untimed)")
    parser.add_argument("--bf16-steps", type=int, default=3, help="batches of the bf16 row (slow without native bf16)")
    parser.add_argument("--compile", action="store_true", help="add a torch.compile row (about 30 s to compile)")
    parser.add_argument("--predict", type=int, default=256, help="sequences to predict")
    parser.add_argument("--attribute", type=int, default=16, help="sequences to attribute (20 shuffles each)")
    parser.add_argument("--exact", type=int, default=2, help="sequences also attributed in float64, the exact values")
    parser.add_argument("--load", type=int, nargs="*", default=[10_000, 100_000], help="windows to load for RSS")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--n-filters", type=int, default=64, help="model width (the official ChromBPNet: 512)")
    parser.add_argument("--n-layers", type=int, default=8)
    parser.add_argument("--training-only", action="store_true", help="skip prediction, attribution and loading")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    from bpnet_core.precision import resolve_precision
    from bpnetlite.bpnet import BPNet as LiteBPNet
    from bpnetlite.bpnet import CountWrapper, ProfileWrapper, _ProfileLogitScaling
    from tangermeme._deep_lift_utils import _nonlinear
    from tangermeme.deep_lift_shap import deep_lift_shap as tangermeme_dls
    from tangermeme.predict import predict

    folder = Path(tempfile.mkdtemp(prefix="bpnet_speed_"))
    data, training, valid, config = demo_windows(folder)
    torch.manual_seed(0)
    lite = LiteBPNet(args.n_filters, args.n_layers, n_outputs=2, n_control_tracks=2, count_loss_weight=ALPHA,
                     trimming=(IN_WINDOW - OUT_WINDOW) // 2, verbose=False)
    ours = BPNet(n_filters=args.n_filters, n_layers=args.n_layers, n_outputs=2, n_control_tracks=2,
                 trimming=(IN_WINDOW - OUT_WINDOW) // 2)
    ours.load_state_dict(lite.state_dict())
    sampler = TrainingSampler(training, BATCH, IN_WINDOW, OUT_WINDOW, True, random_state=0)
    batches = []
    while len(batches) < args.steps:
        batches.extend(b for b in sampler)
    batches = batches[:args.steps]

    print(machine())
    print(f"device {DEVICE}; precision \"auto\" (the default) computes in {resolve_precision('auto', DEVICE)} here")
    print(f"model {args.n_filters} filters x {args.n_layers} layers; {len(training)} training windows (chr1, chr3, "
          f"chr4), {len(valid)} validation peaks (chr2); {args.steps} batches of {BATCH}, the first untimed")

    reference_speed = None
    speeds = {}
    print(f"\n{'training':52s} {'examples/s':>10s} {'ratio':>6s} {'valid loss':>10s} {'1st batch s':>11s}")

    def row(label, speed, loss=float("nan"), first=float("nan")):
        nonlocal reference_speed
        reference_speed = reference_speed or speed
        speeds[label] = speed
        print(f"{label:52s} {speed:10.1f} {speed / reference_speed:5.2f}x {loss:10.2f} {first:11.1f}", flush=True)

    row("bpnet-lite BPNet.fit step (Adam), reference", *train(copy.deepcopy(lite), reference_step, batches, valid,
                                                             torch.optim.Adam))
    row("bpnet_core, fast_path off (AdamW)", *train(set_compute(copy.deepcopy(ours), False), our_step(config),
                                                    batches, valid, torch.optim.AdamW))
    trained = copy.deepcopy(ours)
    row("bpnet_core, fast path (AdamW), fp32", *train(trained, our_step(config), batches, valid,
                                                      torch.optim.AdamW))
    if args.compile:
        row("bpnet_core, fast path + torch.compile", *train(copy.deepcopy(ours), our_step(config), batches, valid,
                                                            torch.optim.AdamW, compile_model=True))
    if args.bf16_steps > 1:
        speed, loss, first = train(set_compute(copy.deepcopy(ours).to(DEVICE), precision="bf16"), our_step(config),
                                   batches[:args.bf16_steps], valid, torch.optim.AdamW)
        if args.bf16_steps < args.steps:
            loss = float("nan")  # after fewer batches: not comparable
        row(f"bpnet_core, fast path, bf16 ({args.bf16_steps} batches)", speed, loss, first)
    if args.training_only:
        return

    # ------------------------------------------------------------ prediction
    # Prediction and attribution with the weights trained above, in both
    # implementations: on an untrained model, the profile logits of a
    # sequence and of its shuffles barely differ (see the attribution note).
    lite.load_state_dict(trained.state_dict())
    ours.load_state_dict(trained.state_dict())
    lite.to(DEVICE).eval()
    ours.to(DEVICE).eval()
    subset = valid.subset(torch.arange(min(args.predict, len(valid))))
    X, X_ctl = subset.X.float(), subset.X_ctl
    print(f"\n{'prediction (' + str(len(X)) + ' sequences)':52s} {'seq/s':>10s} {'ratio':>6s} {'max |diff|':>10s}")
    device = DEVICE.type
    expected, _ = predict(lite, X, args=(X_ctl,), batch_size=BATCH, device=device)  # also the warm-up
    seconds = timed(lambda: predict(lite, X, args=(X_ctl,), batch_size=BATCH, device=device))
    reference_speed = len(X) / seconds
    print(f"{'bpnet-lite + tangermeme.predict, reference':52s} {reference_speed:10.1f} {1:5.2f}x {0:10.1e}")
    for label, fast, precision in (("bpnet_core predict_windows, fast_path off", False, "fp32"),
                                   ("bpnet_core predict_windows, fast path", True, "fp32"),
                                   ("bpnet_core predict_windows, fast path, bf16", True, "bf16")):
        set_compute(ours, fast, precision)
        logits, _ = predict_windows(ours, subset, BATCH, DEVICE)  # also the warm-up
        seconds = timed(lambda: predict_windows(ours, subset, BATCH, DEVICE))
        diff = float(np.abs(logits - expected.numpy()).max())
        print(f"{label:52s} {len(X) / seconds:10.1f} {len(X) / seconds / reference_speed:5.2f}x {diff:10.1e}",
              flush=True)

    # ----------------------------------------------------------- attribution
    # The error column is each path's relative L2 distance from the exact
    # (float64) contributions of the first `--exact` sequences. In float32
    # the profile head's are inexact in every implementation: the rescale
    # rule divides by the change of each logit between a sequence and its
    # shuffle, which is often tiny, so logit rounding is amplified.
    set_compute(ours, True, "fp32")  # DeepLIFT/SHAP computes in float32
    n, n_exact = min(args.attribute, len(valid)), min(args.exact, args.attribute, len(valid))
    X, X_ctl = valid.X[:n].float(), valid.X_ctl[:n]
    for output, wrapper, head in (("profile", ProfileWrapper, ProfileHead), ("counts", CountWrapper, CountHead)):
        with paired_references(head(set_compute(copy.deepcopy(ours).cpu(), False).double())) as exact_head:
            exact = tangermeme_dls(exact_head, X[:n_exact].double(), args=(X_ctl[:n_exact].double(),),
                                   n_shuffles=20, random_state=0, hypothetical=True, warning_threshold=np.inf,
                                   device="cpu").numpy()

        exact_reference = tangermeme_dls(wrapper(copy.deepcopy(lite).cpu().double()), X[:n_exact].double(),
                                         args=(X_ctl[:n_exact].double(),), n_shuffles=20, random_state=0,
                                         hypothetical=True, warning_threshold=np.inf, device="cpu",
                                         additional_nonlinear_ops={_ProfileLogitScaling: _nonlinear}).numpy()

        def error(attributions, exact=exact):
            return np.linalg.norm(attributions[:n_exact] - exact) / np.linalg.norm(exact)

        if output == "profile":
            print("\nprofile head: bpnet-lite explains sum z * softmax(z) with z * softmax(z) as one nonlinearity;"
                  " this package the logits weighted by the sequence's softmax, its references too (ProfileHead):"
                  " 'diff vs ref' compares two definitions, 'error vs float64' each with its own")
        print(f"\n{'DeepLIFT/SHAP, ' + output + ' head, 20 shuffles (' + str(n) + ' seq)':52s} {'seq/s':>10s} "
              f"{'ratio':>6s} {'error vs float64':>16s} {'diff vs ref':>11s}")
        reference = wrapper(lite)
        start = time.perf_counter()
        expected = tangermeme_dls(reference, X, args=(X_ctl,), n_shuffles=20, random_state=0, hypothetical=True,
                                  additional_nonlinear_ops={_ProfileLogitScaling: _nonlinear},
                                  warning_threshold=np.inf, device=device).numpy()
        reference_speed = n / (time.perf_counter() - start)
        print(f"{'bpnet-lite ' + wrapper.__name__ + ' + tangermeme defaults':52s} {reference_speed:10.2f} "
              f"{1:5.2f}x {error(expected, exact_reference):16.1e} {0:11.1e}")
        for label, fast in (("bpnet_core deep_lift_shap, fast_path off", False),
                            ("bpnet_core deep_lift_shap, fast path", True)):
            set_compute(ours, fast)
            start = time.perf_counter()
            got, _ = deep_lift_shap(head(ours), X, X_ctl, 20, 0, BATCH * 20, DEVICE)
            speed = n / (time.perf_counter() - start)
            diff = np.linalg.norm(got - expected) / np.linalg.norm(expected)
            print(f"{label:52s} {speed:10.2f} {speed / reference_speed:5.2f}x {error(got):16.1e} {diff:11.1e}",
                  flush=True)

    # --------------------------------------------------------------- loading
    passes = max(1, 20_000 // len(training))
    seconds = timed(lambda: [None for _ in range(passes) for _ in TrainingSampler(training, BATCH, IN_WINDOW,
                                                                                  OUT_WINDOW, True, 0)])
    loader_speed = passes * (len(training) // BATCH) * BATCH / seconds
    training_speed = speeds["bpnet_core, fast path (AdamW), fp32"]
    print(f"\nloader: TrainingSampler delivers {loader_speed:,.0f} examples/s (jitter {JITTER}, reverse complement), "
          f"{loader_speed / training_speed:,.0f}x the fast path's training throughput")
    for n_windows in args.load:
        result = load_memory(n_windows, data, folder)
        print(f"loading {result['n']:,} windows with 2 signal + 2 control tracks: {result['seconds']:.1f} s, "
              f"peak RSS {result['rss_gb']:.2f} GB ({result['held_gb']:.2f} GB of tensors)", flush=True)


if __name__ == "__main__":
    main()
