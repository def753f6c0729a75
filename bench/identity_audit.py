"""How well the identity checks find planted strangers and duplicate ids, and how well a linear probe on face
embeddings reads gender and age and finds flipped genders, on synth sets built by bench/identity_data.py.

Per seed (each step reused when its output exists under --work/s<seed>): build the set (identity_data.py), crop it
(``facecurate crop``), embed it (``curate.embed.embed_cache`` at its defaults, as ``facecurate embed`` and the report
do: dlib's face descriptors of the detected faces, kept in the cache), then ``curate.identity.audit_identity`` and
``curate.audit.probe.probe_oof`` (folds grouped by the identity groups found) on ``load_cache(...).embeddings``.
With ``--cnn`` a quick CNN K-fold (``facecurate.train.quick_oof``) is trained too, and the probe, the CNN and
``combine_oof`` are measured side by side. Prints one JSON line per seed and one summary line.

  .venv/bin/python bench/identity_audit.py --seeds 1,2 --work artifacts/bench/identity [--cnn]

Scoring: strangers per photo against identity_truth.csv (unmasked = the normal photo, masked = mask1..5), any
other flagged photo counts against precision; duplicate ids per unordered pair of ids; probe macro F1 per photo
against the TRUE labels (injected errors undone), held-out people only (out-of-fold); gender flips per person
against injected.csv, by the report's own pipeline (``audit_labels``: quality gate, simulated threshold) and as
precision at k = the number of flips (a ranking measure; k is known only to the benchmark).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def _pr(found: set, truth: set) -> dict:
    tp = len(found & truth)
    return {"recall": round(tp / len(truth), 3) if truth else None, "precision": round(tp / len(found), 3) if found else None,
            "found": len(found), "true": len(truth), "hits": tp}


def true_labels(manifest: pd.DataFrame, injected: pd.DataFrame, bins=(30, 60)) -> pd.DataFrame:
    """Gender and age group as they truly are: injected.csv's gender and age errors undone."""
    from facecurate.curate.labels import age_group

    m = manifest.copy()
    for r in injected.itertuples():
        rows = m["person"] == r.person
        if r.kind == "gender":
            m.loc[rows, "gender"] = int(r.true)
        elif r.kind == "age":
            m.loc[rows, "age_group"] = int(age_group(int(r.true), bins))
    return m


def macro_f1(oof: pd.DataFrame, truth: pd.DataFrame, head: str, field: str) -> float:
    from sklearn.metrics import f1_score

    p = oof[[c for c in oof if c.startswith(f"p_{head}_")]].to_numpy().argmax(axis=1)
    t = truth.set_index("image_id").loc[oof["image_id"], field].to_numpy().astype(int)
    return round(float(f1_score(t, p, average="macro")), 3)


def gender_flips(oof: pd.DataFrame, manifest: pd.DataFrame, flipped: set) -> dict:
    """Person-level gender flips found by audit_labels (gate + simulation) and precision at k = len(flipped)."""
    from facecurate.curate.audit import audit_labels

    audit = audit_labels(oof, manifest)
    q = audit.quality["gender"]
    flagged = set(audit.flags.loc[audit.flags["kind"] == "gender", "person"])
    est = audit.estimates.get("gender")
    p = oof.assign(lp0=np.log(np.clip(oof["p_gender_0"], 1e-6, 1)), lp1=np.log(np.clip(oof["p_gender_1"], 1e-6, 1)))
    g = p.groupby("person").agg(lp0=("lp0", "mean"), lp1=("lp1", "mean"), gender=("gender", "first"))
    other = np.where(g["gender"] == 0, g["lp1"] - g["lp0"], g["lp0"] - g["lp1"])
    top = set(g.index[np.argsort(-other, kind="mergesort")[:len(flipped)]])
    return {"gate_on": bool(q.on), "report": _pr(flagged, flipped),
            "report_est_precision": None if est is None or not np.isfinite(est.precision) else round(float(est.precision), 3),
            "precision_at_k": round(len(top & flipped) / max(len(flipped), 1), 3)}


