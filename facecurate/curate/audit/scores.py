"""Every model-based check as one score per unit: how much more the model believes a fix than the label.

A unit is what one flag is about: a person (``gender``, ``age``: their photos' probabilities pooled),
a person's ``incorrect_mask`` + ``normal`` pair (``mask_swap``: the two photos judged jointly) or a
photo (``mask_photo``). Each unit has a given label, a suggested fix (the best alternative) and

    score = p(fix) / (p(fix) + p(as labelled))

the model's two-hypothesis posterior of the fix with a flat prior (0.5 = a tie, no evidence). For a
swap the two hypotheses are joint: p(normal looks incorrect AND incorrect_mask looks unmasked) vs
p(both as labelled). The frame's probabilities never depend on the unit's own label (they are
out-of-fold), so ``Units`` keeps them and a score can be recomputed for any labels: that is what the
error simulation (``simulate``) does with its injected copies.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from ..labels import MASK_INCORRECT, MASK_NONE
from .oof import head_probs
from .pooling import EPS, pool_by_person

class KindSpec(Protocol):
    """What a unit builder reads of its kind's registry entry (``kinds.FlagKind``)."""

    name: str
    head: str | None
    field: str | None


@dataclass
class Units:
    """One kind's units: label-independent probabilities and the given labels.

    ``probs``: (n, k) pooled person / photo probabilities, or for swaps (n, 2, 3): the normal photo's then the
    incorrect_mask photo's mask probabilities. ``given``: (n,) labels (swaps: all 0 = "as the layout says").
    ``keys``: person per unit; ``rows``: the oof rows behind each unit (photo kinds: one; swaps: normal, incorrect).
    """

    kind: str
    keys: np.ndarray
    probs: np.ndarray
    given: np.ndarray
    rows: np.ndarray
    n_photos: np.ndarray | None = None
    row_probs: np.ndarray | None = None   # (rows, k) every oof row's probabilities of the kind's head
    row_labels: np.ndarray | None = None  # (rows,) the head's given label per oof row
    row_unit: np.ndarray | None = None    # (rows,) the unit each oof row belongs to (persons only)
    joint: bool = False                   # pairs whose two photos' labels are swapped together (``swap_score``)


def pair_score(probs: np.ndarray, given: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(suggested class, score) per row of (n, k) ``probs``: the best class other than ``given``, and
    p(suggested) / (p(suggested) + p(given))."""
    p = np.clip(probs, EPS, 1.0)
    n = np.arange(len(p))
    other = p.copy()
    other[n, given] = -np.inf
    sugg = np.argmax(other, axis=1)
    ps, pg = p[n, sugg], p[n, given]
    return sugg, ps / (ps + pg)


def swap_score(pair: np.ndarray, swapped: np.ndarray | None = None) -> np.ndarray:
    """The joint swap posterior per pair: p_n(incorrect) p_i(none) / (that + p_n(none) p_i(incorrect)).

    ``pair`` (n, 2, 3): [normal photo, incorrect_mask photo] mask probabilities. ``swapped`` marks pairs
    whose two photos' images are exchanged (the simulation's injected swaps): their score is 1 - score.
    """
    p = np.clip(pair, EPS, 1.0)
    log_swap = np.log(p[:, 0, MASK_INCORRECT]) + np.log(p[:, 1, MASK_NONE])
    log_given = np.log(p[:, 0, MASK_NONE]) + np.log(p[:, 1, MASK_INCORRECT])
    d = np.clip(log_given - log_swap, -700, 700)
    if swapped is not None:
        d = np.where(swapped, -d, d)
    return 1.0 / (1.0 + np.exp(d))


def person_units(oof: pd.DataFrame, kind: KindSpec, pool: str = "mean") -> Units:
    """Person units of ``kind``'s head and field (``gender``, ``age``): one per person, photo probabilities pooled (mean or log)."""
    head, field = kind.head, kind.field
    persons = oof["person"].to_numpy()
    photo_p = head_probs(oof, head)
    people, pooled = pool_by_person(photo_p, persons, how=pool)
    grouped = oof.groupby("person", sort=False)
    given = grouped[field].agg(lambda s: int(s.mode().iloc[0])).reindex(people).to_numpy(dtype=int)
    n_photos = grouped.size().reindex(people).to_numpy()
    rows = pd.Series(np.arange(len(oof))).groupby(persons, sort=False).first().reindex(people).to_numpy()
    codes = pd.Index(people).get_indexer(persons)
    return Units(kind.name, np.asarray(people, dtype=object), pooled, given, rows[:, None], n_photos, photo_p,
                 oof[field].to_numpy(dtype=int), codes)


