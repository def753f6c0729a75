"""relabel-report you can trust: the quality gate, the simulated precision of each kind, no flag from a tie, candidates."""
from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from _relabel_data import faces, make_oof, manifest_of
from facecurate.cli import app
from facecurate.curate.audit import audit_labels, relabel_report
from facecurate.curate.audit.report_html import overrides_from_flags
from facecurate.curate.audit.kinds import make_units
from facecurate.curate.audit.scores import swap_score
from facecurate.curate.audit.simulate import estimate_kind
from facecurate.curate.cache import save_cache

FLIPS = (3, 11, 25, 40, 57, 71, 88, 102, 130, 161)
SWAPS = (5, 19, 47, 66, 93, 140)


def _measured(flags: pd.DataFrame, kind: str, people: set) -> tuple[float, float]:
    got = set(flags.loc[flags["kind"] == kind, "person"])
    tp = len(got & people)
    return (tp / len(got) if got else float("nan")), tp / len(people)


def test_weak_gender_head_raises_no_gender_flag_and_the_banner_says_so(tmp_path):
    oof, _ = make_oof(180, seed=11, gender_flip=FLIPS, swap=SWAPS, strength=(10.0, 0.3, 4.0))
    audit = audit_labels(oof, manifest_of(oof))
    q = audit.quality["gender"]
    assert not q.on and q.balanced_accuracy < 0.7 and q.interval[0] < q.needed
    assert (audit.flags["kind"] != "gender").all()  # zero model-based gender flags
    assert audit.estimates["gender"].off and "gender flags are off" in audit.estimates["gender"].off
    assert audit.quality["mask"].on and audit.quality["age"].on  # the other heads are still read
    people = oof["person"].unique()
    precision, recall = _measured(audit.flags, "mask_swap", {people[i] for i in SWAPS})
    assert precision >= 0.8 and recall >= 0.8  # the mask head is strong: swaps still found
    # the page says it in words, and the terminal table too
    cache = save_cache(tmp_path / "cache", faces(180, seed=11, h=32, w=24), manifest_of(oof), {"params": {}, "versions": {}})
    oof.to_parquet(tmp_path / "oof.parquet")
    r = CliRunner().invoke(app, ["relabel-report", str(cache.path), "--oof", str(tmp_path / "oof.parquet"),
                                 "--out", str(tmp_path / "rep"), "--no-near-duplicates"])
    assert r.exit_code == 0, r.output
    assert "gender flags are off" in r.output and "train a stronger model" in r.output
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "the model reads gender at" in page and "gender flags are off" in page
    assert not pd.read_csv(tmp_path / "rep" / "overrides.csv")["field"].eq("gender").any()


def test_strong_model_finds_injected_flips_and_swaps_at_high_precision():
    oof, _ = make_oof(180, seed=12, gender_flip=FLIPS, swap=SWAPS, strength=(10.0, 5.0, 4.0))
    audit = audit_labels(oof, manifest_of(oof))
    people = oof["person"].unique()
    for kind, injected in (("gender", FLIPS), ("mask_swap", SWAPS)):
        est = audit.estimates[kind]
        assert audit.quality[est.kind if kind == "gender" else "mask"].on and est.confident, est
        precision, recall = _measured(audit.flags, kind, {people[i] for i in injected})
        assert precision >= 0.9 and recall >= 0.9, (kind, precision, recall)
        assert abs(est.precision - precision) <= 0.15 and est.recall >= 0.8, (kind, est.precision, precision)
        assert "expected precision ~" in est.describe() and "recall ~" in est.describe()
    assert (audit.flags.loc[audit.flags["kind"].isin(["gender", "mask_swap"]), "confidence"] == "high").all()


def test_the_estimate_follows_a_middling_model():
    """Where the model is good but not perfect, the simulated precision tracks the one measured on the known errors;
    told which units are the real errors, the simulation matches it closely (what is left of the estimate's gap is
    the estimate of how many real errors the data holds)."""
    flips = tuple(range(0, 300, 20))
    gaps, oracle_gaps = [], []
    for seed in (21, 22):
        oof, _ = make_oof(300, seed=seed, gender_flip=flips, strength=(10.0, 1.0, 4.0))
        audit = audit_labels(oof, manifest_of(oof), gate=0.3)
        est = audit.estimates["gender"]
        truth = {oof["person"].unique()[i] for i in flips}
        precision, recall = _measured(audit.flags, "gender", truth)
        assert np.isfinite(est.precision) and 0 < est.recall <= 1
        gaps.append(abs(est.precision - precision))
        u = make_units(oof, "gender")
        oracle = estimate_kind(u, target=est.target, draws=est.draws, real_error=np.isin(u.keys, list(truth)).astype(float))
        oracle_gaps.append(abs({round(t, 6): p for t, p, _ in oracle.curve}[round(est.threshold, 6)] - precision))
    assert np.mean(gaps) <= 0.15, gaps
    assert max(oracle_gaps) <= 0.05, oracle_gaps


