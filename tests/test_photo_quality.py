"""Photo quality through the CLI: planted dark, grey, downscaled and blurred photos among the astronaut's, cropped by
`crop`, found by `inspect --cache`; the flags in relabel's schema become overrides.csv exclude rows that `train` honours."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from _crop_data import astronaut_person, train_layout
from _recording import Notes
from _train_data import make_cache
from facecurate.curate.audit.flags import FLAG_COLUMNS
from facecurate.curate.audit.report_html import overrides_from_flags
from facecurate.curate.cache import load_cache
from facecurate.curate.errors import InputError
from facecurate.curate.overrides import EXCLUDED, apply_overrides, read_overrides
from facecurate.curate.photo_quality import QualityParams, photo_quality_flags

ROOT = Path(__file__).resolve().parents[1]
PLANTED = {"000001_female_Asian_30/normal.jpg": "dark", "000002_male_Asian_40/mask2.jpg": "grayscale",
           "000003_female_Asian_50/mask3.jpg": "odd_size", "000004_male_Asian_20/mask1.jpg": "blurry"}


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "facecurate", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def damage(img: np.ndarray, kind: str) -> np.ndarray:
    if kind == "dark":
        return (img * 0.35).astype(np.uint8)
    if kind == "grayscale":
        return np.repeat(np.asarray(Image.fromarray(img).convert("L"))[..., None], 3, axis=2)
    if kind == "odd_size":
        return cv2.resize(img, (img.shape[1] * 2 // 5, img.shape[0] * 2 // 5), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(img, (0, 0), 3.0)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Five people of seven astronaut photos, four of them with one damaged photo each, cropped through the CLI."""
    work = tmp_path_factory.mktemp("quality")
    persons = {}
    for i, folder in enumerate(["000001_female_Asian_30", "000002_male_Asian_40", "000003_female_Asian_50",
                                "000004_male_Asian_20", "000005_female_Asian_60"]):
        photos, _ = astronaut_person(7, start=i)
        persons[folder] = [(name, damage(img, PLANTED[f"{folder}/{name}"]) if f"{folder}/{name}" in PLANTED else img)
                           for name, img in photos]
    data = train_layout(work / "data", persons)
    r = run_cli("crop", data, "--out", work / "cache", "--detector", "mediapipe", "-q")
    assert r.returncode == 0, r.stderr
    return work, data, work / "cache"


def test_inspect_cache_finds_each_planted_defect_and_nothing_else(planted):
    work, data, cache = planted
    r = run_cli("inspect", data, "--cache", cache, "--out", work / "inspect")
    assert r.returncode == 0, r.stderr
    assert "photo quality: 4 of 35 cropped photos flagged" in " ".join(r.stdout.split())
    flags = pd.read_csv(work / "inspect" / "quality_flags.csv")
    assert dict(zip(flags["image_id"], flags["kind"])) == PLANTED  # one defect each, no clean photo flagged
    measures = pd.read_csv(work / "inspect" / "quality.csv")
    assert len(measures) == 35 and measures["image_id"].is_unique
    m = measures.set_index("image_id")
    assert m.loc["000003_female_Asian_50/mask3.jpg", "photo_w"] == 153  # the photo's own size, from the cache manifest
    assert m.loc["000002_male_Asian_40/mask2.jpg", "saturation"] < 0.01 < m["saturation"].median()
    with Image.open(work / "inspect" / "quality.png") as im:  # the worst photos, one per defect
        assert im.width > 400 and len(np.unique(np.asarray(im.convert("L")))) > 50


def test_a_rule_firing_on_most_photos_becomes_a_note_not_flags(planted):
    work, data, cache = planted
    r = run_cli("inspect", data, "--cache", cache, "--out", work / "loose", "--quality-cuts", "dark_p99=0.99")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "dark (absolute rule: 99th-percentile brightness < 0.99" in text and "not flagged" in text
    flags = pd.read_csv(work / "loose" / "quality_flags.csv")
    dark = flags[flags["kind"] == "dark"]
    assert list(dark["image_id"]) == ["000001_female_Asian_30/normal.jpg"] and list(dark["rules"]) == ["relative"]


def test_bad_quality_cut_is_one_line_exit_2(planted):
    work, data, cache = planted
    r = run_cli("inspect", data, "--cache", cache, "--out", work / "bad", "--quality-cuts", "darkness=0.2")
    assert r.returncode == 2 and "--quality-cuts" in r.stderr and "darkness" in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr


