"""The label model of the reference task, defined once: mask x gender x age group -> one of 18 classes.

Every other module imports from here: the head names and sizes, the class formula and its inverse,
the photo names of the competition layout and the default age cut points. Changing the age groups
is one edit (``DEFAULT_AGE_BINS``): the number of groups, the class count and every name follow.

class = (mask * N_GENDER + gender) * N_AGE + age_group, i.e. mask * 6 + gender * 3 + age_group with
mask 0 wear / 1 incorrect / 2 not worn, gender 0 male / 1 female, age groups cut at ``age_bins``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import InputError

MASK_NAMES = ("wear", "incorrect", "not worn")
GENDER_NAMES = ("male", "female")
DEFAULT_AGE_BINS = (30, 60)  # cut points: <30, 30-59, >=60

MASK_WEAR, MASK_INCORRECT, MASK_NONE = 0, 1, 2
N_MASK, N_GENDER, N_AGE = len(MASK_NAMES), len(GENDER_NAMES), len(DEFAULT_AGE_BINS) + 1
#: The model's heads in label order, with their class counts.
HEAD_CLASSES = {"mask": N_MASK, "gender": N_GENDER, "age": N_AGE}
HEADS = tuple(HEAD_CLASSES)
#: The manifest column that holds each head's label.
HEAD_FIELDS = {"mask": "mask", "gender": "gender", "age": "age_group"}
NUM_CLASSES = N_MASK * N_GENDER * N_AGE

#: File stems of one person's photos in the competition layout, in display order, and their mask label.
MASK_FROM_STEM = {
    "mask1": MASK_WEAR, "mask2": MASK_WEAR, "mask3": MASK_WEAR, "mask4": MASK_WEAR, "mask5": MASK_WEAR,
    "incorrect_mask": MASK_INCORRECT,
    "normal": MASK_NONE,
}
PHOTO_STEMS = tuple(MASK_FROM_STEM)
GENDER_FROM_TEXT = {"male": 0, "m": 0, "0": 0, "female": 1, "f": 1, "1": 1}


def parse_age_bins(text: str | Sequence[int]) -> tuple[int, ...]:
    """Parse ``"30,60"`` (or a sequence of ints) into increasing age cut points; InputError otherwise."""
    want = len(DEFAULT_AGE_BINS)
    example = ",".join(map(str, DEFAULT_AGE_BINS))
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            bins = tuple(int(p) for p in parts)
        except ValueError as e:
            raise InputError(f"--age-bins must be {want} integers like {example}, got {text!r}") from e
    else:
        bins = tuple(int(b) for b in text)
    if len(bins) != want or bins[0] <= 0 or any(b >= c for b, c in zip(bins, bins[1:])):
        raise InputError(f"--age-bins must be {want} increasing positive integers like {example}, got {text!r}")
    return bins


def age_group(age, bins: Sequence[int] = DEFAULT_AGE_BINS):
    """Age in years -> 0 (< bins[0]), 1 (< bins[1]), ...; works on scalars and arrays."""
    return np.digitize(age, bins, right=False) if np.ndim(age) else int(np.digitize(age, bins))


def encode(mask, gender, age_grp):
    """(mask, gender, age_group) -> class id 0..17; ints, numpy arrays, pandas Series (NA propagates) or tensors."""
    if isinstance(mask, (list, tuple)):
        mask, gender, age_grp = np.asarray(mask), np.asarray(gender), np.asarray(age_grp)
    return (mask * N_GENDER + gender) * N_AGE + age_grp


def decode(label):
    """Class id 0..17 -> (mask, gender, age_group); scalars or arrays."""
    label = np.asarray(label) if np.ndim(label) else int(label)
    return label // (N_GENDER * N_AGE), (label // N_AGE) % N_GENDER, label % N_AGE


def joint_probs(p_mask, p_gender, p_age):
    """Per-head probabilities (B x 3, B x 2, B x 3; numpy or torch) -> B x 18 class probabilities, assuming independence."""
    cube = p_mask[:, :, None, None] * p_gender[:, None, :, None] * p_age[:, None, None, :]
    return cube.reshape(len(p_mask), NUM_CLASSES)


def marginal_probs(p_class) -> dict:
    """B x 18 class probabilities (numpy or torch) -> {'mask': B x 3, 'gender': B x 2, 'age': B x 3}."""
    cube = p_class.reshape(-1, N_MASK, N_GENDER, N_AGE)
    return {"mask": cube.sum(axis=(2, 3)), "gender": cube.sum(axis=(1, 3)), "age": cube.sum(axis=(1, 2))}


def age_group_names(bins: Sequence[int] = DEFAULT_AGE_BINS) -> tuple[str, ...]:
    """Human names of the age groups, e.g. ('<30', '30-59', '>=60')."""
    middle = tuple(f"{a}-{b - 1}" for a, b in zip(bins, bins[1:]))
    return (f"<{bins[0]}", *middle, f">={bins[-1]}")


def head_names(head: str, bins: Sequence[int] = DEFAULT_AGE_BINS) -> tuple[str, ...]:
    """The class names of one head: mask, gender or age."""
    return {"mask": MASK_NAMES, "gender": GENDER_NAMES, "age": age_group_names(bins)}[head]


def class_names(bins: Sequence[int] = DEFAULT_AGE_BINS) -> list[str]:
    """Short names of the 18 classes in id order, e.g. 'wear/male/<30'."""
    ages = age_group_names(bins)
    names = []
    for c in range(NUM_CLASSES):
        m, g, a = decode(c)
        names.append(f"{MASK_NAMES[m]}/{GENDER_NAMES[g]}/{ages[a]}")
    return names
