"""The trainer and predictor on real code paths: a tiny timm model (test_resnet at 32 x 24) on generated caches."""
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from _train_data import make_eval_layout
from facecurate.curate.cache import load_cache
from facecurate.curate.errors import InputError
from facecurate.train.augment import AugmentParams, eval_batch, train_batch
from facecurate.train.data import CacheImages
from facecurate.train.checkpoint import load_weights
from facecurate.train.config import TrainConfig
from facecurate.train.fit import data_norm, train
from facecurate.train.infer import infer_probs
from facecurate.train.losses import FocalLoss, make_loss
from facecurate.train.metrics import macro_f1
from facecurate.train.model import build_model, class_probs_from_heads, local_pretrained_file, probabilities
from facecurate.train.predict import predict, predict_cache

TINY = dict(model="test_resnet", batch_size=8, ema=0.0, patience=0, lr=3e-3, drop_rate=0.0, threads=1, plots=False)
TIMING = ["images_per_s", "epoch_s"]


@pytest.fixture(scope="module")
def run_a(work, cache):
    """Three epochs with augmentation, one person-grouped validation split."""
    return train(cache, work / "run_a", TrainConfig(**{**TINY, "plots": True}, epochs=3, val_ratio=0.25))


@pytest.fixture(scope="module")
def run_fit(work, cache):
    """No augmentation, enough epochs to learn the generated bands."""
    cfg = TrainConfig(**TINY, epochs=7, val_ratio=0.25, augment=AugmentParams(enabled=False))
    return train(cache, work / "run_fit", cfg)


def _metrics(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "metrics.csv").drop(columns=TIMING)


def test_tiny_model_overfits_tiny_set(run_fit, cache):
    probs = predict_cache(run_fit, cache)
    oof = pd.read_parquet(run_fit / "oof.parquet")
    train_rows = ~cache.manifest["image_id"].isin(oof["image_id"])
    y = cache.manifest["label"].to_numpy(int)
    assert train_rows.sum() == 42
    assert macro_f1(y[train_rows], probs["pred"].to_numpy()[train_rows]) >= 0.95


def test_run_folder_contract(run_a):
    config = json.loads((run_a / "config.json").read_text())
    assert config["model"] == "test_resnet" and config["img_size"] == [32, 24] and config["age_bins"] == [30, 60]
    assert config["crop"] == {"size": 32, "aspect": 0.75} and Path(config["cache"]).is_dir()
    m = pd.read_csv(run_a / "metrics.csv")
    assert list(m["epoch"]) == [1, 2, 3]
    for col in ("train_loss", "val_loss", "val_f1", "val_acc", "val_f1_mask", "val_f1_gender", "val_f1_age", "lr", "images_per_s"):
        assert m[col].notna().all(), col
    for name in ("fold_0/best.safetensors", "fold_0/last.safetensors", "fold_0/state.pt", "confusion.png", "curves.png",
                 "oof.parquet", "summary.json"):
        assert (run_a / name).is_file(), name
    assert list((run_a / "tensorboard" / "fold_0").glob("events.out.tfevents.*"))


def test_same_seed_same_metrics(run_a, work, cache):
    again = train(cache, work / "run_a2", TrainConfig(**TINY, epochs=3, val_ratio=0.25))
    pd.testing.assert_frame_equal(_metrics(run_a), _metrics(again))
    assert _metrics(run_a)["train_loss"].iloc[-1] < _metrics(run_a)["train_loss"].iloc[0]
    other = train(cache, work / "run_seed1", TrainConfig(**TINY, epochs=1, val_ratio=0.25, seed=1))
    assert not np.isclose(_metrics(other)["train_loss"].iloc[0], _metrics(run_a)["train_loss"].iloc[0])


def test_resume_continues_where_it_stopped(run_a, work, cache):
    out = work / "run_resume"
    cfg = TrainConfig(**TINY, epochs=3, val_ratio=0.25)

    def stop_after_first(fold, epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cache, out, cfg, on_epoch_end=stop_after_first)
    assert list(pd.read_csv(out / "metrics.csv")["epoch"]) == [1]
    seen = []
    train(cache, out, TrainConfig(**TINY, epochs=3, val_ratio=0.25, resume=True),
          on_epoch_end=lambda f, e, r: seen.append(e))
    assert seen == [2, 3]  # epoch 1 was not trained again
    # optimizer, schedule, RNG and weights were restored: the same numbers as the straight run
    pd.testing.assert_frame_equal(_metrics(run_a), _metrics(out))
    with pytest.raises(InputError, match="different"):
        train(cache, out, TrainConfig(**{**TINY, "model": "mobilenetv3_small_050"}, epochs=4, val_ratio=0.25, resume=True))


