"""Pick the face a person photo is about when a detector finds several: the subject rule, cue by cue, never simply
the first face.

A detector's first face is its most confident one, which can be a sharp bystander or a poster on the wall. Today's
single-photo rule, ``score * sqrt(relative area) * exp(-d^2 / (2 sigma^2))`` with ``d`` the face centre's distance
from the photo centre (``pick_subject``), is what `synth` uses; `crop` adds the cues that tell a subject from a
bystander (``own_evidence``: focus, neck and shoulders, size, centre, the detectors' score) and the person's other
photos as one vote (``closeness`` to their consensus box); ``choose`` keeps the runner-up and the margin, and
``in_doubt`` says when the cues disagree. Pure functions.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def subject_scores(boxes: np.ndarray, scores: Sequence[float], width: int, height: int,
                   sigma: float = 0.3) -> np.ndarray:
    """Rank value of each face (k x 4 boxes x1, y1, x2, y2 in pixels); higher is more likely the subject."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros(0)
    w = np.clip(boxes[:, 2] - boxes[:, 0], 0, None)
    h = np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    area = np.sqrt(w * h / float(width * height))
    dx = ((boxes[:, 0] + boxes[:, 2]) / 2 - width / 2) / width
    dy = ((boxes[:, 1] + boxes[:, 3]) / 2 - height / 2) / height
    central = np.exp(-(dx ** 2 + dy ** 2) / (2 * sigma ** 2))
    conf = np.clip(np.asarray(scores, dtype=np.float64).reshape(-1), 0, 1)
    return conf * area * central


def pick_subject(boxes: np.ndarray, scores: Sequence[float], width: int, height: int, sigma: float = 0.3) -> int | None:
    """Index of the subject's face among ``boxes`` (None when there is none); ties go to the earlier face."""
    ranks = subject_scores(boxes, scores, width, height, sigma)
    if len(ranks) == 0:
        return None
    return int(np.argmax(ranks))


# ----------------------------------------------------------------------------- the person's consensus
# A person's photos show the same framing: the consensus box (median relative box of their confident
# picks) tells the subject's face from a passer-by, a poster or a spurious box on the mask.

AGREE_CENTRE = 1.0    # a candidate's centre within one consensus face width of the consensus centre ...
AGREE_AREA = 2.5      # ... and its area within a factor 2.5 of the consensus area: it may be the subject
STEADY = 0.2          # a person whose photos' own confident picks lie, by their median, within 1/5 face width of the consensus
STEADY_CENTRE = 0.75  # ... is framed steadily: for them a candidate may be the subject within 3/4 of a face width
# (on both crowded bench sets a subject's own box sits within 0.62 face widths of its person's consensus, by the
# median within 0.11 for 399 of 400 people, while 98 % of the bystanders within one face width sit beyond 0.5:
# bench/subject_distances.py. At one face width a lone bystander stood beside a subject no detector found. A person
# whose own photos move more keeps one face width: their face may be that far off.)
REVIEW_CENTRE = 0.5   # a final crop off by half a face ...
REVIEW_AREA = 2.0     # ... or by a factor 2 in area from the person's other photos is shown for review
CONSENSUS_SCORE = 0.6  # picks this confident (or more) vote for the consensus
CONSENSUS_MIN = 2      # a consensus needs this many votes


def relative(box: Sequence[float], width: float, height: float) -> np.ndarray:
    """A pixel box x1, y1, x2, y2 in 0..1 photo units."""
    return np.asarray(box, dtype=np.float64).reshape(4) / np.array([width, height, width, height], dtype=np.float64)


def consensus_box(rel_boxes: np.ndarray, scores: Sequence[float], min_score: float = CONSENSUS_SCORE,
                  min_count: int = CONSENSUS_MIN) -> np.ndarray | None:
    """Median relative box (4,) of the boxes scoring ``min_score`` or more; None with fewer than ``min_count`` of them."""
    rel_boxes = np.asarray(rel_boxes, dtype=np.float64).reshape(-1, 4)
    ok = np.isfinite(rel_boxes).all(axis=1) & (np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0) >= min_score)
    if ok.sum() < min_count:
        return None
    return np.median(rel_boxes[ok], axis=0)


