"""`ensemble`, `pseudo-label` and `explain` on real runs of a tiny timm model (timm's test_resnet) on band caches:
the top band of a photo says its mask, the middle its gender, the bottom its age group (tests/_train_data.py)."""
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from _train_data import make_cache, make_eval_layout
from facecurate.cli import app
from facecurate.curate.cache import load_cache
from facecurate.curate.errors import InputError
from facecurate.curate.labels import decode
from facecurate.train import TrainConfig, predict_cache, train
from facecurate.train.augment import AugmentParams
from facecurate.train.metrics import macro_f1
from facecurate.train.model import build_model
from facecurate.train.toolkit.cam import pick_layer
from facecurate.train.toolkit.stack import features, nested_stack

TINY = dict(model="test_resnet", batch_size=8, ema=0.0, patience=0, drop_rate=0.0, threads=1, plots=False, folds=3)
P_CLASS = [f"p_class_{j}" for j in range(18)]
CACHE_PEOPLE = 12  # conftest's cache


@pytest.fixture(scope="module")
def runs(work, cache):
    """a: no augmentation (the bands stay where they are); b: other settings, same folds; c: another seed (other folds)."""
    a = train(cache, work / "a", TrainConfig(**TINY, epochs=5, lr=1e-2, augment=AugmentParams(enabled=False)))
    b = train(cache, work / "b", TrainConfig(**TINY, epochs=4, lr=3e-3, loss="ce"))
    c = train(cache, work / "c", TrainConfig(**TINY, epochs=2, lr=1e-2, seed=1))
    return a, b, c


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_oof_scores_are_each_method_on_the_runs_out_of_fold_photos(runs, work):
    a, b, _ = runs
    r = _cli("ensemble", a, b, "--oof", "--out", work / "ens_ab")
    assert r.exit_code == 0, r.output
    table = pd.read_csv(work / "ens_ab" / "oof_scores.csv").set_index("method")
    assert list(table.index) == ["run a", "run b", "mean", "vote", "stack-lr (nested)", "stack-gb (nested)"]
    oa, ob = (pd.read_parquet(x / "oof.parquet").set_index("image_id") for x in (a, b))
    ob = ob.loc[oa.index]
    y = oa["label"].to_numpy()
    for name, run in (("run a", a), ("run b", b)):  # a run's row is its own out-of-fold F1
        assert table.loc[name, "f1"] == pytest.approx(json.loads((run / "summary.json").read_text())["oof_f1"], abs=1e-4)
    mean = (oa[P_CLASS].to_numpy() + ob[P_CLASS].to_numpy()) / 2
    assert table.loc["mean", "f1"] == pytest.approx(macro_f1(y, mean.argmax(1)), abs=1e-4)
    mask_of_mean = np.asarray(decode(mean.argmax(1))[0])
    assert table.loc["mean", "f1_mask"] == pytest.approx(macro_f1(oa["mask"].to_numpy(), mask_of_mean), abs=1e-4)
    # with two runs a vote is a tie wherever they disagree, and a tie goes to the voted class of higher mean probability
    va, vb = oa[P_CLASS].to_numpy().argmax(1), ob[P_CLASS].to_numpy().argmax(1)
    rows = np.arange(len(y))
    vote = np.where(mean[rows, va] >= mean[rows, vb], va, vb)
    assert table.loc["vote", "f1"] == pytest.approx(macro_f1(y, vote), abs=1e-4)
    # the mean's out-of-fold table is in a run's format (relabel-report --oof reads it)
    ens = pd.read_parquet(work / "ens_ab" / "oof.parquet")
    assert list(ens["image_id"]) == list(oa.index) and (ens["pred"].to_numpy() == mean.argmax(1)).all()


