"""How the embedding probe reads gender and age on a planted set, three ways: identity alone, the age/gender columns per
photo, and those columns per person (what relabel-report runs). The figures behind docs/embeddings.md's table.

For each ``--set`` (from ``bench/identity_data.py``: ``SET/injected.csv``) and its cache, embedded with the default
backend (``--cache``; 130 columns), ``curate.audit.probe.probe_oof`` at its defaults gives out-of-fold probabilities;
a person's doubt about their gender label is the mean log-probability of it over their photos (the unmasked photo
weighted 3x), and the planted gender flips among the 15 most doubted people are counted. Also each way's balanced
accuracy of gender and age group per photo against the given labels (what the report's quality gate measures).
Prints one JSON line per set.

  .venv/bin/python bench/probe_readings.py --set /tmp/idw/set1/set --cache /tmp/s26/c1
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def flips_in_top(oof: pd.DataFrame, flipped: set[str], k: int = 15, unmasked_weight: float = 3.0) -> int:
    """Planted flips among the ``k`` people whose given gender the table doubts most."""
    y = oof["gender"].astype(int).to_numpy()
    p = oof[["p_gender_0", "p_gender_1"]].to_numpy()
    logp = np.log(np.clip(p[np.arange(len(y)), y], 1e-6, 1.0))
    w = np.where(oof["mask"].astype(int).to_numpy() == 2, unmasked_weight, 1.0)
    g = pd.DataFrame({"person": oof["person"].to_numpy(), "v": logp * w, "w": w}).groupby("person").sum()
    return int(sum(person in flipped for person in (g["v"] / g["w"]).nsmallest(k).index))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", type=Path, required=True, help="a set from bench/identity_data.py")
    ap.add_argument("--cache", type=Path, required=True, help="its cache, embedded with the default backend")
    a = ap.parse_args()

    from sklearn.metrics import balanced_accuracy_score

    from facecurate.curate.audit.probe import probe_oof
    from facecurate.curate.cache import load_cache
    from facecurate.curate.embed.head_features import IDENTITY_ONLY, attribute_columns, head_features

    cache = load_cache(a.cache)
    if cache.face_attributes is None:
        print(f"error: {a.cache}: its embeddings hold no age/gender columns; run `facecurate embed {a.cache}`", file=sys.stderr)
        sys.exit(2)
    m = cache.manifest.reset_index(drop=True)
    inj = pd.read_csv(a.set / "injected.csv", dtype=str)
    flipped = set(inj.loc[inj["kind"] == "gender", "person"])
    emb, attrs = cache.embeddings, cache.face_attributes
    ways = {"identity": probe_oof(head_features(emb, attrs, IDENTITY_ONLY), m),
            "attributes_per_photo": probe_oof(head_features(emb, attrs), m),
            "attributes_per_person": probe_oof(head_features(emb, attrs), m, person_features=attribute_columns(attrs))}
    out = {}
    for name, oof in ways.items():
        acc = {h: round(float(balanced_accuracy_score(m[f].astype(int), oof[[c for c in oof if c.startswith(f"p_{h}_")]]
                                                      .to_numpy().argmax(1))), 3) for h, f in (("gender", "gender"), ("age", "age_group"))}
        out[name] = {"flips_in_top_15": flips_in_top(oof, flipped), "balanced_accuracy": acc}
    print(json.dumps({"bench": "probe_readings", "set": str(a.set), "flips": len(flipped), **out}))


if __name__ == "__main__":
    main()
