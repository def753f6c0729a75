"""relabel-report with its defaults against a set's known errors: recall and precision per kind, estimate vs measured.

The set is one that ``bench/identity_data.py`` built (a synth set with injected label errors, planted strangers and
duplicate ids: ``SET/injected.csv`` and ``SET/identity_truth.csv``). Crops it (or takes ``--cache``), runs
``facecurate relabel-report CACHE`` as a user would (defaults, nothing downloaded; the embeddings are computed
by the report when the cache lacks them) and scores ``issues.csv``:

- ``gender`` / ``age``: person flags against injected gender / age errors;
- ``mask_swap``: people whose swapped photos were flagged against injected swaps;
- ``stranger`` (unmasked / masked apart) against the planted photos; ``duplicate_id`` against the planted pairs
  (a flag on either id of a pair counts for that pair);
- each model-based kind's estimated precision (quality.json) beside the measured one;
- each head's balanced accuracy from the CNN, the probe and their combination (``balanced_accuracy``).

  .venv/bin/python bench/relabel_faces.py --set artifacts/bench/identity/s1/set --work artifacts/bench/relabel_faces/s1
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _pr(flagged: set, true: set) -> dict:
    hit = len(flagged & true)
    return {"flags": len(flagged), "true": len(true), "hit": hit,
            "recall": round(hit / len(true), 3) if true else None,
            "precision": round(hit / len(flagged), 3) if flagged else None}


def score(issues: pd.DataFrame, injected: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Per kind: flags, true cases, hits, recall, precision (people for person kinds, photos for strangers)."""
    out = {}
    for kind in ("gender", "age"):
        true = {str(p) for p in injected.loc[injected["kind"] == kind, "person"]}
        out[kind] = _pr(set(issues.loc[issues["kind"] == kind, "person"].astype(str)), true)
    true = {str(p) for p in injected.loc[injected["kind"] == "swap", "person"]}
    out["mask_swap"] = _pr(set(issues.loc[issues["kind"] == "mask_swap", "person"].astype(str)), true)
    st = truth[truth["kind"] == "stranger"]
    flagged = set(issues.loc[issues["kind"] == "stranger", "image_id"].astype(str))
    for cond in ("unmasked", "masked"):
        true = set(st.loc[st["condition"] == cond, "image_id"].astype(str))
        other = set(st.loc[st["condition"] != cond, "image_id"].astype(str))
        cond_flags = {f for f in flagged if f not in other and
                      (f.rsplit("/", 1)[-1].startswith("normal") == (cond == "unmasked"))}
        out[f"stranger_{cond}"] = _pr(cond_flags, true)
    dup = truth[truth["kind"] == "duplicate_id"]
    pairs = {frozenset((str(r.person), str(r.other))) for r in dup.itertuples()}
    d = issues[issues["kind"] == "duplicate_id"]
    flagged_pairs = {frozenset((str(r.person), str(r.other_person))) for r in d.itertuples()} if len(d) else set()
    out["duplicate_id"] = _pr(flagged_pairs, pairs)
    return out


def source_quality(report: Path, oof: Path | None) -> dict:
    """Balanced accuracy per head against the given labels for the CNN's out-of-fold table (the quick run's, or
    ``--oof``), the probe's (``probe_oof.parquet``) and their combination (``probe.combine_oof``): what each source reads."""
    from sklearn.metrics import balanced_accuracy_score

    from facecurate.curate.audit.oof import head_probs
    from facecurate.curate.audit.probe import combine_oof
    from facecurate.curate.labels import HEAD_FIELDS, HEADS

    cnn_p = oof or report / "quick_run" / "oof.parquet"
    if not cnn_p.is_file() or not (report / "probe_oof.parquet").is_file():
        return {}
    cnn, probe = pd.read_parquet(cnn_p), pd.read_parquet(report / "probe_oof.parquet")
    tables = {"cnn": cnn, "probe": probe, "combined": combine_oof(probe, cnn)[0]}
    return {name: {h: round(float(balanced_accuracy_score(t[HEAD_FIELDS[h]].astype(int), head_probs(t, h).argmax(1))), 3)
                   for h in HEADS} for name, t in tables.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", type=Path, required=True, help="a set from bench/identity_data.py (SET/train.csv, injected.csv, identity_truth.csv)")
    ap.add_argument("--work", type=Path, required=True, help="scratch folder: cache/ and report/")
    ap.add_argument("--cache", type=Path, default=None, help="an existing crop cache of --set (copied, so the original stays as it is)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the report's quick model")
    ap.add_argument("--extra", default="", help="extra relabel-report options, one string")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    cache = a.work / "cache"
    py = [sys.executable, "-m", "facecurate"]
    if not (cache / "meta.json").is_file():
        if a.cache is not None:
            shutil.copytree(a.cache, cache)
        else:
            subprocess.run([*py, "crop", str(a.set), "--out", str(cache), "-q"], check=True, cwd=ROOT)
    report = a.work / "report"
    shutil.rmtree(report, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([*py, "relabel-report", str(cache), "--out", str(report), "--threads", str(a.threads), "-q",
                    *a.extra.split()], check=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    issues = pd.read_csv(report / "issues.csv", dtype={"image_id": str, "person": str})
    res = score(issues, pd.read_csv(a.set / "injected.csv", dtype=str), pd.read_csv(a.set / "identity_truth.csv", dtype=str))
    q = json.loads((report / "quality.json").read_text())
    est = {k: v.get("precision") for k, v in q.get("kinds", {}).items()}
    gate = {h: {"on": v.get("on"), "balanced_accuracy": v.get("balanced_accuracy")} for h, v in q.get("heads", {}).items()}
    photos = len(pd.read_parquet(cache / "manifest.parquet"))
    extra = a.extra.split()
    oof = Path(extra[extra.index("--oof") + 1]) if "--oof" in extra else None
    print(json.dumps({"bench": "relabel_faces", "set": str(a.set), "photos": photos, "seconds": round(seconds, 1),
                      "kinds": res, "estimated_precision": est, "gate": gate,
                      "balanced_accuracy": source_quality(report, oof)}))


if __name__ == "__main__":
    main()
