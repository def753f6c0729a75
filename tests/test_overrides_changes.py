"""train --overrides says what it does: photos and people changed per head, a warning over 5 % of people, scores vs both labels."""
from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from _train_data import make_cache
from facecurate.cli import app
from facecurate.curate.overrides import apply_overrides, describe_changes, override_changes


def test_changes_are_counted_per_head_and_a_large_share_warns(tmp_path):
    cache = make_cache(tmp_path / "cache", n_people=20)
    m = cache.manifest
    people = sorted(m["person"].unique())
    new_gender = 1 - int(m.loc[m["person"] == people[0], "gender"].iloc[0])
    photo = m.loc[m["person"] == people[1], "image_id"].iloc[0]
    ov = pd.DataFrame([("person", people[0], "gender", new_gender, "t"), ("photo", photo, "mask", 2, "t")],
                      columns=["scope", "key", "field", "value", "reason"])
    fixed, _ = apply_overrides(m, ov)
    ch = override_changes(fixed)
    n0 = int((m["person"] == people[0]).sum())
    assert ch["gender"] == {"photos": n0, "people": 1} and ch["mask"]["people"] == 1 and ch["age"] == {"photos": 0, "people": 0}
    assert ch["any"]["people"] == 2 and ch["people"] == 20 and ch["people_share"] == 0.1
    lines = describe_changes(ch)
    assert "2 of 20 people" in lines[0] and lines[1].startswith("warning:") and "10%" in lines[1]
    ov1 = ov.iloc[:1]
    one = override_changes(apply_overrides(cache.manifest.iloc[: 7 * 20], ov1)[0])
    assert len(describe_changes(one)) == 1  # 1 of 20 people = 5 %: no warning
    assert override_changes(m) == {}  # no overrides applied: nothing to say


def test_train_with_overrides_prints_and_records_the_changes(tmp_path):
    cache = make_cache(tmp_path / "cache", n_people=12)
    m = cache.manifest
    people = sorted(m["person"].unique())
    new_gender = 1 - int(m.loc[m["person"] == people[0], "gender"].iloc[0])
    (tmp_path / "ov.csv").write_text(f"scope,key,field,value,reason\nperson,{people[0]},gender,{new_gender},test\n")
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", str(cache.path), "--out", str(run), "--model", "test_resnet", "--epochs", "1",
                                 "--folds", "2", "--batch-size", "8", "--threads", "1", "--device", "cpu",
                                 "--overrides", str(tmp_path / "ov.csv")])
    assert r.exit_code == 0, r.output
    assert "--overrides:" in r.output and "1 of 12 people" in r.output and "warning:" in r.output  # 8% > 5%
    assert "against the original labels" in r.output
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["overrides_changes"]["gender"]["people"] == 1 and cfg["overrides_changes"]["any"]["people"] == 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["overrides_changes"]["gender"]["photos"] == int((m["person"] == people[0]).sum())
    assert "oof_orig_f1" in summary and "oof_f1" in summary
    oof = pd.read_parquet(run / "oof.parquet")
    flipped = oof["person"] == people[0]
    assert (oof.loc[flipped, "gender"] != oof.loc[flipped, "orig_gender"]).all()
    assert (oof.loc[~flipped, "gender"] == oof.loc[~flipped, "orig_gender"]).all()
