"""How precise each kind of flag is expected to be on this data: inject known errors, flag, count.

For each model-based kind, copies of the out-of-fold frame's labels get known errors of that kind
(a person's gender flipped, a person's age group moved to another group, a person's incorrect_mask
and normal photos exchanged, a photo's mask label changed), the same scoring runs on each copy, and
precision and recall are counted at every threshold over several draws. The kind's threshold is the
lowest one whose precision reaches the target; a kind that reaches it nowhere is "low confidence".

Assumptions (docs/relabel-report.md#how-sure-is-a-flag):

- Out-of-fold probabilities do not depend on a unit's own label (its photos were held out while the
  model trained), so a relabelled copy looks like a real error: the photos point to the true class
  while the label says another. A swap exchanges the two photos' probabilities, labels as the layout.
- The data already holds real errors, which the simulation does not know. Counting them as false
  alarms would halve the precision of a perfect model on data with 5 % errors. Each unit's chance of
  being a real error is estimated (``fit_noise``: the scores' log-odds, a temperature, a unit-level scale and an
  error rate fitted by maximum likelihood to the labels, a noisy-label logistic model) and a flag on a
  non-injected unit counts as a false alarm only by its chance of being clean. Injected units are
  drawn in proportion to that chance of being clean.
- Errors are injected at the rate the data seems to have (that fit), clipped to ``rates``, so the
  estimate is for this data's prevalence; the chances of real errors use the same clipped rate. Each
  kind is simulated alone.

A hand-written simulation because no library estimates the precision of its own flags
(cleanlab, fastdup, FiftyOne do not); scipy fits the two parameters.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .scores import Units, evidence, score_units, temperature

#: Thresholds tried on the score (p(fix) / (p(fix) + p(label))); ``margin`` removes the ones near a tie.
THRESHOLD_GRID = np.unique(np.round(np.concatenate([np.arange(0.55, 0.951, 0.01), 1 - np.geomspace(0.05, 1e-4, 16)]), 6))


@dataclass
class KindEstimate:
    """The simulated precision and recall of one kind of flag, and the threshold picked for the target."""

    kind: str
    threshold: float            # the score a flag needs
    precision: float            # expected precision at ``threshold`` (nan when nothing was flagged)
    recall: float               # expected recall at ``threshold``
    confident: bool             # precision reached the target: flags go into overrides.csv
    target: float
    rate: float                 # share of units given an injected error per draw
    draws: int
    units: int
    real_errors: float          # estimated number of real errors of this kind in the data
    curve: list[tuple[float, float, float]] = field(default_factory=list)  # (threshold, precision, recall)
    off: str = ""               # why the kind raises no flags at all (quality gate), else ""

    @property
    def status(self) -> str:
        if self.off:
            return "off"
        return "confident" if self.confident else "candidates, low confidence"

    def describe(self) -> str:
        """One line: 'expected precision ~0.85, recall ~0.70 at this threshold (0.80)'."""
        if self.off:
            return self.off
        if not np.isfinite(self.precision):
            return f"no flag in the simulation at any threshold ({self.draws} draws of {self.rate:.0%} injected errors)"
        text = (f"expected precision ~{self.precision:.2f}, recall ~{self.recall:.2f} at this threshold "
                f"({self.threshold:.3g}; simulated with {self.rate:.0%} injected errors, {self.draws} draws)")
        return text if self.confident else f"candidates, low confidence: {text}; target precision {self.target:.2f}"


def _nll(params: np.ndarray, z: np.ndarray, k: np.ndarray, scale: float = 1.0) -> float:
    """Negative log-likelihood of the labels under P(label | z) = (1-pi) sigma(-a) + pi sigma(a), a = scale z / (1 + c (k-1))."""
    c, pi = 1.0 / (1.0 + np.exp(-params[0])), 1.0 / (1.0 + np.exp(-params[1]))
    a = scale * z / (1.0 + c * (k - 1))
    log_clean = -np.logaddexp(0.0, a)   # log sigma(-a): the label is right
    log_wrong = -np.logaddexp(0.0, -a)  # log sigma(a): the fix is right
    return float(-np.logaddexp(np.log1p(-pi) + log_clean, np.log(pi) + log_wrong).sum())


C_GRID = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
#: Unit-level sharpening tried with each c: the photo-level temperature is fitted on every photo of the head, while a
#: unit (two photos of a swap, a person's photos) can be more or less confident than its photos suggest.
SCALE_GRID = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)


def _fit_pi(z: np.ndarray, k: np.ndarray, c: float, scale: float = 1.0) -> tuple[float, float]:
    """(error rate, negative log-likelihood) at a given c and scale, by a bounded 1-D search on logit(pi)."""
    from scipy.optimize import minimize_scalar

    logit_c = -30.0 if c <= 0 else 30.0 if c >= 1 else float(np.log(c / (1 - c)))
    r = minimize_scalar(lambda q: _nll(np.array([logit_c, q]), z, k, scale), bounds=(-12.0, 0.0), method="bounded")
    return float(1.0 / (1.0 + np.exp(-r.x))), float(r.fun)


def fit_noise(z: np.ndarray, k: np.ndarray | None = None, tolerance: float = 1.0) -> tuple[float, float, float]:
    """(c, error rate, scale) by maximum likelihood: the units' log-odds ``z`` of fix vs label summed over ``k`` photos
    are scaled by scale / (1 + c (k - 1)): c = 0 when a person's photos are independent evidence, 1 when they are
    copies; scale > 1 when a unit is surer than its photos' temperature says (a swap's two photos together).

    c is tried on ``C_GRID``, the scale on ``SCALE_GRID``; where the likelihood is flat (a well separated model), the
    fit within ``tolerance`` of the best whose scale is nearest 1 (then the smallest c) is taken: the data cannot tell
    those apart, and scale 1 trusts the photo-level calibration.
    """
    z = np.asarray(z, float)
    k = np.ones(len(z)) if k is None else np.asarray(k, float)
    if len(z) < 2:
        return 0.0, 0.0, 1.0
    grid = C_GRID if (k > 1).any() else (0.0,)
    fits = [(c, s, *_fit_pi(z, k, c, s)) for c in grid for s in SCALE_GRID]
    best = min(f[3] for f in fits)
    near = [f for f in fits if f[3] <= best + tolerance]
    c, s, pi, _ = min(near, key=lambda f: (abs(np.log(f[1])), f[0]))
    return c, pi, s


def error_posterior(a: np.ndarray, pi: float) -> np.ndarray:
    """Each unit's chance that its label is wrong (and the fix right), from its scaled log-odds ``a`` and the error rate."""
    a = np.asarray(a, float)
    log_clean = np.log1p(-pi) - np.logaddexp(0.0, a)
    log_wrong = np.log(max(pi, 1e-300)) - np.logaddexp(0.0, -a)
    return np.exp(log_wrong - np.logaddexp(log_clean, log_wrong))


