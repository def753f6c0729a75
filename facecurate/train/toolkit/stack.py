"""How several runs' 18-class probabilities become one prediction: mean, hard vote, or a stacker; and their scores.

- ``mean``: the average of the runs' probabilities, then the most probable class.
- ``vote``: each run votes for its own most probable class; the class with the most votes wins, a tie goes to the
  tied class with the highest mean probability (score = votes + mean probability: a mean below 1 never outweighs
  a vote).
- ``stack-lr`` / ``stack-gb``: scikit-learn's ``LogisticRegression`` (on standardised log-probabilities) or
  ``HistGradientBoostingClassifier`` fitted on the runs' out-of-fold probabilities (features: every run's 18
  log-probabilities side by side). The histogram booster is scikit-learn's gradient boosting for more than a few
  classes: the exact ``GradientBoostingClassifier`` grows 18 trees per stage and takes minutes where this takes
  seconds. ``balanced`` weighs the classes inversely to their frequency, as macro F1 counts every class alike.
  Both are fitted on one thread (``threadpoolctl``): on a small table, OpenMP threads cost far more than they
  save (a 2,100 x 54 booster took 11 s on one thread and 109 s on two on a busy 2-core machine).

A stacker's out-of-fold score is nested (``nested_stack``): for each of the runs' shared person-grouped folds, a
stacker fitted on the other folds' rows predicts that fold, so no photo is scored by a stacker that saw it (or its
person) when it was fitted.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...curate.errors import InputError
from ...curate.labels import HEADS, NUM_CLASSES, decode
from ..metrics import accuracy, macro_f1

METHODS = ("mean", "vote", "stack-lr", "stack-gb")
STACKERS = ("stack-lr", "stack-gb")
EPS = 1e-6


def mean_probs(probs: np.ndarray) -> np.ndarray:
    """R x N x 18 -> N x 18: the runs' average."""
    return np.asarray(probs, dtype=np.float64).mean(axis=0)


def vote_scores(probs: np.ndarray) -> np.ndarray:
    """R x N x 18 -> N x 18 scores whose argmax is the hard vote (ties to the higher mean probability)."""
    probs = np.asarray(probs, dtype=np.float64)
    votes = np.zeros(probs.shape[1:], np.float64)
    np.add.at(votes, (np.arange(probs.shape[1])[None, :].repeat(len(probs), 0), probs.argmax(axis=2)), 1.0)
    return votes + probs.mean(axis=0) * (1 - EPS)


def features(probs: np.ndarray) -> np.ndarray:
    """R x N x 18 -> N x 18R: every run's log-probabilities side by side (the stackers' input)."""
    probs = np.asarray(probs, dtype=np.float64)
    return np.log(np.clip(probs, EPS, 1.0)).transpose(1, 0, 2).reshape(probs.shape[1], -1)


def make_stacker(method: str, balanced: bool = True, seed: int = 0):
    """An unfitted scikit-learn classifier for ``stack-lr`` or ``stack-gb``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    weight = "balanced" if balanced else None
    if method == "stack-lr":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, class_weight=weight))
    if method == "stack-gb":
        return HistGradientBoostingClassifier(max_iter=60, learning_rate=0.1, max_leaf_nodes=15, l2_regularization=1.0,
                                              early_stopping=False, class_weight=weight, random_state=seed)
    raise InputError(f"--method {method!r}: expected one of {', '.join(METHODS)}")


def fit_stacker(method: str, x: np.ndarray, y: np.ndarray, balanced: bool = True, seed: int = 0):
    """A stacker fitted on features ``x`` and 18-class labels ``y`` (InputError when they hold a single class)."""
    from threadpoolctl import threadpool_limits

    if len(np.unique(y)) < 2:
        raise InputError(f"{method}: the out-of-fold rows it is fitted on hold a single class; nothing to learn")
    with threadpool_limits(1):
        return make_stacker(method, balanced, seed).fit(x, y)


def stacker_probs(model, x: np.ndarray) -> np.ndarray:
    """N x 18 probabilities of a fitted stacker (0 for classes it never saw)."""
    from threadpoolctl import threadpool_limits

    out = np.zeros((len(x), NUM_CLASSES))
    with threadpool_limits(1):
        out[:, np.asarray(model.classes_, dtype=np.int64)] = model.predict_proba(x)
    return out


def nested_stack(method: str, x: np.ndarray, y: np.ndarray, folds: np.ndarray, balanced: bool = True,
                 seed: int = 0) -> np.ndarray:
    """N x 18 out-of-fold stacker probabilities: fold f's rows come from a stacker fitted on the other folds only."""
    out = np.zeros((len(x), NUM_CLASSES))
    for f in np.unique(folds):
        held = folds == f
        out[held] = stacker_probs(fit_stacker(method, x[~held], y[~held], balanced, seed), x[held])
    return out


def scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Macro F1 and accuracy of 18-class predictions, and the macro F1 of each head of the chosen class."""
    pred, y = np.asarray(pred, dtype=np.int64), np.asarray(y, dtype=np.int64)
    out = {"f1": macro_f1(y, pred), "acc": accuracy(y, pred)}
    for head, p, t in zip(HEADS, decode(pred), decode(y)):
        out[f"f1_{head}"] = macro_f1(np.asarray(t), np.asarray(p))
    return out


def method_scores(method: str, probs: np.ndarray, y: np.ndarray, folds: np.ndarray | None, balanced: bool = True,
                  seed: int = 0) -> np.ndarray:
    """N x 18 out-of-fold scores of ``method`` over the runs' out-of-fold probabilities (stackers nested)."""
    if method == "mean":
        return mean_probs(probs)
    if method == "vote":
        return vote_scores(probs)
    if folds is None:
        raise InputError(f"{method}: the runs do not share their folds, so no nested score can be given")
    return nested_stack(method, features(probs), y, folds, balanced, seed)


def oof_table(names: list[str], probs: np.ndarray, y: np.ndarray, folds: np.ndarray | None, methods=METHODS,
              balanced: bool = True, seed: int = 0) -> pd.DataFrame:
    """One row per run and per method: out-of-fold macro F1 (18 classes and per head) and accuracy."""
    rows = [{"method": f"run {n}", **scores(p.argmax(1), y)} for n, p in zip(names, probs)]
    for m in methods:
        if m in STACKERS and folds is None:
            continue
        rows.append({"method": m + (" (nested)" if m in STACKERS else ""),
                     **scores(method_scores(m, probs, y, folds, balanced, seed).argmax(1), y)})
    return pd.DataFrame(rows)[["method", "f1", "f1_mask", "f1_gender", "f1_age", "acc"]]
