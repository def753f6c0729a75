"""Per-person label checks from out-of-fold probabilities, with per-class thresholds learned from the data.

A person's photos share gender and age, so their predictions are pooled and held against the
person's label; ``incorrect_mask`` / ``normal`` are checked as a pair (swapped files); single
photos are checked for their mask; the folder structure is checked. Thresholds follow confident
learning (Northcutt et al., cleanlab's confident joint): class j's threshold t_j is the average
confidence in j of the items labelled j; moving an item labelled i to j needs p_j to reach halfway
between t_j and the average p_j of the items labelled i (``pair_thresholds``). Every function here
is pure: frames in, frames out.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from curate.errors import InputError
from curate.labels import DEFAULT_AGE_BINS, GENDER_NAMES, MASK_NAMES, NUM_CLASSES, age_group_names

FLAG_COLUMNS = ["kind", "scope", "person", "image_id", "photo", "field", "given", "suggested", "score",
                "threshold", "reason"]
KINDS = ("gender", "age", "mask_swap", "mask_photo", "structure", "near_duplicate")
HEADS = {"mask": 3, "gender": 2, "age": 3}
OOF_COLUMNS = ["image_id", "person", "photo", "label", "mask", "gender", "age_group"]
EPS = 1e-6


def empty_flags() -> pd.DataFrame:
    """A flags frame with no rows and the ``FLAG_COLUMNS`` schema."""
    return pd.DataFrame({c: pd.Series(dtype=float if c in ("score", "threshold") else object) for c in FLAG_COLUMNS})


def head_probs(oof: pd.DataFrame, head: str) -> np.ndarray:
    """The (n, k) probabilities of one head (mask | gender | age): its ``p_<head>_i`` columns, else marginals of ``p_class_*``."""
    k = HEADS[head]
    cols = [f"p_{head}_{i}" for i in range(k)]
    if all(c in oof for c in cols):
        p = oof[cols].to_numpy(dtype=np.float64)
    elif all(f"p_class_{i}" in oof for i in range(NUM_CLASSES)):
        pc = oof[[f"p_class_{i}" for i in range(NUM_CLASSES)]].to_numpy(dtype=np.float64).reshape(-1, 3, 2, 3)
        p = pc.sum(axis=(2, 3)) if head == "mask" else pc.sum(axis=(1, 3)) if head == "gender" else pc.sum(axis=(1, 2))
    else:
        raise InputError(f"oof: no {', '.join(cols)} columns and no p_class_0..17 to derive them from")
    p = np.clip(np.nan_to_num(p, nan=0.0), 0.0, None)
    s = p.sum(axis=1, keepdims=True)
    return np.where(s > 0, p / np.where(s > 0, s, 1), 1.0 / k)


def validate_oof(oof: pd.DataFrame, name: str = "oof.parquet") -> pd.DataFrame:
    """Check the oof.parquet contract (ids, person, photo, labels and probabilities); InputError naming what is missing."""
    missing = [c for c in OOF_COLUMNS if c not in oof]
    if missing:
        raise InputError(f"{name}: missing column(s) {', '.join(missing)}")
    for head in HEADS:
        head_probs(oof.head(1), head)  # raises with the head's columns named
    out = oof.dropna(subset=["mask", "gender", "age_group"]).copy()
    if out.empty:
        raise InputError(f"{name}: no labelled rows")
    for c in ("mask", "gender", "age_group"):
        out[c] = out[c].astype(int)
    out["person"] = out["person"].astype(str)
    out["image_id"] = out["image_id"].astype(str)
    out["photo"] = out["photo"].fillna("").astype(str)
    return out.reset_index(drop=True)


def class_thresholds(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-class thresholds t_j = mean p_j over items labelled j (cleanlab's confident-joint thresholds).

    A class nobody is labelled with gets the mean self-confidence over all items.
    """
    k = probs.shape[1]
    self_conf = probs[np.arange(len(labels)), labels]
    overall = float(self_conf.mean()) if len(labels) else 0.5
    return np.array([probs[labels == j, j].mean() if np.any(labels == j) else overall for j in range(k)])


