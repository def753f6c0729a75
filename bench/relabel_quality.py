"""How well relabel-report finds known label errors, side by side with cleanlab on the same out-of-fold probabilities.

Pipeline (each step reused when its output exists under --work): ``synth`` UTKFace faces into the
competition layout with person-level errors injected (gender flipped, age group shifted,
incorrect_mask/normal swapped; listed in injected.csv) -> ``crop`` -> out-of-fold probabilities (``train``
K-fold, the sklearn stand-in, or any given ``--oof`` table of a run on WORK/cache) ->
``curate.audit.audit_labels`` at its defaults (quality gate, simulated thresholds), and
``cleanlab.filter.find_label_issues`` on single photos, both scored per person against injected.csv.
Per kind it prints the measured precision / recall at the report's chosen threshold next to the
precision / recall the report estimated (the calibration of the estimate). Prints one JSON line.

Commands (docs/relabel-report.md):
  .venv/bin/python bench/relabel_quality.py --oof-model sklearn                       # weak stand-in (HOG + LR)
  .venv/bin/python bench/relabel_quality.py --oof-model train --epochs 8              # quick CNN from scratch
  .venv/bin/facecurate train artifacts/bench/relabel/cache --name strong ...          # a strong run (issue 12), then:
  .venv/bin/python bench/relabel_quality.py --oof artifacts/runs/strong/oof.parquet

cleanlab flags photos, not people, so its flags are mapped to people per kind: for gender / age,
cleanlab runs on that head's labels and probabilities and a person counts as flagged when ANY of their
photos is flagged (``any``) or when at least half are (``half``); for swaps, on the mask head, a person
counts when their incorrect_mask or normal photo is flagged (``any``) or both are (``both``). The
18-class run (``find_label_issues`` on p_class, flagged photo -> the field where its predicted class
differs from the label) is reported too.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
KIND_OF = {"gender": "gender", "age": "age", "swap": "mask_swap"}


def _pr(flagged: set, truth: set) -> dict:
    tp = len(flagged & truth)
    return {"flagged": len(flagged), "true": len(truth), "tp": tp,
            "precision": round(tp / len(flagged), 3) if flagged else None,
            "recall": round(tp / len(truth), 3) if truth else None}


def ours(oof: pd.DataFrame, manifest: pd.DataFrame, truth: dict[str, set], pool: str,
         target: float = 0.8) -> tuple[dict, pd.DataFrame, dict]:
    """Per kind: measured precision/recall of the report's flags at its chosen threshold, next to its own estimate."""
    from facecurate.curate.audit import ReportOptions, audit_labels

    audit = audit_labels(oof, manifest, ReportOptions(pool=pool, target_precision=target))
    flags = audit.flags
    res = {}
    for k in truth:
        kind = KIND_OF[k]
        sel = flags["kind"] == kind
        est = audit.estimates[kind]
        measured = _pr(set(flags.loc[sel, "person"]), truth[k])
        confident = _pr(set(flags.loc[sel & (flags["confidence"] == "high"), "person"]), truth[k])
        gap = (round(est.precision - measured["precision"], 3)
               if measured["precision"] is not None and np.isfinite(est.precision) else None)
        res[k] = {**measured, "status": est.status, "threshold": None if est.off else round(est.threshold, 4),
                  "est_precision": None if not np.isfinite(est.precision) else round(est.precision, 3),
                  "est_recall": None if not np.isfinite(est.recall) else round(est.recall, 3),
                  "est_minus_measured_precision": gap, "in_overrides": confident,
                  "oracle_est_precision": _oracle_precision(oof, kind, truth[k], est, pool)}
    quality = {h: {"balanced_accuracy": round(q.balanced_accuracy, 3), "interval": [round(x, 3) for x in q.interval],
                   "macro_f1": round(q.macro_f1, 3), "ece": round(q.ece, 3), "on": q.on} for h, q in audit.quality.items()}
    return res, flags, quality


