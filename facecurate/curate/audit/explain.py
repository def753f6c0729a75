"""The flag rows of one hit of each built-in model-based kind: which labels, which fix, and the reason in words."""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..labels import GENDER_NAMES, MASK_INCORRECT, MASK_NAMES, MASK_NONE, age_group_names
from .flag_kind import Hit


def _names(field: str, age_bins: Sequence[int]) -> Sequence[str]:
    return {"gender": GENDER_NAMES, "age_group": age_group_names(age_bins), "mask": MASK_NAMES}[field]


def person_rows(hit: Hit) -> list[dict]:
    """A person unit's flag (``gender``, ``age``): its photos' pooled probabilities against the person's label."""
    u, j, ctx = hit.units, hit.j, hit.ctx
    field = hit.kind.field
    g, s, p = int(u.given[j]), hit.suggested, u.probs[j]
    names = _names(field, ctx.age_bins)
    age_note = ""
    if ctx.ages is not None and u.keys[j] in ctx.ages and pd.notna(ctx.ages[u.keys[j]]):
        age_note = f", age {int(ctx.ages[u.keys[j]])}"
    return [{**hit.base(), "scope": "person", "image_id": "", "photo": "", "field": field, "given": g, "suggested": s,
             "reason": (f"{u.n_photos[j]} photo(s) look {names[s]} (pooled p={p[s]:.2f}) but the person is labelled "
                        f"{names[g]} (p={p[g]:.2f}{age_note}); score {hit.score:.3f} >= threshold {hit.threshold:.3g}")}]


def swap_rows(hit: Hit) -> list[dict]:
    """A swap's two flags (``mask_swap``): the normal and the incorrect_mask photo, each with the other's label."""
    u, j, oof = hit.units, hit.j, hit.ctx.oof
    pn, pi = u.probs[j]
    why = (f"normal photo: p({MASK_NAMES[MASK_INCORRECT]})={pn[MASK_INCORRECT]:.2f} vs p({MASK_NAMES[MASK_NONE]})="
           f"{pn[MASK_NONE]:.2f}; incorrect_mask photo: p({MASK_NAMES[MASK_NONE]})={pi[MASK_NONE]:.2f} vs "
           f"p({MASK_NAMES[MASK_INCORRECT]})={pi[MASK_INCORRECT]:.2f}; joint posterior that the two are swapped "
           f"{hit.score:.3f} >= threshold {hit.threshold:.3g}")
    return [{**hit.base(), "scope": "photo", "image_id": r["image_id"], "photo": r["photo"], "field": "mask",
             "given": given, "suggested": new, "reason": why}
            for r, given, new in ((oof.iloc[u.rows[j, 0]], MASK_NONE, MASK_INCORRECT),
                                  (oof.iloc[u.rows[j, 1]], MASK_INCORRECT, MASK_NONE))]


def photo_rows(hit: Hit) -> list[dict]:
    """A photo unit's flag (``mask_photo``): the photo's probabilities against its own label."""
    u, j = hit.units, hit.j
    field = hit.kind.field
    g, s, p = int(u.given[j]), hit.suggested, u.probs[j]
    names = _names(field, hit.ctx.age_bins)
    r = hit.ctx.oof.iloc[u.rows[j, 0]]
    return [{**hit.base(), "scope": "photo", "image_id": r["image_id"], "photo": r["photo"], "field": field,
             "given": g, "suggested": s,
             "reason": (f"{r['photo'] or 'photo'} looks {names[s]} (p={p[s]:.2f}) but is labelled {names[g]} "
                        f"(p={p[g]:.2f}); score {hit.score:.3f} >= threshold {hit.threshold:.3g}")}]
