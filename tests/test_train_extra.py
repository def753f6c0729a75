"""External data (--extra), starting weights (--weights RUN, --pretrained) and the ordinal age head, on generated caches."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from _train_data import make_cache, make_extra_cache
from facecurate.curate.errors import InputError
from facecurate.train.augment import AugmentParams, eval_batch
from facecurate.train.checkpoint import load_weights
from facecurate.train.config import TrainConfig
from facecurate.train.data import CacheImages, SourceImages, _augment, train_order
from facecurate.train.fit import train
from facecurate.train.fold import new_model
from facecurate.train.heads import head_layout, ordinal_probs
from facecurate.train.losses import OrdinalLoss, make_loss, masked_loss
from facecurate.train.model import build_model
from facecurate.train.predict import predict_cache

TINY = dict(model="test_resnet", batch_size=8, ema=0.0, patience=0, lr=3e-3, drop_rate=0.0, threads=1, plots=False)
N_DUP_PERSON = 2  # the extra person whose photo copies a main photo


@pytest.fixture(scope="module")
def cache(work):
    return make_cache(work / "cache", n_people=8, seed=2)


@pytest.fixture(scope="module")
def extra(work, cache):
    """6 other people at 40 x 30 (the main cache is 32 x 24); 2 have no mask label; person 2's 4th photo copies a main photo."""
    return make_extra_cache(work / "extra", n_people=6, no_mask_people=2, copies={N_DUP_PERSON * 7 + 3: cache.images[10]})


@pytest.fixture(scope="module")
def run_extra(work, cache, extra):
    return train(cache, work / "run_extra", TrainConfig(**TINY, epochs=2, folds=2, extra=(str(extra.path),), extra_weight=0.5))


def test_extra_people_train_but_are_never_validated(run_extra, cache, extra):
    oof = pd.read_parquet(run_extra / "oof.parquet")
    assert set(oof["image_id"]) == set(cache.manifest["image_id"])  # two folds: every main photo once, nothing else
    assert not oof["person"].str.startswith("ext").any()
    config = json.loads((run_extra / "config.json").read_text())
    (rec,) = config["extra_data"]
    assert rec["path"] == str(extra.path.resolve()) and rec["fingerprint"]
    assert rec["image_size"] == [40, 30]
    # the duplicate is found, and its person (7 photos) dropped, leaving 5 people
    assert rec["duplicates"] == 1 and rec["dropped_people"] == 1 and rec["dropped_photos"] == 7
    assert rec["people"] == 5 and rec["photos"] == 35
    assert rec["labelled"] == {"mask": 35 - 14, "gender": 35, "age": 35}  # 2 people without mask labels
    assert json.loads((run_extra / "summary.json").read_text())["extra"] == [rec]


def test_the_extra_photos_are_what_trains(work, cache):
    """Two extra caches alike in everything but their pixels: if their photos were not trained on, the runs would be equal."""
    from facecurate.curate.cache import save_cache

    one = make_extra_cache(work / "extra_one", n_people=4, seed=21)
    noisy = np.clip(one.images.astype(np.int16) + np.random.default_rng(0).integers(-40, 40, one.images.shape), 0, 255)
    two = save_cache(work / "extra_two", noisy.astype(np.uint8), one.manifest, one.meta)
    cfg = dict(TINY, epochs=1, folds=2, extra_weight=0.5)
    a = train(cache, work / "run_one", TrainConfig(**cfg, extra=(str(one.path),)))
    b = train(cache, work / "run_two", TrainConfig(**cfg, extra=(str(two.path),)))
    assert not np.allclose(pd.read_csv(a / "metrics.csv")["train_loss"], pd.read_csv(b / "metrics.csv")["train_loss"])
    again = train(cache, work / "run_one_again", TrainConfig(**cfg, extra=(str(one.path),)))
    assert np.allclose(pd.read_csv(a / "metrics.csv")["train_loss"], pd.read_csv(again / "metrics.csv")["train_loss"])