def test_a_tie_is_never_a_flag():
    # a model that knows nothing: every probability uniform, every score exactly 0.5
    oof, _ = make_oof(60, seed=13, strength=(0.0, 0.0, 0.0))
    for c in oof.columns:
        if c.startswith("p_"):
            head = c.rsplit("_", 1)[0]
            oof[c] = 1.0 / sum(x.startswith(head + "_") for x in oof.columns)
    u = make_units(oof, "mask_swap")
    assert np.allclose(swap_score(u.probs), 0.5)
    est = estimate_kind(u, margin=0.1)
    assert est.threshold >= 0.6 and not est.confident
    audit = audit_labels(oof, manifest_of(oof), gate=0.0)  # even with the gate open
    assert audit.flags.empty or set(audit.flags["kind"]) <= {"structure", "near_duplicate"}
    # the swap check is joint: one confident photo cannot outvote the pair when the other points the other way
    pair = np.array([[[0.0, 0.6, 0.4], [0.0, 0.7, 0.3]]])  # normal looks incorrect (0.6), incorrect looks incorrect (0.7)
    assert swap_score(pair)[0] < 0.5


def test_low_confidence_kinds_stay_out_of_overrides_unless_asked(tmp_path):
    oof, _ = make_oof(120, seed=14, gender_flip=(1, 30, 77), swap=(8, 50), strength=(1.2, 5.0, 4.0))
    cache = save_cache(tmp_path / "cache", faces(120, seed=14, h=32, w=24), manifest_of(oof), {"params": {}, "versions": {}})
    oof.to_parquet(tmp_path / "oof.parquet")
    res = relabel_report(cache.path, oof=tmp_path / "oof.parquet", out=tmp_path / "rep", gate=0.0, near_duplicates=False,
                         target_precision=0.97)
    low = [k for k, e in res.estimates.items() if not e.off and not e.confident]
    assert low, {k: e.describe() for k, e in res.estimates.items()}
    flags = res.flags
    assert (flags.loc[flags["kind"].isin(low), "confidence"] == "low").all()
    over = pd.read_csv(res.paths["overrides"])
    low_keys = set(overrides_from_flags(flags[flags["kind"].isin(low)], include_candidates=True)["key"])
    assert not set(over["key"]) & low_keys and res.candidates == len(low_keys)
    assert "candidates, low confidence" in res.paths["html"].read_text()
    res2 = relabel_report(cache.path, oof=tmp_path / "oof.parquet", out=tmp_path / "rep2", gate=0.0, near_duplicates=False, target_precision=0.97,
                          include_candidates=True)
    assert low_keys <= set(pd.read_csv(res2.paths["overrides"])["key"])


def test_options_are_checked_before_any_training_and_threads_reach_the_quick_run(tmp_path):
    oof, _ = make_oof(12, seed=15)
    cache = save_cache(tmp_path / "cache", faces(12, seed=15, h=32, w=24), manifest_of(oof), {"params": {}, "versions": {}})
    for bad, name in ((["--target-precision", "1.5"], "--target-precision"), (["--threads", "0"], "--threads"),
                      (["--pool", "max"], "--pool"), (["--margin", "0"], "--margin")):
        r = CliRunner().invoke(app, ["relabel-report", str(cache.path), "--out", str(tmp_path / "rep"), *bad])
        assert r.exit_code == 2 and name in r.output, r.output
        assert not (tmp_path / "rep").exists()  # nothing trained, nothing written
    r = CliRunner().invoke(app, ["relabel-report", str(cache.path), "--out", str(tmp_path / "rep"), "--folds", "2",
                                 "--epochs", "1", "--img-size", "32", "--batch-size", "16", "--device", "cpu",
                                 "--threads", "1", "--no-near-duplicates"])
    assert r.exit_code == 0, r.output
    import json

    assert json.loads((tmp_path / "rep" / "quick_run" / "config.json").read_text())["threads"] == 1


def test_the_noise_fit_sharpens_units_surer_than_their_photos_and_leaves_calibrated_ones():
    """A swap's two photos together separate errors from clean pairs better than each photo's temperature says: the
    fitted unit-level scale rises above 1 and the real errors get a high chance of being errors (which keeps them
    from counting as false alarms in the simulation). Calibrated log-odds keep the scale at 1."""
    from facecurate.curate.audit.simulate import error_posterior, fit_noise

    rng = np.random.default_rng(5)
    n, n_err = 400, 12
    err = np.zeros(n, bool)
    err[:n_err] = True
    z = np.where(err, rng.normal(2.0, 0.4, n), rng.normal(-2.0, 0.4, n))  # perfectly separated, modest log-odds
    c, pi, scale = fit_noise(z)
    assert scale > 1 and abs(pi - n_err / n) < 0.02, (scale, pi)
    post = error_posterior(scale * z / (1 + c * 0), pi)
    assert post[err].mean() >= 0.8 and post[~err].max() <= 0.05, (post[err].mean(), post[~err].max())
    assert error_posterior(z, pi)[err].mean() < 0.5  # what the unscaled fit said: most real errors looked clean
    # calibrated: each label is wrong with probability sigma(z) exactly
    z = rng.normal(-3.0, 2.0, 4000)
    wrong = rng.random(4000) < 1 / (1 + np.exp(-z))
    c, pi, scale = fit_noise(np.where(wrong, -z, z))
    assert scale == 1.0, scale
