"""The torch device a stage runs on: ``None`` / "auto" means CUDA when present; anything else is checked here.

One parser for every command's ``--device`` (crop's MTCNN, train, predict), so ``--device nope`` is the
same one line everywhere. torch (2-3 s to import) is imported only when the answer needs it: on a
machine without the NVIDIA driver "auto" is the CPU, and crop's CPU path may never need torch at all.
"""
from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterator

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


@contextlib.contextmanager
def opencv_threads(n: int) -> Iterator[None]:
    """Run the block with OpenCV's own thread pool at ``n`` threads (at most what it had), restoring it after.

    For stages that already run photos side by side in threads (``crop``): on 384 x 512 photos OpenCV's per-call
    threads add no speed there and cost 25-35 % more CPU for the same resizes, colour conversions and warps
    (BENCHMARKS.md, "Crowded backdrops: the second look without torchvision")."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(max(1, min(int(n), before)))
    try:
        yield
    finally:
        cv2.setNumThreads(before)


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` CPU threads for torch and OpenCV (None: their own choice), restoring both after.

    What every command's ``--threads`` means: on a shared machine ``--threads 1`` keeps a stage to about one core.
    """
    if n is None:
        yield
        return
    if int(n) < 1:
        raise InputError(f"--threads {n}: expected 1 or more")
    import cv2
    import torch

    before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(int(n))
    cv2.setNumThreads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