def test_every_batch_holds_its_share_of_extra_photos_and_never_a_validation_photo():
    train_pos, val_pos, extra = np.arange(0, 40), np.arange(40, 50), np.arange(50, 62)
    g = torch.Generator().manual_seed(0)
    order = train_order(train_pos, extra, 8, 0.25, g)
    batches = order.reshape(-1, 8)
    assert len(batches) == 40 // 6
    assert all((np.isin(b, extra)).sum() == 2 for b in batches)  # round(0.25 * 8)
    assert not np.isin(order, val_pos).any()
    assert len(np.unique(order[np.isin(order, train_pos)])) == len(order[np.isin(order, train_pos)])  # main: once each
    natural = train_order(train_pos, extra, 8, None, g)
    assert sorted(natural) == sorted(np.concatenate([train_pos, extra]))


def test_batches_mixing_crop_sizes_are_resized_to_the_input(cache, extra):
    images = SourceImages([CacheImages(cache.images), CacheImages(extra.images)])
    n = len(cache.images)
    idx = np.array([0, n + 1, 5, n + 20])
    off = AugmentParams(enabled=False)
    x = _augment(images, idx, (32, 24), off, torch.Generator().manual_seed(0), ((0.0,) * 3, (1.0,) * 3))
    assert x.shape == (4, 3, 32, 24)
    want = eval_batch(torch.from_numpy(np.asarray(extra.images[[1]])), (32, 24), norm=((0.0,) * 3, (1.0,) * 3))
    assert torch.allclose(x[1], want[0], atol=1e-5)  # extra row: its own 40 x 30 photo, resized
    assert torch.allclose(x[0], eval_batch(torch.from_numpy(cache.images[[0]]), (32, 24), norm=((0.0,) * 3, (1.0,) * 3))[0])
    aug = _augment(images, idx, (32, 24), AugmentParams(), torch.Generator().manual_seed(0), ((0.0,) * 3, (1.0,) * 3))
    assert aug.shape == (4, 3, 32, 24) and torch.isfinite(aug).all()


@pytest.mark.parametrize("name", ["ce", "smooth", "focal", "f1", "ordinal"])
def test_a_photo_without_the_label_adds_nothing_to_that_heads_loss(name):
    n = 3
    fn = make_loss(name, n)
    width = n - 1 if name == "ordinal" else n
    logits = torch.randn(6, width, generator=torch.Generator().manual_seed(1), requires_grad=True)
    target = torch.tensor([-1, 0, 1, 2, 1, 0])
    loss = masked_loss(fn, logits, target)
    loss.backward()
    assert torch.all(logits.grad[0] == 0) and logits.grad[1:].abs().sum() > 0
    assert torch.isclose(loss, fn(logits[1:], target[1:]) * 5 / 6)  # the others weigh as in a full batch
    # mixup: a photo whose partner lacks the label is left out too
    order = torch.tensor([1, 0, 3, 2, 5, 4])
    mixed = masked_loss(fn, logits, target, order, 0.7)
    keep = torch.tensor([False, False, True, True, True, True])
    want = (0.7 * fn(logits[keep], target[keep]) + 0.3 * fn(logits[keep], target[order][keep])) * 4 / 6
    assert torch.isclose(mixed, want)
    none = masked_loss(fn, logits, torch.full((6,), -1))
    assert none.item() == 0 and none.requires_grad


def test_single_task_leaves_out_photos_without_all_labels(work, cache, extra):
    run = train(cache, work / "run_single", TrainConfig(**TINY, epochs=1, folds=2, task="single", extra=(str(extra.path),)))
    (rec,) = json.loads((run / "config.json").read_text())["extra_data"]
    assert rec["left_out_unlabelled"] == 14 and rec["labelled"]["mask"] == rec["photos"] == 35 - 14
    no_mask = make_extra_cache(work / "extra_no_mask", n_people=3, seed=11, no_mask_people=3)
    with pytest.raises(InputError, match="--task multi"):
        train(cache, work / "run_single2", TrainConfig(**TINY, epochs=1, folds=2, task="single", extra=(str(no_mask.path),)))


