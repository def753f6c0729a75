"""Pass 2's decisions on pass-1 rows, pure: which photos the quick look left in doubt, and each photo's subject.

After the first pass every readable photo has its quick candidates with their image cues (``candidates``: JSON of
``[x1, y1, x2, y2, score, detector, focus, below]``) and a provisional pick by the subject rule (``subject``) on its
own photo. Photos whose cues disagree (``doubtful``: a close call, a winner off the data set's
framing, no face) get the detector's full look in the stage. Then, per person, the consensus box of the picks not
in doubt is one more vote for each candidate (``decide_subjects``): it can be outvoted; when no candidate agrees
with it at all, the photo gets the person box (the rejected box kept for review). Photos without a person consensus
(single photos: the eval layout, a plain folder) get a weaker vote for the data set's framing instead.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .fallback import DETECTED, PERSON
from .subject import (AGREE_CENTRE, CONSENSUS_MIN, CONSENSUS_SCORE, REVIEW_AREA, REVIEW_CENTRE, STEADY, STEADY_CENTRE, WEIGHTS, Choice,
                      SubjectWeights, agrees, choose, closeness, consensus_box, disagreement, in_doubt, own_evidence, part_of)

FACE_COLS = ["face_x1", "face_y1", "face_x2", "face_y2"]
REJECTED_COLS = ["rejected_x1", "rejected_y1", "rejected_x2", "rejected_y2"]
RUNNER_COLS = ["runner_x1", "runner_y1", "runner_x2", "runner_y2"]  # the runner-up face of the subject rule
PRIOR_WEIGHT = 0.3  # how much the data set's consensus nudges the pick on single photos


def candidates_json(faces: Sequence, focus: Sequence[float] | None = None, below: Sequence[float] | None = None) -> str:
    """A photo's candidate faces (``detect.Face``) and their image cues (``cues.image_cues``) as the JSON text stored
    in the pass-1 rows: ``[x1, y1, x2, y2, score, detector, focus, below]`` each (null: not measured)."""
    def num(v):
        return float(v) if v is not None and np.isfinite(v) else None

    n = len(faces)
    focus = list(focus) if focus is not None else [None] * n
    below = list(below) if below is not None else [None] * n
    return json.dumps([[float(v) for v in f.box] + [float(f.score), f.source, num(a), num(b)]
                       for f, a, b in zip(faces, focus, below)])


def parse_candidates(text: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(boxes k x 4, scores k, detector names) from ``candidates_json`` text ("" or "[]": none)."""
    items = json.loads(text) if text else []
    boxes = np.array([c[:4] for c in items], dtype=np.float64).reshape(-1, 4)
    return boxes, np.array([c[4] for c in items], dtype=np.float64), [str(c[5]) for c in items]