def test_overrides_change_the_labels_trained_on(work, cache):
    manifest = cache.manifest
    people = sorted(manifest["person"].unique())
    p_gender, p_age = people[0], people[1]
    new_gender = 1 - int(manifest.loc[manifest["person"] == p_gender, "gender"].iloc[0])
    photo = manifest.loc[manifest["person"] == people[2], "image_id"].iloc[0]  # a mask1 photo -> "not worn"
    ov = work / "overrides.csv"
    pd.DataFrame([("person", p_gender, "gender", new_gender, "test"), ("person", p_age, "age", 75, "test"),
                  ("photo", photo, "mask", 2, "test")], columns=["scope", "key", "field", "value", "reason"]).to_csv(ov, index=False)
    before = pd.read_parquet(cache.path / "manifest.parquet")
    run = train(cache, work / "run_ov", TrainConfig(**TINY, epochs=1, folds=2, overrides=str(ov)))
    oof = pd.read_parquet(run / "oof.parquet").set_index("image_id")
    assert len(oof) == len(manifest)  # two folds: every photo is out-of-fold once
    assert (oof.loc[oof["person"] == p_gender, "gender"] == new_gender).all()
    assert (oof.loc[oof["person"] == p_age, "age_group"] == 2).all()
    assert oof.loc[photo, "mask"] == 2
    assert (oof["label"] == oof["mask"] * 6 + oof["gender"] * 3 + oof["age_group"]).all()
    assert json.loads((run / "config.json").read_text())["overrides_changed"] == 15
    pd.testing.assert_frame_equal(before, pd.read_parquet(cache.path / "manifest.parquet"))  # the user's data unchanged
    # the out-of-fold table's contract, for relabel-report
    assert oof.groupby("person")["fold"].nunique().max() == 1
    for head, n in (("mask", 3), ("gender", 2), ("age", 3), ("class", 18)):
        p = oof[[f"p_{head}_{j}" for j in range(n)]].to_numpy()
        assert np.allclose(p.sum(1), 1, atol=1e-4), head


def test_predict_averages_folds_and_flips(work, cache):
    run = work / "run_ov"
    if not run.is_dir():
        pytest.skip("needs the overrides run")
    got = predict_cache(run, cache)
    images = CacheImages(cache.images)
    pos = np.arange(len(images))
    want = 0
    for f in (0, 1):
        model = load_weights(build_model("test_resnet", "multi"), run / f"fold_{f}" / "best.safetensors")
        for flip in (False, True):
            with torch.no_grad():
                x = eval_batch(images.take(pos), (32, 24), flip=flip, norm=data_norm(model))  # the model's own, as predict
                want = want + probabilities(model.eval()(x), "multi")["class"].numpy() / 4
    assert np.allclose(got[[f"p_class_{j}" for j in range(18)]].to_numpy(), want, atol=1e-5)
    single = infer_probs(model, images, pos, (32, 24), "multi")["class"]
    assert not np.allclose(single, want, atol=1e-3)  # the average really differs from one model on one view


def test_predict_writes_submission_in_info_order(run_fit, work):
    data = work / "eval"
    order = make_eval_layout(data, n=5)
    out = predict(run_fit, data, out=work / "pred" / "submission.csv", cache_root=work / "caches")
    sub = pd.read_csv(out)
    assert list(sub.columns) == ["ImageID", "ans"]
    assert list(sub["ImageID"]) == order
    assert sub["ans"].between(0, 17).all() and sub["ans"].dtype.kind == "i"
    probs = pd.read_parquet(out.parent / "probs.parquet")
    assert len(probs) == 5 and set(probs["image_id"]) == set(order)
    cache = load_cache(probs["cache"].iloc[0])
    assert cache.images.shape[1:3] == (32, 24)  # cropped with the run's own crop settings
    # a plain folder of photos: image_id,ans
    plain = work / "plain"
    shutil.copytree(data / "images", plain)
    sub2 = pd.read_csv(predict(run_fit, plain, cache_root=work / "caches"))
    assert list(sub2.columns) == ["image_id", "ans"] and len(sub2) == 5