def run_seed(seed: int, work: Path, people: int, faces: Path, cnn: bool, epochs: int) -> dict:
    from identity_data import build

    from facecurate.curate.audit.probe import combine_oof, probe_oof
    from facecurate.curate.cache import load_cache
    from facecurate.curate.embed import EmbedParams, embed_cache
    from facecurate.curate.embed.head_features import attribute_columns, head_features
    from facecurate.curate.identity import audit_identity

    w = work / f"s{seed}"
    t0 = time.perf_counter()
    if not (w / "set" / "identity_truth.csv").is_file():
        build(faces, w, seed, people, "gender=0.05,age=0.03,swap=0.03", 15, 15, 10)
    if not (w / "cache" / "meta.json").is_file():
        subprocess.run([sys.executable, "-m", "facecurate", "crop", str(w / "set"), "--out", str(w / "cache"), "--device", "cpu",
                        "-q"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    embed_cache(w / "cache", EmbedParams(device="cpu"))  # reused as it is when the cache already holds this pass
    t_prep = time.perf_counter() - t0
    cache = load_cache(w / "cache")
    m = cache.manifest.reset_index(drop=True)
    e = np.asarray(cache.embeddings)
    truth = pd.read_csv(w / "set" / "identity_truth.csv", dtype=str, keep_default_na=False)
    injected = pd.read_csv(w / "set" / "injected.csv", dtype=str)
    t1 = time.perf_counter()
    audit = audit_identity(e, m)
    t_audit = time.perf_counter() - t1
    f = audit.flags
    st = f[f["kind"] == "stranger"]
    unmasked = set(m.loc[m["mask"] == 2, "image_id"])
    flag_u, flag_m = set(st["image_id"]) & unmasked, set(st["image_id"]) - unmasked
    ts = truth[truth["kind"] == "stranger"]
    dup_truth = {frozenset((r.person, r.other)) for r in truth[truth["kind"] == "duplicate_id"].itertuples()}
    dups = f[f["kind"] == "duplicate_id"]
    dup_found = {frozenset((a, b)) for a, b in zip(dups["person"], dups["other_person"])}
    fits = {k: {"separation": round(v.separation, 3), "on": v.on, "flagged": v.flagged,
                "est_precision": None if not np.isfinite(v.precision) else round(v.precision, 3)} for k, v in audit.comparisons.items()}
    masked_in_off = sorted(ts.loc[ts["photo"].map(lambda s: not audit.comparisons.get(f"{s}~masked", None) or
                                                   not audit.comparisons[f"{s}~masked"].on) & (ts["condition"] == "masked"), "photo"])
    t2 = time.perf_counter()
    attrs = cache.face_attributes  # as the report's probe reads them: gender and age per person when there are attributes
    probe = probe_oof(head_features(e, attrs), m, groups=audit.groups,
                      person_features=None if attrs is None else attribute_columns(attrs))
    t_probe = time.perf_counter() - t2
    tl = true_labels(m, injected[injected["kind"].isin(["gender", "age"])], cache.age_bins)
    flipped = set(injected.loc[injected["kind"] == "gender", "person"])
    out = {"seed": seed, "people": int(m["person"].nunique()), "photos": len(m), "embedded": int(np.isfinite(e[:, 0]).sum()),
           "off": audit.off,
           "strangers_unmasked": _pr(flag_u, set(ts.loc[ts["condition"] == "unmasked", "image_id"])),
           "strangers_masked": _pr(flag_m, set(ts.loc[ts["condition"] == "masked", "image_id"])),
           "masked_strangers_in_off_comparisons": masked_in_off,
           "duplicate_ids": _pr(dup_found, dup_truth),
           "duplicate_est_precision": None if audit.duplicates is None or not np.isfinite(audit.duplicates.precision)
           else round(audit.duplicates.precision, 3),
           "unplanted_pairs": sorted("|".join(sorted(p)) for p in dup_found - dup_truth),
           "comparisons": fits,
           "probe_f1_true": {h: macro_f1(probe, tl, h, fld) for h, fld in (("gender", "gender"), ("age", "age_group"), ("mask", "mask"))},
           "probe_gender_flips": gender_flips(probe, m, flipped),
           "seconds": {"prepare": round(t_prep, 1), "audit_identity": round(t_audit, 2), "probe": round(t_probe, 2)}}
    if cnn:
        from facecurate.train import quick_oof

        oof_path = w / "quick_run" / "oof.parquet"
        if not (w / "quick_run" / "summary.json").is_file():  # oof.parquet grows fold by fold; summary.json ends a run
            quick_oof(w / "cache", w / "quick_run", epochs=epochs, device="cpu", threads=1)
        cnn_oof = pd.read_parquet(oof_path)
        combined, weights = combine_oof(probe, cnn_oof)
        out["cnn"] = {name: {"f1_true": {h: macro_f1(o, tl, h, fld) for h, fld in (("gender", "gender"), ("age", "age_group"), ("mask", "mask"))},
                             "gender_flips": gender_flips(o, m, flipped)}
                      for name, o in (("cnn", cnn_oof), ("probe", probe), ("combined", combined))}
        out["cnn"]["weights"] = weights.round(4).to_dict("records")
        out["cnn"]["epochs"] = epochs
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--work", type=Path, default=ROOT / "artifacts" / "bench" / "identity")
    ap.add_argument("--people", type=int, default=300)
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "data" / "utkface-large")
    ap.add_argument("--cnn", action="store_true", help="also train a quick CNN K-fold and measure probe / CNN / combined")
    ap.add_argument("--epochs", type=int, default=6, help="epochs of the quick CNN (--cnn)")
    a = ap.parse_args()
    rows = [run_seed(int(s), a.work.resolve(), a.people, a.faces, a.cnn, a.epochs) for s in a.seeds.split(",")]
    for r in rows:
        print(json.dumps(r))
    agg = {}
    for key in ("strangers_unmasked", "strangers_masked", "duplicate_ids"):
        hits = sum(r[key]["hits"] for r in rows)
        agg[key] = {"recall": round(hits / max(sum(r[key]["true"] for r in rows), 1), 3),
                    "precision": round(hits / max(sum(r[key]["found"] for r in rows), 1), 3) if sum(r[key]["found"] for r in rows) else None}
    print(json.dumps({"summary": True, "seeds": a.seeds, **agg}))


if __name__ == "__main__":
    main()
