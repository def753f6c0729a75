"""Face detectors behind one interface: MediaPipe BlazeFace (CPU, fast), batched MTCNN, and their fusion.

Every detector takes RGB uint8 photos and returns, per photo, ``Face`` records (tight box in input
pixels, moved onto one box convention whatever the source; score 0..1; four keypoints) sorted by score;
``make_detector`` builds one by name (see .notes/README-detect.md for the measured trade-offs).
"""
from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch

from curate.errors import InputError
from curate.models import model_path

DETECTOR_NAMES = ("auto", "mtcnn", "mediapipe", "mp-full", "mp-short", "fused", "adaptive", "mtcnn-first")
RECALL_THRESHOLDS = (0.5, 0.5, 0.5)  # MTCNN stage thresholds inside the combinations (facenet: 0.6, 0.7, 0.7)

# Per-source box correction (dx1, dy1, dx2, dy2 as fractions of the box's width/height) mapping every
# detector's box onto one convention: hand-annotated tight face boxes (median offsets to the facemask-voc
# annotations over ~300 matched faces, stable within 0.02 between halves of the set; see BENCH-detect).
BOX_CALIBRATION: dict[str, tuple[float, float, float, float]] = {
    "mp-full": (0.03, 0.08, 0.01, 0.15),
    "mp-short": (0.04, 0.055, -0.025, 0.08),
    "mtcnn": (-0.005, 0.17, 0.05, 0.12),
}


@dataclass(frozen=True)
class Face:
    """One detected face: ``box`` (x1, y1, x2, y2) in input-image pixels, ``score`` 0..1, ``keypoints``
    (4, 2) float32 x,y of the eye on the image's left, the eye on the image's right, nose tip, mouth centre."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray = field(compare=False, repr=False)
    source: str = ""

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


# ----------------------------------------------------------------------------- pure helpers


def default_min_face(height: int, width: int, fraction: float = 0.1, floor: int = 20) -> int:
    """Smallest face (px) searched when ``min_face`` is None: ``fraction`` of the shorter side, at least ``floor``.

    For a 384 x 512 portrait that is 38 px, far below the subject's face and 2-3x cheaper than MTCNN's 20.
    """
    return int(max(floor, round(min(height, width) * fraction)))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a) x len(b)) of x1,y1,x2,y2 boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def calibrate_box(box: Sequence[float], source: str) -> tuple[float, float, float, float]:
    """``box`` moved onto the common tight-face convention with ``BOX_CALIBRATION[source]`` (unchanged if unknown)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    c = BOX_CALIBRATION.get(source)
    if c is None:
        return x1, y1, x2, y2
    w, h = x2 - x1, y2 - y1
    return x1 + c[0] * w, y1 + c[1] * h, x2 + c[2] * w, y2 + c[3] * h


def make_face(box: Sequence[float], score: float, keypoints: np.ndarray, source: str, height: int, width: int,
              calibrate: bool = True) -> Face:
    """A ``Face`` with the box calibrated (``calibrate_box``), box and keypoints clamped to the image, and the
    two eyes ordered left-to-right in the image."""
    x1, y1, x2, y2 = calibrate_box(box, source) if calibrate else tuple(float(v) for v in box)
    x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
    y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
    kp = np.asarray(keypoints, dtype=np.float32).reshape(4, 2).copy()
    if kp[0, 0] > kp[1, 0]:
        kp[[0, 1]] = kp[[1, 0]]
    kp[:, 0] = np.clip(kp[:, 0], 0, width)
    kp[:, 1] = np.clip(kp[:, 1], 0, height)
    return Face((x1, y1, x2, y2), float(min(max(score, 0.0), 1.0)), kp, source)