def test_predict_keeps_its_crop_cache_beside_the_submission(run_fit, work, monkeypatch):
    """Without --cache-root the eval crops go to a cache/ folder beside the output, never under the current directory."""
    data, here = work / "eval_beside", work / "elsewhere"
    make_eval_layout(data, n=3)
    here.mkdir()
    monkeypatch.chdir(here)
    out = predict(run_fit, data, out=work / "pred_beside" / "submission.csv")
    probs = pd.read_parquet(out.parent / "probs.parquet")
    assert Path(probs["cache"].iloc[0]).resolve().parent == (out.parent / "cache").resolve()
    assert list(here.iterdir()) == []


def test_per_class_csv_scores_every_class_and_head(run_a):
    """per_class.csv: one row per class of the 18 and per head class, scored on the out-of-fold photos."""
    from sklearn.metrics import f1_score

    table, oof = pd.read_csv(run_a / "per_class.csv"), pd.read_parquet(run_a / "oof.parquet")
    assert table.groupby("output").size().to_dict() == {"class": 18, "mask": 3, "gender": 2, "age": 3}
    assert list(table.columns) == ["output", "id", "name", "precision", "recall", "f1", "support", "predicted"]
    for out, column, k in (("class", "label", 18), ("mask", "mask", 3), ("gender", "gender", 2), ("age", "age_group", 3)):
        rows = table[table["output"] == out].set_index("id")
        y, pred = oof[column].to_numpy(int), oof[[f"p_{out}_{j}" for j in range(k)]].to_numpy().argmax(1)
        assert rows["support"].tolist() == np.bincount(y, minlength=k).tolist()
        assert rows["predicted"].tolist() == np.bincount(pred, minlength=k).tolist()
        f1 = f1_score(y, pred, labels=np.arange(k), average=None, zero_division=0)
        seen = rows["support"].to_numpy() > 0
        assert np.allclose(rows["f1"].to_numpy()[seen], f1[seen], atol=1e-4)
        assert rows["f1"][~seen].isna().all() and rows["precision"][~seen].isna().all()  # no score for an absent class


def test_multi_head_probabilities_combine_into_18_classes():
    pm, pg, pa = torch.tensor([[0.1, 0.2, 0.7]]), torch.tensor([[0.4, 0.6]]), torch.tensor([[0.5, 0.3, 0.2]])
    p = class_probs_from_heads(pm, pg, pa)
    assert p.shape == (1, 18) and torch.isclose(p.sum(), torch.tensor(1.0))
    assert torch.isclose(p[0, 2 * 6 + 1 * 3 + 0], torch.tensor(0.7 * 0.6 * 0.5))
    logits = torch.randn(4, 18)
    single = probabilities(logits, "single")
    assert torch.allclose(single["mask"][:, 2], single["class"][:, 12:].sum(1))
    assert torch.allclose(single["age"][:, 1], single["class"][:, 1::3].sum(1))


@pytest.mark.parametrize("n", [2, 3, 18])
def test_losses_follow_the_head_class_count(n):
    logits = torch.randn(16, n, generator=torch.Generator().manual_seed(n))
    y = torch.arange(16) % n
    for name in ("ce", "smooth", "focal", "f1"):
        v = make_loss(name, n)(logits, y)
        assert torch.isfinite(v) and v > 0, name
    assert torch.isclose(FocalLoss(gamma=0.0)(logits, y), make_loss("ce", n)(logits, y), atol=1e-6)
    perfect = torch.nn.functional.one_hot(y, n).float() * 20
    assert make_loss("f1", n)(perfect, y) < 0.01
    # smoothing spreads 0.1 over the head's own classes: a confident right answer still costs something
    assert make_loss("smooth", n)(perfect, y) > make_loss("ce", n)(perfect, y) + 0.05
    with pytest.raises(ValueError):
        make_loss("ce", n, class_weights=torch.ones(n + 1))


def test_augment_shapes_determinism_and_flip():
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (4, 40, 30, 3), dtype=np.uint8))
    p = AugmentParams()
    a = train_batch(images, (32, 24), p, torch.Generator().manual_seed(1))
    b = train_batch(images, (32, 24), p, torch.Generator().manual_seed(1))
    assert a.shape == (4, 3, 32, 24) and a.dtype == torch.float32 and torch.equal(a, b)
    only_flip = AugmentParams(hflip=1.0, scale=(1.0, 1.0), ratio=(1.0, 1.0), rotate=0, brightness=0, contrast=0, saturation=0)
    flipped = train_batch(images, (40, 30), only_flip, torch.Generator().manual_seed(0))
    assert torch.allclose(flipped, eval_batch(images, (40, 30), flip=True), atol=1e-4)


