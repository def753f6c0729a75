"""Label fixes proposed by ``relabel-report`` and applied by ``train --overrides``, never to the user's files.

``overrides.csv`` columns: ``scope`` (person | photo), ``key`` (the person's folder or the photo's
image_id), ``field`` (gender | age | age_group | mask, or ``exclude``), ``value`` (the new value; integers
as in ``curate.labels``; for ``exclude``, 1 leaves the photo or person out of training and 0 keeps them),
``reason`` (free text). Labels are recomputed after the fixes; the labels before them stay beside them as
``orig_<field>`` columns, so a run can say what changed (``override_changes``) and score its out-of-fold
predictions against both. Exclusions only set the ``excluded`` column; ``train`` drops those rows. ``identity``
rows (scope person, value a group id >= 0: ids with one group are one person) change no label: they fill the
``identity_group`` column, which ``train`` uses to keep one person's ids in one fold.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import InputError
from .labels import DEFAULT_AGE_BINS, HEAD_CLASSES, HEAD_FIELDS, age_group, encode

OVERRIDE_COLUMNS = ["scope", "key", "field", "value", "reason"]
FIELDS = ("gender", "age", "age_group", "mask", "exclude", "identity")
EXCLUDE = "exclude"   # the field of a row that keeps a photo (or a person) out of training: value 1, or 0 to keep it
IDENTITY = "identity"  # the field of a row that says which person an id is: value = a group id shared by its other ids
IDENTITY_GROUP = "identity_group"  # the nullable int column apply_overrides fills from identity rows
EXCLUDED = "excluded"  # the bool column apply_overrides adds: True for rows an exclude row left out
ORIG = "orig_"  # prefix of the columns holding the labels before the fixes
ORIG_COLUMNS = [ORIG + c for c in (*HEAD_FIELDS.values(), "label")]
WARN_PEOPLE_SHARE = 0.05  # more than this share of people changed deserves a warning
#: the values each field takes (age in years, as the readers accept it)
VALUE_RANGE = {"gender": range(HEAD_CLASSES["gender"]), "age_group": range(HEAD_CLASSES["age"]),
               "mask": range(HEAD_CLASSES["mask"]), "age": range(150), EXCLUDE: range(2), IDENTITY: range(2**62)}
UNMATCHED = "overrides_unmatched"  # frame.attrs key: the override rows whose key matched no photo


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
        if r["field"] == EXCLUDE and r["value"].strip() not in ("0", "1"):
            raise InputError(f"{path}:{i}: an exclude row takes value 1 (leave out of training) or 0 (keep)")
        if r["field"] == IDENTITY and (r["scope"] != "person" or r["value"].strip().startswith("-")):
            raise InputError(f"{path}:{i}: an identity row takes scope person and a group id (an integer >= 0) as value; "
                             f"fix or delete the row")
    df["value"] = df["value"].astype(int)
    for i, r in enumerate(df.to_dict("records"), start=2):
        ok = VALUE_RANGE[r["field"]]
        if r["value"] not in ok:
            raise InputError(f"{path}:{i}: {r['field']} {r['value']} is out of range (expected {ok.start}..{ok.stop - 1}); "
                             f"fix or delete the row")
    return df


def apply_overrides(manifest: pd.DataFrame, overrides: pd.DataFrame, age_bins=DEFAULT_AGE_BINS) -> tuple[pd.DataFrame, int]:
    """Return a copy of ``manifest`` with the fixes applied and labels recomputed (the labels before them kept as
    ``orig_*`` columns, exclusions as the bool column ``excluded``), and how many rows' labels changed. The override
    rows whose key matched no photo are listed in the copy's ``attrs[UNMATCHED]`` (``override_changes`` reports them)."""
    out = manifest.copy()
    fields = list(HEAD_FIELDS.values())
    before = out[fields].copy()
    for c in (*fields, "label"):
        if ORIG + c not in out:
            out[ORIG + c] = out[c]
    if EXCLUDED not in out:
        out[EXCLUDED] = False
    if (overrides["field"] == IDENTITY).any() and IDENTITY_GROUP not in out:
        out[IDENTITY_GROUP] = pd.array([pd.NA] * len(out), dtype="Int64")
    unmatched = []
    for r in overrides.to_dict("records"):
        rows = out["person"] == r["key"] if r["scope"] == "person" else out["image_id"] == r["key"]
        if not rows.any():
            unmatched.append(f"{r['scope']} {r['key']}")
        field = r["field"]
        if field == EXCLUDE:
            out.loc[rows, EXCLUDED] = bool(r["value"])
        elif field == IDENTITY:
            out.loc[rows, IDENTITY_GROUP] = int(r["value"])
        elif field == "age":
            out.loc[rows, "age"] = r["value"]
            out.loc[rows, "age_group"] = age_group(r["value"], age_bins)
        else:
            out.loc[rows, field] = r["value"]
    out["label"] = encode(out["mask"], out["gender"], out["age_group"]).astype("Int64")
    changed = int((out[fields] != before).any(axis=1).sum())
    out.attrs[UNMATCHED] = unmatched
    return out, changed


def override_changes(frame: pd.DataFrame) -> dict:
    """Photos and people whose labels the overrides changed, per head and in all, from a frame with ``orig_*`` columns.

    {"mask": {"photos": n, "people": n}, "gender": ..., "age": ..., "any": ..., "photos": N, "people": N,
    "people_share": share of people with any change, "unmatched": override rows whose key matched no photo (when
    the frame comes from ``apply_overrides``)}; empty when the frame carries no ``orig_*`` columns.
    """
    if not all(c in frame for c in ORIG_COLUMNS):
        return {}
    out: dict = {}
    any_change = pd.Series(False, index=frame.index)
    for head, field in HEAD_FIELDS.items():
        changed = (frame[field].astype("Int64") != frame[ORIG + field].astype("Int64")).fillna(False).astype(bool)
        any_change |= changed
        out[head] = {"photos": int(changed.sum()), "people": int(frame.loc[changed, "person"].nunique())}
    people = int(frame["person"].nunique())
    n_people = int(frame.loc[any_change, "person"].nunique())
    out["any"] = {"photos": int(any_change.sum()), "people": n_people}
    out.update(photos=int(len(frame)), people=people, people_share=round(n_people / people, 4) if people else 0.0)
    if UNMATCHED in frame.attrs:
        out["unmatched"] = list(frame.attrs[UNMATCHED])
    return out


def describe_changes(changes: dict, source: str = "--overrides", warn_share: float = WARN_PEOPLE_SHARE) -> list[str]:
    """The lines a run prints about its overrides: what changed per head, and a warning over ``warn_share`` of people."""
    if not changes:
        return []
    per = ", ".join(f"{h} {changes[h]['photos']} photo(s) of {changes[h]['people']} people" for h in HEAD_FIELDS)
    a = changes["any"]
    lines = [f"{source}: {a['photos']} of {changes['photos']} photos and {a['people']} of {changes['people']} people "
             f"relabelled ({per})"]
    if changes["people_share"] > warn_share:
        lines.append(f"warning: {source} changes {changes['people_share']:.0%} of the people (over {warn_share:.0%}); "
                     "check that these are the fixes you meant (a report from a weak model proposes many wrong ones)")
    unmatched = changes.get("unmatched") or []
    if unmatched:
        shown = ", ".join(unmatched[:3]) + (", ..." if len(unmatched) > 3 else "")
        lines.append(f"warning: {source}: {len(unmatched)} row(s) matched no photo of the cache ({shown}); "
                     f"check the keys (a person's folder, or a photo's image_id)")
    return lines