def _oracle_precision(oof: pd.DataFrame, kind: str, truth: set, est, pool: str) -> float | None:
    """The simulation's precision at the report's threshold when the real errors are known (injected.csv):
    the gap to the measured precision is the simulation's own error, the rest is the real-error estimate's."""
    from facecurate.curate.audit.kinds import make_units
    from facecurate.curate.audit.simulate import estimate_kind

    if est.off or not np.isfinite(est.precision):
        return None
    u = make_units(oof, kind, pool)
    known = np.isin(u.keys.astype(str), list(truth)).astype(float)
    oracle = estimate_kind(u, target=est.target, draws=est.draws, real_error=known)
    curve = {round(t, 6): p for t, p, _ in oracle.curve}
    p = curve.get(round(est.threshold, 6))
    return None if p is None or not np.isfinite(p) else round(float(p), 3)


def cleanlab_per_head(oof: pd.DataFrame, truth: dict[str, set]) -> dict:
    from cleanlab.filter import find_label_issues

    from facecurate.curate.audit.oof import head_probs

    out = {}
    for kind, head, field in (("gender", "gender", "gender"), ("age", "age", "age_group")):
        issue = find_label_issues(labels=oof[field].to_numpy(int), pred_probs=head_probs(oof, head))
        per = pd.Series(issue).groupby(oof["person"].to_numpy()).mean()
        out[kind] = {"any": _pr(set(per.index[per > 0]), truth[kind]), "half": _pr(set(per.index[per >= 0.5]), truth[kind])}
    issue = find_label_issues(labels=oof["mask"].to_numpy(int), pred_probs=head_probs(oof, "mask"))
    pair = oof["photo"].isin(["incorrect_mask", "normal"]).to_numpy()
    per = pd.Series(issue[pair]).groupby(oof["person"].to_numpy()[pair])
    out["swap"] = {"any": _pr(set(per.any().index[per.any()]), truth["swap"]),
                   "both": _pr(set(per.all().index[per.all() & (per.size() == 2)]), truth["swap"])}
    return out


