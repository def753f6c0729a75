"""The probe run (`train --model probe-linear`): heads on real dlib embeddings of a demo cache (crop --embed through
the CLI), written as an ordinary run folder that predict and ensemble take like a CNN run's."""
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from facecurate.cli import app
from facecurate.curate.cache import load_cache
from facecurate.curate.embed.head_features import head_features
from facecurate.curate.synth import build_demo_sample
from facecurate.train.probe import fit_head, head_probs, load_fold, probs_of

CNN = ["--model", "test_resnet", "--batch-size", "8", "--ema", "0", "--patience", "0", "--drop-rate", "0", "--threads", "1",
       "--epochs", "1", "--no-plots", "--folds", "3", "--img-size", "48"]


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data(work):
    """6 people of the astronaut demo (42 photos), cropped with --embed through the CLI."""
    build_demo_sample(work / "demo", people=6, seed=5, detector="mediapipe")
    r = _cli("crop", work / "demo", "--out", work / "embcache", "--embed", "--detector", "mediapipe")
    assert r.exit_code == 0, r.output
    return work / "demo", work / "embcache"


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_the_saved_heads_give_sklearns_probabilities_and_the_prior_without_a_vector(kind):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    x = rng.normal(0, 1, (120, 16)) + y[:, None] * 0.8
    t = fit_head(x, y, 3, kind, seed=0)
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    xs = StandardScaler().fit(x).transform(x)
    ref = (LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced") if kind == "linear" else
           MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-2, max_iter=500, random_state=0)).fit(xs, y)
    q = x.copy()
    q[3] = np.nan
    p = head_probs(t, q, 3)
    ok = np.arange(len(x)) != 3
    assert np.allclose(p[ok], ref.predict_proba(xs)[ok], atol=1e-5)
    assert np.allclose(p[3], np.bincount(y, minlength=3) / len(y))  # no vector: the training classes' frequencies
    two = fit_head(x, (y > 0).astype(int), 2, kind)  # one output unit (a logistic) for two classes
    assert np.allclose(head_probs(two, x, 2).sum(1), 1) and head_probs(two, x, 2).shape == (120, 2)


def test_probe_run_predict_and_ensemble_with_a_cnn_run(data, work, cache):
    demo, emb_cache = data
    probe, cnn = work / "probe", work / "cnn"
    r = _cli("train", emb_cache, "--model", "probe-linear", "--folds", "3", "--out", probe)
    assert r.exit_code == 0, r.output
    r = _cli("train", emb_cache, *CNN, "--out", cnn)
    assert r.exit_code == 0, r.output
    for name in ("config.json", "oof.parquet", "per_class.csv", "metrics.csv", "summary.json", "confusion.png"):
        assert (probe / name).is_file(), name
    po, co = pd.read_parquet(probe / "oof.parquet"), pd.read_parquet(cnn / "oof.parquet")
    assert list(po.columns) == list(co.columns)  # exactly a CNN run's table
    assert list(po["image_id"]) == list(co["image_id"]) and (po["fold"] == co["fold"]).all()  # same seed: same folds
    config = json.loads((probe / "config.json").read_text())
    assert config["model"] == "probe-linear" and config["probe"]["embeddings"]["backend"] == "dlib"
    # each head read its own columns: identity for the mask, the age/gender network's for gender, both for age
    assert config["probe"]["features"] == {"mask": ["identity"], "gender": ["attributes"], "age": ["identity", "attributes"]}
    # the out-of-fold rows are the saved heads of their fold applied to the cache's vectors
    c = load_cache(emb_cache)
    x = head_features(c.embeddings, c.face_attributes)
    assert x["mask"].shape[1] == 128 and x["gender"].shape[1] == 4 and x["age"].shape[1] == 132
    row = {i: k for k, i in enumerate(c.manifest["image_id"].astype(str))}
    for f in range(3):
        part = po[po["fold"] == f]
        rows = [row[i] for i in part["image_id"]]
        p = probs_of(load_fold(probe / f"fold_{f}" / "best.safetensors"), {h: v[rows] for h, v in x.items()})
        assert np.allclose(part[[f"p_class_{j}" for j in range(18)]].to_numpy(), p["class"], atol=1e-6)
    # predict: crop with the run's settings, embed the new cache, the fold heads
    r = _cli("predict", probe, demo, "--out", work / "pred" / "submission.csv")
    assert r.exit_code == 0, r.output
    probs = pd.read_parquet(work / "pred" / "probs.parquet")
    assert "no_embedding" in probs and len(probs) == 42 and load_cache(probs["cache"].iloc[0]).embeddings is not None
    assert np.allclose(probs[[f"p_class_{j}" for j in range(18)]].sum(axis=1), 1, atol=1e-4)
    r = _cli("relabel-report", emb_cache, "--oof", probe / "oof.parquet", "--out", work / "report")
    assert r.exit_code == 0, r.output
    assert (work / "report" / "overrides.csv").is_file()
    # ensemble: out of fold with the stacker, and on the photos
    r = _cli("ensemble", cnn, probe, "--oof", "--method", "stack-lr", "--out", work / "ens")
    assert r.exit_code == 0, r.output
    record = json.loads((work / "ens" / "ensemble.json").read_text())
    assert record["oof"]["shared_folds"] and "stack-lr (nested)" in {s["method"] for s in record["oof"]["scores"]}
    r = _cli("ensemble", cnn, probe, "--data", demo, "--method", "stack-lr", "--out", work / "ens2",
             "--cache-root", work / "crops")
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(work / "ens2" / "submission.csv")) == 42


def test_a_cache_without_embeddings_is_one_line(cache, tmp_path):
    r = _cli("train", cache.path, "--model", "probe-linear", "--folds", "3", "--out", tmp_path / "p")
    assert r.exit_code == 2 and "run `facecurate embed" in r.output and len(r.output.strip().splitlines()) == 1
    r = _cli("train", cache.path, "--model", "probe-linear", "--task", "single", "--out", tmp_path / "q")
    assert r.exit_code == 2 and "leave --task multi" in r.output