def disagreement(rel_boxes: np.ndarray, consensus: np.ndarray, aspect: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(centre distance in consensus face widths, |log2 area ratio|) of each relative box against ``consensus``.

    ``aspect`` = photo width / height turns relative units into one pixel scale.
    """
    b = np.asarray(rel_boxes, dtype=np.float64).reshape(-1, 4) * np.array([aspect, 1, aspect, 1])
    c = np.asarray(consensus, dtype=np.float64).reshape(4) * np.array([aspect, 1, aspect, 1])
    cw = max(c[2] - c[0], 1e-9)
    d = np.hypot((b[:, 0] + b[:, 2] - c[0] - c[2]) / 2, (b[:, 1] + b[:, 3] - c[1] - c[3]) / 2) / cw
    area = np.clip(b[:, 2] - b[:, 0], 1e-9, None) * np.clip(b[:, 3] - b[:, 1], 1e-9, None)
    ratio = np.abs(np.log2(area / max((c[2] - c[0]) * (c[3] - c[1]), 1e-12)))
    return d, ratio


def agrees(rel_boxes: np.ndarray, consensus: np.ndarray, aspect: float = 1.0, centre: float = AGREE_CENTRE,
           area: float = AGREE_AREA) -> np.ndarray:
    """True for each box whose centre and area agree with the consensus (defaults: may be the subject;
    ``REVIEW_CENTRE`` / ``REVIEW_AREA``: close enough not to need a look)."""
    d, ratio = disagreement(rel_boxes, consensus, aspect)
    return (d <= centre) & (ratio <= np.log2(area))


PART_INSIDE = 0.8     # a box this much inside the consensus box, and smaller than it by more than AGREE_AREA, is a part of it


def part_of(rel_box: np.ndarray, consensus: np.ndarray, inside: float = PART_INSIDE, area: float = AGREE_AREA) -> bool:
    """Is this relative box a part of the person's face rather than the face: ``inside`` or more of it within the
    consensus box while its area is under 1 / ``area`` of the consensus's (e.g. a detector's box on the lower half of a
    masked face, when the whole face was not found)."""
    b = np.asarray(rel_box, dtype=np.float64).reshape(1, 4)
    c = np.asarray(consensus, dtype=np.float64).reshape(4)
    box_area = (b[0, 2] - b[0, 0]) * (b[0, 3] - b[0, 1])
    return bool(inside_share(b, c)[0] >= inside and box_area * area < (c[2] - c[0]) * (c[3] - c[1]))


# ----------------------------------------------------------------------------- the subject rule: cues, one vote each
# On a crowded backdrop position alone is not enough: a bystander may sit as central as the subject and be
# detected more confidently. Each candidate's evidence is a sum of log-scale cues, so no single cue decides:
#   focus   log sharpness relative to the photo's (a face behind the subject is softer; ``cues.image_cues``)
#   below   log sharpness of the neck and shoulders band below it (the subject's own body is in focus)
#   size    log sqrt(relative area), as today's rule
#   centre  -d^2 / (2 sigma^2), as today's rule
#   score   log of the detectors' fused score (agreement of both BlazeFace models raises it)
#   person  closeness to the person's consensus (one vote, 0..``person``: it can be outvoted)
# With focus = below = person = 0 the ranking is today's ``pick_subject``.


@dataclass(frozen=True)
class SubjectWeights:
    """How much each cue counts (log units). Set on the crowded bench set (BENCHMARKS.md, crop, crowded backdrops)."""

    focus: float = 1.0
    below: float = 1.0
    size: float = 2.0
    centre: float = 2.0
    score: float = 1.0
    person: float = 1.5
    sigma: float = 0.3
    close: float = 1.0  # a choice whose margin over the runner-up is below this is a close call (contact sheet, manifest)
    framing: float = 0.5  # a winner this many face widths or more off the data set's framing is in doubt (the full look)


WEIGHTS = SubjectWeights()
CUE_CLIP = (0.05, 20.0)  # sharpness ratios are clipped here before the log: one odd box cannot swamp the rest


@dataclass(frozen=True)
class Choice:
    """The subject among a photo's candidates: ``index`` (None: no candidate), the ``runner`` up (None: alone),
    ``margin`` of evidence between them (inf when alone) and each candidate's ``evidence``."""

    index: int | None
    runner: int | None
    margin: float
    evidence: np.ndarray

    @property
    def close(self) -> bool:
        return self.runner is not None and self.margin < WEIGHTS.close