def test_weights_never_downloaded(run_a, tmp_path):
    if local_pretrained_file("resnet10t") is None:
        with pytest.raises(InputError, match="nothing is downloaded"):
            build_model("resnet10t", pretrained=True)
    model = build_model("test_resnet", "single", weights=run_a / "fold_0" / "best.safetensors")  # head differs, body loads
    ref = load_weights(build_model("test_resnet"), run_a / "fold_0" / "best.safetensors")
    assert torch.equal(model.conv1[0].weight, ref.conv1[0].weight)
    with pytest.raises(InputError, match="not found"):
        build_model("test_resnet", weights=tmp_path / "missing.safetensors")
    with pytest.raises(InputError, match="match"):
        build_model("mobilenetv3_small_050", weights=run_a / "fold_0" / "best.safetensors")


def test_cli_train_bad_option_is_one_line(cache):
    from typer.testing import CliRunner

    from facecurate.cli import app

    r = CliRunner().invoke(app, ["train", str(cache.path), "--loss", "hinge", "--out", str(cache.path.parent / "x")])
    assert r.exit_code == 2 and "--loss must be one of" in r.output


def test_augment_backends_agree():
    """The CPU's OpenCV kernels and the torch (CUDA) kernels apply the same drawn warp and colour map."""
    from _train_data import astronaut_photo

    photo = torch.from_numpy(np.stack([astronaut_photo(i)[::2, ::2] for i in range(4)]))  # 256 x 192
    p = AugmentParams(rotate=15)
    a = train_batch(photo, (128, 96), p, torch.Generator().manual_seed(5), backend="opencv")
    b = train_batch(photo, (128, 96), p, torch.Generator().manual_seed(5), backend="torch")
    c = train_batch(photo, (128, 96), p, torch.Generator().manual_seed(6), backend="torch")
    assert a.shape == b.shape == (4, 3, 128, 96)
    assert (a - b).abs().mean() < 0.03          # uint8 rounding and border pixels only
    assert (a - c).abs().mean() > 10 * (a - b).abs().mean()  # while another draw differs a lot


def test_ema_weights_are_what_is_validated_saved_and_resumed(work, cache):
    """timm's ModelEmaV3 carries the evaluated weights; a resumed run restores it bit for bit."""
    cfg = dict(TINY, ema=0.9, epochs=3, val_ratio=0.25)
    straight = train(cache, work / "ema_straight", TrainConfig(**cfg))
    best = load_weights(build_model("test_resnet"), straight / "fold_0" / "best.safetensors").state_dict()
    last = load_weights(build_model("test_resnet"), straight / "fold_0" / "last.safetensors").state_dict()
    assert any(not torch.equal(best[k], last[k]) for k in best if best[k].is_floating_point())  # best = the average

    def stop_after_first(fold, epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cache, work / "ema_resumed", TrainConfig(**cfg), on_epoch_end=stop_after_first)
    train(cache, work / "ema_resumed", TrainConfig(**cfg, resume=True))
    pd.testing.assert_frame_equal(_metrics(straight), _metrics(work / "ema_resumed"))