def fuse_faces(groups: Sequence[Sequence[Face]], iou: float = 0.4) -> list[Face]:
    """Fuse faces found by several detectors in one photo (weighted box fusion).

    Faces overlapping by ``iou`` or more form one cluster; its box and keypoints are the score-weighted
    mean, its score ``1 - prod(1 - s)`` over detectors (agreement raises confidence).
    """
    faces = sorted((f for g in groups for f in g), key=lambda f: -f.score)
    clusters: list[list[Face]] = []
    for f in faces:
        best, best_iou = None, iou
        for c in clusters:
            o = float(box_iou(np.array([f.box]), np.array([c[0].box]))[0, 0])
            if o >= best_iou:
                best, best_iou = c, o
        if best is None:
            clusters.append([f])
        else:
            best.append(f)
    out = []
    for c in clusters:
        w = np.array([f.score for f in c], dtype=np.float64) + 1e-6
        box = tuple(float(v) for v in (np.array([f.box for f in c]) * w[:, None]).sum(0) / w.sum())
        kp = (np.stack([f.keypoints for f in c]) * w[:, None, None]).sum(0) / w.sum()
        best_by_source: dict[str, float] = {}
        for f in c:
            best_by_source[f.source] = max(best_by_source.get(f.source, 0.0), f.score)
        score = 1.0 - float(np.prod([1.0 - s for s in best_by_source.values()]))
        out.append(Face(box, score, kp.astype(np.float32), "+".join(sorted(best_by_source))))
    return sorted(out, key=lambda f: -f.score)


def nms_faces(faces: Sequence[Face], iou: float = 0.3) -> list[Face]:
    """Greedy non-maximum suppression on ``Face`` records, highest score kept."""
    kept: list[Face] = []
    for f in sorted(faces, key=lambda f: -f.score):
        if not kept or box_iou(np.array([f.box]), np.array([k.box for k in kept])).max() < iou:
            kept.append(f)
    return kept


def _check_images(images: Sequence[np.ndarray]) -> None:
    for i, im in enumerate(images):
        if not (isinstance(im, np.ndarray) and im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3):
            shape = getattr(im, "shape", None)
            raise InputError(f"image {i}: expected an H x W x 3 uint8 RGB array, got {type(im).__name__} {shape}")


# ----------------------------------------------------------------------------- interface


