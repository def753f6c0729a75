"""relabel-report's eyes through the CLI on real files: the embeddings computed into a cache that lacks them (real dlib),
the probe combined with a given out-of-fold table, identity checks that say in one line why they are off on a set of
variants of one face (the demo's astronaut), and --no-embed leaving the cache as it was."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from facecurate.cli import app
from facecurate.curate.cache import load_cache
from facecurate.curate.crop import CropParams, crop_dataset
from facecurate.curate.synth import build_demo_sample


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """12 astronaut variants (one face under 12 ids), cropped with MediaPipe, and an out-of-fold table that agrees
    with every label (so no model-based flag: what the test reads is the faces' part)."""
    work = tmp_path_factory.mktemp("faces")
    build_demo_sample(work / "data", people=12, seed=2, detector="mediapipe")
    cache = crop_dataset(work / "data", work / "cache", CropParams(detector="mediapipe", batch=8)).cache
    shutil.copytree(work / "cache", work / "cache_plain")  # as crop wrote it, for --no-embed
    m = cache.manifest
    oof = m[["image_id", "person", "photo", "mask", "gender", "age_group", "label"]].astype({"label": int}).copy()
    probs = np.full((len(m), 18), 0.1 / 17)
    probs[np.arange(len(m)), oof["label"].to_numpy()] = 0.9
    oof[[f"p_class_{j}" for j in range(18)]] = probs
    oof["fold"] = pd.factorize(oof["person"])[0] % 3
    oof.to_parquet(work / "oof.parquet")
    return work


def test_the_report_embeds_probes_and_says_why_identity_is_off(demo):
    assert not (demo / "cache" / "embeddings.npy").exists()
    r = CliRunner().invoke(app, ["relabel-report", str(demo / "cache"), "--oof", str(demo / "oof.parquet"),
                                 "--out", str(demo / "report"), "--no-near-duplicates"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    c = load_cache(demo / "cache")  # the pass wrote into the cache, under its checksums
    assert c.embeddings is not None and c.embeddings.shape == (len(c.manifest), 128)
    assert "identity checks off" in out  # one line, not a flag per pair of look-alikes
    page = (demo / "report" / "report.html").read_text()
    assert "identity checks off" in page
    issues = pd.read_csv(demo / "report" / "issues.csv")
    assert not issues["kind"].isin(["stranger", "duplicate_id"]).any()
    probe = pd.read_parquet(demo / "report" / "probe_oof.parquet")  # the probe's own table, oof format
    assert set(probe["image_id"]) == set(c.manifest["image_id"]) and "p_gender_1" in probe
    assert "probe's weight per head" in out
    assert not (demo / "report" / "identity_groups.csv").exists()  # no groups from checks that were off
    assert json.loads((demo / "report" / "quality.json").read_text())["heads"]["mask"]["on"]


def test_the_summary_says_why_a_check_that_reads_no_model_raised_nothing(demo, tmp_path):
    """Zero stranger flags on the demo mean "identity cannot tell these faces apart", not "no strangers": the terminal
    table's status column says which checks ran and, for the others, why not."""
    from facecurate.curate.audit import relabel_report

    res = relabel_report(demo / "cache", demo / "oof.parquet", out=tmp_path / "r", near_duplicates=False,
                         photo_quality=False)
    assert res.detector_status("stranger") == res.detector_status("duplicate_id") == "off (faces not told apart)"
    assert res.detector_status("identity_leak") == "off (no --against)"
    assert res.detector_status("near_duplicate") == "off (--no-near-duplicates)"
    assert res.detector_status("photo_quality") == "off (--no-photo-quality)"
    assert res.detector_status("structure") == "on"
    plain = relabel_report(demo / "cache_plain", demo / "oof.parquet", out=tmp_path / "p", embed=False,
                           near_duplicates=False)
    assert plain.faces is None and plain.detector_status("stranger") == "off (no face embeddings)"
    assert plain.detector_status("photo_quality") == "on"
    assert not (demo / "cache_plain" / "embeddings.npy").exists()


def test_no_embed_leaves_a_cache_without_embeddings_as_it_was(demo, tmp_path):
    before = {p.name: p.read_bytes() for p in (demo / "cache_plain").iterdir() if p.is_file() and p.name != ".lock"}
    r = CliRunner().invoke(app, ["relabel-report", str(demo / "cache_plain"), "--oof", str(demo / "oof.parquet"),
                                 "--out", str(tmp_path / "report"), "--no-embed", "--no-near-duplicates"])
    assert r.exit_code == 0, r.output
    after = {p.name: p.read_bytes() for p in (demo / "cache_plain").iterdir() if p.is_file() and p.name != ".lock"}
    assert after == before and "embeddings.npy" not in after
    assert not (tmp_path / "report" / "probe_oof.parquet").exists()


def test_the_quick_model_keeps_one_faces_two_ids_in_one_fold(tmp_path):
    """Real relabel-report with no --oof: the identity audit runs on the cache's embeddings before the quick model,
    and two ids of one face, which plain person folds put in different folds, share one fold in the quick run."""
    from _train_data import make_cache
    from facecurate.curate.embed.store import EmbedStore
    from facecurate.train.splits import kfold_persons

    cache = make_cache(tmp_path / "cache", n_people=40, seed=4)
    m = cache.manifest.reset_index(drop=True)
    fold_of = m.assign(fold=kfold_persons(m, 3, seed=0)).groupby("person")["fold"].first()
    a, b = fold_of.index[fold_of == 0][0], fold_of.index[fold_of == 1][0]
    rng = np.random.default_rng(0)
    people = sorted(m["person"].unique())
    centres = rng.normal(size=(len(people), 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    centres[people.index(b)] = centres[people.index(a)]  # b is a filed under a second id
    code = m["person"].map({p: i for i, p in enumerate(people)}).to_numpy()
    store = EmbedStore.open(cache.path, len(m), 128, key="test-vectors")
    store.vectors[:] = (centres[code] + rng.normal(scale=0.02, size=(len(m), 128))).astype(np.float32)
    for k in store.pending_chunks():
        store.finish_chunk(k, [""] * len(store.chunk_range(k)))
    store.finalize(m["image_id"], {"backend": "test", "dim": 128, "key": "test-vectors"})
    out = tmp_path / "report"
    r = CliRunner().invoke(app, ["relabel-report", str(cache.path), "--out", str(out), "--folds", "3", "--steps", "4",
                                 "--img-size", "32", "--threads", "1", "--no-near-duplicates", "--no-photo-quality"])
    assert r.exit_code == 0, r.output
    assert "1 face(s) filed under more than one id" in r.output
    groups = pd.read_csv(out / "identity_groups.csv").set_index("person")["group"]
    assert groups[a] == groups[b] and groups.nunique() == len(people) - 1
    oof = pd.read_parquet(out / "quick_run" / "oof.parquet")
    assert oof.loc[oof["person"].isin([a, b]), "fold"].nunique() == 1
    assert json.loads((out / "quick_run" / "config.json").read_text())["groups"] == str(out / "identity_groups.csv")
    issues = pd.read_csv(out / "issues.csv")
    pair = issues[issues["kind"] == "duplicate_id"]
    assert len(pair) >= 1 and {a, b} <= set(pair["person"]) | set(pair.get("other_person", pd.Series(dtype=str)))


def test_ensure_embeddings_hands_back_the_pass_cache_as_load_cache_opens_it(demo, tmp_path):
    """The report reads the embeddings from the Cache the pass returns (no second checksum pass): it holds the same
    meta.json, vectors and reasons that opening the cache afresh gives."""
    from facecurate.curate.audit import ReportOptions
    from facecurate.curate.audit.faces import ensure_embeddings

    shutil.copytree(demo / "cache_plain", tmp_path / "cache", ignore=shutil.ignore_patterns(".lock"))
    got = ensure_embeddings(load_cache(tmp_path / "cache"), ReportOptions())
    fresh = load_cache(tmp_path / "cache")
    assert got.meta == fresh.meta and "embeddings" in got.meta
    assert got.embeddings is not None and got.embeddings.shape == (len(got.manifest), 128)
    np.testing.assert_array_equal(np.asarray(got.embeddings), np.asarray(fresh.embeddings))
    assert got.embed_errors.tolist() == fresh.embed_errors.tolist()
    pd.testing.assert_frame_equal(got.manifest, fresh.manifest)
