"""What every stage needs around it: device, seeds, threads, logging, errors."""

from __future__ import annotations

import logging
import os
import random
import sys
from typing import Any, Callable, TypeVar

import numpy as np

from .errors import InputError

log = logging.getLogger("bpnet_core")


def select_device(name: str = "auto"):
    """The torch device for `name`: ``"auto"`` is CUDA when available, else CPU."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"config key 'device': unknown device '{name}' (use auto, cpu or cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"config key 'device': '{name}' asked for, but no CUDA GPU is available")
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    log.info("device: %s (%s)", device, label)
    return device


def seed_everything(seed: int | None) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA); None leaves them random."""
    if seed is None:
        return
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(n: int | None = None) -> int:
    """Pin torch's CPU threads to `n` (None: keep its current count); returns the count.

    numba's OpenMP threading layer, the first time it starts (tangermeme,
    modisco-lite and memelite run numba in parallel), sets OpenMP's thread
    count to every core of the machine, and torch's CPU ops follow it. A
    job given one core would then compute on all of them, and two runs of
    one config would round differently. So the layer is started here,
    before torch's count is set.
    """
    import numba
    import torch

    n = n or torch.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))  # starts the threading layer
    torch.set_num_threads(n)
    return n


T = TypeVar("T")


def with_shrinking_batches(run: Callable[[int], T], batch_size: int, device) -> T:
    """``run(batch_size)``, halving the batch size while the GPU runs out of memory.

    Each retry is logged; out of memory with batches of one is raised.
    """
    import torch

    while True:
        try:
            return run(batch_size)
        except torch.OutOfMemoryError:
            if batch_size == 1:
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            log.warning("out of memory with batches of %d; retrying with %d", batch_size, batch_size // 2)
            batch_size //= 2


def run_logged(func: Callable[..., Any], *args: Any, log_path: str | os.PathLike | None = None,
               threads: int | None = None, **kwargs: Any) -> Any:
    """Run one stage with its log going to stderr and to `log_path`.

    An `InputError` becomes one message in the log and on stderr and exit
    status 1, without a traceback; other exceptions are logged with their
    traceback and propagate.
    """
    console = logging.StreamHandler(sys.stderr)
    handlers: list[logging.Handler] = [console]
    if log_path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    for handler in handlers:
        handler.setFormatter(formatter)
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    if threads:
        set_threads(threads)
    try:
        return func(*args, **kwargs)
    except InputError as err:
        # Plain on the console, timestamped in the log file.
        log.removeHandler(console)
        if log_path is not None:
            log.error("%s", err)
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    except BrokenPipeError:
        raise  # the reader of stdout left (`| head`): not a failure of the stage
    except Exception:
        # In the log file too, where the batch summary looks for failures.
        log.removeHandler(console)
        log.exception("stage failed")
        raise
    finally:
        for handler in handlers:
            log.removeHandler(handler)
            handler.close()
