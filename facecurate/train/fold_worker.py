"""A process of a run whose folds train side by side (``fold_pool``): ``python -m facecurate.train.fold_worker JOB...``
trains the one-fold run each JSON job file names, one after another, and says each finished epoch, each finished
fold, or a refusal, as a JSON line on stdout. One process takes several folds so that each start (~6 s of imports
here) is paid once per worker, not once per fold."""
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
    """Train the one-fold run of each job file in turn; epochs, finished folds and a refusal as JSON lines on stdout."""
    def said(fold: int, epoch: int, row: dict) -> None:
        print(json.dumps({"fold": fold, "epoch": epoch, "row": row}, default=float), flush=True)

    for n, path in enumerate(argv):
        job = json.loads(Path(path).read_text())
        if n == 0 and sys.platform.startswith("linux") and job.get("parent"):
            die_with_parent(int(job["parent"]))
        cfg = TrainConfig.from_dict(job["config"])
        try:  # the caller checked the cache; a part left by a killed run is redone unless this run resumes
            train(load_cache(job["cache"], verify="off"), job["out"], cfg, on_epoch_end=said, replace=not cfg.resume)
        except InputError as e:
            print(json.dumps({"error": str(e), "fold": cfg.fold}), flush=True)
            return 2
        print(json.dumps({"done": cfg.fold}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
