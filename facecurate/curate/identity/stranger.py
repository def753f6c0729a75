"""Strangers: photos whose face is far from the rest of their person's photos, judged against impostor distances.

Each valid photo's distance to its person is its distance to the centroid of the person's other photos of its own
condition (masked with masked; the lone unmasked photo with all the others). The same is measured against a
few other people drawn at random (impostors). Per comparison (``masked~masked``, ``unmasked~any``...), a
``StrangerMixture`` turns the distance into a posterior, and the flag set is the largest whose mean
posterior (its expected precision) reaches the target.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from .calibration import StrangerMixture, flag_set, separation
from .distances import (
    PersonIndex,
    comparison,
    conditions,
    person_vectors,
    reference_condition,
    reference_rows,
)
from .options import IdentityOptions
from .records import flags_frame


@dataclass
class PhotoDistances:
    """Genuine (photo to own person) and impostor (photo to another person) distances, keyed by comparison."""

    genuine: pd.DataFrame   # row, person, comparison, reference, distance, ref_row (the person's medoid reference photo)
    impostor: pd.DataFrame  # comparison, distance


@dataclass
class ComparisonFit:
    """One comparison's calibration: how separable, the mixture, the flag set's estimated precision and recall."""

    comparison: str
    photos: int
    separation: float
    on: bool
    share: float = float("nan")
    precision: float = float("nan")
    recall: float = float("nan")
    flagged: int = 0
    genuine_median: float = float("nan")
    impostor_median: float = float("nan")
    extra: dict = field(default_factory=dict)


def _medoid(d: np.ndarray) -> int:
    """Index of the row of a square distance matrix with the smallest median distance to the others."""
    return int(np.argmin(np.median(d, axis=1))) if len(d) else -1


def _same_gender(manifest: pd.DataFrame, persons: list[str]) -> np.ndarray:
    """Each person's labelled gender code (-1 when the manifest has none), aligned with ``persons``."""
    if "gender" not in manifest:
        return np.full(len(persons), -1)
    g = pd.to_numeric(manifest["gender"], errors="coerce").groupby(manifest["person"].astype(str)).first()
    return g.reindex(persons).fillna(-1).astype(int).to_numpy()


def _impostors(k: int, persons: list[str], gender: np.ndarray, n: int, rng: np.random.Generator) -> list[str]:
    """``n`` people other than ``persons[k]`` drawn at random, of ``persons[k]``'s labelled gender when there are that many.

    A stranger filed under a person is most often hard to tell from them; a face of the other gender lies far
    beyond either way. Impostors of the same gender calibrate the hard case (on planted same-gender strangers,
    random impostors put the impostor density too far out and left a quarter of the strangers unflagged).
    """
    others = np.array([q for q in range(len(persons)) if q != k], dtype=int)
    same = others[gender[others] == gender[k]] if gender[k] >= 0 else others
    pool = same if len(same) >= n else others
    n_draw = min(n, len(pool))
    return [persons[q] for q in rng.choice(pool, size=n_draw, replace=False)] if n_draw > 0 else []


def photo_distances(embeddings: np.ndarray, manifest: pd.DataFrame, index: PersonIndex | None = None,
                    options: IdentityOptions | None = None) -> PhotoDistances:
    """Every valid photo's distance to the centroid of its own person's reference photos, and to the centroids of
    ``options.impostors`` other people's photos of the same kinds (same photo names, else same conditions), drawn
    among the people of the same labelled gender (``_impostors``).

    The comparison key is the photo's name (``mask3``, ``normal``...) when the manifest has one, else its condition,
    so each kind of photo is judged against its own genuine and impostor distances.
    """
    o = options or IdentityOptions()
    index = index or PersonIndex.build(embeddings, manifest)
    cond = conditions(manifest)
    names = manifest["photo"].fillna("").astype(str).to_numpy() if "photo" in manifest else np.full(len(manifest), "", object)
    kind = np.where(names != "", names, cond)
    rng = np.random.default_rng([o.seed, 7])
    persons = index.persons
    peers = _same_gender(manifest, persons)
    gen, imp = [], []
    for k, p in enumerate(persons):
        own = index.rows[p]
        rows = index.all_rows(p)
        if len(rows) < 2:
            continue
        d_own = cdist(embeddings[rows], embeddings[rows])
        pos = {r: j for j, r in enumerate(rows)}
        drawn = _impostors(k, persons, peers, o.impostors, rng)
        for r in rows:
            ref = reference_condition(cond[r], own, o.min_refs)
            refs = reference_rows(own, ref)
            refs = refs[refs != r]
            if len(refs) == 0:
                continue
            cols = [pos[x] for x in refs]
            key = comparison(kind[r], ref)
            med = _medoid(d_own[np.ix_(cols, cols)])
            gen.append((r, p, key, ref, float(np.linalg.norm(embeddings[r] - embeddings[refs].mean(axis=0))), int(refs[med])))
            ref_kinds = set(kind[refs])
            for q in drawn:
                q_refs = index.all_rows(q)
                q_refs = q_refs[np.isin(kind[q_refs], list(ref_kinds))]
                if len(q_refs):
                    imp.append((key, float(np.linalg.norm(embeddings[r] - embeddings[q_refs].mean(axis=0)))))
    return PhotoDistances(pd.DataFrame(gen, columns=["row", "person", "comparison", "reference", "distance", "ref_row"]),
                          pd.DataFrame(imp, columns=["comparison", "distance"]))


