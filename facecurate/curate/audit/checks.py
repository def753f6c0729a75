"""Per-person and per-photo label checks from out-of-fold probabilities: frames in, flags out.

A person's photos share gender and age, so their predictions are pooled and held against the
person's label; ``incorrect_mask`` / ``normal`` are checked as a pair (swapped files); single
photos are checked for their mask; the folder structure is checked. Thresholds: ``thresholds``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..labels import (
    DEFAULT_AGE_BINS,
    GENDER_NAMES,
    MASK_INCORRECT,
    MASK_NAMES,
    MASK_NONE,
    age_group_names,
)
from .flags import FLAG_COLUMNS, empty_flags, sort_flags
from .oof import head_probs, validate_oof
from .thresholds import EPS, confident_suggestion, pair_thresholds, pool_by_person


def _person_label(oof: pd.DataFrame, field: str) -> pd.Series:
    """The person's label for ``field``: the most common one among their photos (they should all agree)."""
    return oof.groupby("person", sort=False)[field].agg(lambda s: int(s.mode().iloc[0]))


def person_flags(oof: pd.DataFrame, field: str = "gender", pool: str = "mean",
                 ages: Mapping[str, float] | None = None, age_bins: Sequence[int] = DEFAULT_AGE_BINS) -> pd.DataFrame:
    """Flag people whose pooled gender (``field='gender'``) or age group (``'age_group'``) prediction contradicts the label."""
    head = "gender" if field == "gender" else "age"
    kind = "gender" if field == "gender" else "age"
    names_of = GENDER_NAMES if field == "gender" else age_group_names(age_bins)
    probs = head_probs(oof, head)
    people, pooled = pool_by_person(probs, oof["person"].to_numpy(), how=pool)
    given = _person_label(oof, field).reindex(people).to_numpy(dtype=int)
    n_photos = oof.groupby("person", sort=False).size().reindex(people).to_numpy()
    thr = pair_thresholds(pooled, given)
    sugg = confident_suggestion(pooled, given, thr)
    rows = []
    for i in np.flatnonzero(sugg >= 0):
        g, s = int(given[i]), int(sugg[i])
        age_note = ""
        if ages is not None and people[i] in ages and pd.notna(ages[people[i]]):
            age_note = f", age {int(ages[people[i]])}"
        rows.append({
            "kind": kind, "scope": "person", "person": people[i], "image_id": "", "photo": "", "field": field,
            "given": g, "suggested": s, "score": float(1.0 - pooled[i, g]), "threshold": float(thr[g, s]),
            "reason": (f"{n_photos[i]} photo(s) look {names_of[s]} (pooled p={pooled[i, s]:.2f} >= threshold "
                       f"{thr[g, s]:.2f} for {names_of[g]}->{names_of[s]}); labelled {names_of[g]} (p={pooled[i, g]:.2f}{age_note})"),
        })
    return pd.DataFrame(rows, columns=FLAG_COLUMNS) if rows else empty_flags()


def mask_swap_flags(oof: pd.DataFrame) -> pd.DataFrame:
    """Flag people whose ``normal`` photo looks incorrectly worn and whose ``incorrect_mask`` photo looks unmasked.

    Per person with one photo of each, the swap posterior is p_n(1) p_i(2) / (p_n(1) p_i(2) + p_n(2) p_i(1));
    a swap is flagged when it is >= 0.5 and the two photos' probabilities of the other class, averaged, reach
    the average of their pair thresholds (``pair_thresholds`` of the mask head over all photos).
    """
    p = head_probs(oof, "mask")
    photo = oof["photo"].to_numpy()
    pair = oof.assign(_row=np.arange(len(oof)))
    pair = pair[np.isin(photo, ("normal", "incorrect_mask"))]
    counts = pair.groupby(["person", "photo"]).size().unstack(fill_value=0)
    ok = counts.index[(counts.get("normal", 0) == 1) & (counts.get("incorrect_mask", 0) == 1)] if len(counts) else []
    if len(ok) == 0:
        return empty_flags()
    pair = pair[pair["person"].isin(ok)]
    rn = pair[pair["photo"] == "normal"].set_index("person").loc[ok]
    ri = pair[pair["photo"] == "incorrect_mask"].set_index("person").loc[ok]
    # only pairs labelled as the layout says (normal = 2, incorrect = 1) can be a swap of the two files
    labelled = (rn["mask"].to_numpy() == MASK_NONE) & (ri["mask"].to_numpy() == MASK_INCORRECT)
    pn, pi = p[rn["_row"].to_numpy()], p[ri["_row"].to_numpy()]
    log_swap = np.log(np.clip(pn[:, MASK_INCORRECT], EPS, 1)) + np.log(np.clip(pi[:, MASK_NONE], EPS, 1))
    log_given = np.log(np.clip(pn[:, MASK_NONE], EPS, 1)) + np.log(np.clip(pi[:, MASK_INCORRECT], EPS, 1))
    post = 1.0 / (1.0 + np.exp(np.clip(log_given - log_swap, -700, 700)))
    m = pair_thresholds(p, oof["mask"].to_numpy(dtype=int))
    thr = float((m[MASK_NONE, MASK_INCORRECT] + m[MASK_INCORRECT, MASK_NONE]) / 2)
    evidence = (pn[:, MASK_INCORRECT] + pi[:, MASK_NONE]) / 2
    rows = []
    for j in np.flatnonzero(labelled & (post >= 0.5) & (evidence >= thr)):
        person = ok[j]
        why = (f"normal photo looks {MASK_NAMES[MASK_INCORRECT]} (p={pn[j, MASK_INCORRECT]:.2f}) and incorrect_mask photo looks "
               f"{MASK_NAMES[MASK_NONE]} (p={pi[j, MASK_NONE]:.2f}); mean {evidence[j]:.2f} >= threshold {thr:.2f}, "
               f"swap posterior {post[j]:.2f}")
        for r, given, new in ((rn.iloc[j], MASK_NONE, MASK_INCORRECT), (ri.iloc[j], MASK_INCORRECT, MASK_NONE)):
            rows.append({"kind": "mask_swap", "scope": "photo", "person": person, "image_id": r["image_id"],
                         "photo": r["photo"], "field": "mask", "given": given, "suggested": new,
                         "score": float(post[j]), "threshold": thr, "reason": why})
    return pd.DataFrame(rows, columns=FLAG_COLUMNS) if rows else empty_flags()


