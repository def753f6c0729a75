"""Accuracy and macro F1 per head (mask, gender, age) and for the 18 classes, the competition's metric."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score

from .data import LABEL_COLUMN, OUTPUT_CLASSES


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro F1 over the classes present in either ``y_true`` or ``y_pred`` (sklearn's default label set).

    NaN (undefined, shown as n/a) when ``y_true`` holds fewer than two classes: one class predicted
    right everywhere would score 1.0 and say nothing.
    """
    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else float("nan")


def head_metrics(probs: dict[str, np.ndarray], labels: np.ndarray, prefix: str = "") -> dict[str, float]:
    """{'<prefix>f1', '<prefix>acc', '<prefix>f1_mask', ...} from probabilities per head and N x 4 labels."""
    out: dict[str, float] = {}
    for head, p in probs.items():
        y = labels[:, LABEL_COLUMN[head]]
        pred = np.asarray(p).argmax(1)
        key = "" if head == "class" else f"_{head}"
        out[f"{prefix}f1{key}"] = macro_f1(y, pred)
        out[f"{prefix}acc{key}"] = accuracy(y, pred)
    return out


def confusion(y_true: np.ndarray, y_pred: np.ndarray, head: str = "class") -> np.ndarray:
    """Counts K x K (rows true, columns predicted) over all of the head's classes."""
    return confusion_matrix(y_true, y_pred, labels=np.arange(OUTPUT_CLASSES[head]))