def pair_thresholds(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(k, k) thresholds T[i, j] for moving an item labelled i to class j, learned from the data.

    T[i, j] is halfway between cleanlab's threshold t_j (mean p_j over items labelled j) and the mean p_j
    over items labelled i: the typical confidence in j of j's members vs of i's members. Unlike t_j alone
    (which half of the truly-j items fall below, so recall would be about 50%), the midpoint adapts to how
    well the model separates each pair of classes and to class imbalance.
    """
    k = probs.shape[1]
    t = class_thresholds(probs, labels)
    off = np.array([[probs[labels == i, j].mean() if np.any(labels == i) else 1.0 - t[j] for j in range(k)] for i in range(k)])
    out = (t[None, :] + off) / 2.0
    np.fill_diagonal(out, np.nan)
    return out


def confident_suggestion(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per item labelled i, the class j != i with the largest p_j - T[i, j] >= 0 that is also more probable than i, else -1."""
    t = thresholds[labels]  # (n, k): the thresholds that apply to each item's given label
    margin = np.where(np.isnan(t), -np.inf, probs - np.nan_to_num(t, nan=0.0))
    margin = np.where(probs > probs[np.arange(len(labels)), labels][:, None], margin, -np.inf)
    best = np.argmax(margin, axis=1)
    return np.where(margin[np.arange(len(labels)), best] >= 0, best, -1)


def pool_by_person(probs: np.ndarray, persons: Sequence[str], how: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Pool photo probabilities per person: ``mean`` of probabilities or ``log`` (normalised geometric mean).

    Returns (person names in first-seen order, (n_people, k) pooled probabilities).
    """
    codes, names = pd.factorize(pd.Series(persons, dtype=str))
    n, k = len(names), probs.shape[1]
    src = np.log(np.clip(probs, EPS, 1.0)) if how == "log" else probs if how == "mean" else None
    if src is None:
        raise ValueError(f"pool must be 'mean' or 'log', got {how!r}")
    sums = np.zeros((n, k))
    np.add.at(sums, codes, src)
    counts = np.bincount(codes, minlength=n)[:, None]
    pooled = sums / counts
    if how == "log":
        pooled = np.exp(pooled - pooled.max(axis=1, keepdims=True))
    return np.asarray(names, dtype=object), pooled / pooled.sum(axis=1, keepdims=True)


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
    labelled = (rn["mask"].to_numpy() == 2) & (ri["mask"].to_numpy() == 1)
    pn, pi = p[rn["_row"].to_numpy()], p[ri["_row"].to_numpy()]
    log_swap = np.log(np.clip(pn[:, 1], EPS, 1)) + np.log(np.clip(pi[:, 2], EPS, 1))
    log_given = np.log(np.clip(pn[:, 2], EPS, 1)) + np.log(np.clip(pi[:, 1], EPS, 1))
    post = 1.0 / (1.0 + np.exp(np.clip(log_given - log_swap, -700, 700)))
    m = pair_thresholds(p, oof["mask"].to_numpy(dtype=int))
    thr = float((m[2, 1] + m[1, 2]) / 2)
    evidence = (pn[:, 1] + pi[:, 2]) / 2
    rows = []
    for j in np.flatnonzero(labelled & (post >= 0.5) & (evidence >= thr)):
        person = ok[j]
        why = (f"normal photo looks {MASK_NAMES[1]} (p={pn[j, 1]:.2f}) and incorrect_mask photo looks "
               f"{MASK_NAMES[2]} (p={pi[j, 2]:.2f}); mean {evidence[j]:.2f} >= threshold {thr:.2f}, "
               f"swap posterior {post[j]:.2f}")
        for r, given, new in ((rn.iloc[j], 2, 1), (ri.iloc[j], 1, 2)):
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


def sort_flags(flags: pd.DataFrame) -> pd.DataFrame:
    """Highest score first, then kind order, person and photo; stable and deterministic."""
    if flags.empty:
        return flags.reset_index(drop=True)
    order = {k: i for i, k in enumerate(KINDS)}
    return (flags.assign(_k=flags["kind"].map(order).fillna(len(KINDS)))
            .sort_values(["score", "_k", "person", "image_id"], ascending=[False, True, True, True], kind="mergesort")
            .drop(columns="_k").reset_index(drop=True))