def real_error_chance(u: Units, max_rate: float = 1.0) -> tuple[np.ndarray, float]:
    """(each unit's chance of being a real error, the fitted error rate) on the units' own labels.

    Photo probabilities are first temperature-scaled on the given labels (``scores.temperature``): the
    injected and the real errors in the labels make that a little soft, which errs towards fewer real
    errors, i.e. a lower estimated precision. The chances use the fitted rate clipped to ``max_rate``: a
    weak model's own mistakes look like label errors and fit a high rate, which would excuse its false
    alarms as "real errors" and make the estimate optimistic.
    """
    sugg, _ = score_units(u)
    z, k = evidence(u, sugg, temperature(u.row_probs, u.row_labels))
    c, pi, scale = fit_noise(z, k)
    return error_posterior(scale * z / (1.0 + c * (k - 1)), min(pi, max_rate)), pi


def inject(u: Units, rng: np.random.Generator, n_errors: int, clean: np.ndarray, k: int) -> tuple:
    """One injected copy: (given labels, swapped pairs or None, injected unit mask, the true value per unit).

    ``clean``: each unit's chance of being clean (injection targets are drawn in proportion); ``k``: the head's classes.
    """
    n = len(u.given)
    p = clean / clean.sum() if clean.sum() > 0 else None
    idx = rng.choice(n, size=min(n_errors, n), replace=False, p=p)
    hit = np.zeros(n, bool)
    hit[idx] = True
    if u.joint:
        return u.given, hit, hit, np.where(hit, 1, 0)
    given = u.given.copy()
    shift = rng.integers(1, k, size=len(idx))  # another class, uniformly (a binary head: the other one)
    given[idx] = (given[idx] + shift) % k
    return given, None, hit, u.given


