"""MediaPipe BlazeFace (short and full range) through the Tasks API, with the bundled ``.tflite`` models (CPU)."""
from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from ..models import model_path
from ..native_logs import quiet_native_stderr
from .faces import Detector, Face, check_images, make_face, nms_faces

MP_MODELS = {"short": "face_detection_short_range", "full": "face_detection_full_range_sparse"}
MIN_SIDE = 16  # photos (and tiles) with a shorter side under this many pixels hold no detectable face


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
        import mediapipe as mp
        from mediapipe.tasks.python import vision

        with quiet_native_stderr():
            self._task = vision.FaceDetector.create_from_options(self._options)
            # LiteRT logs an alignment warning on a graph's first inference; have it here, silenced
            self._task.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.full((64, 64, 3), 128, np.uint8)))

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
        task, self._task = getattr(self, "_task", None), None
        if task is not None:
            with quiet_native_stderr(), contextlib.suppress(RuntimeError):
                task.close()
