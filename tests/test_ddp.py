"""`train` on 2 gloo processes (torchrun, real DDP on the CPU): the same optimisation as one process with the same
global batch, the same run folder, rank 0 alone reporting, and a resumed DDP run equal to an uninterrupted one."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from facecurate.curate.errors import InputError
from facecurate.train.augment import AugmentParams
from facecurate.train.config import TrainConfig
from facecurate.train.data import CacheImages, iter_train
from facecurate.train.fit import train

ROOT = Path(__file__).resolve().parents[1]
TIMING = ["images_per_s", "epoch_s"]
# a GroupNorm model: no BatchNorm statistics over the per-process batch, so only float rounding separates the runs
SAME = dict(model="test_efficientnet_gn", batch_size=8, ema=0.9, patience=0, lr=3e-3, drop_rate=0.0, threads=1,
            epochs=3, val_ratio=0.25, device="cpu")
CLI = ["--model", "test_efficientnet_gn", "--batch-size", "8", "--ema", "0.9", "--patience", "0", "--lr", "3e-3",
       "--drop-rate", "0", "--threads", "1", "--epochs", "3", "--val-ratio", "0.25", "--device", "cpu", "--no-augment"]
# float rounding only: shard means averaged by gloo vs one mean, and batch-size dependent CPU kernels (seen: 1e-6 on
# the training loss, 3e-5 on the validation NLL); one rank's shard alone (batch 4) is off by more than 1e-2
LOSS_TOL = dict(rtol=1e-3, atol=1e-4)


def _files(run: Path) -> list[str]:
    """The run folder's files; tensorboard's event files are named by host, pid and time."""
    return sorted("events" if p.name.startswith("events.out") else str(p.relative_to(run))
                  for p in run.rglob("*") if p.is_file() and p.name != ".lock")


def _metrics(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "metrics.csv").drop(columns=TIMING)


def _torchrun(args: list[str], timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_shards_are_disjoint_parts_of_the_same_global_batches(cache):
    images = CacheImages(cache.images)
    labels = torch.arange(len(cache.images))[:, None].repeat(1, 4)
    pos = np.arange(len(cache.images))

    def batches(shard):
        g = torch.Generator().manual_seed(3)
        return [y[:, 0].tolist() for _, y in iter_train(images, pos, labels, 8, (32, 24), AugmentParams(enabled=False),
                                                          g, g, shard=shard)]

    whole, r0, r1 = batches(None), batches((0, 2)), batches((1, 2))
    assert len(whole) == len(r0) == len(r1) == len(pos) // 8
    for w, a, b in zip(whole, r0, r1):
        assert len(a) == len(b) == 4 and not set(a) & set(b) and sorted(a + b) == sorted(w)


def test_ddp_run_matches_one_process_with_the_same_global_batch(work, cache, capfd, monkeypatch):
    from typer.testing import CliRunner

    from facecurate.cli import app

    one = train(cache, work / "one", TrainConfig(**SAME, augment=AugmentParams(enabled=False)))
    monkeypatch.chdir(ROOT)  # torchrun's processes run `python -m facecurate` from here: this checkout
    capfd.readouterr()
    r = CliRunner().invoke(app, ["train", str(cache.path), "--out", str(work / "ddp"), *CLI, "--ddp", "2"])
    ranks = capfd.readouterr()  # what torchrun's processes printed, on the real stdout / stderr
    assert r.exit_code == 0, r.output + ranks.out[-3000:] + ranks.err[-3000:]
    ddp = work / "ddp"
    assert ranks.out.count("out-of-fold macro F1") == 1 and ranks.out.count("f0 ep 3/3") == 1  # rank 0 alone reports
    assert _files(ddp) == _files(one)
    a, b = _metrics(one), _metrics(ddp)
    assert list(b["epoch"]) == [1, 2, 3]
    for col in a.columns:
        kw = LOSS_TOL if "loss" in col else dict(rtol=0, atol=1e-6)  # F1, accuracy and lr: the same numbers
        np.testing.assert_allclose(b[col], a[col], err_msg=col, **kw)
    p_one, p_ddp = pd.read_parquet(one / "oof.parquet"), pd.read_parquet(ddp / "oof.parquet")
    assert list(p_ddp["image_id"]) == list(p_one["image_id"]) and (p_ddp["pred"] == p_one["pred"]).all()
    cols = [c for c in p_one if c.startswith("p_")]
    np.testing.assert_allclose(p_ddp[cols].to_numpy(), p_one[cols].to_numpy(), atol=1e-4)
    c_one, c_ddp = (json.loads((run / "config.json").read_text()) for run in (one, ddp))
    assert c_ddp.pop("ddp") == {"world_size": 2, "backend": "gloo", "batch_per_process": 4}
    assert c_ddp == c_one
    # the tolerance means something: one process on one rank's share (batch 4, no averaging) is far outside it
    half = train(cache, work / "half", TrainConfig(**{**SAME, "batch_size": 4, "epochs": 1}, augment=AugmentParams(enabled=False)))
    assert abs(_metrics(half)["train_loss"].iloc[0] - a["train_loss"].iloc[0]) > 100 * LOSS_TOL["atol"]


def test_a_resumed_ddp_run_equals_an_uninterrupted_one(work, cache):
    out = work / "worker"
    r = _torchrun(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(ROOT / "tests" / "_ddp_worker.py"),
                   str(cache.path), str(out)])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads((out / "worker.json").read_text())
    assert report["world"] == 2 and not report["owned"] and report["initialised_after"]
    assert report["stopped_after"] == 1 and report["resumed_epochs"] == [2]
    # augmentation, dropout, EMA and BatchNorm on: every rank's random states came back from state.pt
    pd.testing.assert_frame_equal(_metrics(out / "cut"), _metrics(out / "straight"))
    state = torch.load(out / "cut" / "fold_0" / "state.pt", weights_only=False)
    assert state["world_size"] == 2 and len(state["ranks"]) == 2
    assert not torch.equal(state["ranks"][0]["gd"], state["ranks"][1]["gd"])  # each rank augments with its own draws
    assert report["mismatch"] and "differ between processes" in report["mismatch"]
    # rank 0 alone claims the run folder; its refusal stops every rank with the same line, none left waiting
    assert [r[0] for r in report["claim_refused"]] == ["AgreedError", "AgreedError"]
    assert all("is not empty and is not a facecurate run folder" in r[1] for r in report["claim_refused"])
    assert (out / "taken" / "notes.txt").read_text() == "mine" and sorted(p.name for p in (out / "taken").iterdir()) == ["notes.txt"]
    with pytest.raises(InputError, match="saved by a run of 2 process"):  # one process cannot continue it
        train(cache, out / "cut", TrainConfig.from_dict({**json.loads((out / "cut" / "config.json").read_text()), "resume": True}))


def test_ddp_options_are_checked_before_torchrun_starts(work, cache):
    from typer.testing import CliRunner

    from facecurate.cli import app

    r = CliRunner().invoke(app, ["train", str(cache.path), "--out", str(work / "bad"), *CLI, "--ddp", "2",
                                 "--batch-size", "7"])
    assert r.exit_code == 2 and "must split evenly over 2 processes" in r.output and "use 6 or 8" in r.output
    assert not (work / "bad").exists()
    r = CliRunner().invoke(app, ["train", str(cache.path), "--out", str(work / "bad"), *CLI, "--ddp", "2",
                                 "--batch-size", "64"])
    assert r.exit_code == 2 and "fewer than one global batch (64)" in r.output


def test_one_process_stands_in_for_a_rank_with_the_same_interface():
    """``OneProcess`` answers every call ``Dist`` does (so fit and fold have one path), each as the identity."""
    from facecurate.train import distributed

    def public(obj) -> set[str]:
        return {n for n in dir(obj) if not n.startswith("_")}

    rank = distributed.Dist(1, 2, 1, torch.device("cpu"), "gloo")  # no process group needed to ask what it offers
    one = distributed.OneProcess()
    assert public(rank) - {"agree"} == public(one)  # agree is Dist's own step inside on_main
    assert (one.rank, one.world, one.main, one.owned) == (0, 1, True, False) and not rank.main
    pos = np.arange(10)
    assert one.gather("x") == ["x"] and one.broadcast(3) == 3 and one.gather_sum(2, 5) == [2.0, 5.0]
    assert (one.shard(pos) == pos).all() and len(rank.shard(pos)) == 5 and rank.shard(pos)[0] == 5
    assert one.on_main(lambda a: a + 1, 1) == 2 and one.record(32) == {} and one.rank_rng(torch.Generator()) == {}
    assert rank.record(32) == {"ddp": {"world_size": 2, "backend": "gloo", "batch_per_process": 16}}
    one.check_batches(64, [10])  # one process: a fold smaller than a batch trains on one smaller batch
    with pytest.raises(InputError, match="fewer than one global batch"):
        rank.check_batches(64, [10])
    model = torch.nn.Linear(2, 2)
    assert one.wrap(model) is model
    g = torch.Generator()
    assert one.own_draws(0, 0, g) is g
