"""How far apart are one person's photos, and other people's: separation, a two-component mixture, a tail model.

Three small estimators, each over plain arrays of distances:

- ``separation``: ROC AUC of impostor against genuine distances (scikit-learn). Near 0.5 the embedding
  cannot tell these people apart (every person a variant of one face, as in the demo) and the checks
  are switched off.
- ``StrangerMixture``: the observed photo-to-own-person distances are a mixture of genuine photos and a few
  strangers; the strangers' density is the impostor distances' (a KDE, known), the genuine one a
  log-normal fitted by EM. Gives each photo's posterior of being a stranger, so a flag set's precision
  is the mean posterior of its members. Written here because scikit-learn's GaussianMixture cannot hold
  one component fixed to an empirical density.
- ``ImpostorTail``: for person-level pairs, where nearly every pair is two different people, a normal fitted
  to the lower quantiles of all pair distances (the left tail is what matters) gives the number of
  impostor pairs expected below a distance: how likely a pair this close is chance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import gaussian_kde, norm
from sklearn.metrics import roc_auc_score

EPS = 1e-6


def separation(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """ROC AUC of telling impostor from genuine distances by distance (1: fully separated, 0.5: no better than chance)."""
    g, i = np.asarray(genuine, float), np.asarray(impostor, float)
    g, i = g[np.isfinite(g)], i[np.isfinite(i)]
    if len(g) == 0 or len(i) == 0:
        return float("nan")
    return float(roc_auc_score(np.r_[np.zeros(len(g)), np.ones(len(i))], np.r_[g, i]))


@dataclass
class StrangerMixture:
    """Observed distances = (1 - share) x genuine log-normal + share x impostor KDE (fitted on log distances)."""

    share: float
    mu: float
    sigma: float
    kde: gaussian_kde

    @classmethod
    def fit(cls, observed: np.ndarray, impostor: np.ndarray, iterations: int = 200, max_share: float = 0.5) -> StrangerMixture:
        """EM on log distances with the impostor component held fixed; ``share`` starts at 2 %."""
        x = np.log(np.maximum(np.asarray(observed, float), EPS))
        kde = gaussian_kde(np.log(np.maximum(np.asarray(impostor, float), EPS)))
        f_imp = kde(x)
        share, mu = 0.02, float(np.median(x))
        sigma = float(1.4826 * np.median(np.abs(x - mu))) or 0.1
        for _ in range(iterations):
            g = (1 - share) * norm.pdf(x, mu, sigma)
            s = share * f_imp
            r = s / np.maximum(g + s, 1e-300)
            w = 1 - r
            new_share = float(np.clip(r.mean(), 1e-5, max_share))
            mu_new = float((w * x).sum() / max(w.sum(), EPS))
            sigma = float(np.sqrt((w * (x - mu_new) ** 2).sum() / max(w.sum(), EPS))) or sigma
            done = abs(new_share - share) < 1e-7 and abs(mu_new - mu) < 1e-7
            share, mu = new_share, mu_new
            if done:
                break
        return cls(share, mu, max(sigma, 1e-3), kde)

    def posterior(self, distances: np.ndarray) -> np.ndarray:
        """P(stranger | distance) per photo."""
        x = np.log(np.maximum(np.asarray(distances, float), EPS))
        s = self.share * self.kde(x)
        g = (1 - self.share) * norm.pdf(x, self.mu, self.sigma)
        return s / np.maximum(g + s, 1e-300)

    def genuine_quantile(self, q: float) -> float:
        """The distance below which a share ``q`` of genuine photos lie (fitted log-normal)."""
        return float(np.exp(self.mu + self.sigma * norm.ppf(q)))


def flag_set(posterior: np.ndarray, target: float, min_posterior: float = 0.5) -> tuple[np.ndarray, float, float]:
    """The largest most-likely-first set whose mean posterior (its expected precision) reaches ``target``.

    Returns (boolean mask of flagged, estimated precision, estimated recall = expected strangers found / expected
    strangers in all). Members need ``min_posterior`` each, so a tie is never a flag.
    """
    p = np.nan_to_num(np.asarray(posterior, float), nan=0.0)
    order = np.argsort(-p, kind="mergesort")
    running = np.cumsum(p[order]) / np.arange(1, len(p) + 1)
    ok = (running >= target) & (p[order] >= min_posterior)
    n = int(np.flatnonzero(ok)[-1] + 1) if ok.any() else 0
    flagged = np.zeros(len(p), bool)
    flagged[order[:n]] = True
    precision = float(running[n - 1]) if n else float("nan")
    recall = float(p[flagged].sum() / p.sum()) if n and p.sum() > 0 else float("nan")
    return flagged, precision, recall


@dataclass
class ImpostorTail:
    """The left tail of impostor pair distances, as a normal fitted to their lower quantiles; ``pairs`` compared in all."""

    mu: float
    sigma: float
    pairs: int

    @classmethod
    def fit(cls, distances: np.ndarray, pairs: int | None = None,
            levels: tuple[float, ...] = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)) -> ImpostorTail:
        """Least squares of the empirical quantiles on the normal's (a few true matches barely move them)."""
        d = np.asarray(distances, float)
        d = d[np.isfinite(d)]
        q = np.quantile(d, levels)
        z = norm.ppf(levels)
        sigma, mu = np.polyfit(z, q, 1)
        return cls(float(mu), float(max(sigma, 1e-6)), int(len(d) if pairs is None else pairs))

    def expected_below(self, distance: np.ndarray) -> np.ndarray:
        """How many of the compared pairs are expected at or below ``distance`` if all were impostors."""
        return self.pairs * norm.cdf((np.asarray(distance, float) - self.mu) / self.sigma)