def cleanlab_18(oof: pd.DataFrame, truth: dict[str, set]) -> dict:
    from cleanlab.filter import find_label_issues

    pc = oof[[f"p_class_{i}" for i in range(18)]].to_numpy(np.float64)
    pc = pc / pc.sum(1, keepdims=True)
    issue = find_label_issues(labels=oof["label"].to_numpy(int), pred_probs=pc)
    pred = pc.argmax(1)
    f = oof[issue].assign(pm=pred[issue] // 6, pg=(pred[issue] // 3) % 2, pa=pred[issue] % 3)
    pair = f["photo"].isin(["incorrect_mask", "normal"])
    return {"gender": _pr(set(f.loc[f["pg"] != f["gender"], "person"]), truth["gender"]),
            "age": _pr(set(f.loc[f["pa"] != f["age_group"], "person"]), truth["age"]),
            "swap": _pr(set(f.loc[pair & (f["pm"] != f["mask"]), "person"]), truth["swap"])}


def sklearn_oof(cache, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Out-of-fold probabilities from a cheap real model: HOG + small colour image -> logistic regression per head,
    person-grouped K-fold (a stand-in for ``train`` where a CPU cannot train a CNN in time)."""
    import cv2
    from skimage.feature import hog
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows = cache.usable()
    man = cache.manifest.iloc[rows].reset_index(drop=True)
    feats = []
    for i in rows:
        im = np.asarray(cache.images[i])
        g = cv2.resize(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), (48, 64), interpolation=cv2.INTER_AREA)
        small = cv2.resize(im, (12, 16), interpolation=cv2.INTER_AREA).reshape(-1) / 255.0
        feats.append(np.concatenate([hog(g, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2)), small]))
    x = np.asarray(feats, np.float32)
    out = man[["image_id", "person", "photo", "label", "mask", "gender", "age_group"]].copy()
    out["fold"] = -1
    probs = {h: np.zeros((len(x), k)) for h, k in (("mask", 3), ("gender", 2), ("age", 3))}
    groups = man["person"].astype(str).to_numpy()
    for f, (tr, va) in enumerate(GroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, groups=groups)):
        out.loc[va, "fold"] = f
        for head, col in (("mask", "mask"), ("gender", "gender"), ("age", "age_group")):
            clf = make_pipeline(StandardScaler(), PCA(256, random_state=seed), LogisticRegression(C=0.05, max_iter=500))
            clf.fit(x[tr], man[col].to_numpy(int)[tr])
            probs[head][va] = clf.predict_proba(x[va])
    for head, p in probs.items():
        for j in range(p.shape[1]):
            out[f"p_{head}_{j}"] = p[:, j]
    pc = (probs["mask"][:, :, None, None] * probs["gender"][:, None, :, None] * probs["age"][:, None, None, :]).reshape(len(x), 18)
    for j in range(18):
        out[f"p_class_{j}"] = pc[:, j]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", default="/work/shared/data/utkface", help="UTKFace-named face photos")
    ap.add_argument("--work", type=Path, default=ROOT / "artifacts" / "bench" / "relabel", help="folder for every stage's output")
    ap.add_argument("--inject", default="gender=0.05,age=0.03,swap=0.03", help="synth --inject")
    ap.add_argument("--people", type=int, default=None, help="synth --people (default: every usable face)")
    ap.add_argument("--crop-size", type=int, default=160, help="cache crop height")
    ap.add_argument("--detector", default="mediapipe", help="crop --detector (mediapipe: fast on a CPU)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=None,
                    help="train the quick model as relabel-report does (quick_plan's step budget per fold) instead of --epochs")
    ap.add_argument("--batch-size", type=int, default=None, help="training batch size (default: the quick preset's)")
    ap.add_argument("--lr", type=float, default=None, help="learning rate (default: the quick preset's)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 on a busy machine)")
    ap.add_argument("--fold", default="all",
                    help="train one fold only (a loaded machine): its held-out people are scored, the errors planted among them")
    ap.add_argument("--run-name", default=None, help="run folder name under WORK (default: run, or run_sklearn)")
    ap.add_argument("--img-size", default="128,96", help="training input H,W")
    ap.add_argument("--model", default=None, help="timm model (default: the trainer's quick default)")
    ap.add_argument("--pool", default="mean", help="relabel-report --pool")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--oof-model", default="train", choices=["train", "sklearn"],
                    help="train: train.fit K-fold CNN (the real path); sklearn: HOG + logistic regression (fast CPU stand-in)")
    ap.add_argument("--oof", type=Path, default=None,
                    help="an oof.parquet of a run on WORK/cache (e.g. a strong model): scored instead of training one")
    ap.add_argument("--target-precision", type=float, default=0.8, help="relabel-report --target-precision")
    ap.add_argument("--report", action="store_true", help="also write the full relabel report (HTML) into WORK/report")
    a = ap.parse_args()
    work: Path = a.work
    work.mkdir(parents=True, exist_ok=True)
    times = {}

    synth_dir = work / "synth"
    t0 = time.perf_counter()
    if not (synth_dir / "injected.csv").is_file():
        from facecurate.curate.synth import synthesize

        synthesize(a.faces, synth_dir, people=a.people, seed=a.seed, inject=a.inject)
    times["synth_s"] = round(time.perf_counter() - t0, 1)

    from facecurate.curate.crop import CropParams, crop_dataset

    t0 = time.perf_counter()
    cache = crop_dataset(synth_dir, work / "cache", CropParams(size=a.crop_size, detector=a.detector)).cache
    times["crop_s"] = round(time.perf_counter() - t0, 1)

    run = a.oof.parent if a.oof else work / (a.run_name or ("run" if a.oof_model == "train" else "run_sklearn"))
    t0 = time.perf_counter()
    if a.oof:
        if not a.oof.is_file():
            raise SystemExit(f"{a.oof}: file not found")
    elif a.oof_model == "sklearn" and not (run / "oof.parquet").is_file():
        run.mkdir(parents=True, exist_ok=True)
        sklearn_oof(cache, a.folds, a.seed).to_parquet(run / "oof.parquet", index=False)
    elif a.oof_model == "train" and not (run / "summary.json").is_file():
        import dataclasses

        from facecurate.train import quick_config, quick_plan, train

        h, w = (int(v) for v in a.img_size.split(","))
        tuned = {k: v for k, v in (("lr", a.lr), ("batch_size", a.batch_size)) if v is not None}
        tuned["fold"] = a.fold
        if a.steps is not None:  # relabel-report's own path: the step budget becomes whole epochs per fold
            cfg = quick_plan(cache, folds=a.folds, steps=a.steps, model=a.model, image_size=h, seed=a.seed,
                             threads=a.threads, **({"batch_size": a.batch_size} if a.batch_size else {}))
            cfg = dataclasses.replace(cfg, **tuned)
        else:
            changes = dict(folds=a.folds, epochs=a.epochs, img_size=(h, w), seed=a.seed, threads=a.threads, **tuned)
            if a.model:
                changes["model"] = a.model
            cfg = quick_config(**changes)
        train(cache, run, cfg=cfg)
    times["train_s"] = round(time.perf_counter() - t0, 1)
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else {}
    run_config = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
    steps = (pd.read_csv(run / "metrics.csv").groupby("fold")["steps"].max().tolist()
             if (run / "metrics.csv").is_file() and "steps" in pd.read_csv(run / "metrics.csv", nrows=0) else None)

    injected = pd.read_csv(synth_dir / "injected.csv", dtype=str)
    folder_of = cache.manifest.drop_duplicates("person").set_index("id")["person"] if "id" in cache.manifest else None
    persons = injected["person"].astype(str)
    if not persons.isin(set(cache.manifest["person"].astype(str))).all() and folder_of is not None:
        persons = injected["id"].map(folder_of).astype(str)
    from facecurate.curate.audit.oof import read_oof

    oof_path = a.oof or run / "oof.parquet"
    oof = read_oof(oof_path)
    scored = set(oof["person"].astype(str))  # every person, or one fold's (--fold, a run stopped early)
    truth = {k: set(persons[injected["kind"] == k]) & scored for k in KIND_OF}
    t0 = time.perf_counter()
    ours_res, flags, quality = ours(oof, cache.manifest, truth, a.pool, a.target_precision)
    times["checks_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    cl_head, cl_18 = cleanlab_per_head(oof, truth), cleanlab_18(oof, truth)
    times["cleanlab_s"] = round(time.perf_counter() - t0, 2)
    if a.report:
        from facecurate.curate.audit import ReportOptions, relabel_report

        relabel_report(cache.path, oof=oof_path, out=work / "report",
                       options=ReportOptions(pool=a.pool, target_precision=a.target_precision))

    def f1(r: dict) -> float:
        p, q = r["precision"] or 0.0, r["recall"] or 0.0
        return round(2 * p * q / (p + q), 3) if p + q else 0.0

    best_cl = {k: max([cl_head[k][m] for m in cl_head[k]] + [cl_18[k]], key=f1) for k in truth}
    print(json.dumps({
        "bench": "relabel_quality", "people": int(cache.manifest["person"].nunique()), "photos": int(len(oof)),
        "injected": {k: len(v) for k, v in truth.items()}, "oof_val_f1": summary.get("oof_macro_f1", summary.get("macro_f1")),
        "oof_acc": {h: round(float((oof[[f"p_{h}_{j}" for j in range(k)]].to_numpy().argmax(1) == oof[c]).mean()), 3)
                    for h, k, c in (("mask", 3, "mask"), ("gender", 2, "gender"), ("age", 3, "age_group"))},
        "quality": quality, "ours": ours_res, "cleanlab_per_head": cl_head, "cleanlab_18class": cl_18,
        "f1_ours_vs_best_cleanlab": {k: [f1(ours_res[k]), f1(best_cl[k])] for k in truth},
        "goal_met": {
            **{k: bool((ours_res[k]["recall"] or 0) >= 0.9 and (ours_res[k]["precision"] or 0) >= 0.8) for k in ("gender", "swap")},
            "estimate_within_0.1": {k: (None if ours_res[k]["est_minus_measured_precision"] is None
                                        else abs(ours_res[k]["est_minus_measured_precision"]) <= 0.1) for k in truth},
            "weak_gender_silent": (not quality["gender"]["on"]) and ours_res["gender"]["flagged"] == 0},
        "other_flags": flags.loc[~flags["kind"].isin(list(KIND_OF.values())), "kind"].value_counts().to_dict(),
        "config": {"oof": str(oof_path), "target_precision": a.target_precision, "inject": a.inject, "folds": a.folds, "fold": a.fold, "epochs": a.epochs, "img_size": a.img_size,
                   "oof_model": a.oof_model, "steps": a.steps, "steps_per_fold": steps,
                   "trained": {k: run_config.get(k) for k in ("epochs", "lr", "batch_size", "img_size", "ema")},
                   "crop_size": a.crop_size, "detector": a.detector, "model": a.model or "trainer default", "pool": a.pool, "seed": a.seed},
        **times}))


if __name__ == "__main__":
    main()
