"""Pure planning of a synthesized data set: option parsing, who is drawn in which order, which errors go where.

Everything here is a function of the options and a seeded generator: same seed, same plan.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..labels import DEFAULT_AGE_BINS, GENDER_NAMES, N_AGE, PHOTO_STEMS, age_group
from .sources import FaceSource

INJECT_KINDS = ("gender", "age", "swap")
BALANCE_KEYS = ("age", "gender")


def parse_inject(text: str | Mapping[str, float] | None) -> dict[str, float]:
    """``"gender=0.05,age=0.03,swap=0.03"`` -> {kind: fraction of people}; kinds gender, age, swap."""
    if not text:
        return {}
    items = text.items() if isinstance(text, Mapping) else (kv.split("=", 1) if "=" in kv else (kv, "") for kv in str(text).split(",") if kv.strip())
    out: dict[str, float] = {}
    for k, v in items:
        k = str(k).strip()
        if k not in INJECT_KINDS:
            raise InputError(f"--inject: unknown kind {k!r}; expected some of {', '.join(INJECT_KINDS)} like gender=0.05,age=0.03,swap=0.03")
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise InputError(f"--inject: {k} needs a fraction like {k}=0.05, got {v!r}") from None
        if not 0 <= f <= 1:
            raise InputError(f"--inject: {k}={f} is not a fraction between 0 and 1")
        out[k] = f
    if sum(out.values()) > 1:
        raise InputError("--inject: the fractions add up to more than 1 (each person gets at most one error)")
    return out


def parse_balance(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"age,gender"`` -> ('age', 'gender'): the labels whose groups are drawn evenly."""
    if not text:
        return ()
    keys = [k.strip() for k in (text.split(",") if isinstance(text, str) else text) if k.strip()]
    bad = [k for k in keys if k not in BALANCE_KEYS]
    if bad:
        raise InputError(f"--balance: unknown key(s) {', '.join(bad)}; expected age and/or gender")
    return tuple(k for k in BALANCE_KEYS if k in keys)


def parse_photos(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"mask1,incorrect_mask,normal"`` -> the photos each person gets, in the layout's order (default: all 7)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return tuple(PHOTO_STEMS)
    stems = [k.strip() for k in (text.split(",") if isinstance(text, str) else text) if k.strip()]
    bad = [k for k in stems if k not in PHOTO_STEMS]
    if bad or not stems:
        raise InputError(f"--photos: unknown photo(s) {', '.join(bad) or '(none given)'}; expected some of {', '.join(PHOTO_STEMS)}")
    return tuple(k for k in PHOTO_STEMS if k in stems)


def draw_order(cells: Sequence[tuple], rng: np.random.Generator) -> list[int]:
    """Indices in the order people are drawn: shuffled within each cell, then taken round-robin over the cells.

    Any prefix of the order is as even over the cells as the cells allow: scarce groups come first
    in every round, so they are never starved by the plentiful ones.
    """
    by_cell: dict[tuple, list[int]] = {}
    for i, c in enumerate(cells):
        by_cell.setdefault(c, []).append(i)
    keys = sorted(by_cell)
    lists = [list(rng.permutation(by_cell[k])) for k in keys]
    order: list[int] = []
    for r in range(max((len(lst) for lst in lists), default=0)):
        for lst in sorted(lists, key=len):
            if r < len(lst):
                order.append(int(lst[r]))
    return order


def age_in_group(group: int, rng: np.random.Generator, bins: Sequence[int] = DEFAULT_AGE_BINS) -> int:
    """A plausible adult age inside age group ``group`` (0 = youngest): from 18, at most 25 years past the last cut."""
    edges = [18, *bins, bins[-1] + 26]
    lo, hi = edges[group], edges[group + 1] - 1
    return int(rng.integers(min(lo, hi), hi + 1))


def plan_injection(n_people: int, fractions: Mapping[str, float], rng: np.random.Generator) -> dict[int, str]:
    """Which people (by index) get which error: ``round(fraction * n)`` distinct people per kind."""
    perm = list(rng.permutation(n_people))
    plan: dict[int, str] = {}
    for kind in INJECT_KINDS:
        k = int(round(fractions.get(kind, 0.0) * n_people))
        for _ in range(min(k, len(perm))):
            plan[int(perm.pop())] = kind
    return plan


def person_rng(seed: int, key: str, stream: int = 0) -> np.random.Generator:
    """A generator for one person that depends only on the seed and the person's source key (not on order)."""
    return np.random.default_rng([seed, zlib.crc32(key.encode()), stream])


@dataclass
class PersonPlan:
    """Everything needed to render and write one person."""

    key: str
    faces: list[tuple[FaceSource, np.ndarray, np.ndarray]]  # (source, keypoints, box): images are decoded when rendered
    age: int
    gender: int
    race: str
    written_age: int
    written_gender: int
    swap: bool
    folder: str
    id: str


def plan_people(accepted: Sequence[tuple[str, list]], by_person: Mapping[str, list[FaceSource]],
                fractions: Mapping[str, float], seed: int, bins: Sequence[int]) -> tuple[list[PersonPlan], list[dict]]:
    """Ids, folder names and written labels of the accepted people, with the planned label errors (rows of injected.csv)."""
    plan_rng = np.random.default_rng([seed, 2])
    injection = plan_injection(len(accepted), fractions, plan_rng)
    plans: list[PersonPlan] = []
    inj_rows: list[dict] = []
    for i, (name, faces) in enumerate(accepted):
        s = by_person[name][0]
        kind = injection.get(i)
        w_gender, w_age = s.gender, s.age
        if kind == "gender":
            w_gender = 1 - s.gender
        elif kind == "age":
            g = age_group(s.age, bins)
            w_age = age_in_group(int(plan_rng.choice([x for x in range(N_AGE) if x != g])), plan_rng, bins)
        pid = f"{i + 1:06d}"
        race = re.sub(r"[^A-Za-z0-9]+", "", s.race) or "Other"
        folder = f"{pid}_{GENDER_NAMES[w_gender]}_{race}_{w_age}"
        plans.append(PersonPlan(name, faces, s.age, s.gender, race, w_age, w_gender, kind == "swap", folder, pid))
        if kind:
            true, written = {"gender": (s.gender, w_gender), "age": (s.age, w_age),
                             "swap": ("incorrect_mask", "normal")}[kind]
            inj_rows.append({"person": folder, "id": pid, "kind": kind, "field": {"swap": "photo"}.get(kind, kind),
                             "true": true, "written": written})
    return plans, inj_rows
