"""The label model of the reference task: mask x gender x age group -> one of 18 classes.

class = mask * 6 + gender * 3 + age_group, with mask 0 wear / 1 incorrect / 2 not worn,
gender 0 male / 1 female, and age groups cut at ``age_bins`` (default 30, 60).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from curate.errors import InputError

MASK_NAMES = ("wear", "incorrect", "not worn")
GENDER_NAMES = ("male", "female")
DEFAULT_AGE_BINS = (30, 60)
NUM_CLASSES = 18

# File stem in the competition layout -> mask label.
MASK_FROM_STEM = {
    "mask1": 0, "mask2": 0, "mask3": 0, "mask4": 0, "mask5": 0,
    "incorrect_mask": 1,
    "normal": 2,
}
GENDER_FROM_TEXT = {"male": 0, "m": 0, "0": 0, "female": 1, "f": 1, "1": 1}


def parse_age_bins(text: str | Sequence[int]) -> tuple[int, int]:
    """Parse ``"30,60"`` (or a pair of ints) into two increasing age cut points; InputError otherwise."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            bins = tuple(int(p) for p in parts)
        except ValueError as e:
            raise InputError(f"--age-bins must be two integers like 30,60, got {text!r}") from e
    else:
        bins = tuple(int(b) for b in text)
    if len(bins) != 2 or not 0 < bins[0] < bins[1]:
        raise InputError(f"--age-bins must be two increasing positive integers like 30,60, got {text!r}")
    return bins  # type: ignore[return-value]


def age_group(age, bins: Sequence[int] = DEFAULT_AGE_BINS):
    """Age in years -> 0 (< bins[0]), 1 (< bins[1]) or 2; works on scalars and arrays."""
    return np.digitize(age, bins, right=False) if np.ndim(age) else int(np.digitize(age, bins))


def encode(mask, gender, age_grp):
    """(mask, gender, age_group) -> class id 0..17; scalars or arrays."""
    return np.asarray(mask) * 6 + np.asarray(gender) * 3 + np.asarray(age_grp) if np.ndim(mask) else int(mask) * 6 + int(gender) * 3 + int(age_grp)


def decode(label):
    """Class id 0..17 -> (mask, gender, age_group); scalars or arrays."""
    label = np.asarray(label) if np.ndim(label) else int(label)
    return label // 6, (label // 3) % 2, label % 3


def age_group_names(bins: Sequence[int] = DEFAULT_AGE_BINS) -> tuple[str, str, str]:
    """Human names of the three age groups, e.g. ('<30', '30-59', '>=60')."""
    return (f"<{bins[0]}", f"{bins[0]}-{bins[1] - 1}", f">={bins[1]}")


def class_names(bins: Sequence[int] = DEFAULT_AGE_BINS) -> list[str]:
    """Short names of the 18 classes in id order, e.g. 'wear/male/<30'."""
    ages = age_group_names(bins)
    return [f"{MASK_NAMES[c // 6]}/{GENDER_NAMES[(c // 3) % 2]}/{ages[c % 3]}" for c in range(NUM_CLASSES)]