class Detector(ABC):
    """A face detector: ``detect(images)`` -> per image a list of ``Face`` sorted by score; a context manager."""

    name: str = "detector"

    @abstractmethod
    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces in each RGB uint8 H x W x 3 image, highest score first."""

    def close(self) -> None:
        """Release native resources (MediaPipe graphs); idempotent."""

    def __enter__(self) -> "Detector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------- MediaPipe BlazeFace

MP_MODELS = {"short": "face_detection_short_range", "full": "face_detection_full_range_sparse"}
MIN_SIDE = 16  # photos (and tiles) with a shorter side under this many pixels hold no detectable face


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence native (C++) writes to fd 2 while a TFLite graph is built (it prints dozens of warnings)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class MediaPipeDetector(Detector):
    """MediaPipe BlazeFace through the Tasks API (CPU): "short" (128 px input, faces filling much of the photo)
    or "full" (192 px, full-range sparse, smaller faces). ``tile``: also run on the four overlapping corner
    tiles (60% of each side, 5x the cost) so that small faces fill more of the model's input; ``min_score``
    and ``nms_iou`` go to the Tasks API; ``calibrate`` maps boxes onto the common convention."""

    def __init__(self, model: str = "full", min_score: float = 0.3, nms_iou: float = 0.3, tile: bool = False,
                 calibrate: bool = True) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        if model not in MP_MODELS:
            raise InputError(f"mediapipe model {model!r}: expected one of {sorted(MP_MODELS)}")
        self.model, self.min_score, self.nms_iou, self.tile, self.calibrate = model, min_score, nms_iou, tile, calibrate
        self.name = f"mp-{model}"
        self.source = self.name
        self._options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(model_path(MP_MODELS[model]))),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=min_score,
            min_suppression_threshold=nms_iou,
        )
        self._task = None
        self._open()

    def _open(self) -> None:
        from mediapipe.tasks.python import vision

        with _quiet_native_stderr():
            self._task = vision.FaceDetector.create_from_options(self._options)

    def _run(self, image: np.ndarray, x0: int = 0, y0: int = 0, full_h: int = 0, full_w: int = 0) -> list[Face]:
        import mediapipe as mp

        h, w = image.shape[:2]
        full_h, full_w = full_h or h, full_w or w
        if min(h, w) < MIN_SIDE:
            return []
        if self._task is None:
            self._open()
        try:
            result = self._task.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
        except RuntimeError:  # a failed graph stays failed: rebuild it for the next photo, report no face here
            self.close()
            return []
        faces = []
        for d in result.detections:
            bb = d.bounding_box
            box = (x0 + bb.origin_x, y0 + bb.origin_y, x0 + bb.origin_x + bb.width, y0 + bb.origin_y + bb.height)
            kps = d.keypoints or []
            if len(kps) >= 4:
                kp = np.array([[x0 + k.x * w, y0 + k.y * h] for k in kps[:4]], dtype=np.float32)
            else:  # no keypoints: place them at typical positions inside the box
                bx, by, bw, bh = box[0], box[1], box[2] - box[0], box[3] - box[1]
                kp = np.array([[bx + 0.3 * bw, by + 0.35 * bh], [bx + 0.7 * bw, by + 0.35 * bh],
                               [bx + 0.5 * bw, by + 0.55 * bh], [bx + 0.5 * bw, by + 0.75 * bh]], dtype=np.float32)
            score = d.categories[0].score if d.categories else 0.0
            faces.append(make_face(box, score, kp, self.source, full_h, full_w, self.calibrate))
        return faces

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        _check_images(images)
        out = []
        for im in images:
            faces = self._run(im)
            h, w = im.shape[:2]
            if self.tile and min(h, w) >= 2 * MIN_SIDE:
                th, tw = int(h * 0.6), int(w * 0.6)
                for y0 in (0, h - th):
                    for x0 in (0, w - tw):
                        faces += self._run(im[y0:y0 + th, x0:x0 + tw], x0, y0, h, w)
                faces = nms_faces(faces, self.nms_iou)
            out.append(sorted(faces, key=lambda f: -f.score))
        return out

    def close(self) -> None:
        task, self._task = getattr(self, "_task", None), None
        if task is not None:
            with _quiet_native_stderr(), contextlib.suppress(RuntimeError):
                task.close()


# ----------------------------------------------------------------------------- MTCNN, batched


def pyramid_scales(height: int, width: int, min_face: float, factor: float = 0.709) -> list[float]:
    """MTCNN image-pyramid scales: the first maps ``min_face`` px to PNet's 12 px cell, down until the
    shorter side falls under 12 px."""
    m = 12.0 / min_face
    minl = min(height, width) * m
    scales = []
    while minl >= 12:
        scales.append(m)
        m *= factor
        minl *= factor
    return scales


class MTCNNDetector(Detector):
    """facenet-pytorch's MTCNN networks (weights shipped in the package) in a batched pipeline.

    Photos of one size run together as one tensor; the pyramid starts at ``min_face`` (None: 10% of the
    shorter side, >= 20 px); stages 2 and 3 crop every candidate of every photo at once with
    ``torchvision.ops.roi_align`` instead of facenet's per-box loop. CUDA or CPU (``device``)."""

    def __init__(
        self,
        device: str | torch.device | None = None,
        min_face: int | None = None,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        batch_size: int | None = None,
        calibrate: bool = True,
        sampling: int = 2,
    ) -> None:
        from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.min_face, self.thresholds, self.factor, self.calibrate = min_face, thresholds, factor, calibrate
        self.sampling = sampling  # roi_align samples per bin side for the stage 2-3 crops (-1: adaptive, exact area)
        self.batch_size = batch_size or (64 if self.device.type == "cuda" else 8)
        self.name = "mtcnn"
        # channels-last: mkldnn convolutions and max-pooling run several times faster on the CPU
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.pnet, self.rnet, self.onet = (net().to(self.device, memory_format=self.memory_format).eval()
                                           for net in (PNet, RNet, ONet))

    def _pyramid_level(self, batch_hwc: torch.Tensor, imgs: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """One pyramid level, normalised: cv2 INTER_AREA on the CPU (~2x torch's area mode), torch on CUDA."""
        if self.device.type == "cpu":
            import cv2

            small = np.stack([cv2.resize(im, (size[1], size[0]), interpolation=cv2.INTER_AREA) for im in batch_hwc.numpy()])
            return (torch.from_numpy(small).permute(0, 3, 1, 2).float() - 127.5) * 0.0078125  # NHWC memory = channels-last
        return torch.nn.functional.interpolate(imgs, size=size, mode="area")

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        _check_images(images)
        out: list[list[Face]] = [[] for _ in images]
        by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, im in enumerate(images):
            by_size[im.shape[:2]].append(i)
        for (h, w), idx in by_size.items():
            for s in range(0, len(idx), self.batch_size):
                chunk = idx[s:s + self.batch_size]
                batch = torch.from_numpy(np.stack([images[i] for i in chunk]))
                for i, faces in zip(chunk, self._detect_batch(batch)):
                    out[i] = faces
        return out

    @torch.inference_mode()
    def _detect_batch(self, batch_hwc: torch.Tensor) -> list[list[Face]]:
        from torchvision.ops import batched_nms, roi_align

        dev = self.device
        n, h, w = batch_hwc.shape[:3]
        imgs = batch_hwc.to(dev).permute(0, 3, 1, 2).float()
        imgs = (imgs - 127.5) * 0.0078125  # normalise once; roi_align is linear so crops match
        min_face = self.min_face or default_min_face(h, w)
        t1, t2, t3 = self.thresholds

        # stage 1: PNet over the pyramid, all photos at once
        boxes_l, inds_l = [], []
        for scale in pyramid_scales(h, w, min_face, self.factor):
            sh, sw = int(h * scale + 1), int(w * scale + 1)
            reg, probs = self.pnet(self._pyramid_level(batch_hwc, imgs, (sh, sw)))
            prob = probs[:, 1]
            mask = prob >= t1
            if not mask.any():
                continue
            nz = mask.nonzero()
            b_i, yy, xx = nz[:, 0], nz[:, 1].float(), nz[:, 2].float()
            score = prob[mask]
            r = reg.permute(0, 2, 3, 1)[mask]
            q1x, q1y = ((2 * xx + 1) / scale).floor(), ((2 * yy + 1) / scale).floor()
            q2x, q2y = ((2 * xx + 12) / scale).floor(), ((2 * yy + 12) / scale).floor()
            bb = torch.stack([q1x, q1y, q2x, q2y], 1)
            keep = batched_nms(bb, score, b_i, 0.5)
            bb, score, r, b_i = bb[keep], score[keep], r[keep], b_i[keep]
            bw, bh = bb[:, 2] - bb[:, 0], bb[:, 3] - bb[:, 1]
            refined = torch.stack([bb[:, 0] + r[:, 0] * bw, bb[:, 1] + r[:, 1] * bh,
                                   bb[:, 2] + r[:, 2] * bw, bb[:, 3] + r[:, 3] * bh], 1)
            boxes_l.append(torch.cat([bb, score[:, None], refined], 1))
            inds_l.append(b_i)
        results: list[list[Face]] = [[] for _ in range(n)]
        if not boxes_l:
            return results
        cand, inds = torch.cat(boxes_l), torch.cat(inds_l)
        keep = batched_nms(cand[:, :4], cand[:, 4], inds, 0.7)
        boxes, inds = _square(cand[keep, 5:9]), inds[keep]

        # stage 2: RNet on 24x24 crops of every candidate of every photo
        if len(boxes):
            rois = torch.cat([inds[:, None].float(), boxes[:, 0:2] - 1, boxes[:, 2:4]], 1)
            crops = roi_align(imgs, rois, output_size=(24, 24), spatial_scale=1.0, sampling_ratio=self.sampling, aligned=True)
            reg, prob = _chunked(self.rnet, crops.contiguous(memory_format=self.memory_format))
            score = prob[:, 1]
            ok = score > t2
            boxes, inds, score, reg = boxes[ok], inds[ok], score[ok], reg[ok]
            keep = batched_nms(boxes, score, inds, 0.7)
            boxes, inds, reg = boxes[keep], inds[keep], reg[keep]
            boxes = _square(_bbreg(boxes, reg))

        # stage 3: ONet on 48x48 crops, boxes + 5 landmarks
        if len(boxes):
            rois = torch.cat([inds[:, None].float(), boxes[:, 0:2] - 1, boxes[:, 2:4]], 1)
            crops = roi_align(imgs, rois, output_size=(48, 48), spatial_scale=1.0, sampling_ratio=self.sampling, aligned=True)
            reg, pts, prob = _chunked(self.onet, crops.contiguous(memory_format=self.memory_format))
            score = prob[:, 1]
            ok = score > t3
            boxes, inds, score, reg, pts = boxes[ok], inds[ok], score[ok], reg[ok], pts[ok]
            bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
            bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
            px = bw * pts[:, :5] + boxes[:, 0:1] - 1
            py = bh * pts[:, 5:] + boxes[:, 1:2] - 1
            points = torch.stack([px, py], 2)  # (k, 5, 2)
            boxes = _bbreg(boxes, reg)
            keep = _nms_min(boxes, score, inds, 0.7)
            boxes, inds, score, points = boxes[keep], inds[keep], score[keep], points[keep]
            b, s, p, ii = boxes.cpu().numpy(), score.cpu().numpy(), points.cpu().numpy(), inds.cpu().numpy()
            for k in np.argsort(-s):
                kp4 = np.stack([p[k, 0], p[k, 1], p[k, 2], (p[k, 3] + p[k, 4]) / 2])
                results[ii[k]].append(make_face(b[k], s[k], kp4, self.name, h, w, self.calibrate))
        return results


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square around its centre (MTCNN's ``rerec``)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1, y1 = boxes[:, 0] + w * 0.5 - side * 0.5, boxes[:, 1] + h * 0.5 - side * 0.5
    return torch.stack([x1, y1, x1 + side, y1 + side], 1)


def _bbreg(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Apply MTCNN's box regression offsets (fractions of the box's 1-based width/height)."""
    w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    return boxes + reg[:, :4] * torch.cat([w, h, w, h], 1)


def _chunked(net: torch.nn.Module, x: torch.Tensor, size: int = 512) -> tuple[torch.Tensor, ...]:
    outs = [net(x[i:i + size]) for i in range(0, len(x), size)]
    return tuple(torch.cat(v, 0) for v in zip(*outs))


def _nms_min(boxes: torch.Tensor, scores: torch.Tensor, inds: torch.Tensor, thresh: float) -> torch.Tensor:
    """Per-image NMS with overlap = intersection / smaller area (MTCNN's last stage), greedy by score."""
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True)
    b = boxes[order]
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    ix = (torch.minimum(b[:, None, 2], b[None, :, 2]) - torch.maximum(b[:, None, 0], b[None, :, 0]) + 1).clamp(min=0)
    iy = (torch.minimum(b[:, None, 3], b[None, :, 3]) - torch.maximum(b[:, None, 1], b[None, :, 1]) + 1).clamp(min=0)
    over = (ix * iy / torch.minimum(area[:, None], area[None, :])).cpu().numpy()
    same = (inds[order][:, None] == inds[order][None, :]).cpu().numpy()
    suppressed = np.zeros(len(b), dtype=bool)
    keep = []
    for i in range(len(b)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= (over[i] > thresh) & same[i]
    return order[torch.as_tensor(keep, dtype=torch.long, device=boxes.device)]


# ----------------------------------------------------------------------------- combinations


def _fuse_runs(runs: Sequence[list[list[Face]]], n: int, iou: float, min_score: float) -> list[list[Face]]:
    return [[f for f in fuse_faces([r[i] for r in runs], iou) if f.score >= min_score] for i in range(n)]


class FusedDetector(Detector):
    """Runs several detectors on every photo and fuses their faces (``fuse_faces``), keeping fused faces
    scoring ``min_score`` or more: the highest recall, at the sum of the detectors' costs."""

    def __init__(self, detectors: Sequence[Detector], iou: float = 0.4, min_score: float = 0.5, name: str = "fused") -> None:
        self.detectors, self.iou, self.min_score, self.name = list(detectors), iou, min_score, name

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return _fuse_runs([d.detect(images) for d in self.detectors], len(images), self.iou, self.min_score)

    def close(self) -> None:
        for d in self.detectors:
            d.close()


class AdaptiveDetector(Detector):
    """Quick detectors on every photo; the extra (slower) ones only where the quick ones do not agree on
    exactly one face that is confident (fused score >= ``confident``) and large (shorter box side >=
    ``large`` x the photo's shorter side). A portrait with a clear subject costs the quick detectors
    only; a crowd, a small, a hard (masked, turned) or no face gets the full fusion.
    ``n_photos`` / ``n_extra`` count photos seen / sent to the extra detectors."""

    def __init__(self, quick: Sequence[Detector], extra: Sequence[Detector], confident: float = 0.8, large: float = 0.2,
                 iou: float = 0.4, min_score: float = 0.5, name: str = "adaptive") -> None:
        self.quick, self.extra = list(quick), list(extra)
        self.confident, self.large, self.iou, self.min_score, self.name = confident, large, iou, min_score, name
        self.n_photos = self.n_extra = 0

    def needs_extra(self, faces: Sequence[Face], height: int, width: int) -> bool:
        """False only for a clear portrait: one face, confident and large."""
        if len(faces) != 1:
            return True
        f = faces[0]
        return f.score < self.confident or min(f.width, f.height) < self.large * min(height, width)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        quick_runs = [d.detect(images) for d in self.quick]
        n = len(images)
        out = _fuse_runs(quick_runs, n, self.iou, 0.0)
        redo = [i for i in range(n) if self.needs_extra(out[i], *images[i].shape[:2])]
        extra_runs = [d.detect([images[i] for i in redo]) for d in self.extra] if redo and self.extra else []
        for k, i in enumerate(redo):
            out[i] = fuse_faces([r[i] for r in quick_runs] + [r[k] for r in extra_runs], self.iou)
        self.n_photos += n
        self.n_extra += len(redo)
        return [[f for f in faces if f.score >= self.min_score] for faces in out]

    def close(self) -> None:
        for d in self.quick + self.extra:
            d.close()


class ThreadedDetector(Detector):
    """Several copies of one detector, each batch split between them and run in threads.

    MediaPipe's graphs run native code without the GIL, so on a 2-core CPU two copies detect a batch
    about 1.8x faster than one; one copy per thread, since a Tasks graph is not re-entrant.
    """

    def __init__(self, copies: Sequence[Detector]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.copies = list(copies)
        self.name = self.copies[0].name
        self._pool = ThreadPoolExecutor(max_workers=len(self.copies), thread_name_prefix="detect")

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        k = len(self.copies)
        if k == 1 or len(images) < 2:
            return self.copies[0].detect(images)
        step = -(-len(images) // k)
        parts = [list(images[j:j + step]) for j in range(0, len(images), step)]
        results = self._pool.map(lambda cp: cp[0].detect(cp[1]), zip(self.copies, parts))
        return [faces for part in results for faces in part]

    @property
    def n_photos(self) -> int:
        return sum(getattr(d, "n_photos", 0) for d in self.copies)

    @property
    def n_extra(self) -> int:
        return sum(getattr(d, "n_extra", 0) for d in self.copies)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for d in self.copies:
            d.close()


def default_threads(name: str, device: str | None = None) -> int:
    """Detector copies run side by side: one per core (at most 4) for the CPU detectors, one on CUDA or for MTCNN,
    whose torch ops already use every core."""
    cuda = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")).type == "cuda"
    if cuda or name == "mtcnn":
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def make_detector(name: str = "auto", device: str | None = None, min_face: int | None = None,
                  threads: int = 1) -> Detector:
    """Build a detector by name (see DETECTOR_NAMES and README-detect): "auto" is "adaptive" on the CPU
    and "mtcnn-first" on CUDA; ``min_face`` (px, None = 10% of the shorter side) bounds MTCNN's pyramid;
    ``threads`` > 1 runs that many copies side by side (``ThreadedDetector``; see ``default_threads``)."""
    if threads > 1:
        return ThreadedDetector([make_detector(name, device, min_face) for _ in range(threads)])
    if name not in DETECTOR_NAMES:
        raise InputError(f"detector {name!r}: expected one of {', '.join(DETECTOR_NAMES)}")
    cuda = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")).type == "cuda"
    if name == "auto":
        name = "mtcnn-first" if cuda else "adaptive"
    if name == "mtcnn":
        return MTCNNDetector(device=device, min_face=min_face)
    if name == "mp-full":
        return MediaPipeDetector("full")
    if name == "mp-short":
        return MediaPipeDetector("short")
    if name == "mediapipe":
        return FusedDetector([MediaPipeDetector("full"), MediaPipeDetector("short", tile=True)], name="mediapipe")
    recall_mtcnn = MTCNNDetector(device=device, min_face=min_face, thresholds=RECALL_THRESHOLDS)
    if name == "fused":
        return FusedDetector([MediaPipeDetector("full"), MediaPipeDetector("short", tile=True), recall_mtcnn], name="fused")
    if name == "mtcnn-first":
        return AdaptiveDetector([recall_mtcnn], [MediaPipeDetector("full"), MediaPipeDetector("short", tile=True)],
                                name="mtcnn-first")
    return AdaptiveDetector([MediaPipeDetector("full"), MediaPipeDetector("short")],
                            [MediaPipeDetector("short", tile=True), recall_mtcnn], name="adaptive")