def swap_units(oof: pd.DataFrame, kind: KindSpec | None = None, pool: str = "mean") -> Units:
    """``mask_swap`` units: people with exactly one normal and one incorrect_mask photo, labelled as the layout says.

    ``kind`` and ``pool`` are unused: a pair is its two photos (the builders share one signature)."""
    photo = oof["photo"].to_numpy()
    sel = oof.assign(_row=np.arange(len(oof)))[np.isin(photo, ("normal", "incorrect_mask"))]
    counts = sel.groupby(["person", "photo"]).size().unstack(fill_value=0) if len(sel) else pd.DataFrame()
    if counts.empty or "normal" not in counts or "incorrect_mask" not in counts:
        return Units("mask_swap", np.array([], dtype=object), np.zeros((0, 2, 3)), np.zeros(0, int), np.zeros((0, 2), int),
                     joint=True)
    ok = counts.index[(counts["normal"] == 1) & (counts["incorrect_mask"] == 1)]
    sel = sel[sel["person"].isin(ok)]
    rn = sel[sel["photo"] == "normal"].set_index("person").loc[ok]
    ri = sel[sel["photo"] == "incorrect_mask"].set_index("person").loc[ok]
    layout = (rn["mask"].to_numpy() == MASK_NONE) & (ri["mask"].to_numpy() == MASK_INCORRECT)
    rows = np.stack([rn["_row"].to_numpy(), ri["_row"].to_numpy()], axis=1)[layout]
    p = head_probs(oof, "mask")
    return Units("mask_swap", np.asarray(ok, dtype=object)[layout], np.stack([p[rows[:, 0]], p[rows[:, 1]]], axis=1),
                 np.zeros(len(rows), int), rows, None, p, oof["mask"].to_numpy(dtype=int), joint=True)


def photo_units(oof: pd.DataFrame, kind: KindSpec | None = None, pool: str = "mean") -> Units:
    """``mask_photo`` units: one per photo, the mask head (``kind`` and ``pool`` unused, as for ``swap_units``)."""
    p = head_probs(oof, "mask")
    labels = oof["mask"].to_numpy(dtype=int)
    return Units("mask_photo", oof["person"].to_numpy(dtype=object), p, labels, np.arange(len(oof))[:, None], None, p, labels)


def score_units(u: Units, given: np.ndarray | None = None, swapped: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(suggested value, score) per unit for the labels ``given`` (default: the units' own); swaps: ``swapped`` pairs
    have their photos exchanged. A swap's suggestion is 1 (swap the two labels)."""
    if u.joint:
        return np.ones(len(u.given), int), swap_score(u.probs, swapped)
    return pair_score(u.probs, u.given if given is None else given)


def temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """Temperature scaling: the T that maximises the likelihood of ``labels`` under softmax(log p / T) (0.05..20)."""
    from scipy.optimize import minimize_scalar

    lp = np.log(np.clip(probs, EPS, 1.0))
    n = np.arange(len(lp))

    def nll(log_t: float) -> float:
        a = lp / np.exp(log_t)
        return float(-(a[n, labels] - np.logaddexp.reduce(a, axis=1)).sum())

    if len(lp) < 2:
        return 1.0
    return float(np.exp(minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded").x))


def evidence(u: Units, sugg: np.ndarray, t: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(log-odds of the fix per unit from its photos' probabilities at temperature ``t``, photos behind each unit).

    Persons: the sum over their photos of log q(fix) - log q(label); swaps: the sum over the two photos of the
    swapped class vs the labelled one; photos: their own log-odds.
    """
    lq = np.log(np.clip(u.row_probs, EPS, 1.0)) / t
    lq = lq - np.logaddexp.reduce(lq, axis=1, keepdims=True)
    if u.joint:
        n, i = u.rows[:, 0], u.rows[:, 1]
        z = (lq[n, MASK_INCORRECT] - lq[n, MASK_NONE]) + (lq[i, MASK_NONE] - lq[i, MASK_INCORRECT])
        return z, np.full(len(z), 2)
    if u.row_unit is None:
        n = np.arange(len(lq))
        return lq[n, sugg] - lq[n, u.given], np.ones(len(n), int)
    rows = np.arange(len(lq))
    unit = u.row_unit
    z = np.zeros(len(u.given))
    np.add.at(z, unit, lq[rows, sugg[unit]] - lq[rows, u.given[unit]])
    return z, np.bincount(unit, minlength=len(u.given))


def logit(score: np.ndarray) -> np.ndarray:
    """log(score / (1 - score)): the log-odds of the fix against the label."""
    s = np.clip(score, EPS, 1 - EPS)
    return np.log(s) - np.log1p(-s)