def _log_ratio(values, n: int) -> np.ndarray:
    v = np.asarray(values if values is not None else np.full(n, np.nan), dtype=np.float64).reshape(-1)
    return np.where(np.isfinite(v), np.log(np.clip(v, *CUE_CLIP)), 0.0)


def own_evidence(boxes: np.ndarray, scores: Sequence[float], width: int, height: int, focus=None, below=None,
                 weights: SubjectWeights = WEIGHTS) -> np.ndarray:
    """Each candidate's evidence from its own photo (focus, neck and shoulders, size, centre, detector score)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(boxes)
    if n == 0:
        return np.zeros(0)
    w = np.clip(boxes[:, 2] - boxes[:, 0], 1e-6, None)
    h = np.clip(boxes[:, 3] - boxes[:, 1], 1e-6, None)
    size = 0.5 * np.log(w * h / float(width * height))
    dx = ((boxes[:, 0] + boxes[:, 2]) / 2 - width / 2) / width
    dy = ((boxes[:, 1] + boxes[:, 3]) / 2 - height / 2) / height
    centre = -(dx ** 2 + dy ** 2) / (2 * weights.sigma ** 2)
    score = np.log(np.clip(np.asarray(scores, dtype=np.float64).reshape(-1), 1e-3, 1))
    below_cue = np.clip(_log_ratio(below, n), -1.5, 1.5)  # a weak cue: bounded
    return (weights.focus * _log_ratio(focus, n) + weights.below * below_cue + weights.size * size
            + weights.centre * centre + weights.score * score)


def closeness(boxes: np.ndarray, width: int, height: int, consensus: np.ndarray) -> np.ndarray:
    """0..1 per candidate: 1 on the consensus box, falling with centre distance (face widths) and area ratio."""
    rel = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / np.array([width, height, width, height], dtype=np.float64)
    d, ratio = disagreement(rel, consensus, width / height)
    return np.exp(-(d / AGREE_CENTRE) ** 2 - (ratio / np.log2(AGREE_AREA)) ** 2)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box (4,) with each of ``boxes`` (k x 4)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    return inter / np.maximum(area(np.asarray(box, dtype=np.float64)) + area(boxes) - inter, 1e-9)


def inside_share(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The share of each of ``boxes`` (k x 4) that lies inside ``box`` (4,): 1 for a box wholly inside it."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    inter = (np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
             * np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None))
    return inter / np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)


def choose(evidence: np.ndarray, boxes: np.ndarray | None = None, same: float = 0.3) -> Choice:
    """The best candidate by ``evidence`` and its runner-up: the best other face (a box overlapping the winner by
    IoU ``same`` or more, or lying half inside it, is the same face seen twice or a part of it, not a rival)."""
    evidence = np.asarray(evidence, dtype=np.float64).reshape(-1)
    if not len(evidence):
        return Choice(None, None, float("inf"), evidence)
    order = np.argsort(-evidence, kind="stable")
    best = int(order[0])
    rivals = order[1:]
    if boxes is not None and len(rivals):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        b = boxes[best]
        # half inside the winner: a part of it (a mask)
        rivals = rivals[(iou(b, boxes[rivals]) < same) & (inside_share(boxes[rivals], b) < 0.5)]
    if not len(rivals):
        return Choice(best, None, float("inf"), evidence)
    runner = int(rivals[0])
    return Choice(best, runner, float(evidence[best] - evidence[runner]), evidence)


def in_doubt(choice: Choice, boxes: np.ndarray, width: int, height: int, prior: np.ndarray | None,
             weights: SubjectWeights = WEIGHTS) -> bool:
    """Do the cues disagree about this photo's subject? A close call, a winner far from the data set's framing
    (``prior``, relative box) or no candidate at all: the photo gets the detector's full look, and its pick does not
    vote in its person's consensus (a subject the quick look missed must not let a bystander lead). A soft winner
    alone is not doubt: on the crowded set it caught 1 missed subject for 25 right picks, and painted walls with
    sensor noise make single faces look soft."""
    if choice.index is None:
        return True
    if choice.close:
        return True
    if prior is None:
        return False
    d, _ = disagreement(np.asarray(boxes, dtype=np.float64)[choice.index] / np.array([width, height, width, height]), prior,
                        width / height)
    return bool(d[0] > weights.framing)