def estimate_kind(u: Units, target: float = 0.8, margin: float = 0.1, draws: int = 8, seed: int = 0,
                  rates: tuple[float, float] = (0.02, 0.10), min_injected: int = 40,
                  real_error: np.ndarray | None = None) -> KindEstimate:
    """Simulate ``draws`` injected copies of ``u``'s labels and pick the lowest threshold reaching ``target`` precision.

    Thresholds below 0.5 + ``margin`` are never used: a score near 0.5 is a tie, not evidence. Draws are
    added until at least ``min_injected`` errors were injected in all (at most 200 draws). ``real_error``: each
    unit's known chance of being a real error (a benchmark's truth, to tell the simulation's own error from the
    real-error estimate's); default: estimated by ``real_error_chance``.
    """
    n = len(u.given)
    grid = THRESHOLD_GRID[THRESHOLD_GRID >= 0.5 + margin - 1e-9]
    w, pi = real_error_chance(u, max_rate=rates[1]) if n else (np.zeros(0), 0.0)
    if real_error is not None:
        w = np.asarray(real_error, float)
        pi = float(w.mean()) if n else 0.0
    rate = float(np.clip(pi, *rates))
    n_err = max(1, int(round(rate * n))) if n else 0
    draws = int(min(200, max(draws, int(np.ceil(min_injected / max(n_err, 1)))))) if n else 0
    k = u.probs.shape[-1]
    rng = np.random.default_rng(seed)
    tp = np.zeros(len(grid))
    fp = np.zeros(len(grid))
    injected = 0
    for _ in range(draws):
        given, swapped, hit, truth = inject(u, rng, n_err, 1.0 - w, k)
        sugg, s = score_units(u, given, swapped)
        flagged = s[:, None] >= grid[None, :]
        right = hit & (sugg == truth) if not u.joint else hit
        tp += (flagged & right[:, None]).sum(axis=0)
        fp += ((flagged & ~hit[:, None]) * (1.0 - w)[:, None]).sum(axis=0)  # weighted by the chance of being clean
        fp += (flagged & (hit & ~right)[:, None]).sum(axis=0)  # an injected error flagged with the wrong fix
        injected += int(hit.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = tp / (tp + fp)
        rec = tp / injected if injected else np.full(len(grid), np.nan)
    # a threshold counts only with enough support: 10 found errors in all draws and a recall of at least 10 %
    supported = (tp >= 10) & (np.nan_to_num(rec, nan=0.0) >= 0.1)
    ok = np.flatnonzero((np.nan_to_num(prec, nan=0.0) >= target) & supported)
    curve = [(float(t), float(p), float(r)) for t, p, r in zip(grid, prec, rec)]
    if len(ok):
        i = int(ok[0])
    elif (np.isfinite(prec) & supported).any():
        i = int(np.nanargmax(np.where(supported, prec, np.nan)))
    elif np.isfinite(prec).any():
        i = int(np.nanargmax(prec))
    else:
        i = len(grid) - 1
    return KindEstimate(u.kind, float(grid[i]), float(prec[i]), float(rec[i]), bool(len(ok)), target, rate, draws, n,
                        float(w.sum()), curve)
