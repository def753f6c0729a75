"""Silence the native (C++) log lines MediaPipe and LiteRT write straight to file descriptor 2.

They ignore GLOG/absl/TF environment settings ("WARNING: Logging before InitGoogle()", "Input tensor
memory is not aligned ..."), so the only source-side cure is to redirect fd 2 while a graph is built and
first run (its warm-up), which is where they are written. A process-wide lock keeps concurrent callers
from saving each other's redirected descriptor.
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

_LOCK = threading.RLock()


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Native writes to fd 2 go to /dev/null inside the block (Python's own stderr is untouched but shares the fd)."""
    with _LOCK:
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


