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

from .fallback import DETECTED, PERSON
from .subject import REVIEW_AREA, REVIEW_CENTRE, agrees, consensus_box, pick_with_consensus

FACE_COLS = ["face_x1", "face_y1", "face_x2", "face_y2"]
REJECTED_COLS = ["rejected_x1", "rejected_y1", "rejected_x2", "rejected_y2"]
PRIOR_WEIGHT = 0.3  # how much the data set's consensus nudges the pick on single photos


def candidates_json(faces: Sequence) -> str:
    """A photo's candidate faces (``detect.Face``) as the JSON text stored in the pass-1 rows."""
    return json.dumps([[float(v) for v in f.box] + [float(f.score), f.source] for f in faces])


def parse_candidates(text: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(boxes k x 4, scores k, detector names) from ``candidates_json`` text ("" or "[]": none)."""
    items = json.loads(text) if text else []
    boxes = np.array([c[:4] for c in items], dtype=np.float64).reshape(-1, 4)
    return boxes, np.array([c[4] for c in items], dtype=np.float64), [str(c[5]) for c in items]


def person_consensus(rows: pd.DataFrame, persons: Sequence[str]) -> dict[str, np.ndarray]:
    """Relative consensus box per person with enough confident provisional picks (``subject.consensus_box``)."""
    size = rows[["width", "height"]].to_numpy(np.float64)
    picks = rows[FACE_COLS].to_numpy(np.float64) / np.concatenate([size, size], axis=1).clip(1)
    frame = pd.DataFrame(picks, columns=FACE_COLS).assign(person=np.asarray(persons, dtype=object),
                                                          score=rows["score"].to_numpy(np.float64))
    out = {}
    for person, g in frame.groupby("person", sort=False):
        box = consensus_box(g[FACE_COLS].to_numpy(), g["score"].to_numpy())
        if box is not None:
            out[str(person)] = box
    return out


def decide_subjects(rows: pd.DataFrame, persons: Sequence[str], use_consensus: bool = True,
                    person_fallback: bool = True) -> pd.DataFrame:
    """The subject of each photo given its person's consensus: a frame with the chosen box (``FACE_COLS``), ``score``,
    ``box_source`` (detected, person, or "" = not decided yet), ``detector``, the ``REJECTED_COLS`` box and
    ``needs_detect`` (the detector's full look is still owed: unsure photos of people without a consensus).

    ``rows`` are pass-1 rows (``width``, ``height``, ``error``, ``candidates``, ``clear`` and the provisional
    pick in ``FACE_COLS`` / ``score``); ``use_consensus=False`` is the plain-folder case (a folder is not a person);
    ``person_fallback=False`` leaves photos without any candidate to the data-set prior.
    """
    n = len(rows)
    persons = [str(p) for p in persons]
    consensus = person_consensus(rows, persons) if use_consensus else {}
    out = pd.DataFrame({c: np.full(n, np.nan) for c in FACE_COLS + REJECTED_COLS})
    out["score"] = np.nan
    out["box_source"] = ""
    out["detector"] = ""
    out["needs_detect"] = False
    usable = (rows["error"].fillna("").astype(str) == "").to_numpy()
    clear = rows["clear"].fillna(False).astype(bool).to_numpy()
    cand = rows["candidates"].fillna("").astype(str).to_numpy()
    size = rows[["width", "height"]].to_numpy(np.float64)
    provisional = rows[FACE_COLS].to_numpy(np.float64)
    for i in np.flatnonzero(usable):
        w, h = size[i]
        boxes, scores, names = parse_candidates(cand[i])
        c = consensus.get(persons[i])
        if c is None:
            if clear[i] and len(boxes):  # the detector is sure and nobody else has a say
                k = int(np.argmax(scores))
                out.loc[i, FACE_COLS], out.loc[i, ["score", "box_source", "detector"]] = boxes[k], [scores[k], DETECTED, names[k]]
            else:
                out.loc[i, "needs_detect"] = True
            continue
        if not len(boxes) and not person_fallback:
            continue
        k, _ = pick_with_consensus(boxes, scores, int(w), int(h), c)
        if k is not None:
            out.loc[i, FACE_COLS], out.loc[i, ["score", "box_source", "detector"]] = boxes[k], [scores[k], DETECTED, names[k]]
        else:  # every candidate disagrees with the person's other photos: their box, the rejected one kept
            out.loc[i, FACE_COLS] = c * np.array([w, h, w, h])
            out.loc[i, ["box_source", "detector"]] = [PERSON, "person consensus"]
            if np.isfinite(provisional[i]).all():
                out.loc[i, REJECTED_COLS] = provisional[i]
    return out


def dataset_consensus(rows: pd.DataFrame) -> np.ndarray | None:
    """The data set's consensus box (relative) over every confident pick: a weak prior for single photos."""
    size = rows[["width", "height"]].to_numpy(np.float64).clip(1)
    rel = rows[FACE_COLS].to_numpy(np.float64) / np.concatenate([size, size], axis=1)
    return consensus_box(rel, rows["score"].to_numpy(np.float64))


def pick_single(faces: Sequence, width: int, height: int, prior: np.ndarray | None):
    """The subject among a single photo's faces: large and central, nudged towards the data set's consensus ``prior``."""
    if not faces:
        return None
    boxes = np.array([f.box for f in faces], dtype=np.float64)
    k, _ = pick_with_consensus(boxes, [f.score for f in faces], width, height, prior,
                               prior_weight=PRIOR_WEIGHT if prior is not None else 0.0)
    return faces[k] if k is not None else None


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

