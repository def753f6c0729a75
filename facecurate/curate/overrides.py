"""Label fixes proposed by ``relabel-report`` and applied by ``train --overrides``, never to the user's files.

``overrides.csv`` columns: ``scope`` (person | photo), ``key`` (the person's folder or the photo's
image_id), ``field`` (gender | age | age_group | mask), ``value`` (the new value; integers as in
``curate.labels``), ``reason`` (free text). Labels are recomputed after the fixes.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import InputError
from .labels import DEFAULT_AGE_BINS, HEAD_FIELDS, age_group, encode

OVERRIDE_COLUMNS = ["scope", "key", "field", "value", "reason"]
FIELDS = ("gender", "age", "age_group", "mask")


def read_overrides(path: str | Path) -> pd.DataFrame:
    """Read and validate ``overrides.csv``; InputError naming the file and row when a row is unusable."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: malformed overrides CSV ({type(e).__name__})") from None
    missing = [c for c in OVERRIDE_COLUMNS[:4] if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    for i, r in enumerate(df.to_dict("records"), start=2):
        if r["scope"] not in ("person", "photo") or r["field"] not in FIELDS or not r["value"].strip().lstrip("-").isdigit():
            raise InputError(f"{path}:{i}: expected scope person|photo, field {'|'.join(FIELDS)} and an integer value")
    df["value"] = df["value"].astype(int)
    return df


def apply_overrides(manifest: pd.DataFrame, overrides: pd.DataFrame, age_bins=DEFAULT_AGE_BINS) -> tuple[pd.DataFrame, int]:
    """Return a copy of ``manifest`` with the fixes applied and labels recomputed, and how many rows changed."""
    out = manifest.copy()
    fields = list(HEAD_FIELDS.values())
    before = out[fields].copy()
    for r in overrides.to_dict("records"):
        rows = out["person"] == r["key"] if r["scope"] == "person" else out["image_id"] == r["key"]
        field = r["field"]
        if field == "age":
            out.loc[rows, "age"] = r["value"]
            out.loc[rows, "age_group"] = age_group(r["value"], age_bins)
        else:
            out.loc[rows, field] = r["value"]
    out["label"] = encode(out["mask"], out["gender"], out["age_group"]).astype("Int64")
    changed = int((out[fields] != before).any(axis=1).sum())
    return out, changed
