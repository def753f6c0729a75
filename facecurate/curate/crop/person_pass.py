"""The second look at every photo's face, with what the person's other photos say: pure decisions on pass-1 rows.

After the first pass every readable photo has its quick candidates (``candidates``: JSON of
``[x1, y1, x2, y2, score, detector]``), a provisional pick (large and central) and whether the
detector called it clear. Here, per person, the consensus box of the confident picks decides:
the agreeing candidate wins, and when every candidate disagrees the person box is used (the
rejected box kept for review). People without a consensus (single photos: the eval layout, a plain
folder where a folder is not a person) keep the large-and-central rule, nudged by the data set's
consensus; photos the detector was unsure about are marked for its full detection (``needs_detect``).
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .cues import image_cues
from .fallback import DETECTED, PERSON
from .subject import (CONSENSUS_MIN, REVIEW_AREA, REVIEW_CENTRE, WEIGHTS, Choice, SubjectWeights, agrees, choose, closeness,
                      consensus_box, own_evidence, pick_with_consensus)

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
    get = lambda c, k: c[k] if len(c) > k and c[k] is not None else np.nan  # noqa: E731
    return (np.array([get(c, 6) for c in items], dtype=np.float64), np.array([get(c, 7) for c in items], dtype=np.float64))


def photo_choice(text: str, width: int, height: int, consensus: np.ndarray | None = None,
                 weights: SubjectWeights = WEIGHTS) -> tuple[Choice, np.ndarray, np.ndarray, list[str]]:
    """The subject rule on one photo's stored candidates: (``Choice``, boxes, scores, detector names); with the
    person's ``consensus`` its closeness is one more vote."""
    boxes, scores, names = parse_candidates(text)
    focus, below = parse_cues(text)
    evidence = own_evidence(boxes, scores, width, height, focus, below, weights)
    if consensus is not None and len(boxes):
        evidence = evidence + weights.person * closeness(boxes, width, height, consensus)
    return choose(evidence, boxes), boxes, scores, names


def person_consensus(rows: pd.DataFrame, persons: Sequence[str], weights: SubjectWeights = WEIGHTS) -> dict[str, np.ndarray]:
    """Relative consensus box per person: the median of the faces each photo's own cues pick (``subject.consensus_box``
    over picks scoring ``CONSENSUS_SCORE`` or more); the clear picks (margin >= ``weights.close``) vote when there are
    enough of them, else all confident picks do."""
    n = len(rows)
    size = rows[["width", "height"]].to_numpy(np.float64).clip(1)
    usable = (rows["error"].fillna("").astype(str) == "").to_numpy()
    cand = rows["candidates"].fillna("").astype(str).to_numpy()
    picks, scores, margins = np.full((n, 4), np.nan), np.full(n, np.nan), np.zeros(n)
    for i in np.flatnonzero(usable):
        w, h = size[i]
        ch, boxes, sc, _ = photo_choice(cand[i], int(w), int(h), None, weights)
        if ch.index is not None:
            picks[i] = boxes[ch.index] / np.array([w, h, w, h])
            scores[i], margins[i] = sc[ch.index], ch.margin
    frame = pd.DataFrame({"person": np.asarray(persons, dtype=object), "row": np.arange(n)})
    out = {}
    for person, g in frame.groupby("person", sort=False):
        idx = g["row"].to_numpy()
        clear = idx[margins[idx] >= weights.close]
        box = consensus_box(picks[clear], scores[clear]) if len(clear) >= CONSENSUS_MIN else None
        if box is None:
            box = consensus_box(picks[idx], scores[idx])
        if box is not None:
            out[str(person)] = box
    return out