def test_a_nested_stacker_never_sees_the_labels_of_the_fold_it_scores(runs):
    a, b, _ = runs
    oa, ob = (pd.read_parquet(x / "oof.parquet").set_index("image_id") for x in (a, b))
    probs = np.stack([oa[P_CLASS].to_numpy(), ob.loc[oa.index][P_CLASS].to_numpy()])
    x, y, folds = features(probs), oa["label"].to_numpy(), oa["fold"].to_numpy()
    base = nested_stack("stack-lr", x, y, folds)
    shuffled = y.copy()
    held = folds == 0
    shuffled[held] = np.random.default_rng(0).permutation(y[held])[::-1]
    changed = nested_stack("stack-lr", x, shuffled, folds)
    np.testing.assert_allclose(changed[held], base[held])         # fold 0's rows: fitted without fold 0's labels
    assert not np.allclose(changed[~held], base[~held])            # the other folds' stackers did see them


def test_runs_with_other_folds_are_averaged_but_not_stacked(runs, work):
    a, _, c = runs
    r = _cli("ensemble", a, c, "--oof", "--out", work / "ens_ac")
    assert r.exit_code == 0, r.output
    table = pd.read_csv(work / "ens_ac" / "oof_scores.csv")
    assert list(table["method"]) == ["run a", "run c", "mean", "vote"]
    assert "folds differ" in " ".join(r.output.split())
    stacked = _cli("ensemble", a, c, "--data", work / "nowhere", "--method", "stack-lr", "--out", work / "ens_ac2")
    assert stacked.exit_code == 2 and "folds differ" in " ".join(stacked.output.split()), stacked.output
    assert not (work / "ens_ac2").exists()


def test_runs_of_another_cache_are_refused_with_the_run_named(runs, work):
    a, _, _ = runs
    other = make_cache(work / "other_cache", n_people=6, seed=5)
    d = train(other, work / "d", TrainConfig(**{**TINY, "folds": 2}, epochs=1))
    r = _cli("ensemble", a, d, "--oof", "--out", work / "ens_ad")
    assert r.exit_code == 2 and str(d) in r.output and "photos" in r.output
    assert _cli("ensemble", a, "--oof").exit_code == 2  # one run is not an ensemble


def test_ensemble_predicts_new_photos_with_each_method(runs, work):
    a, b, _ = runs
    eval_dir = work / "eval"
    order = make_eval_layout(eval_dir, n=6)
    subs = {}
    for method in ("mean", "stack-lr"):
        out = work / f"ens_{method}"
        r = _cli("ensemble", a, b, "--data", eval_dir, "--method", method, "--out", out, "--cache-root", work / "crops")
        assert r.exit_code == 0, r.output
        subs[method] = pd.read_csv(out / "submission.csv")
        assert list(subs[method]["ImageID"]) == order
    probs = pd.read_parquet(work / "ens_mean" / "probs.parquet")
    cache = load_cache(json.loads((work / "ens_mean" / "ensemble.json").read_text())["predict"]["cache"])
    pa, pb = (predict_cache(x, cache) for x in (a, b))
    mean = (pa[P_CLASS].to_numpy() + pb[P_CLASS].to_numpy()) / 2
    assert (probs["pred"].to_numpy() == mean.argmax(1)).all()
    assert (probs["pred_a"].to_numpy() == pa["pred"].to_numpy()).all()
    pred = dict(zip(probs["image_id"], probs["pred"]))
    assert [pred[i] for i in order] == list(subs["mean"]["ans"])