def parse_cues(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(focus k, below k) from ``candidates_json`` text; NaN where not measured (chunks written before the cues)."""
    items = json.loads(text) if text else []
    get = lambda c, k: c[k] if len(c) > k and c[k] is not None else np.nan
    return (np.array([get(c, 6) for c in items], dtype=np.float64), np.array([get(c, 7) for c in items], dtype=np.float64))


@functools.lru_cache(maxsize=8192)
def _own_choice(text: str, width: int, height: int, weights: SubjectWeights) -> tuple:
    """``photo_choice`` without a consensus, remembered: pass 2 asks it of every photo two or three times (in doubt?
    its vote? its subject?), and parsing and scoring thousands of small arrays is most of pass 2's own time. Pure
    (its arrays are read-only), so the cache cannot go stale."""
    boxes, scores, names = parse_candidates(text)
    focus, below = parse_cues(text)
    evidence = own_evidence(boxes, scores, width, height, focus, below, weights)
    for a in (boxes, scores, focus, evidence):
        a.setflags(write=False)
    return choose(evidence, boxes), boxes, scores, names, focus, evidence


def photo_choice(text: str, width: int, height: int, consensus: np.ndarray | None = None, vote: float = 1.0,
                 weights: SubjectWeights = WEIGHTS) -> tuple[Choice, np.ndarray, np.ndarray, list[str], np.ndarray]:
    """The subject rule on one photo's stored candidates: (``Choice``, boxes, scores, detector names, focus); with a
    ``consensus`` (the person's, or the data set's framing) its closeness is one more vote, ``vote`` x ``weights.person``."""
    own, boxes, scores, names, focus, evidence = _own_choice(text, int(width), int(height), weights)
    if consensus is None or not len(boxes):
        return own, boxes, scores, list(names), focus
    evidence = evidence + vote * weights.person * closeness(boxes, width, height, consensus)
    return choose(evidence, boxes), boxes, scores, list(names), focus


def doubtful(rows: pd.DataFrame, prior: np.ndarray | None, weights: SubjectWeights = WEIGHTS) -> np.ndarray:
    """True for each readable photo whose cues disagree about its subject (``subject.in_doubt``, against the data set's
    framing ``prior``): those get the detector's full look, and do not vote in their person's consensus."""
    size = rows[["width", "height"]].to_numpy(np.float64)
    usable = (rows["error"].fillna("").astype(str) == "").to_numpy()
    cand = rows["candidates"].fillna("").astype(str).to_numpy()
    out = np.zeros(len(rows), bool)
    for i in np.flatnonzero(usable):
        w, h = int(size[i, 0]), int(size[i, 1])
        ch, boxes, _, _, _ = photo_choice(cand[i], w, h, None, weights=weights)
        out[i] = in_doubt(ch, boxes, w, h, prior, weights)
    return out


def person_consensus(rows: pd.DataFrame, persons: Sequence[str], weights: SubjectWeights = WEIGHTS,
                     prior: np.ndarray | None = None) -> dict[str, tuple[np.ndarray, float]]:
    """Per person: (relative consensus box, how far a candidate may lie from it and still be the subject, in face
    widths). The box is the median of the faces each photo's own cues pick (``subject.consensus_box`` over picks
    scoring ``CONSENSUS_SCORE`` or more); the picks not in doubt (``subject.in_doubt`` against the data set's framing
    ``prior``) vote when there are enough of them, else all confident picks do. The distance is ``STEADY_CENTRE`` for
    a person framed steadily (``_reach``: their confident picks, by the median, within ``STEADY`` of the box), else
    ``AGREE_CENTRE``."""
    n = len(rows)
    size = rows[["width", "height"]].to_numpy(np.float64).clip(1)
    usable = (rows["error"].fillna("").astype(str) == "").to_numpy()
    cand = rows["candidates"].fillna("").astype(str).to_numpy()
    picks, scores, sure = np.full((n, 4), np.nan), np.full(n, np.nan), np.zeros(n, bool)
    for i in np.flatnonzero(usable):
        w, h = size[i]
        ch, boxes, sc, _, _ = photo_choice(cand[i], int(w), int(h), None, weights=weights)
        if ch.index is not None:
            picks[i] = boxes[ch.index] / np.array([w, h, w, h])
            scores[i], sure[i] = sc[ch.index], not in_doubt(ch, boxes, int(w), int(h), prior, weights)
    frame = pd.DataFrame({"person": np.asarray(persons, dtype=object), "row": np.arange(n)})
    out = {}
    for person, g in frame.groupby("person", sort=False):
        idx = g["row"].to_numpy()
        clear = idx[sure[idx]]
        box = consensus_box(picks[clear], scores[clear]) if len(clear) >= CONSENSUS_MIN else None
        if box is None:
            box = consensus_box(picks[idx], scores[idx])
        if box is not None:
            out[str(person)] = (box, _reach(picks[idx], scores[idx], box, size[idx[0], 0] / size[idx[0], 1]))
    return out


def _reach(picks: np.ndarray, scores: np.ndarray, box: np.ndarray, aspect: float) -> float:
    """How far from ``box`` a candidate may be the subject: ``STEADY_CENTRE`` when three or more of the person's
    confident picks (each photo's own choice, in doubt or not) lie, by their median, within ``STEADY`` face widths of
    it, else ``AGREE_CENTRE``."""
    ok = np.isfinite(picks).all(axis=1) & (np.nan_to_num(scores, nan=0.0) >= CONSENSUS_SCORE)
    if ok.sum() < 3:
        return AGREE_CENTRE
    return STEADY_CENTRE if float(np.median(disagreement(picks[ok], box, aspect)[0])) <= STEADY else AGREE_CENTRE


def decide_subjects(rows: pd.DataFrame, persons: Sequence[str], use_consensus: bool = True,
                    person_fallback: bool = True, prior: np.ndarray | None = None,
                    weights: SubjectWeights = WEIGHTS) -> pd.DataFrame:
    """The subject of each photo by the subject rule: a frame with the chosen box (``FACE_COLS``), ``score``,
    ``box_source`` (detected, person, or "" = not decided yet), ``detector``, the ``REJECTED_COLS`` box, the
    runner-up's box (``RUNNER_COLS``) and ``margin``.

    Each candidate's evidence is its own photo's cues plus one vote for agreeing with the person's consensus (or, for
    a photo without one, a weaker vote, ``PRIOR_WEIGHT``, for the data set's framing ``prior``); the photos in doubt
    have had the detector's full look before (``doubtful``, in the stage). When the person has a consensus and no candidate
    agrees with it (``subject.agrees``: the subject's own face was not found), or the winner is only a part of the
    consensus face (``subject.part_of``: a box on the mask's lower half), the photo gets the person box and the best
    candidate is kept as rejected; otherwise the winner stands even where it disagrees (outvoted).
    ``rows`` are pass-1 rows (``width``, ``height``, ``error``, ``candidates``, ``clear`` and the provisional
    pick in ``FACE_COLS`` / ``score``); ``use_consensus=False`` is the plain-folder case (a folder is not a person);
    ``person_fallback`` is kept for callers: photos without any candidate are left to the fallback (``fallback.assign_boxes``).
    """
    n = len(rows)
    persons = [str(p) for p in persons]
    consensus = person_consensus(rows, persons, weights, prior) if use_consensus else {}
    out = pd.DataFrame({c: np.full(n, np.nan) for c in FACE_COLS + REJECTED_COLS + RUNNER_COLS})
    out["score"] = np.nan
    out["margin"] = np.nan
    out["box_source"] = ""
    out["detector"] = ""
    usable = (rows["error"].fillna("").astype(str) == "").to_numpy()
    cand = rows["candidates"].fillna("").astype(str).to_numpy()
    size = rows[["width", "height"]].to_numpy(np.float64)
    face = np.full((n, 4), np.nan)
    rejected, runner, margin = np.full((n, 4), np.nan), np.full((n, 4), np.nan), np.full(n, np.nan)
    score, source, detector = np.full(n, np.nan), np.full(n, "", dtype=object), np.full(n, "", dtype=object)
    for i in np.flatnonzero(usable):
        w, h = size[i]
        c, reach = consensus.get(persons[i], (None, AGREE_CENTRE))
        ch, boxes, scores, names, _ = photo_choice(cand[i], int(w), int(h), c if c is not None else prior,
                                                   1.0 if c is not None else PRIOR_WEIGHT, weights)
        if ch.index is None:  # no face at all: the fallback (the person's median detected box, else the prior)
            continue
        rel = boxes / np.array([w, h, w, h])
        # the vote may be outvoted, unless the winner is only a part of the person's face (the face itself not found)
        if c is None or (agrees(rel, c, w / h, centre=reach).any() and not part_of(rel[ch.index], c)):
            face[i], score[i], source[i], detector[i] = boxes[ch.index], scores[ch.index], DETECTED, names[ch.index]
            if ch.runner is not None:
                runner[i], margin[i] = boxes[ch.runner], ch.margin
            continue
        # every candidate disagrees with the person's other photos, or the winner is a part of their face: their
        # consensus box, the winner kept as rejected
        rejected[i] = boxes[ch.index]
        face[i], source[i], detector[i] = c * np.array([w, h, w, h]), PERSON, "person consensus"
    out[FACE_COLS], out[REJECTED_COLS], out[RUNNER_COLS] = face, rejected, runner
    out["score"], out["margin"], out["box_source"], out["detector"] = score, margin, source, detector
    return out


def dataset_consensus(rows: pd.DataFrame) -> np.ndarray | None:
    """The data set's consensus box (relative) over every confident pick: a weak prior for single photos."""
    size = rows[["width", "height"]].to_numpy(np.float64).clip(1)
    rel = rows[FACE_COLS].to_numpy(np.float64) / np.concatenate([size, size], axis=1)
    return consensus_box(rel, rows["score"].to_numpy(np.float64))


def off_person(boxes: np.ndarray, sizes: np.ndarray, persons: Sequence[str], use_consensus: bool = True) -> np.ndarray:
    """True for each photo whose final face box disagrees with its person's median box (area off by more than 2x or
    centre off by more than half a face): what the contact sheet shows for review after every fallback."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2).clip(1)
    flag = np.zeros(len(boxes), bool)
    if not use_consensus:
        return flag
    rel = boxes / np.concatenate([sizes, sizes], axis=1)
    ok = np.isfinite(rel).all(axis=1)
    frame = pd.DataFrame({"person": np.asarray(persons, dtype=object), "row": np.arange(len(boxes))})
    for _, g in frame[ok].groupby("person", sort=False):
        idx = g["row"].to_numpy()
        if len(idx) < 2:
            continue
        median = np.median(rel[idx], axis=0)
        aspect = float(sizes[idx[0], 0] / sizes[idx[0], 1])
        flag[idx] = ~agrees(rel[idx], median, aspect, REVIEW_CENTRE, REVIEW_AREA)
    return flag

