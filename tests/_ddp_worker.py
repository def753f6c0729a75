"""One rank of tests/test_ddp.py's torchrun launch: a DDP run interrupted after epoch 1 and resumed, the same run
straight through, a hash check that must fail, and a run folder rank 0 cannot claim (every rank must stop);
rank 0 writes what it saw to OUT/worker.json.

Run by the test as ``python -m torch.distributed.run --standalone --nproc_per_node 2 tests/_ddp_worker.py CACHE OUT``.
The process group is started here once, so the three trainings share it (``train`` then leaves it open).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's facecurate, not an installed one

import numpy as np  # noqa: E402
import torch.distributed as dist  # noqa: E402

from facecurate.curate.errors import InputError  # noqa: E402
from facecurate.train import distributed  # noqa: E402
from facecurate.train.config import TrainConfig  # noqa: E402
from facecurate.train.fit import train  # noqa: E402

# augmentation, dropout, EMA and BatchNorm on: every per-rank random state and buffer must survive the resume
RESUME = dict(model="test_efficientnet", batch_size=8, ema=0.9, patience=0, lr=3e-3, drop_rate=0.2, threads=1, plots=False,
              epochs=2, val_ratio=0.25, device="cpu")


def main(cache: str, out: str) -> None:
    out = Path(out)
    dist.init_process_group("gloo")
    d = distributed.setup("cpu")
    report = {"world": d.world, "owned": d.owned}

    def stop_after_first(fold, epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    try:
        train(cache, out / "cut", TrainConfig(**RESUME), on_epoch_end=stop_after_first)
    except KeyboardInterrupt:
        report["stopped_after"] = 1
    seen = []
    train(cache, out / "cut", TrainConfig(**RESUME, resume=True), on_epoch_end=lambda f, e, r: seen.append(e))
    report["resumed_epochs"] = seen
    train(cache, out / "straight", TrainConfig(**RESUME))
    try:  # each rank hashes its own rank number: the check must refuse on every rank
        d.same_everywhere("test rows", np.array([d.rank]))
        report["mismatch"] = None
    except InputError as e:
        report["mismatch"] = str(e)
    if d.main:  # a folder that is not a run folder: rank 0's claim fails, and every rank must stop with it
        (out / "taken").mkdir()
        (out / "taken" / "notes.txt").write_text("mine")
    try:
        train(cache, out / "taken", TrainConfig(**RESUME))
        refused = None
    except InputError as e:
        refused = [type(e).__name__, str(e)]
    report["claim_refused"] = d.gather(refused)
    report["initialised_after"] = dist.is_initialized()
    if d.main:
        (out / "worker.json").write_text(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:3])