def test_flags_become_exclude_rows_of_overrides_csv(planted, tmp_path):
    _, _, cache = planted
    flags = photo_quality_flags(cache)
    assert list(flags.columns) == FLAG_COLUMNS and (flags["kind"] == "photo_quality").all()
    assert set(flags["image_id"]) == set(PLANTED) and (flags["field"] == "exclude").all()
    assert flags.loc[flags["image_id"] == "000002_male_Asian_40/mask2.jpg", "confidence"].item() == "low"  # grey: a candidate
    rows = overrides_from_flags(flags)
    assert set(rows["key"]) == set(PLANTED) - {"000002_male_Asian_40/mask2.jpg"} and (rows["value"] == 1).all()
    rows.to_csv(tmp_path / "overrides.csv", index=False)
    fixed, changed = apply_overrides(load_cache(cache).manifest, read_overrides(tmp_path / "overrides.csv"))
    assert changed == 0 and set(fixed.loc[fixed[EXCLUDED], "image_id"]) == set(rows["key"])


def test_exclude_rows_keep_photos_out_of_training(tmp_path):
    from facecurate.train.config import TrainConfig
    from facecurate.train.fit import train

    cache = make_cache(tmp_path / "cache", n_people=8, seed=2)
    people = sorted(cache.manifest["person"].unique())
    photo = cache.manifest.loc[cache.manifest["person"] == people[1], "image_id"].iloc[3]
    ov = tmp_path / "overrides.csv"
    pd.DataFrame([("person", people[0], "exclude", 1, "t"), ("photo", photo, "exclude", 1, "t")],
                 columns=["scope", "key", "field", "value", "reason"]).to_csv(ov, index=False)
    notes = Notes()
    run = train(cache, tmp_path / "run", TrainConfig(model="test_resnet", batch_size=8, ema=0.0, patience=0, threads=1,
                                                     plots=False, epochs=1, folds=2, overrides=str(ov)), progress=notes)
    oof = pd.read_parquet(run / "oof.parquet")
    assert len(oof) == len(cache.manifest) - 8 and people[0] not in set(oof["person"]) and photo not in set(oof["image_id"])
    config = json.loads((run / "config.json").read_text())
    assert config["n_photos"] == len(cache.manifest) - 8 and config["overrides_excluded"] == 8
    assert any("8 photo(s) of 2 people excluded from training" in n for n in notes)
    pd.DataFrame([("photo", photo, "exclude", 2, "t")], columns=["scope", "key", "field", "value", "reason"]).to_csv(ov, index=False)
    with pytest.raises(InputError, match="exclude row takes value 1"):
        read_overrides(ov)


def test_quality_cuts_parse_and_validate():
    assert QualityParams.parse("dark_p99=0.25, softer=1.8").softer == 1.8
    with pytest.raises(ValueError, match="ratio above 1"):
        QualityParams.parse("softer=0.9")


def test_one_registry_entry_puts_the_kind_in_relabel_report(planted):
    """photo_quality is a detected kind of the registry (on by default): cards, issues.csv and exclude rows follow."""
    from facecurate.curate.audit import KINDS, relabel_report

    work, _, cache = planted
    m = load_cache(cache).manifest
    oof = m[["image_id", "person", "photo", "mask", "gender", "age_group", "label"]].astype({"label": int}).copy()
    probs = np.full((len(m), 18), 0.1 / 17)
    probs[np.arange(len(m)), oof["label"].to_numpy()] = 0.9  # a model that agrees with every label: no label flags
    oof[[f"p_class_{j}" for j in range(18)]] = probs
    oof.to_parquet(work / "oof.parquet")
    assert KINDS["photo_quality"].detect is not None  # one entry of the registry
    res = relabel_report(cache, oof=work / "oof.parquet", out=work / "report", near_duplicates=False, embed=False)
    issues = pd.read_csv(res.paths["issues"])
    assert set(issues.loc[issues["kind"] == "photo_quality", "image_id"]) == set(PLANTED)
    rows = read_overrides(res.paths["overrides"])
    assert set(rows.loc[rows["field"] == "exclude", "key"]) == set(PLANTED) - {"000002_male_Asian_40/mask2.jpg"}
    assert 'data-kind="photo_quality"' in res.paths["html"].read_text()
