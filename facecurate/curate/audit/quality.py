"""The quality gate: how well the out-of-fold model reads each head, and whether its flags may be raised at all.

Per head (mask, gender, age), on the photos against their given labels: macro F1, balanced accuracy
with a 95 % bootstrap interval over people (a person's photos move together: they are not
independent), the expected calibration error and the reliability curve (confidence vs accuracy in
equal-width bins). A head is **on** when the lower end of that interval clears
chance + ``gate`` x (1 - chance) (default: halfway between chance and perfect, 75 % for gender, 67 %
for three classes); otherwise its model-based kinds raise no flags and the banner says so in words.
The given labels hold the errors being looked for, so every figure here is a slight underestimate.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from ..labels import HEAD_CLASSES, HEAD_FIELDS
from .oof import head_probs
from .kinds import KINDS

HEAD_WORDS = {"mask": "the mask", "gender": "gender", "age": "the age group"}


@dataclass
class HeadQuality:
    """How the out-of-fold model reads one head, and whether the head's flags are on."""

    head: str
    classes: int
    photos: int
    people: int
    macro_f1: float
    balanced_accuracy: float
    interval: tuple[float, float]        # 95 % bootstrap interval over people
    chance: float
    needed: float                        # the lower end of the interval must reach this
    ece: float                           # expected calibration error (max-probability confidence)
    reliability: list[tuple[float, float, int]] = field(default_factory=list)  # (confidence, accuracy, photos) per bin
    on: bool = False

    @property
    def kinds(self) -> list[str]:
        """The model-based kinds that read this head (switched off with it)."""
        return [k.name for k in KINDS.values() if k.head == self.head]

    def describe(self) -> str:
        """One sentence for the banner and the terminal."""
        lo, hi = self.interval
        reads = (f"{self.head}: the model reads {HEAD_WORDS[self.head]} at {self.balanced_accuracy:.0%} balanced accuracy "
                 f"(95% interval {lo:.0%}-{hi:.0%}, chance {self.chance:.0%}), macro F1 {self.macro_f1:.2f}, "
                 f"calibration error {self.ece:.2f}")
        if not np.isfinite(self.balanced_accuracy):
            return f"{self.head}: the labels hold a single class; {' and '.join(self.kinds)} flags are off"
        if self.on:
            return reads
        kinds = " and ".join(k.replace("_", " ") for k in self.kinds)
        return (f"{self.head}: the model reads {HEAD_WORDS[self.head]} at {self.balanced_accuracy:.0%} (chance {self.chance:.0%}; "
                f"95% interval {lo:.0%}-{hi:.0%}, needs {self.needed:.0%}); {kinds} flags are off — train a stronger model, "
                f"see docs/relabel-report.md#the-quality-gate")


def balanced_accuracy_interval(y: np.ndarray, pred: np.ndarray, groups: np.ndarray, k: int, n_boot: int = 400,
                               seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Balanced accuracy (mean recall over the classes present) and its 95 % bootstrap interval, resampling groups."""
    codes, _ = pd.factorize(pd.Series(groups))
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    total = np.zeros((n_groups, k))
    right = np.zeros((n_groups, k))
    np.add.at(total, (codes, y), 1)
    np.add.at(right, (codes, y), (y == pred).astype(float))
    present = total.sum(0) > 0

    def ba(t: np.ndarray, r: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            rec = r[..., present] / t[..., present]
        return np.nanmean(rec, axis=-1)

    point = float(ba(total.sum(0), right.sum(0)))
    rng = np.random.default_rng(seed)
    w = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot).astype(float) if n_groups else np.zeros((0, 0))
    boots = ba(w @ total, w @ right) if n_groups else np.array([np.nan])
    return point, (float(np.nanpercentile(boots, 2.5)), float(np.nanpercentile(boots, 97.5)))


def calibration(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> tuple[float, list[tuple[float, float, int]]]:
    """Expected calibration error and the reliability curve of the max-probability confidence, ``bins`` equal bins."""
    conf = probs.max(axis=1)
    right = (probs.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    curve, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            curve.append((float(conf[m].mean()), float(right[m].mean()), int(m.sum())))
            ece += m.mean() * abs(conf[m].mean() - right[m].mean())
    return float(ece), curve


def head_quality(oof: pd.DataFrame, head: str, gate: float = 0.5, n_boot: int = 400, seed: int = 0) -> HeadQuality:
    """The quality of one head on a validated out-of-fold frame (see the module doc for the gate)."""
    k = HEAD_CLASSES[head]
    p = head_probs(oof, head)
    y = oof[HEAD_FIELDS[head]].to_numpy(dtype=int)
    pred = p.argmax(axis=1)
    n_present = len(np.unique(y))
    chance = 1.0 / max(n_present, 1)
    needed = chance + gate * (1.0 - chance)
    ece, curve = calibration(p, y)
    if n_present < 2:
        return HeadQuality(head, k, len(y), int(oof["person"].nunique()), float("nan"), float("nan"), (float("nan"),) * 2,
                           chance, needed, ece, curve, on=False)
    ba, interval = balanced_accuracy_interval(y, pred, oof["person"].to_numpy(), k, n_boot=n_boot, seed=seed)
    f1 = float(f1_score(y, pred, average="macro", labels=np.unique(y), zero_division=0))
    return HeadQuality(head, k, len(y), int(oof["person"].nunique()), f1, ba, interval, chance, needed, ece, curve,
                       on=bool(interval[0] >= needed))


def quality_gate(oof: pd.DataFrame, gate: float = 0.5, seed: int = 0) -> dict[str, HeadQuality]:
    """``head_quality`` of every head, in label order."""
    return {h: head_quality(oof, h, gate=gate, seed=seed) for h in HEAD_CLASSES}
