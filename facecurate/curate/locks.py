"""Folder locks: one writer at a time on a cache or run folder, and no writer while someone reads it.

An ``fcntl.flock`` on ``<folder>/.lock``: the writer holds it exclusively (its pid written inside),
readers share it. The kernel drops a lock when its process dies, even by ``kill -9``, so a crashed
run never leaves a folder locked. A second run stops at once with one line naming the holder.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError

LOCK = ".lock"  # the lock file inside a locked folder


def _holder(f) -> str:
    f.seek(0)
    pid = f.read().strip()
    return f"pid {pid}" if pid.isdigit() else "another process"


@contextlib.contextmanager
def folder_lock(path: str | Path, what: str = "cache", shared: bool = False) -> Iterator[None]:
    """Hold the folder's lock for the block: exclusive to write (``shared=False``), shared to read."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    f = open(path / LOCK, "a+")
    try:
        try:
            fcntl.flock(f, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            readers = False
            if not shared:  # blocked by readers (a shared lock is free) or by a writer?
                try:
                    fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    readers = True
                    fcntl.flock(f, fcntl.LOCK_UN)
                except BlockingIOError:
                    pass
            how = "is being read by another facecurate process" if readers else f"is being written by {_holder(f)}"
            raise InputError(f"{path}: this {what} {how}; wait for it to finish (or stop it), then run again") from None
        if not shared:
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def writer_of(path: str | Path) -> str | None:
    """"pid N" when another process holds ``path``'s lock exclusively right now, else None (never waits)."""
    lock = Path(path) / LOCK
    if not lock.is_file():
        return None
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(f)
            return None if holder == f"pid {os.getpid()}" else holder
        fcntl.flock(f, fcntl.LOCK_UN)
    return None
