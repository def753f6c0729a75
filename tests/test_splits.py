"""Person-grouped splits: no person on both sides, strata balanced across folds, deterministic by seed."""
import numpy as np
import pandas as pd
import pytest

from _train_data import make_people
from facecurate.train.splits import holdout_persons, kfold_persons, person_strata, split_indices


@pytest.fixture(scope="module")
def people():
    # 300 people x 7 photos, ages heavily imbalanced (60+ is rare), a few people with missing photos
    m = make_people(300, seed=3, p_age=(0.62, 0.33, 0.05))
    drop = m.index[(m["person"].isin(m["person"].unique()[:20])) & (m["photo"] == "mask3")]
    return m.drop(drop).reset_index(drop=True)


def _people_per_fold(m, folds):
    return m.assign(fold=folds).groupby("person")["fold"].nunique()


@pytest.mark.parametrize("k", [2, 5, 7])
def test_kfold_never_splits_a_person(people, k):
    folds = kfold_persons(people, k, seed=0)
    assert set(np.unique(folds)) == set(range(k))
    assert (_people_per_fold(people, folds) == 1).all()
    for f in range(k):
        tr, va = split_indices(folds, f)
        assert not set(people["person"].iloc[tr]) & set(people["person"].iloc[va])
        assert len(tr) + len(va) == len(people)


def test_kfold_is_stratified_and_even(people):
    k = 5
    folds = kfold_persons(people, k, seed=1)
    strata = person_strata(people)
    fold_of = people.assign(fold=folds).groupby("person")["fold"].first()
    table = pd.crosstab(strata, fold_of.reindex(strata.index))
    assert (table.max(axis=1) - table.min(axis=1) <= 1).all(), table  # every stratum dealt evenly, rare ones included
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 14  # photos per fold within two people's worth


def test_kfold_deterministic_by_seed(people):
    a, b, c = kfold_persons(people, 5, seed=0), kfold_persons(people, 5, seed=0), kfold_persons(people, 5, seed=1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_holdout_never_splits_a_person(people):
    folds = holdout_persons(people, 0.2, seed=0)
    tr, va = split_indices(folds, 0)
    assert not set(people["person"].iloc[tr]) & set(people["person"].iloc[va])
    share = people["person"].iloc[va].nunique() / people["person"].nunique()
    assert 0.17 <= share <= 0.23
    strata = person_strata(people)
    val_people = set(people["person"].iloc[va])
    for s in strata.unique():  # every stratum (the rare 60+ ones too) has people on both sides
        members = set(strata.index[strata == s])
        if len(members) >= 5:
            assert members & val_people and members - val_people


def test_bad_requests_raise(people):
    with pytest.raises(ValueError):
        kfold_persons(people, 1)
    with pytest.raises(ValueError):
        kfold_persons(people.head(14), 5)  # 2 people, 5 folds
    with pytest.raises(ValueError):
        holdout_persons(people, 1.5)