def fit_comparisons(dist: PhotoDistances, options: IdentityOptions | None = None) -> dict[str, tuple[ComparisonFit, StrangerMixture | None]]:
    """Per comparison: its separation and, when separable, the fitted mixture."""
    o = options or IdentityOptions()
    out = {}
    for key, g in dist.genuine.groupby("comparison", sort=True):
        i = dist.impostor.loc[dist.impostor["comparison"] == key, "distance"].to_numpy()
        sep = separation(g["distance"].to_numpy(), i)
        fit = ComparisonFit(str(key), len(g), sep, bool(np.isfinite(sep) and sep >= o.min_separation and len(i) >= 10),
                            genuine_median=float(g["distance"].median()), impostor_median=float(np.median(i)) if len(i) else float("nan"))
        out[str(key)] = (fit, StrangerMixture.fit(g["distance"].to_numpy(), i) if fit.on else None)
    return out


def nearest_other(vec: np.ndarray, person: str, persons: list[str], centroids: np.ndarray) -> tuple[str, float]:
    """The person other than ``person`` whose centroid is nearest ``vec``, and the distance ("", inf when none)."""
    if len(persons) == 0:
        return "", float("inf")
    d = np.linalg.norm(centroids - vec, axis=1)
    d[[k for k, p in enumerate(persons) if p == person]] = np.inf
    k = int(np.argmin(d))
    return (persons[k], float(d[k])) if np.isfinite(d[k]) else ("", float("inf"))


def stranger_flags(embeddings: np.ndarray, manifest: pd.DataFrame, options: IdentityOptions | None = None,
                   dist: PhotoDistances | None = None) -> tuple[pd.DataFrame, dict[str, ComparisonFit]]:
    """Flags of kind ``stranger`` (one per photo; fix: ``exclude`` the photo) and each comparison's calibration.

    ``other_image_id`` is the person's own most typical reference photo (to show beside the flagged one);
    ``other_person`` the person of this set the photo looks like, when it is as close to them as their own photos
    are to each other (95 %): a photo filed under the wrong person.

    ``manifest`` rows align with ``embeddings`` (NaN rows: no face, never flagged). A comparison whose genuine
    and impostor distances overlap (separation under ``options.min_separation``) raises no flags.
    """
    o = (options or IdentityOptions()).validate()
    manifest = manifest.reset_index(drop=True)
    dist = dist or photo_distances(embeddings, manifest, options=o)
    fits = fit_comparisons(dist, o)
    ids = manifest["image_id"].astype(str).to_numpy()
    photo = manifest["photo"].fillna("").astype(str).to_numpy() if "photo" in manifest else np.full(len(manifest), "", object)
    index = PersonIndex.build(embeddings, manifest)
    centroids = {ref: person_vectors(embeddings, index, ref)[:2] for ref in set(dist.genuine["reference"])}
    rows: list[dict] = []
    for key, (fit, mix) in fits.items():
        if mix is None:
            continue
        g = dist.genuine[dist.genuine["comparison"] == key]
        post = mix.posterior(g["distance"].to_numpy())
        flagged, prec, rec = flag_set(post, o.target_precision, o.min_posterior)
        fit.share, fit.precision, fit.recall, fit.flagged = mix.share, prec, rec, int(flagged.sum())
        cut = float(post[flagged].min()) if flagged.any() else float("nan")
        q95 = mix.genuine_quantile(0.95)
        for (_, r), pst in zip(g[flagged].iterrows(), post[flagged]):
            i = int(r["row"])
            other, od = nearest_other(embeddings[i], r["person"], *centroids[r["reference"]])
            match = other if od <= q95 else ""
            rows.append({"kind": "stranger", "scope": "photo", "person": r["person"], "image_id": ids[i], "photo": photo[i],
                         "field": "exclude", "given": "0", "suggested": "1", "score": float(pst), "threshold": cut,
                         "reason": (f"{photo[i] or ids[i]} is {r['distance']:.2f} from the centroid of {r['person']}'s other "
                                    f"{r['reference']} photos; their own photos are {fit.genuine_median:.2f} apart (95% <= {q95:.2f}), "
                                    f"other people {fit.impostor_median:.2f}; stranger posterior {pst:.2f}; this set of "
                                    f"{int(flagged.sum())} {key} flags: estimated precision {prec:.2f}"
                                    + (f"; looks like {match} ({od:.2f})" if match else "")),
                         "confidence": "high", "other_person": match, "other_image_id": ids[int(r["ref_row"])],
                         "distance": float(r["distance"])})
    return flags_frame(rows), {k: f for k, (f, _) in fits.items()}
