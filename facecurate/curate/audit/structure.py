"""The structural check: a person's photo set, labels that disagree within a person, one id under two person folders.

It reads the manifest only (not the model), so it always runs.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .flags import FLAG_COLUMNS, empty_flags


def structure_flags(manifest: pd.DataFrame) -> pd.DataFrame:
    """Flag people without exactly one ``incorrect_mask`` and one ``normal`` photo, whose photos disagree on
    gender/age, or whose id is shared with another person folder."""
    rows = []
    has_photo = "photo" in manifest and manifest["photo"].fillna("").astype(str).ne("").any()
    shared: dict[str, list[str]] = {}
    if "id" in manifest:
        ids = manifest.dropna(subset=["id"]).groupby(manifest["id"].astype(str))["person"].unique()
        shared = {str(i): sorted(map(str, f)) for i, f in ids.items() if len(f) > 1}
    id_of = manifest.groupby(manifest["person"].astype(str))["id"].first().astype(str).to_dict() if shared else {}
    for person, g in manifest.groupby(manifest["person"].astype(str), sort=True):
        problems = []
        if has_photo:
            photos = g["photo"].fillna("").astype(str)
            n_inc, n_norm = int((photos == "incorrect_mask").sum()), int((photos == "normal").sum())
            n_mask = int(photos.str.fullmatch(r"mask\d+").sum())
            if n_inc != 1 or n_norm != 1:
                problems.append(f"{n_inc} incorrect_mask and {n_norm} normal photo(s), expected exactly one of each")
            if n_mask != 5 and not problems:
                problems.append(f"{n_mask} mask photo(s), expected 5")
        for field in ("gender", "age_group"):
            if field in g and g[field].dropna().nunique() > 1:
                problems.append(f"photos disagree on {field} ({', '.join(map(str, sorted(g[field].dropna().unique())))})")
        if id_of.get(person) in shared:
            others = [f for f in shared[id_of[person]] if f != person]
            problems.append(f"id {id_of[person]} is also the id of {', '.join(others)}")
        if problems:
            rows.append({"kind": "structure", "scope": "person", "person": person, "image_id": "", "photo": "",
                         "field": "", "given": None, "suggested": None, "score": 1.0, "threshold": np.nan,
                         "reason": "; ".join(problems), "confidence": ""})
    return pd.DataFrame(rows, columns=FLAG_COLUMNS) if rows else empty_flags()
