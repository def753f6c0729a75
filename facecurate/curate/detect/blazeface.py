"""MediaPipe's BlazeFace (short and full range), the bundled ``.tflite`` models run by LiteRT on the CPU.

MediaPipe's Tasks API runs each photo through a graph (image conversion, inference, decoding, suppression, protobuf
results back to Python); the same models called directly through LiteRT's interpreter, with the graph's pre- and
post-processing done here in NumPy, take less CPU (``bench/detect_recall.py``: 3.0-3.1 -> 2.5-2.6 ms a photo short range,
7.6-8.2 -> 5.9-7.6 full range; the whole crop 8-10 % less CPU: BENCHMARKS.md, crop), and the quick look runs both on
every photo. What the graph does is reproduced step by step (``letterbox``, ``ssd_anchors``, ``decode``, ``weighted_nms``, ``pixel_box``):
tests/test_blazeface.py checks the faces against the Tasks API's own on real photos (short range: the same scores and
boxes; full range: scores within 0.01, a different XNNPACK kernel build).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from ..models import model_path
from ..native_logs import quiet_native_stderr
from .faces import Detector, Face, check_images, make_face, nms_faces

MIN_SIDE = 16  # photos (and tiles) with a shorter side under this many pixels hold no detectable face


@dataclass(frozen=True)
class BlazeFaceSpec:
    """One BlazeFace model as MediaPipe's graph configures it: its file, square input side, and SSD anchor layers
    (a stride and anchors per cell for each; layers of one stride share a grid)."""

    file: str
    size: int
    strides: tuple[int, ...]
    per_cell: tuple[int, ...]


MODELS = {
    "short": BlazeFaceSpec("face_detection_short_range", 128, (8, 16, 16, 16), (2, 2, 2, 2)),
    "full": BlazeFaceSpec("face_detection_full_range_sparse", 192, (4,), (1,)),
}


def ssd_anchors(spec: BlazeFaceSpec) -> np.ndarray:
    """(N, 2) anchor centres in the input's unit square, in the model's output order (MediaPipe's
    ``SsdAnchorsCalculator`` with fixed-size anchors: a grid per stride, its layers' anchors stacked per cell)."""
    out, i = [], 0
    while i < len(spec.strides):
        stride, n = spec.strides[i], 0
        while i < len(spec.strides) and spec.strides[i] == stride:
            n += spec.per_cell[i]
            i += 1
        grid = -(-spec.size // stride)
        ys, xs = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid, indexing="ij")
        out.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], 1), n, axis=0))
    return np.concatenate(out).astype(np.float32)


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """The photo scaled to fit a ``size`` square, centred, zero borders, bilinear (MediaPipe's image-to-tensor with
    its aspect ratio kept), as the model's [-1, 1] float input; with the scale and the x / y padding in pixels."""
    h, w = image.shape[:2]
    s = size / max(h, w)
    px, py = (size - w * s) / 2, (size - h * s) / 2
    warped = cv2.warpAffine(image, np.array([[s, 0, px], [0, s, py]]), (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return (warped.astype(np.float32) * (1 / 127.5) - 1.0)[None], s, px, py


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, size: int,
           min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model's raw outputs -> (boxes (K, 4) x1 y1 x2 y2, keypoints (K, 6, 2), scores (K,)) in the input's unit
    square, for the anchors scoring ``min_score`` or more (MediaPipe's ``TensorsToDetectionsCalculator``: x first,
    offsets over the input side, sigmoid of the logit clipped at +-100)."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.astype(np.float64), -100.0, 100.0)))
    keep = np.flatnonzero(scores >= min_score)
    r, a = raw_boxes[keep].astype(np.float64) / size, anchors[keep]
    xc, yc, bw, bh = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1], r[:, 2], r[:, 3]
    boxes = np.stack([xc - bw / 2, yc - bh / 2, xc + bw / 2, yc + bh / 2], 1)
    keypoints = r[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]
    return boxes, keypoints, scores[keep]


def _iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted suppression: the best remaining box takes every box overlapping it by more than ``iou``
    (itself included); its box and keypoints become their score-weighted mean, its score stays its own."""
    remaining = np.argsort(-scores, kind="stable")
    out = []
    while remaining.size:
        top = remaining[0]
        close = _iou_one(boxes[top], boxes[remaining]) > iou
        members = remaining[close]
        wts = scores[members]
        out.append(((boxes[members] * wts[:, None]).sum(0) / wts.sum(),
                    (keypoints[members] * wts[:, None, None]).sum(0) / wts.sum(), float(scores[top])))
        remaining = remaining[~close]
    return out


def pixel_box(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """A unit-square box in whole pixels as the Tasks API reports it: origin and size truncated, an origin above or
    left of the photo moved onto its edge with the size kept (the calibration in ``faces`` was fitted to these)."""
    x0, y0 = max(0, int(box[0] * width)), max(0, int(box[1] * height))
    return x0, y0, x0 + int((box[2] - box[0]) * width), y0 + int((box[3] - box[1]) * height)


class MediaPipeDetector(Detector):
    """MediaPipe's BlazeFace through LiteRT (CPU): "short" (128 px input, faces filling much of the photo) or "full"
    (192 px, full-range sparse, smaller faces). ``tile``: also run on the four overlapping corner tiles (60% of each
    side, 5x the cost) so that small faces fill more of the model's input; ``min_score`` and ``nms_iou`` as in
    MediaPipe's options; ``calibrate`` maps boxes onto the common convention. One interpreter per detector: copies
    side by side (``ThreadedDetector``) each hold their own, and LiteRT runs without the GIL."""

    def __init__(self, model: str = "full", min_score: float = 0.3, nms_iou: float = 0.3, tile: bool = False,
                 calibrate: bool = True) -> None:
        if model not in MODELS:
            raise InputError(f"mediapipe model {model!r}: expected one of {sorted(MODELS)}")
        self.model, self.min_score, self.nms_iou, self.tile, self.calibrate = model, min_score, nms_iou, tile, calibrate
        self.spec = MODELS[model]
        self.name = f"mp-{model}"
        self.source = self.name
        self._anchors = ssd_anchors(self.spec)
        self._interpreter = None
        self._open()

    def _open(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        with quiet_native_stderr():  # LiteRT announces its CPU delegate on fd 2
            interpreter = Interpreter(model_path=str(model_path(self.spec.file)), num_threads=1)
            interpreter.allocate_tensors()
            outputs = sorted(interpreter.get_output_details(), key=lambda d: -int(d["shape"][-1]))
            self._input = interpreter.get_input_details()[0]["index"]
            self._boxes_out, self._scores_out = outputs[0]["index"], outputs[1]["index"]
            interpreter.set_tensor(self._input, np.zeros((1, self.spec.size, self.spec.size, 3), np.float32))
            interpreter.invoke()
        if len(self._anchors) != int(outputs[0]["shape"][1]):
            raise InputError(f"{model_path(self.spec.file)}: {outputs[0]['shape'][1]} boxes, expected {len(self._anchors)}")
        self._interpreter = interpreter

    def _run(self, image: np.ndarray, x0: int = 0, y0: int = 0, full_h: int = 0, full_w: int = 0) -> list[Face]:
        h, w = image.shape[:2]
        full_h, full_w = full_h or h, full_w or w
        if min(h, w) < MIN_SIDE:
            return []
        if self._interpreter is None:
            self._open()
        size = self.spec.size
        tensor, s, px, py = letterbox(np.ascontiguousarray(image), size)
        self._interpreter.set_tensor(self._input, tensor)
        self._interpreter.invoke()
        boxes, kps, scores = decode(self._interpreter.get_tensor(self._boxes_out)[0],
                                    self._interpreter.get_tensor(self._scores_out)[0, :, 0],
                                    self._anchors, size, self.min_score)
        faces = []
        for box, kp, score in weighted_nms(boxes, kps, scores, self.nms_iou):
            # from the letterboxed square back to the photo's unit square, then to pixels
            unit = np.array([(box[0] * size - px) / (w * s), (box[1] * size - py) / (h * s),
                             (box[2] * size - px) / (w * s), (box[3] * size - py) / (h * s)])
            bx1, by1, bx2, by2 = pixel_box(unit, w, h)
            points = np.stack([(kp[:4, 0] * size - px) / s, (kp[:4, 1] * size - py) / s], 1)
            faces.append(make_face((x0 + bx1, y0 + by1, x0 + bx2, y0 + by2), score,
                                   (points + [x0, y0]).astype(np.float32), self.source, full_h, full_w, self.calibrate))
        return faces

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        check_images(images)
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
        self._interpreter = None
