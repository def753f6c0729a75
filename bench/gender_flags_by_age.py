#!/usr/bin/env python3
"""Gender flags of a finished relabel-report on a planted set, read by age: all people, people of 18 or more, and the
check rerun without the people labelled under 13; the unplanted flags with the report's chance that each is a real
error (``simulate.real_error_chance``), to look at.

Reads what ``bench/relabel_faces.py`` leaves: the report folder (``probe_oof.parquet``, ``quick_run/oof.parquet``) and
the set (``injected.csv``; a person's age is the last field of their folder name, as ``synth`` writes it). The check
is the report's own (``scores.person_units``, ``simulate.estimate_kind``) on the combined table. Prints one JSON line
per set.

    python bench/gender_flags_by_age.py --set /tmp/idw/set1/set --report /tmp/s26/rh1/report
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from facecurate.curate.audit.kinds import KINDS
from facecurate.curate.audit.probe import combine_oof
from facecurate.curate.audit.scores import person_units, score_units
from facecurate.curate.audit.simulate import estimate_kind, real_error_chance

ADULT, CHILD = 18, 13


def age_of(person: str) -> int:
    return int(str(person).rsplit("_", 1)[-1])


def check(oof: pd.DataFrame, planted: set[str]) -> dict:
    """The gender check on ``oof``: threshold, estimate, flags, and recall / precision over all and over adults."""
    u = person_units(oof, KINDS["gender"])
    est = estimate_kind(u)
    _, score = score_units(u)
    chance, _ = real_error_chance(u, max_rate=0.10)
    flag = score >= est.threshold
    hit = np.array([k in planted for k in u.keys])
    adult = np.array([age_of(k) >= ADULT for k in u.keys])
    ratio = lambda a, b: round(float(a) / float(b), 3) if b else None
    return {"threshold": round(est.threshold, 3), "estimated_precision": round(est.precision, 3),
            "flags": int(flag.sum()), "found": int((flag & hit).sum()), "planted": len(planted),
            "precision": ratio((flag & hit).sum(), flag.sum()), "recall": ratio((flag & hit).sum(), len(planted)),
            "adults": {"flags": int((flag & adult).sum()), "found": int((flag & hit & adult).sum()),
                       "planted": int((hit & adult).sum()), "precision": ratio((flag & hit & adult).sum(), (flag & adult).sum()),
                       "recall": ratio((flag & hit & adult).sum(), (hit & adult).sum())},
            "missed_ages": sorted(age_of(k) for k, f, h in zip(u.keys, flag, hit) if h and not f),
            "unplanted_flags": [{"person": str(k), "real_error_chance": round(float(c), 2)}
                                for k, f, h, c in zip(u.keys, flag, hit, chance) if f and not h]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", type=Path, required=True, help="the planted set (its injected.csv)")
    ap.add_argument("--report", type=Path, required=True, help="relabel-report's folder for that set's cache")
    a = ap.parse_args()
    oof, _ = combine_oof(pd.read_parquet(a.report / "probe_oof.parquet"), pd.read_parquet(a.report / "quick_run" / "oof.parquet"))
    inj = pd.read_csv(a.set / "injected.csv")
    planted = set(inj.loc[inj["kind"] == "gender", "person"].astype(str))
    older = oof["person"].map(age_of) >= CHILD
    out = {"bench": "gender_flags_by_age", "set": str(a.set), "report": str(a.report), "all": check(oof, planted),
           # recall over every planted flip: the children's can no longer be found
           f"without_under_{CHILD}": check(oof[older].reset_index(drop=True), planted)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