def decide_subjects(rows: pd.DataFrame, persons: Sequence[str], use_consensus: bool = True,
                    person_fallback: bool = True, weights: SubjectWeights = WEIGHTS) -> pd.DataFrame:
    """The subject of each photo by the subject rule: a frame with the chosen box (``FACE_COLS``), ``score``,
    ``box_source`` (detected, person, or "" = not decided yet), ``detector``, the ``REJECTED_COLS`` box, the
    runner-up's box (``RUNNER_COLS``) and ``margin``, and ``needs_detect`` (the detector's full look is still owed).

    Each candidate's evidence is its own photo's cues plus, when the person has a consensus, one vote for agreeing
    with it (``subject``). Photos where the detector was not clear get the full look only when the cues disagree
    too: no consensus and a close call, a lone unsure face or no candidate at all. When the person has a consensus and no candidate
    agrees with it (``subject.agrees``: the subject's own face was not found), the photo gets the person box and the
    best candidate is kept as rejected; when one does, the winner stands even where it disagrees (outvoted).
    ``rows`` are pass-1 rows (``width``, ``height``, ``error``, ``candidates``, ``clear`` and the provisional
    pick in ``FACE_COLS`` / ``score``); ``use_consensus=False`` is the plain-folder case (a folder is not a person);
    ``person_fallback=False`` leaves photos without any candidate to the data-set prior.
    """
    n = len(rows)
    persons = [str(p) for p in persons]
    consensus = person_consensus(rows, persons, weights) if use_consensus else {}
    out = pd.DataFrame({c: np.full(n, np.nan) for c in FACE_COLS + REJECTED_COLS + RUNNER_COLS})
    out["score"] = np.nan
    out["margin"] = np.nan
    out["box_source"] = ""
    out["detector"] = ""
    out["needs_detect"] = False
    usable = (rows["error"].fillna("").astype(str) == "").to_numpy()
    clear = rows["clear"].fillna(False).astype(bool).to_numpy()
    cand = rows["candidates"].fillna("").astype(str).to_numpy()
    size = rows[["width", "height"]].to_numpy(np.float64)
    face = np.full((n, 4), np.nan)
    rejected, runner, margin = np.full((n, 4), np.nan), np.full((n, 4), np.nan), np.full(n, np.nan)
    score, source, detector, needs = np.full(n, np.nan), np.full(n, "", dtype=object), np.full(n, "", dtype=object), np.zeros(n, bool)
    for i in np.flatnonzero(usable):
        w, h = size[i]
        c = consensus.get(persons[i])
        ch, boxes, scores, names = photo_choice(cand[i], int(w), int(h), c, weights)
        if c is None and (ch.index is None or (not clear[i] and (ch.close or ch.runner is None))):
            needs[i] = True  # nobody else has a say and the cues do not settle it: the detector's full look
            continue
        if ch.index is None:
            if c is None or not person_fallback:
                continue
        elif c is None or agrees(boxes / np.array([w, h, w, h]), c, w / h).any():  # the vote may be outvoted
            face[i], score[i], source[i], detector[i] = boxes[ch.index], scores[ch.index], DETECTED, names[ch.index]
            if ch.runner is not None:
                runner[i], margin[i] = boxes[ch.runner], ch.margin
            continue
        else:
            rejected[i] = boxes[ch.index]
        # every candidate disagrees with the person's other photos (or there is none): their box
        face[i], source[i], detector[i] = c * np.array([w, h, w, h]), PERSON, "person consensus"
    out[FACE_COLS], out[REJECTED_COLS], out[RUNNER_COLS] = face, rejected, runner
    out["score"], out["margin"], out["box_source"], out["detector"], out["needs_detect"] = score, margin, source, detector, needs
    return out


def dataset_consensus(rows: pd.DataFrame) -> np.ndarray | None:
    """The data set's consensus box (relative) over every confident pick: a weak prior for single photos."""
    size = rows[["width", "height"]].to_numpy(np.float64).clip(1)
    rel = rows[FACE_COLS].to_numpy(np.float64) / np.concatenate([size, size], axis=1)
    return consensus_box(rel, rows["score"].to_numpy(np.float64))


def pick_single(faces: Sequence, image: np.ndarray, prior: np.ndarray | None,
                weights: SubjectWeights = WEIGHTS) -> tuple[int | None, Choice, str]:
    """The subject among a single photo's faces (the detector's full look) by the subject rule, the data set's
    consensus ``prior`` a weak vote (``PRIOR_WEIGHT`` of the person's): (index or None, ``Choice``, candidates JSON)."""
    h, w = image.shape[:2]
    boxes = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
    focus, below = image_cues(image, boxes)
    evidence = own_evidence(boxes, [f.score for f in faces], w, h, focus, below, weights)
    if prior is not None and len(boxes):
        evidence = evidence + PRIOR_WEIGHT * weights.person * closeness(boxes, w, h, prior)
    ch = choose(evidence, boxes)
    return ch.index, ch, candidates_json(faces, focus, below)


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

