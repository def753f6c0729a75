"""Accuracy and macro F1 per head (mask, gender, age) and for the 18 classes, the competition's metric."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from ..curate.labels import DEFAULT_AGE_BINS, class_names, head_names
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


def per_class(probs: dict[str, np.ndarray], labels: np.ndarray, age_bins=DEFAULT_AGE_BINS) -> pd.DataFrame:
    """Precision, recall, F1 and support of every class of the 18 and of each head: ``per_class.csv``.

    A class with no photo of its own has support 0 and NaN scores (never a 0 or a 1 that means nothing).
    """
    rows = []
    for out, p in probs.items():
        n = OUTPUT_CLASSES[out]
        y, pred = labels[:, LABEL_COLUMN[out]], np.asarray(p).argmax(1)
        prec, rec, f1, sup = precision_recall_fscore_support(y, pred, labels=np.arange(n), zero_division=0)
        names = class_names(age_bins) if out == "class" else head_names(out, age_bins)
        for i in range(n):
            absent = sup[i] == 0
            rows.append({"output": out, "id": i, "name": names[i], "precision": np.nan if absent else prec[i],
                         "recall": np.nan if absent else rec[i], "f1": np.nan if absent else f1[i], "support": int(sup[i]),
                         "predicted": int((pred == i).sum())})
    return pd.DataFrame(rows)