def mask_photo_flags(oof: pd.DataFrame, skip_image_ids: Sequence[str] = ()) -> pd.DataFrame:
    """Flag single photos whose mask label disagrees with what they show (confident joint on the mask head)."""
    p = head_probs(oof, "mask")
    given = oof["mask"].to_numpy(dtype=int)
    thr = pair_thresholds(p, given)
    sugg = confident_suggestion(p, given, thr)
    skip = set(map(str, skip_image_ids))
    rows = []
    for i in np.flatnonzero(sugg >= 0):
        r = oof.iloc[i]
        if r["image_id"] in skip:
            continue
        g, s = int(given[i]), int(sugg[i])
        rows.append({"kind": "mask_photo", "scope": "photo", "person": r["person"], "image_id": r["image_id"],
                     "photo": r["photo"], "field": "mask", "given": g, "suggested": s, "score": float(1.0 - p[i, g]),
                     "threshold": float(thr[g, s]),
                     "reason": (f"{r['photo'] or 'photo'} looks {MASK_NAMES[s]} (p={p[i, s]:.2f} >= threshold "
                                f"{thr[g, s]:.2f} for {MASK_NAMES[g]}->{MASK_NAMES[s]}); labelled {MASK_NAMES[g]} (p={p[i, g]:.2f})")})
    return pd.DataFrame(rows, columns=FLAG_COLUMNS) if rows else empty_flags()


def structure_flags(manifest: pd.DataFrame) -> pd.DataFrame:
    """Flag people without exactly one ``incorrect_mask`` and one ``normal`` photo, or whose photos disagree on gender/age."""
    rows = []
    has_photo = "photo" in manifest and manifest["photo"].fillna("").astype(str).ne("").any()
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
        if problems:
            rows.append({"kind": "structure", "scope": "person", "person": person, "image_id": "", "photo": "",
                         "field": "", "given": None, "suggested": None, "score": 1.0, "threshold": np.nan,
                         "reason": "; ".join(problems)})
    return pd.DataFrame(rows, columns=FLAG_COLUMNS) if rows else empty_flags()


def find_issues(oof: pd.DataFrame, manifest: pd.DataFrame | None = None, pool: str = "mean",
                age_bins: Sequence[int] = DEFAULT_AGE_BINS) -> pd.DataFrame:
    """All per-person and per-photo flags from ``oof`` (+ structural ones from ``manifest``), highest score first."""
    oof = validate_oof(oof)
    ages = None
    if manifest is not None and "age" in manifest:
        ages = manifest.dropna(subset=["age"]).groupby(manifest["person"].astype(str))["age"].first().to_dict()
    swaps = mask_swap_flags(oof)
    parts = [
        person_flags(oof, "gender", pool=pool),
        person_flags(oof, "age_group", pool=pool, ages=ages, age_bins=age_bins),
        swaps,
        mask_photo_flags(oof, skip_image_ids=swaps["image_id"].tolist()),
        structure_flags(manifest if manifest is not None else oof),
    ]
    return sort_flags(pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else empty_flags())
