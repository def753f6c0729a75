"""Person-level matches: one face under two ids (``duplicate_id``), or a person of one set found in another (``identity_leak``).

Each person is the mean embedding of their unmasked photos (masks hide identity). All pairs are compared;
since nearly every pair is two different people, an ``ImpostorTail`` fitted to all pair distances says how
many pairs would come this close by chance, and a pair is kept when that chance is small. ``identity_groups`` joins matched ids into one group each, so folds can keep them together.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist

from .calibration import ImpostorTail
from .distances import UNMASKED, PersonIndex, person_vectors
from .options import IdentityOptions
from .records import flags_frame


@dataclass
class PairFit:
    """One matching's calibration: pairs compared, the impostor tail, the kept set's distance cut and estimated precision."""

    pairs: int
    tail: ImpostorTail | None
    cut: float = float("nan")
    precision: float = float("nan")
    flagged: int = 0
    people_a: int = 0
    people_b: int = 0


def match_pairs(vec_a: np.ndarray, vec_b: np.ndarray | None = None, target: float = 0.8,
                block: int = 2048, candidate_z: float = -2.0) -> tuple[pd.DataFrame, PairFit]:
    """Pairs (i in a, j in b; i < j when ``vec_b`` is None: one set against itself) too close to be chance.

    A pair's score is exp(-E), E the number of impostor pairs expected at or below its distance among all pairs
    compared (Poisson: the chance that no impostor pair comes this close); pairs scoring ``target`` or more are
    kept, each on its own evidence (a set-level cut would let chance pairs ride on true ones). The kept set's
    estimated precision is 1 - E(cut) / kept. Returns (frame i, j, distance, score sorted by distance, PairFit)."""
    same = vec_b is None
    vec_b = vec_a if same else vec_b
    na, nb = len(vec_a), len(vec_b)
    if na == 0 or nb == 0 or (same and na < 3):
        return pd.DataFrame(columns=["i", "j", "distance", "score"]), PairFit(0, None, people_a=na, people_b=nb)
    all_d, cand = [], []
    for s in range(0, na, block):
        d = cdist(vec_a[s:s + block], vec_b)
        keep = (np.arange(nb)[None, :] > np.arange(s, s + len(d))[:, None]) if same else np.ones(d.shape, bool)
        ii, jj = np.nonzero(keep)
        vals = d[ii, jj]
        all_d.append(vals.astype(np.float32))
        cand.append((ii + s, jj, vals))
    dist = np.concatenate(all_d)
    tail = ImpostorTail.fit(dist)
    limit = tail.mu + candidate_z * tail.sigma
    ii = np.concatenate([c[0][c[2] <= limit] for c in cand])
    jj = np.concatenate([c[1][c[2] <= limit] for c in cand])
    dd = np.concatenate([c[2][c[2] <= limit] for c in cand])
    order = np.argsort(dd, kind="mergesort")
    ii, jj, dd = ii[order], jj[order], dd[order]
    score = np.exp(-tail.expected_below(dd))  # P(no impostor pair this close among all compared), Poisson
    n = int(np.sum(score >= target))
    prec = float(1 - tail.expected_below(dd[n - 1]) / n) if n else float("nan")
    fit = PairFit(len(dist), tail, float(dd[n - 1]) if n else float("nan"), prec, n, na, nb)
    return pd.DataFrame({"i": ii[:n], "j": jj[:n], "distance": dd[:n], "score": score[:n]}), fit


def _pair_rows(kind: str, pairs: pd.DataFrame, fit: PairFit, target: float, pa: list[str], ra: list[int], ids_a: np.ndarray,
               pb: list[str], rb: list[int], ids_b: np.ndarray, groups: dict[str, int] | None) -> list[dict]:
    rows = []
    for r in pairs.itertuples(index=False):
        a, b = pa[int(r.i)], pb[int(r.j)]
        expected = float(fit.tail.expected_below(r.distance)) if fit.tail else float("nan")
        rows.append({"kind": kind, "scope": "person", "person": a, "image_id": ids_a[ra[int(r.i)]], "photo": "",
                     "field": "identity" if groups else "", "given": "", "suggested": str(groups[a]) if groups else "",
                     "score": float(r.score), "threshold": target,
                     "reason": (f"{a} and {b} look like one person: unmasked faces {r.distance:.2f} apart; of {fit.pairs} pairs "
                                f"compared, {expected:.2g} impostor pair(s) expected this close (impostors {fit.tail.mu:.2f} "
                                f"+- {fit.tail.sigma:.2f}); {fit.flagged} pair(s) kept, estimated precision {fit.precision:.2f}"),
                     "confidence": "high", "other_person": b, "other_image_id": ids_b[rb[int(r.j)]], "distance": float(r.distance)})
    return rows


def duplicate_id_flags(embeddings: np.ndarray, manifest: pd.DataFrame, options: IdentityOptions | None = None,
                       condition: str = UNMASKED) -> tuple[pd.DataFrame, PairFit]:
    """Flags of kind ``duplicate_id``, one per matched pair (fix: both ids get one ``identity`` group), and the fit."""
    o = (options or IdentityOptions()).validate()
    manifest = manifest.reset_index(drop=True)
    persons, vecs, reps = person_vectors(embeddings, PersonIndex.build(embeddings, manifest), condition)
    pairs, fit = match_pairs(vecs, None, o.target_precision)
    groups = identity_groups(persons, pairs)
    ids = manifest["image_id"].astype(str).to_numpy()
    return flags_frame(_pair_rows("duplicate_id", pairs, fit, o.target_precision, persons, reps, ids, persons, reps, ids, groups)), fit


def identity_leak_flags(emb_a: np.ndarray, manifest_a: pd.DataFrame, emb_b: np.ndarray, manifest_b: pd.DataFrame,
                        options: IdentityOptions | None = None, condition: str | None = None) -> tuple[pd.DataFrame, PairFit]:
    """Flags of kind ``identity_leak``: people of set A (``person``) whose face is in set B (its ``person``s; a set
    without people, such as an eval layout, counts each photo as one). ``condition`` defaults to unmasked when both
    manifests carry mask labels, else every photo."""
    o = (options or IdentityOptions()).validate()
    manifest_a, manifest_b = manifest_a.reset_index(drop=True), manifest_b.reset_index(drop=True)
    if "person" not in manifest_b or manifest_b["person"].fillna("").astype(str).eq("").all():
        manifest_b = manifest_b.assign(person=manifest_b["image_id"].astype(str))
    if condition is None:
        condition = UNMASKED if "mask" in manifest_a and "mask" in manifest_b and manifest_b["mask"].notna().any() else "any"
    pa, va, ra = person_vectors(emb_a, PersonIndex.build(emb_a, manifest_a), condition)
    pb, vb, rb = person_vectors(emb_b, PersonIndex.build(emb_b, manifest_b), condition)
    pairs, fit = match_pairs(va, vb, o.target_precision)
    return flags_frame(_pair_rows("identity_leak", pairs, fit, o.target_precision, pa, ra, manifest_a["image_id"].astype(str).to_numpy(),
                                  pb, rb, manifest_b["image_id"].astype(str).to_numpy(), None)), fit


def identity_groups(persons: list[str], pairs: pd.DataFrame) -> dict[str, int]:
    """person -> group id: ids joined by matched pairs (columns i, j index ``persons``) share one; groups numbered
    0.. in the order of their first person. Give it to a fold splitter as the group so no face spans two folds."""
    n = len(persons)
    if n == 0:
        return {}
    i = pairs["i"].to_numpy(int) if len(pairs) else np.zeros(0, int)
    j = pairs["j"].to_numpy(int) if len(pairs) else np.zeros(0, int)
    _, labels = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)
    first: dict[int, int] = {}
    for lab in labels:
        first.setdefault(int(lab), len(first))
    return {p: first[int(lab)] for p, lab in zip(persons, labels)}
