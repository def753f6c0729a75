"""One fold's process of a run whose folds train side by side (``fold_pool``): ``python -m facecurate.train.fold_worker JOB``
trains the one-fold run the JSON job file names and says each finished epoch, or its refusal, as a JSON line on stdout."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..curate.cache import load_cache
from ..curate.errors import InputError
from .config import TrainConfig
from .fit import train


def _main(argv: list[str]) -> int:
    """A fold's process: train the one-fold run the job file names; its epochs and a refusal as JSON lines on stdout."""
    job = json.loads(Path(argv[0]).read_text())
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
