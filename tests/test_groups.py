"""Leak-proof folds: ids that are one person (``--groups`` or identity overrides) always share a fold, through real
``train`` runs; without groups the folds are exactly the people's own."""
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from _train_data import make_people
from facecurate.cli import app
from facecurate.curate.errors import InputError
from facecurate.curate.overrides import apply_overrides, read_overrides
from facecurate.train.groups import person_groups, read_groups
from facecurate.train.splits import holdout_persons, kfold_persons

CACHE_PEOPLE = 10
TINY = ["--model", "test_resnet", "--batch-size", "8", "--ema", "0", "--patience", "0", "--drop-rate", "0",
        "--threads", "1", "--epochs", "1", "--no-plots", "--folds", "3"]


def test_groups_are_dealt_as_units_and_no_groups_keeps_the_folds():
    m = make_people(60, seed=3)
    people = sorted(m["person"].unique())
    groups = {p: i // 3 for i, p in enumerate(people[:30])}  # ten groups of three ids
    for k in (2, 5):
        plain = kfold_persons(m, k, seed=1)
        assert (kfold_persons(m, k, seed=1, groups=None) == plain).all()
        assert (kfold_persons(m, k, seed=1, groups={}) == plain).all()
        folds = kfold_persons(m, k, seed=1, groups=groups)
        assert (kfold_persons(m, k, seed=1, groups=groups) == folds).all()  # deterministic
        assert set(np.unique(folds)) == set(range(k))
        per_group = m.assign(fold=folds, g=m["person"].map(groups)).dropna(subset=["g"]).groupby("g")["fold"].nunique()
        assert len(per_group) == 10 and (per_group == 1).all()
    val = holdout_persons(m, 0.3, seed=1, groups=groups)
    per_group = m.assign(fold=val, g=m["person"].map(groups)).dropna(subset=["g"]).groupby("g")["fold"].nunique()
    assert (per_group == 1).all() and (val == 0).any() and (val == -1).any()


def test_groups_file_and_identity_overrides_are_merged_and_checked(tmp_path):
    m = make_people(6, seed=0)
    a, b, c, d = sorted(m["person"].unique())[:4]
    f = tmp_path / "groups.csv"
    f.write_text(f"person,group\n{a},7\n{b},7\n{c},8\n")
    assert read_groups(f) == {a: 7, b: 7, c: 8}
    ov = tmp_path / "overrides.csv"
    ov.write_text(f"scope,key,field,value,reason\nperson,{c},identity,3,dup\nperson,{d},identity,3,dup\n")
    fixed, changed = apply_overrides(m, read_overrides(ov))
    assert changed == 0 and (fixed[["gender", "age_group", "mask"]] == m[["gender", "age_group", "mask"]]).all().all()
    assert fixed.loc[fixed["person"] == d, "identity_group"].eq(3).all() and fixed["identity_group"].isna().sum() == 6 * 7 - 14
    groups = person_groups(fixed, f)
    assert set(groups) == {a, b, c, d} and groups[a] == groups[b] and groups[c] == groups[d] and groups[a] != groups[c]
    assert person_groups(m) is None
    bad = tmp_path / "bad.csv"
    for text, match in [("person,grp\nx,1\n", "missing column"), ("person,group\nx,-1\n", "not a non-negative integer"),
                        ("person,group\nx,1\nx,2\n", "more than once")]:
        bad.write_text(text)
        with pytest.raises(InputError, match=match):
            read_groups(bad)
    ov.write_text(f"scope,key,field,value,reason\nphoto,{a}/mask1.jpg,identity,3,x\n")
    with pytest.raises(InputError, match="identity row takes scope person"):
        read_overrides(ov)


def _fold_of_group(run, groups: dict) -> pd.Series:
    oof = pd.read_parquet(run / "oof.parquet")
    return oof.assign(g=oof["person"].map(groups)).dropna(subset=["g"]).groupby("g")["fold"].nunique()


def test_train_keeps_one_persons_ids_in_one_fold(cache, tmp_path):
    """Real `train` through the CLI: ids that would fall in different folds are grouped, and every fold's validation
    holds all or none of the group's photos (the out-of-fold table's fold ids per group)."""
    m = cache.manifest
    plain = kfold_persons(m, 3, seed=0)
    fold_of = m.assign(fold=plain).groupby("person")["fold"].first()
    a = fold_of.index[fold_of == 0][0]
    b = fold_of.index[fold_of == 1][0]  # without groups, a and b sit in different folds: a's photos train b's fold
    groups = tmp_path / "groups.csv"
    groups.write_text(f"person,group\n{a},1\n{b},1\n")
    r = CliRunner().invoke(app, ["train", str(cache.path), "--out", str(tmp_path / "run"), *TINY, "--groups", str(groups)])
    assert r.exit_code == 0, r.output
    assert (_fold_of_group(tmp_path / "run", {a: 1, b: 1}) == 1).all()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["groups"] == str(groups) and len(config["groups_xxh3"]) == 16 and config["groups_linked"] == 2
    ov = tmp_path / "overrides.csv"  # the same through identity rows of --overrides
    ov.write_text(f"scope,key,field,value,reason\nperson,{a},identity,4,dup\nperson,{b},identity,4,dup\n")
    r = CliRunner().invoke(app, ["train", str(cache.path), "--out", str(tmp_path / "run2"), *TINY, "--overrides", str(ov)])
    assert r.exit_code == 0, r.output
    assert (_fold_of_group(tmp_path / "run2", {a: 1, b: 1}) == 1).all()
    bad = tmp_path / "bad.csv"
    bad.write_text("who,group\nx,1\n")
    r = CliRunner().invoke(app, ["train", str(cache.path), "--out", str(tmp_path / "run3"), *TINY, "--groups", str(bad)])
    assert r.exit_code == 2 and "bad.csv: missing column(s) person" in r.output and len(r.output.strip().splitlines()) == 1


def test_quick_plan_and_tune_trials_carry_the_groups(cache, tmp_path):
    from facecurate.train import quick_plan
    from facecurate.train.toolkit.tune_space import trial_config

    f = tmp_path / "g.csv"
    f.write_text("person,group\nx,1\ny,1\n")
    assert quick_plan(cache, folds=3, groups=f).groups == str(f)
    values = {"model": "resnet10t", "img_height": 32, "epochs": 1, "lr": 1e-3, "weight_decay": 0.01, "loss": "ce",
              "sampler": "none"}
    assert trial_config(values, (32, 24), 3, 8, 0, None, 1, str(f)).groups == str(f)
    f.write_text("person\nx\n")
    with pytest.raises(InputError, match="g.csv: missing column"):
        quick_plan(cache, folds=3, groups=f)
