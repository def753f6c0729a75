"""relabel-report: per-person checks on generated out-of-fold probabilities, near-duplicates, report files, overrides."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd

from _relabel_data import ROOT, faces as _faces, make_oof, manifest_of as _manifest
from facecurate.curate.cache import save_cache
from facecurate.curate.audit.checks import find_issues
from facecurate.curate.audit.structure import structure_flags
from facecurate.curate.audit.pooling import pool_by_person
from facecurate.curate.audit.near_duplicates import near_duplicate_flags, perceptual_hash
from facecurate.curate.overrides import apply_overrides, read_overrides
from facecurate.curate.audit import relabel_report
from facecurate.curate.audit import QuickModel
from facecurate.train import quick_oof, quick_plan
from facecurate.train.config import QUICK_FOLDS, QUICK_MODEL, QUICK_STEPS
from facecurate.cli import app
from typer.testing import CliRunner


# --- pure checks -----------------------------------------------------------------------------------

def test_person_pooling():
    probs = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6]])
    names, pooled = pool_by_person(probs, ["a", "a", "b", "b"], how="mean")
    assert list(names) == ["a", "b"]
    np.testing.assert_allclose(pooled, [[0.8, 0.2], [0.3, 0.7]])
    _, logp = pool_by_person(probs, ["a", "a", "b", "b"], how="log")
    assert logp[0, 0] > 0.8 and np.allclose(logp.sum(1), 1)  # geometric pooling sharpens agreeing photos


def test_each_injected_error_is_flagged_with_the_right_suggestion():
    oof, truth = make_oof(90, seed=1, gender_flip=(3, 10, 41), age_shift=(5, 22), swap=(7, 30),
                          photo_wrong=((12, "mask3"),))
    flags = find_issues(oof, _manifest(oof))
    by = lambda kind: flags[flags["kind"] == kind]  # noqa: E731
    t_person = truth.drop_duplicates("person").set_index("person")
    person = lambda i: oof["person"].unique()[i]  # noqa: E731

    g = by("gender").set_index("person")
    for i in (3, 10, 41):
        assert person(i) in g.index and g.loc[person(i), "suggested"] == t_person.loc[person(i), "gender"]
    a = by("age").set_index("person")
    for i in (5, 22):
        assert person(i) in a.index and a.loc[person(i), "suggested"] == t_person.loc[person(i), "age_group"]
    s = by("mask_swap")
    assert set(s["person"]) == {person(7), person(30)}
    for r in s.to_dict("records"):
        assert r["suggested"] == {"normal": 1, "incorrect_mask": 2}[r["photo"]] and r["scope"] == "photo"
    mp = by("mask_photo")
    hit = mp[mp["image_id"] == f"{person(12)}/mask3"]
    assert len(hit) == 1 and hit["suggested"].iloc[0] == 2
    assert not mp["image_id"].isin(s["image_id"]).any()  # a swap is not reported twice
    # every flag readable and scored; injected people rank above the rest
    assert flags["reason"].str.len().gt(20).all() and flags["score"].between(0, 1).all()
    injected = {person(i) for i in (3, 10, 41, 5, 22, 7, 30, 12)}
    assert set(flags["person"].head(len(injected))) <= injected | set()
    # few false alarms: at most 3 people flagged that had nothing injected
    assert len(set(flags["person"]) - injected) <= 3


def test_clean_set_gives_few_flags():
    oof, _ = make_oof(120, seed=2)
    flags = find_issues(oof, _manifest(oof))
    assert flags["person"].nunique() <= 0.05 * 120


def test_structural_problems_are_flagged():
    oof, _ = make_oof(6, seed=3)
    m = _manifest(oof)
    people = m["person"].unique()
    m = m[~((m["person"] == people[0]) & (m["photo"] == "normal"))]  # missing normal
    m.loc[(m["person"] == people[1]) & (m["photo"] == "mask2"), "photo"] = "incorrect_mask"  # two incorrect_mask
    m.loc[(m["person"] == people[2]) & (m["photo"] == "mask1"), "gender"] = 1 - m.loc[m["person"] == people[2], "gender"].iloc[0]
    f = structure_flags(m)
    assert list(f["person"]) == [people[0], people[1], people[2]]
    assert "0 normal" in f["reason"].iloc[0] and "2 incorrect_mask" in f["reason"].iloc[1]
    assert "disagree on gender" in f["reason"].iloc[2] and (f["score"] == 1).all()


def test_near_duplicates_across_people_with_different_labels():
    oof, _ = make_oof(12, seed=4)
    m = _manifest(oof).reset_index(drop=True)
    images = _faces(12, seed=4)
    assert len(near_duplicate_flags(images, m)) == 0  # distinct people: nothing
    ppl = m["person"].unique()
    dup = images.copy()
    # person 5's normal photo is person 2's normal photo, re-encoded with a little noise; genders differ (2 vs 5)
    i2 = m.index[(m["person"] == ppl[2]) & (m["photo"] == "normal")][0]
    i5 = m.index[(m["person"] == ppl[5]) & (m["photo"] == "normal")][0]
    dup[i5] = np.clip(dup[i2].astype(int) + np.random.default_rng(0).integers(-3, 4, dup[i2].shape), 0, 255)
    # person 8's mask1 copies person 4's mask1 (same gender, same label): not a label problem by default
    i4 = m.index[(m["person"] == ppl[4]) & (m["photo"] == "mask1")][0]
    i8 = m.index[(m["person"] == ppl[8]) & (m["photo"] == "mask1")][0]
    m.loc[i8, "label"] = m.loc[i4, "label"]
    dup[i8] = dup[i4]
    assert np.bitwise_count(perceptual_hash(dup[[i2]])[0] ^ perceptual_hash(dup[[i5]])[0]) <= 4
    f = near_duplicate_flags(dup, m)
    assert set(f["person"]) == {ppl[2], ppl[5]} and (f["kind"] == "near_duplicate").all()
    assert set(near_duplicate_flags(dup, m, same_label=True)["person"]) == {ppl[2], ppl[5], ppl[4], ppl[8]}
    # one matching photo must be near-exact (single_corr); a second matching photo makes the pair count at min_corr
    assert len(near_duplicate_flags(dup, m, single_corr=1.01)) == 0
    j2 = m.index[(m["person"] == ppl[2]) & (m["photo"] == "mask3")][0]
    j5 = m.index[(m["person"] == ppl[5]) & (m["photo"] == "mask3")][0]
    dup[j5] = dup[j2]
    assert set(near_duplicate_flags(dup, m, single_corr=1.01)["person"]) == {ppl[2], ppl[5]}
    dup[j5] = images[j5]
    m.loc[i5, "error"] = "no face"
    assert len(near_duplicate_flags(dup, m)) == 0  # an errored (all-zero) row never matches


# --- the stage: files written, overrides apply ---------------------------------------------------------

def test_relabel_report_writes_self_contained_report_and_overrides_that_fix_the_errors(tmp_path):
    flips, shifts, swaps = (2, 17), (9,), (4, 25)
    oof, truth = make_oof(40, seed=5, gender_flip=flips, age_shift=shifts, swap=swaps)
    m = _manifest(oof)
    cache = save_cache(tmp_path / "cache", _faces(40, seed=5), m, {"params": {}, "versions": {}})
    oof_path = tmp_path / "run" / "oof.parquet"
    oof_path.parent.mkdir()
    oof.to_parquet(oof_path)
    before = {p.name: p.read_bytes() for p in sorted((tmp_path / "cache").iterdir())}
    res = relabel_report(cache.path, oof=oof_path, out=tmp_path / "report")
    for name in ("report.html", "issues.csv", "overrides.csv"):
        assert (tmp_path / "report" / name).is_file()
    assert {p.name: p.read_bytes() for p in sorted((tmp_path / "cache").iterdir())} == before  # input untouched

    issues = pd.read_csv(res.paths["issues"])
    assert list(issues.columns)[:4] == ["kind", "scope", "person", "image_id"] and len(issues) == len(res.flags)

    over = read_overrides(res.paths["overrides"])
    fixed, changed = apply_overrides(m, over)
    injected = {m["person"].unique()[i] for i in flips + shifts + swaps}
    # every injected person now carries the true labels
    t = truth.set_index("image_id")
    f = fixed.set_index("image_id")
    rows = f["person"].isin(injected)
    for col in ("mask", "gender", "age_group"):
        assert (f.loc[rows, col].astype(int) == t.loc[f.index[rows], col]).all(), col
    assert changed >= 7 * (len(flips) + len(shifts)) + 2 * len(swaps)
    # and the fixes overall made the labels closer to the truth
    wrong_before = (m.set_index("image_id")[["mask", "gender", "age_group"]] != t[["mask", "gender", "age_group"]]).any(axis=1).sum()
    wrong_after = (f[["mask", "gender", "age_group"]].astype(int) != t[["mask", "gender", "age_group"]]).any(axis=1).sum()
    assert wrong_after < wrong_before / 3

    page = res.paths["html"].read_text()
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page) and "http://" not in page and "https://" not in page
    assert page.count('<section class="card"') == res.flags["person"].nunique()
    assert page.count("data:image/jpeg;base64,") == 7 * res.flags["person"].nunique()
    first = re.search(r'<section class="card"[^>]*data-person="([^"]+)"', page).group(1)
    assert first == res.flags.sort_values("score", ascending=False)["person"].iloc[0]


def test_cli_relabel_report_with_oof_and_bad_input(tmp_path):
    oof, _ = make_oof(10, seed=6, gender_flip=(3,))
    cache = save_cache(tmp_path / "cache", _faces(10, seed=6), _manifest(oof), {"params": {}, "versions": {}})
    oof.to_parquet(tmp_path / "oof.parquet")
    run = lambda *a: subprocess.run([sys.executable, "-m", "facecurate", "relabel-report", *map(str, a)], cwd=ROOT,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    r = run(cache.path, "--oof", tmp_path / "oof.parquet", "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    assert "gender" in r.stdout and (tmp_path / "rep" / "overrides.csv").is_file()
    bad = oof.drop(columns=["p_gender_0", "p_gender_1"] + [f"p_class_{i}" for i in range(18)])
    bad.to_parquet(tmp_path / "bad.parquet")
    r = run(cache.path, "--oof", tmp_path / "bad.parquet", "--out", tmp_path / "rep2")
    assert r.returncode == 2 and "p_gender_0" in r.stderr and "Traceback" not in r.stderr
    r = run(tmp_path / "nope", "--oof", tmp_path / "oof.parquet")
    assert r.returncode == 2 and "not a cache" in r.stderr


def test_without_oof_a_quick_kfold_is_trained_first(tmp_path):
    oof, _ = make_oof(12, seed=7, gender_flip=(1,))
    cache = save_cache(tmp_path / "cache", _faces(12, seed=7, h=32, w=24), _manifest(oof), {"params": {}, "versions": {}})
    # the CLI orchestrates: train.quick_oof, then curate.audit.relabel_report on its out-of-fold table
    r = CliRunner().invoke(app, ["relabel-report", str(cache.path), "--out", str(tmp_path / "rep"), "--folds", "2",
                                 "--epochs", "1", "--img-size", "32", "--batch-size", "16", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    oof_path = tmp_path / "rep" / "quick_run" / "oof.parquet"
    assert f"Out-of-fold probabilities: {oof_path}" in (tmp_path / "rep" / "report.html").read_text()
    got = pd.read_parquet(oof_path)
    assert set(got["image_id"]) == set(oof["image_id"]) and sorted(got["fold"].unique()) == [0, 1]
    # every person's photos sit in one fold (person-grouped), and the report was written from these probabilities
    assert got.groupby("person")["fold"].nunique().max() == 1
    assert (tmp_path / "rep" / "report.html").is_file() and (tmp_path / "rep" / "overrides.csv").is_file()


def test_the_quick_model_trains_its_step_budget(tmp_path):
    # a budget in optimiser steps, not epochs: whole epochs until every fold has trained at least `steps` steps
    oof, _ = make_oof(12, seed=7)
    cache = save_cache(tmp_path / "cache", _faces(12, seed=7, h=32, w=24), _manifest(oof), {"params": {}, "versions": {}})
    plan = quick_plan(cache.path, folds=2, steps=7, image_size=32, batch_size=8, device="cpu")
    # 84 photos, 2 folds of 6 people: 42 training photos -> 5 batches of 8 per epoch -> 2 epochs reach 7 steps
    assert plan.epochs == 2 and plan.batch_size == 8
    quick_oof(cache.path, tmp_path / "quick", plan)
    metrics = pd.read_csv(tmp_path / "quick" / "metrics.csv")
    steps = metrics.groupby("fold")["steps"].max()
    assert sorted(steps.index) == [0, 1] and (steps == 10).all()
    assert metrics.groupby("fold")["epoch"].max().eq(2).all()
    # epochs, when given, win over the budget; the CLI's --steps default is train's
    assert quick_plan(cache.path, folds=2, steps=7, epochs=3, image_size=32, batch_size=8).epochs == 3
    assert QuickModel().steps == QUICK_STEPS and QuickModel().epochs is None and QuickModel().folds == QUICK_FOLDS
    assert QuickModel().model == QUICK_MODEL


def test_quick_oof_is_person_grouped_and_complete(tmp_path):
    oof, _ = make_oof(12, seed=7)
    cache = save_cache(tmp_path / "cache", _faces(12, seed=7, h=32, w=24), _manifest(oof), {"params": {}, "versions": {}})
    path = quick_oof(cache.path, tmp_path / "quick", folds=2, epochs=1, image_size=32, batch_size=16, device="cpu")
    got = pd.read_parquet(path)
    assert path == tmp_path / "quick" / "oof.parquet" and set(got["image_id"]) == set(oof["image_id"])
    assert got.groupby("person")["fold"].nunique().max() == 1
