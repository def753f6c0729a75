"""One fold's process of a run whose folds train side by side (``fold_pool``): ``python -m facecurate.train.fold_worker JOB``
trains the one-fold run the JSON job file names and says each finished epoch, or its refusal, as a JSON line on stdout."""
from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from pathlib import Path

from ..curate.cache import load_cache
from ..curate.errors import InputError
from .config import TrainConfig
from .fit import train

PR_SET_PDEATHSIG = 1  # prctl(2)


def die_with_parent(parent: int) -> None:
    """Linux: this process gets SIGTERM when its parent dies, so a ``kill -9`` of ``train`` leaves no fold training
    on its own (``--resume`` continues from each fold's last saved epoch). Elsewhere a no-op."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the call
        os._exit(1)


def _main(argv: list[str]) -> int:
    """A fold's process: train the one-fold run the job file names; its epochs and a refusal as JSON lines on stdout."""
    job = json.loads(Path(argv[0]).read_text())
    if sys.platform.startswith("linux") and job.get("parent"):
        die_with_parent(int(job["parent"]))
    cfg = TrainConfig.from_dict(job["config"])

    def said(fold: int, epoch: int, row: dict) -> None:
        print(json.dumps({"fold": fold, "epoch": epoch, "row": row}, default=float), flush=True)

    try:  # the caller checked the cache; a part left by a killed run is redone unless this run resumes
        train(load_cache(job["cache"], verify="off"), job["out"], cfg, on_epoch_end=said, replace=not cfg.resume)
    except InputError as e:
        print(json.dumps({"error": str(e)}), flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