def test_pseudo_labels_keep_exactly_the_confident_photos_and_train_as_extra_only(runs, work, cache):
    a, _, _ = runs
    eval_dir = work / "eval_p"
    make_eval_layout(eval_dir, n=6, order_seed=3)
    first = _cli("pseudo-label", a, eval_dir, "--min-confidence", 0.01, "--out", work / "pl_all", "--cache-root", work / "crops_p")
    assert first.exit_code == 0, first.output
    every = load_cache(work / "pl_all", verify="full").manifest
    threshold = float(np.median(every["confidence"]))
    r = _cli("pseudo-label", a, eval_dir, "--min-confidence", threshold, "--out", work / "pl", "--cache-root", work / "crops_p")
    assert r.exit_code == 0, r.output
    pseudo = load_cache(work / "pl", verify="full")
    meta = pseudo.meta["pseudo_label"]
    source = load_cache(meta["source_cache"])
    probs = predict_cache(a, source)                                     # the ensemble, computed again here
    conf = probs[P_CLASS].to_numpy().max(1)
    want = probs.loc[conf >= threshold, "image_id"].tolist()
    m = pseudo.manifest
    assert 0 < len(m) < len(every) and sorted(m["image_id"]) == sorted(want)
    got = probs.set_index("image_id").loc[m["image_id"]]
    assert (m["label"].to_numpy(int) == got["pred"].to_numpy()).all()
    assert (m["mask"].to_numpy(int) == np.asarray(decode(got["pred"].to_numpy())[0])).all()
    assert (m["person"] == m["image_id"]).all() and m["age"].isna().all()
    assert meta["run"] == str(a.resolve()) and meta["min_confidence"] == threshold and meta["kept"] == len(m)
    # usable as train --extra: every pseudo photo trains, none is validated or in the out-of-fold table
    run = train(cache, work / "with_pseudo", TrainConfig(**{**TINY, "folds": 2}, epochs=1, extra=(str(work / "pl"),)))
    extra = json.loads((run / "config.json").read_text())["extra_data"][0]
    assert extra["photos"] == len(m) and extra["people"] == len(m)
    assert not set(pd.read_parquet(run / "oof.parquet")["image_id"]) & set(m["image_id"])
    with pytest.raises(InputError, match="min-confidence"):
        from facecurate.train.toolkit.pseudo import pseudo_label
        pseudo_label(a, eval_dir, work / "pl_none", min_confidence=1.0, cache_root=work / "crops_p")


def test_explain_shows_right_and_wrong_per_head_and_the_maps_find_each_heads_band(runs, work):
    from facecurate.train.toolkit import explain as ex

    a, _, _ = runs
    maps, real = [], ex._maps
    ex._maps = lambda *args, **kw: maps.append(real(*args, **kw)) or maps[-1]  # the real maps, kept for the check below
    try:
        r = _cli("explain", a, "--out", work / "ex", "--per-cell", 3)
    finally:
        ex._maps = real
    assert r.exit_code == 0, r.output
    picks = pd.read_csv(work / "ex" / "explained.csv")
    assert set(picks["head"]) == {"mask", "gender", "age"}
    assert ((picks["side"] == "right") == (picks["true"] == picks["pred"])).all()
    assert (picks.groupby(["head", "cls", "side"]).size() <= 3).all()
    oof = pd.read_parquet(a / "oof.parquet").set_index("image_id")
    assert (picks["fold"].to_numpy() == oof.loc[picks["image_id"], "fold"].to_numpy()).all()  # out of fold
    page = (work / "ex" / "index.html").read_text()
    for head in ("mask", "gender", "age"):
        with Image.open(work / "ex" / f"{head}.png") as im:
            assert im.size[0] >= 600 and im.size[1] >= 300
        assert f'src="{head}.png"' in page
    # Grad-CAM of each head lights that head's band: top third for mask, middle for gender, bottom for age
    cams = maps[0][0]
    thirds = np.array_split(np.arange(cams.shape[1]), 3)
    for band, head in enumerate(("mask", "gender", "age")):
        sel = (picks["head"] == head).to_numpy()
        heat = [cams[sel][:, rows].mean() for rows in thirds]
        assert int(np.argmax(heat)) == band, (head, heat)


def test_the_layer_is_a_feature_stage_fine_enough_for_the_input():
    model = build_model("resnet10t")
    assert pick_layer(model, "auto", (128, 96))[0] == "layer3"   # 96 / 16 = 6 cells across
    assert pick_layer(model, "auto", (256, 192))[0] == "layer4"  # 192 / 32 = 6
    assert pick_layer(model, "layer2", (32, 24))[0] == "layer2"
    with pytest.raises(InputError, match="layer1, layer2"):
        pick_layer(model, "blocks.9", (32, 24))
