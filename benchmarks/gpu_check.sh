#!/usr/bin/env bash
# The GPU check: what no CPU run can show, in one log; sized for under 8 minutes on one GPU.
#
#   bash benchmarks/gpu_check.sh [--device cuda|cpu] [--log FILE] [--quick]
#   bash benchmarks/gpu_check.sh --download     (where PyPI is reachable: the wheels, into .whl/)
#
# 1. the tests of the device code paths on the device (tests/test_device.py; the
#    checkpoint-resume and out-of-memory-retry tests of tests/test_reliability.py):
#    fast path against the reference computation, bf16 autocast, precision "auto",
#    channels-last convolutions, a model trained on the device loaded on the CPU;
# 2. the speed benchmark on the device against bpnet-lite (64 x 8, then the official
#    ChromBPNet size 512 x 8, 2114 -> 1000, training only);
# 3. one short demo fit with "device": "auto", its validation metrics and precision.
#
# A GPU machine without internet lacks some Python packages (benchmarks/gpu_wheels.txt):
# fetch their wheels here with --download; when .whl/ exists, the check installs them
# into /tmp/gpu_check_site first. `--device cpu --quick` runs the same steps on a CPU,
# to know the script works before a GPU is at hand.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda LOG=gpu_check.log QUICK=0 PYTHON=${PYTHON:-python3}
while [ $# -gt 0 ]; do
    case $1 in
        --device) DEVICE=$2; shift 2 ;;
        --log) LOG=$2; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --download)
            grep -v '^#' benchmarks/gpu_wheels.txt | xargs "$PYTHON" -m pip download -q --no-deps --only-binary=:all: \
                --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
                --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl
            du -sh .whl; exit $? ;;
        *) echo "usage: $0 [--device cuda|cpu] [--log FILE] [--quick] | --download" >&2; exit 2 ;;
    esac
done
if [ -d .whl ]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/gpu_check_site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/gpu_check_site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
STEPS=30 BIG_STEPS=10 BIG_FILTERS=512 EPOCHS=3 PREDICT=256 ATTRIBUTE=16 EXACT=2
[ "$QUICK" = 1 ] && STEPS=4 BIG_STEPS=2 BIG_FILTERS=96 EPOCHS=1 PREDICT=32 ATTRIBUTE=2 EXACT=1
status=0
step() { echo; echo "=== $1 ($(date +%T))"; }
exec > >(tee "$LOG") 2>&1
step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
"$PYTHON" -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(),
              torch.cuda.get_device_name() if torch.cuda.is_available() else '')"

step "1. tests of the device code paths on $DEVICE"
BPNET_TEST_DEVICE=$DEVICE "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_device.py \
    tests/test_reliability.py -k "test_device or resumes or retries" || status=1

step "2. speed against bpnet-lite on $DEVICE, 64 x 8"
"$PYTHON" benchmarks/speed.py --device "$DEVICE" --steps $STEPS --bf16-steps $STEPS --predict $PREDICT \
    --attribute $ATTRIBUTE --exact $EXACT --load || status=1
step "2. speed against bpnet-lite on $DEVICE, the official ChromBPNet size $BIG_FILTERS x 8, training"
"$PYTHON" benchmarks/speed.py --device "$DEVICE" --n-filters $BIG_FILTERS --steps $BIG_STEPS \
    --bf16-steps $BIG_STEPS --training-only || status=1

step "3. a demo fit with device auto ($EPOCHS epochs)"
"$PYTHON" - "$DEVICE" "$EPOCHS" <<'PY' || status=1
import json, sys, tempfile
from pathlib import Path
from bpnet_core.config import FitConfig
from bpnet_core.models import load_model
from bpnet_core.simulate.chip import simulate_demo
from bpnet_core.train import fit_model

device, epochs = sys.argv[1], int(sys.argv[2])
folder = Path(tempfile.mkdtemp(prefix="gpu_check_"))
data = simulate_demo(folder / "demo", seed=100)
demo = json.loads(Path("config/demo.json").read_text())
model = ("n_filters", "n_layers", "in_window", "out_window", "batch_size", "max_jitter", "reverse_complement",
         "validation_iter", "lr", "alpha", "random_state")
fit = FitConfig.model_validate({
    **{key: demo[key] for key in model}, "name": "demo", "max_epochs": epochs,
    "training_chroms": demo["fit_parameters"]["training_chroms"],
    "validation_chroms": demo["fit_parameters"]["validation_chroms"],
    "sequences": str(data["sequences"]), "loci": str(data["peaks"]), "negatives": str(data["negatives"]),
    "signals": [str(data["signal_plus"]), str(data["signal_minus"])],
    "controls": [str(data["control_plus"]), str(data["control_minus"])],
    "device": "auto" if device == "cuda" else device})
metadata = fit_model(fit, folder / "demo.torch", folder / "demo.history.tsv")
print(json.dumps({key: metadata[key] for key in ("device", "precision", "best_iteration", "training_seconds")}))
print(json.dumps(metadata["validation"]))
assert load_model(folder / "demo.torch").metadata["precision"] == metadata["precision"]
PY
step "done: $([ $status = 0 ] && echo 'every step passed' || echo 'a step FAILED')"
exit $status
