"""Where and how a run computes: the device, mixed precision, CPU threads and seeds; where it logs (TensorBoard)."""
from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch

from ..curate.devices import resolve_device
from ..curate.errors import InputError
from ..curate.progress import Progress

AMP_MODES = ("auto", "bf16", "fp16", "off")


def pick_device(device: str | None) -> torch.device:
    """``device`` or CUDA when present, else the CPU; InputError for an unknown or absent device."""
    return torch.device(resolve_device(device))


def amp_dtype(cfg_amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (CUDA only): bf16 where supported for 'auto', else fp16; None = fp32."""
    if cfg_amp not in AMP_MODES:
        raise InputError(f"--amp must be auto, bf16, fp16 or off, got {cfg_amp!r}")
    if device.type != "cuda" or cfg_amp == "off":
        return None
    if cfg_amp == "fp16":
        return torch.float16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (None: leave torch's choice), restoring the old count after."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class NoEvents:
    """Stands in for TensorBoard's SummaryWriter when the optional ``tensorboard`` package is not installed."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __enter__(self) -> "NoEvents":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_scalar(self, *args, **kwargs) -> None:
        pass


def event_writer(progress: Progress):
    """TensorBoard's SummaryWriter, or a writer of nothing (said once) without the optional package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        progress.note("no tensorboard package: the run writes no TensorBoard events (pip install 'facecurate[tensorboard]')")
        return NoEvents
    return SummaryWriter
