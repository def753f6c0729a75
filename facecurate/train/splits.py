"""Person-grouped, stratified splits: a person's photos always sit on one side of a split.

Pure functions of the manifest (``person`` plus a per-person stratum, by default gender x age group),
so the same seed always gives the same folds. With ``groups`` (person -> group id: ids that are one person)
the units dealt are the groups, so no person's photos sit on both sides under two ids; people outside the
map are their own unit, and without ``groups`` the folds are exactly those of the people alone.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..curate.errors import InputError
from ..curate.labels import N_AGE


def person_strata(manifest: pd.DataFrame) -> pd.Series:
    """One stratum per person: the most common gender x age group cell of their photos (-1 when unlabelled)."""
    g = pd.to_numeric(manifest["gender"], errors="coerce")
    a = pd.to_numeric(manifest["age_group"], errors="coerce")
    s = (g * N_AGE + a).fillna(-1).astype(int)
    return s.groupby(manifest["person"].astype(str).to_numpy()).agg(lambda v: v.value_counts().index[0])


GROUP_UNIT = "\x1fgroup\x1f"  # prefix of a group's unit name: no person folder can hold the control character


def _units(manifest: pd.DataFrame, groups: Mapping[str, int] | None) -> pd.DataFrame:
    """``manifest`` with ``person`` replaced by the unit dealt: the person's group when ``groups`` names it."""
    if not groups:
        return manifest
    person = manifest["person"].astype(str)
    unit = person.map(lambda p: f"{GROUP_UNIT}{int(groups[p])}" if p in groups else p)
    return manifest.assign(person=unit.to_numpy())


def _shuffled_people_by_stratum(manifest: pd.DataFrame, seed: int) -> list[np.ndarray]:
    strata = person_strata(manifest)
    rng = np.random.default_rng(seed)
    groups = []
    for s in sorted(strata.unique()):
        people = np.array(sorted(strata.index[strata.to_numpy() == s]))
        groups.append(people[rng.permutation(len(people))])
    return groups


def kfold_persons(manifest: pd.DataFrame, folds: int = 5, seed: int = 0,
                  groups: Mapping[str, int] | None = None) -> np.ndarray:
    """Fold id 0..folds-1 per manifest row: people (or their ``groups``) dealt round-robin within each stratum, so
    folds stay balanced and the ids of one group share a fold."""
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    manifest = _units(manifest, groups)
    n_people = manifest["person"].nunique()
    if n_people < folds:
        unit = "people (the ids of one group counted once)" if groups else "people"
        raise ValueError(f"{folds} folds need at least {folds} {unit}; the data has {n_people}")
    fold_of: dict[str, int] = {}
    start = 0
    photos = manifest["person"].astype(str).value_counts()
    load = np.zeros(folds)
    for people in _shuffled_people_by_stratum(manifest, seed):
        for j, p in enumerate(people):
            f = (start + j) % folds
            fold_of[p] = f
            load[f] += photos[p]
        # the next stratum starts on the fold with the fewest photos so far, which keeps fold sizes even
        start = int(np.argmin(load))
    return manifest["person"].astype(str).map(fold_of).to_numpy(dtype=np.int64)


def holdout_persons(manifest: pd.DataFrame, val_ratio: float = 0.2, seed: int = 0,
                    groups: Mapping[str, int] | None = None) -> np.ndarray:
    """One split: fold 0 for the validation rows (about ``val_ratio`` of each stratum's people, or of their
    ``groups``), -1 for training."""
    if not 0.0 < val_ratio < 1.0:
        raise ValueError(f"val_ratio must be between 0 and 1, got {val_ratio}")
    manifest = _units(manifest, groups)
    if manifest["person"].nunique() < 2:  # what the user can do about it, not a bad argument: one line
        raise InputError(f"the training photos hold {manifest['person'].nunique()} labelled person; a validation split "
                         f"(--val-ratio, or K-fold) needs photos of at least 2 people: add people to the data")
    val: set[str] = set()
    for people in _shuffled_people_by_stratum(manifest, seed):
        k = int(round(len(people) * val_ratio))
        val.update(people[:k])
    if not val:  # every stratum too small to round up: take one person so validation is never empty
        val.add(sorted(manifest["person"].astype(str).unique())[0])
    return np.where(manifest["person"].astype(str).isin(val), 0, -1).astype(np.int64)


def split_indices(fold_ids: np.ndarray, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) of ``fold`` given per-row fold ids (-1 = always training)."""
    fold_ids = np.asarray(fold_ids)
    return np.flatnonzero(fold_ids != fold), np.flatnonzero(fold_ids == fold)
