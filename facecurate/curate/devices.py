"""The torch device a stage runs on: ``None`` / "auto" means CUDA when present; anything else is checked here.

One parser for every command's ``--device`` (crop's MTCNN, train, predict), so ``--device nope`` is the
same one line everywhere. torch (2-3 s to import) is imported only when the answer needs it: on a
machine without the NVIDIA driver "auto" is the CPU, and crop's CPU path may never need torch at all.
"""
from __future__ import annotations

import glob
import os

from .errors import InputError


def nvidia_driver_present() -> bool:
    """Whether the NVIDIA kernel driver is loaded (CUDA is impossible without it)."""
    return os.path.exists("/proc/driver/nvidia/version") or bool(glob.glob("/dev/nvidia[0-9]*"))


def resolve_device(device: str | None) -> str:
    """"cpu", "cuda" or "cuda:N" for ``device``; InputError for a name torch does not know or a CUDA that is absent."""
    if device in (None, "", "auto") and not nvidia_driver_present() or device == "cpu":
        return "cpu"
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(str(device))
    except (RuntimeError, ValueError):
        raise InputError(f"--device {device!r}: expected cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"--device {device!r}: expected cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return str(dev)