def test_bad_extra_options_are_refused(work, cache, extra):
    with pytest.raises(InputError, match="--extra-weight"):
        train(cache, work / "bad", TrainConfig(**TINY, extra=(str(extra.path),), extra_weight=1.0))
    with pytest.raises(InputError, match="main cache"):
        train(cache, work / "bad", TrainConfig(**TINY, extra=(str(cache.path),)))
    with pytest.raises(InputError, match="not a cache"):
        train(cache, work / "bad", TrainConfig(**TINY, extra=(str(work / "nowhere"),)))


def test_weights_from_a_run_folder_load_the_backbone_and_adapt_the_head(run_extra, work, cache):
    ref = load_weights(build_model("test_resnet"), run_extra / "fold_0" / "best.safetensors").state_dict()
    single = new_model(TrainConfig(**TINY, task="single", weights=str(run_extra)), torch.device("cpu")).state_dict()
    body = [k for k in ref if not k.startswith("fc.")]
    assert all(torch.equal(single[k], ref[k]) for k in body)
    assert single["fc.weight"].shape == (18, ref["fc.weight"].shape[1])  # a new 18-way head
    ordinal = new_model(TrainConfig(**TINY, age_loss="ordinal", weights=str(run_extra)), torch.device("cpu")).state_dict()
    assert ordinal["fc.weight"].shape[0] == sum(head_layout("multi", "ordinal").values())
    assert torch.equal(ordinal["fc.weight"][:5], ref["fc.weight"][:5])  # mask and gender rows carried over
    assert all(torch.equal(ordinal[k], ref[k]) for k in body)
    run = train(cache, work / "run_warm", TrainConfig(**TINY, epochs=1, folds=2, weights=str(run_extra)))
    assert json.loads((run / "config.json").read_text())["weights_file"] == str((run_extra / "fold_0" / "best.safetensors").resolve())
    with pytest.raises(InputError, match="--model test_resnet"):
        train(cache, work / "bad", TrainConfig(**{**TINY, "model": "mobilenetv3_small_050"}, weights=str(run_extra)))
    with pytest.raises(InputError, match="not a run folder"):
        build_model("test_resnet", weights=work)


def test_pretrained_reads_the_local_cache_first(tmp_path, monkeypatch):
    """A file placed in the Hugging Face cache layout is what --pretrained loads, with no network."""
    from huggingface_hub import constants
    from safetensors.torch import save_file

    from facecurate.train.hub import hub_files

    repo, files = hub_files("resnet10t")
    snap = tmp_path / f"models--{repo.replace('/', '--')}" / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (tmp_path / f"models--{repo.replace('/', '--')}" / "refs").mkdir()
    (tmp_path / f"models--{repo.replace('/', '--')}" / "refs" / "main").write_text("0123abcd")
    src = build_model("resnet10t", "single")
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(snap / files[0]))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # were the network asked, it would fail
    model = build_model("resnet10t", "multi", pretrained=True)
    assert torch.equal(model.conv1[0].weight, src.conv1[0].weight)


