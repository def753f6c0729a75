"""The identity checks' flags: the audit flags schema plus the matched photo, and what overrides.csv needs to act.

Kinds: ``stranger`` (a photo far from its person's others), ``duplicate_id`` (two ids, one face),
``identity_leak`` (a person of one set found in another). Beside ``FLAG_COLUMNS`` a flag carries
``other_person`` / ``other_image_id`` (the photo to show side by side: the person's own nearest reference
photo for a stranger, the other id's photo for a pair) and ``distance``. Fixes use two fields that
``overrides.csv`` does not read yet: ``exclude`` (photo, 1: leave the photo out of training) and
``identity`` (person, an integer group: ids with the same value are one person, so folds keep them together).
"""
from __future__ import annotations

import pandas as pd

from ..audit.flags import FLAG_COLUMNS, MATCH_COLUMNS

IDENTITY_KINDS = ("stranger", "duplicate_id", "identity_leak")
EXTRA_COLUMNS = MATCH_COLUMNS
IDENTITY_FLAG_COLUMNS = [*FLAG_COLUMNS, *EXTRA_COLUMNS]
#: overrides.csv fields the identity fixes need (the lead's wiring: overrides.FIELDS, the trainer's folds).
OVERRIDE_FIELDS = ("exclude", "identity")


def empty_identity_flags() -> pd.DataFrame:
    """An identity flags frame with no rows."""
    num = ("score", "threshold", "distance")
    return pd.DataFrame({c: pd.Series(dtype=float if c in num else object) for c in IDENTITY_FLAG_COLUMNS})


def flags_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows (dicts with the identity columns) -> a flags frame, highest score first."""
    if not rows:
        return empty_identity_flags()
    f = pd.DataFrame(rows, columns=IDENTITY_FLAG_COLUMNS)
    return f.sort_values(["score", "person", "image_id"], ascending=[False, True, True], kind="mergesort").reset_index(drop=True)


def identity_overrides(flags: pd.DataFrame) -> pd.DataFrame:
    """overrides.csv rows (scope, key, field, value, reason) for the flags that carry a fix (``field`` + ``suggested``);
    an ``identity`` fix is written for both ids of the pair."""
    f = flags[(flags["field"].astype(str) != "") & (flags["suggested"].astype(str) != "")]
    reason = "identity " + f["kind"] + " (score " + f["score"].map("{:.2f}".format) + "): " + f["reason"]
    rows = pd.DataFrame({"scope": f["scope"], "key": f["image_id"].where(f["scope"] == "photo", f["person"]),
                         "field": f["field"], "value": f["suggested"].astype(str), "reason": reason})
    pair = f["field"] == "identity"
    other = pd.DataFrame({"scope": "person", "key": f.loc[pair, "other_person"], "field": "identity",
                          "value": f.loc[pair, "suggested"].astype(str), "reason": reason[pair]})
    return (pd.concat([rows, other], ignore_index=True)[["scope", "key", "field", "value", "reason"]]
            .drop_duplicates(subset=["scope", "key", "field"]).reset_index(drop=True))