def test_timm_optimizer_and_data_config_follow_the_model():
    """No weight decay on what the model names in no_weight_decay(); normalisation from the model's own data config."""
    from facecurate.train.fit import data_norm
    from facecurate.train.fold import _setup

    vit = TrainConfig(model="vit_tiny_patch16_224", epochs=1, device="cpu")
    fs = _setup(0, vit, torch.device("cpu"), n_steps=1)
    names = {id(p): n for n, p in fs.model.named_parameters()}
    no_decay = {names[id(p)] for g in fs.opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    assert "pos_embed" in no_decay and "cls_token" in no_decay and "blocks.0.attn.qkv.weight" not in no_decay
    assert data_norm(fs.model) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # not ImageNet's numbers
    assert data_norm(build_model("resnet10t")) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_ema_warmup_follows_the_rule_before_timm():
    """The EMA's decay warm-up is the hand-written EMA's (1 + n) / (10 + n) at update n, not timm's slower short-run
    advice (1 - (1 + n) ** -0.75), which still averaged in the early weights at the end of an 8-epoch run."""
    from facecurate.train.fold import _setup

    fs = _setup(0, TrainConfig(model="test_resnet", ema=0.998, device="cpu"), torch.device("cpu"), n_steps=1)
    before_timm = lambda n: min(0.998, (1 + n) / (10 + n))  # noqa: E731
    reach = lambda d: 1 / (1 - d)  # noqa: E731  (how many steps the average reaches back)
    for n in (10, 50, 100, 420, 1000):  # the step the trainer hands update(): the scheduler's count after n steps
        assert abs(reach(fs.ema.get_decay(n)) - reach(before_timm(n))) <= 0.25, n  # (8 + n) / 9 vs (10 + n) / 9
    assert fs.ema.get_decay(420) < 0.98 < 1 - (1 + 419) ** -0.75  # 0.979 where timm's short-run rule gives 0.989
    assert fs.ema.get_decay(10_000) == 0.998  # capped at --ema


_CHILD = """
import json, os, signal, sys
from facecurate.train import TrainConfig, train
cfg, cache, out, kill_at = json.loads(sys.argv[1])
seen = []
def on_save(what, fold, epoch):
    seen.append((what, epoch))
    if [what, epoch] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
train(cache, out, TrainConfig(**cfg), on_save=on_save)
print(json.dumps(seen))
"""


def test_a_kill_at_any_save_point_resumes_bit_identical(work, cache):
    """SIGKILL the real process right after each file of epoch 2 is written; the resumed run equals the straight one."""
    import subprocess
    import sys

    from safetensors.torch import load_file

    cfg = dict(TINY, epochs=2, val_ratio=0.25)
    seen = []
    straight = train(cache, work / "kill_straight", TrainConfig(**cfg), on_save=lambda what, f, e: seen.append([what, e]))
    points = [p for p in seen if p[1] == 2]
    assert [p[0] for p in points][-3:] == ["last", "metrics", "state"]  # every epoch ends with these, state last
    root = Path(__file__).resolve().parents[1]
    for what, epoch in points:
        out = work / f"kill_{what}"
        r = subprocess.run([sys.executable, "-c", _CHILD, json.dumps([cfg, str(cache.path), str(out), [what, epoch]])],
                           cwd=root, capture_output=True, text=True, timeout=300)
        assert r.returncode == -9, (what, r.stderr[-500:])
        train(cache, out, TrainConfig(**cfg, resume=True))
        pd.testing.assert_frame_equal(_metrics(straight), _metrics(out), obj=f"killed after {what}")
        want, got = load_file(str(straight / "fold_0" / "last.safetensors")), load_file(str(out / "fold_0" / "last.safetensors"))
        assert all(torch.equal(want[k], got[k]) for k in want), what


def test_predict_warns_when_predictions_collapse_or_land_in_untrained_classes():
    from facecurate.train.predict import prediction_warnings

    assert prediction_warnings(np.array([3] * 35), {0, 3, 6}) == [
        "the predictions collapse: 35 of 35 photos are class 3 (wear/female/<30); the model has not learned to tell the "
        "classes apart (see the run's confusion.png)"]
    w = prediction_warnings(np.array([0, 3, 17, 17] * 5), {0, 3})
    assert len(w) == 1 and "never trained on: 17 (not worn/female/>=60): 10" in w[0]
    assert prediction_warnings(np.array([0, 3, 6] * 5), {0, 3, 6}) == []


def test_folds_side_by_side_give_the_loops_numbers_and_one_run_folder(work, cache):
    """fold_workers=2: each fold its own run, two worker processes taking the three folds in turn (one process trains
    two), joined into one run folder; with one thread per fold the out-of-fold table, the per-fold summaries and the
    weights equal the sequential loop's, and no part is left."""
    from facecurate.train.fold_pool import worker_plan

    assert worker_plan([0, 1, 2], 2) == [[0, 2], [1]] and worker_plan([3], 2) == [[3]]
    cfg = TrainConfig(**TINY, epochs=2, folds=3)
    seen, workers = [], set()
    loop = train(cache, work / "folds_loop", cfg)
    parts = work / "folds_pool" / ".folds"  # where the folds' own runs are while their processes train them

    def hook(f, e, row):
        seen.append((f, e, (parts / f"fold_{f}").is_dir()))
        workers.update(p.name for p in parts.glob("worker_*.stderr.log"))

    pool = train(cache, work / "folds_pool", replace(cfg, fold_workers=2), on_epoch_end=hook)
    assert workers == {"worker_0.stderr.log", "worker_1.stderr.log"}  # two processes for three folds
    pd.testing.assert_frame_equal(pd.read_parquet(loop / "oof.parquet"), pd.read_parquet(pool / "oof.parquet"))
    drop = lambda s: [{k: v for k, v in f.items() if k not in TIMING} for f in s["per_fold"]]  # noqa: E731
    a, b = (json.loads((r / "summary.json").read_text()) for r in (loop, pool))
    assert drop(a) == drop(b) and a["oof_f1"] == b["oof_f1"]
    for f in range(3):  # the same weights (the files' metadata order is the safetensors writer's own)
        a_w, b_w = (load_file(str(r / f"fold_{f}" / "best.safetensors")) for r in (loop, pool))
        assert a_w.keys() == b_w.keys() and all(torch.equal(a_w[k], b_w[k]) for k in a_w)
    pd.testing.assert_frame_equal(_metrics(loop), _metrics(pool))
    assert sorted(seen) == [(f, e, True) for f in range(3) for e in (1, 2)]  # every epoch reached the caller's hook
    config = json.loads((pool / "config.json").read_text())
    assert config["fold"] == "all" and config["fold_workers"] == 2 and config["threads"] == 1
    assert not (pool / ".folds").exists() and (pool / "per_class.csv").is_file()
    with pytest.raises(InputError, match="holds a finished run"):  # the joined folder is a run like any other
        train(cache, pool, replace(cfg, fold_workers=2))
    before = pd.read_parquet(pool / "oof.parquet")  # resumed, its folds (in the run folder) are not trained again
    train(cache, pool, replace(cfg, fold_workers=2, resume=True), on_epoch_end=lambda f, e, row: seen.append(("again", f)))
    pd.testing.assert_frame_equal(before, pd.read_parquet(pool / "oof.parquet"))
    assert not [x for x in seen if x[0] == "again"] and not parts.exists()


def test_a_killed_side_by_side_run_leaves_no_fold_training_and_resumes_to_the_loops_numbers(work, cache):
    """kill -9 of `train --fold-workers 2` once both folds have saved an epoch: its fold processes stop with it (none
    trains on alone), and `--resume` with the same options finishes each fold's own run to the loop's numbers."""
    import os
    import signal
    import subprocess
    import sys
    import time

    # 30 epochs: a fold that starts first must not finish before the other has saved its first one (at 4 and then at
    # 10 epochs, on a loaded 2-core machine running the suite in two workers, one did: the kill found a finished fold)
    cfg = TrainConfig(**TINY, epochs=30, folds=2)
    out = work / "folds_killed"
    args = [sys.executable, "-m", "facecurate", "train", str(cache.path), "--out", str(out), "--model", cfg.model,
            "--epochs", str(cfg.epochs), "--folds", "2", "--batch-size", "8", "--ema", "0", "--patience", "0", "--lr", "0.003",
            "--drop-rate", "0", "--threads", "2", "--fold-workers", "2", "--no-plots", "--img-size", "32", "--quiet"]
    parent = subprocess.Popen(args, cwd=Path(__file__).resolve().parents[1])
    states = [out / ".folds" / f"fold_{f}" / f"fold_{f}" / "state.pt" for f in (0, 1)]
    deadline = time.time() + 240
    while not all(s.is_file() for s in states) and parent.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert parent.poll() is None, "the run finished before it could be killed"
    jobs = [str(out / ".folds" / f"job_{f}.json") for f in (0, 1)]
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    left = jobs
    for _ in range(100):  # the fold processes get SIGTERM with their parent's death
        left = [j for j in jobs if any(j in cmd for cmd in _cmdlines())]
        if not left:
            break
        time.sleep(0.1)
    assert not left, f"fold processes still running: {left}"
    # stopped, not finished: no fold wrote its summary (a fold left running would have)
    assert not any((out / ".folds" / f"fold_{f}" / "summary.json").exists() for f in (0, 1))
    assert not (out / "summary.json").exists()
    resumed = train(cache, out, replace(cfg, threads=2, fold_workers=2, resume=True))
    loop = train(cache, work / "folds_killed_loop", replace(cfg, threads=1))
    pd.testing.assert_frame_equal(pd.read_parquet(loop / "oof.parquet"), pd.read_parquet(resumed / "oof.parquet"))
    assert not (resumed / ".folds").exists()


def _cmdlines():
    """Every running process's command line (Linux /proc), as text."""
    for p in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            yield p.read_bytes().decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