def test_pretrained_offline_says_which_file_is_missing_and_how_to_place_it(tmp_path, monkeypatch, cache):
    from huggingface_hub import constants
    from typer.testing import CliRunner

    from facecurate.cli import app
    from facecurate.train.hub import pretrained_file

    with pytest.raises(InputError) as e:
        pretrained_file("resnet10t", endpoint="http://127.0.0.1:9", cache_dir=tmp_path)
    msg = str(e.value)
    assert "timm/resnet10t.c3_in1k/model.safetensors" in msg and "cannot be reached" in msg
    assert "hf download timm/resnet10t.c3_in1k model.safetensors" in msg and str(tmp_path) in msg and "\n" not in msg
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    r = CliRunner().invoke(app, ["train", str(cache.path), "--model", "resnet10t", "--pretrained", "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and "hf download" in r.output and not (tmp_path / "run").exists()


def test_ordinal_probabilities_are_ordered_and_sum_to_one():
    logits = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)) * 4
    p = ordinal_probs(logits)
    assert p.shape == (64, 3) and torch.all(p >= 0) and torch.allclose(p.sum(1), torch.ones(64))
    y = torch.arange(64) % 3
    right = torch.stack([torch.where(y > 0, 8.0, -8.0), torch.where(y > 1, 8.0, -8.0)], 1)
    assert OrdinalLoss(3)(right, y) < 0.01 < OrdinalLoss(3)(-right, y)
    assert (ordinal_probs(right).argmax(1) == y).all()


def test_ordinal_age_trains_and_predicts(work, cache):
    cfg = TrainConfig(**TINY, epochs=7, val_ratio=0.25, age_loss="ordinal", augment=AugmentParams(enabled=False))
    run = train(cache, work / "run_ordinal", cfg)
    m = pd.read_csv(run / "metrics.csv")
    assert m["train_loss"].iloc[-1] < m["train_loss"].iloc[0]
    oof = pd.read_parquet(run / "oof.parquet")
    for head, n in (("age", 3), ("class", 18)):
        assert np.allclose(oof[[f"p_{head}_{j}" for j in range(n)]].to_numpy().sum(1), 1, atol=1e-4)
    probs = predict_cache(run, cache)  # predict reads the ordinal head from the run's config
    p_age = probs[[f"p_age_{j}" for j in range(3)]].to_numpy()
    assert np.allclose(p_age.sum(1), 1, atol=1e-4) and (p_age >= 0).all()
    trained = ~cache.manifest["image_id"].isin(oof["image_id"]).to_numpy()
    assert (p_age.argmax(1)[trained] == cache.manifest["age_group"].to_numpy(int)[trained]).mean() >= 0.9
    with pytest.raises(InputError, match="--task multi"):
        train(cache, work / "bad", TrainConfig(**TINY, task="single", age_loss="ordinal"))


def test_a_run_with_extra_data_resumes_to_the_same_numbers(run_extra, work, cache, extra):
    cfg = dict(TINY, epochs=2, folds=2, extra=(str(extra.path),), extra_weight=0.5)

    def stop(fold, epoch, row):
        if (fold, epoch) == (1, 1):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cache, work / "run_extra_resumed", TrainConfig(**cfg), on_epoch_end=stop)
    train(cache, work / "run_extra_resumed", TrainConfig(**cfg, resume=True))
    timing = ["images_per_s", "epoch_s"]
    pd.testing.assert_frame_equal(pd.read_csv(run_extra / "metrics.csv").drop(columns=timing),
                                  pd.read_csv(work / "run_extra_resumed" / "metrics.csv").drop(columns=timing))
    with pytest.raises(InputError, match="extra_weight"):
        train(cache, work / "run_extra_resumed", TrainConfig(**{**cfg, "extra_weight": 0.25}, resume=True))


def test_cli_extra_options(work, cache, extra):
    from typer.testing import CliRunner

    from facecurate.cli import app

    r = CliRunner().invoke(app, ["train", str(cache.path), "--extra", str(extra.path), "--extra-weight", "2",
                                 "--out", str(work / "cli_bad")])
    assert r.exit_code == 2 and "--extra-weight 2" in r.output
    r = CliRunner().invoke(app, ["train", str(cache.path), "--extra", f"{extra.path},{work / 'missing'}", "--out",
                                 str(work / "cli_bad")])
    assert r.exit_code == 2 and "missing" in r.output and not (work / "cli_bad").exists()
