"""BlazeFace run by LiteRT (``detect.blazeface``) against MediaPipe's own Tasks API on the same bundled models: the
same faces, boxes, keypoints and scores, on real faces (skimage's astronaut, matplotlib's Grace Hopper, both public
domain) pasted at several sizes, in pairs, and across the photo's edges."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data as skdata

from facecurate.curate.detect.blazeface import (
    MODELS,
    MediaPipeDetector,
    pixel_box,
    ssd_anchors,
    weighted_nms,
)
from facecurate.curate.models import model_path

# model -> (box px, keypoint px, score): the short-range model gives MediaPipe's numbers exactly; the full-range
# sparse one runs through another XNNPACK kernel build in MediaPipe's wheel (its scores differ in the third decimal)
TOLERANCE = {"short": (1, 0.05, 1e-4), "full": (3, 1.0, 0.01)}


def _faces() -> list[np.ndarray]:
    astro = np.asarray(skdata.astronaut())[20:230, 130:340]
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))[60:380, 100:420]
    return [astro, hopper]


def _scenes() -> list[np.ndarray]:
    """384 x 512 grey photos: one face at several sizes and places, two faces side by side, faces cut by the top or
    left edge (where the Tasks API moves a box's origin onto the edge)."""
    rng = np.random.default_rng(0)
    faces = _faces()
    scenes = []
    placements = [(0, 200, 80, 150), (1, 160, 120, 200), (0, 90, 30, 300), (1, 120, 250, 40),
                  (0, 150, -40, 100), (1, 170, 60, -50), (0, 140, -30, -30)]
    for k, (i, side, x, y) in enumerate(placements):
        canvas = np.full((512, 384, 3), 100 + 20 * (k % 4), np.uint8)
        face = np.asarray(Image.fromarray(faces[i]).resize((side, side), Image.BILINEAR))
        _paste(canvas, face, x, y)
        if k % 3 == 1:  # a second, smaller face
            other = np.asarray(Image.fromarray(faces[1 - i]).resize((side // 2, side // 2), Image.BILINEAR))
            _paste(canvas, other, int(rng.integers(0, 384 - side // 2)), 512 - side // 2 - 10)
        scenes.append(canvas)
    return scenes


def _paste(canvas: np.ndarray, face: np.ndarray, x: int, y: int) -> None:
    h, w = face.shape[:2]
    sx, sy = max(0, -x), max(0, -y)
    ex, ey = min(w, canvas.shape[1] - x), min(h, canvas.shape[0] - y)
    canvas[y + sy:y + ey, x + sx:x + ex] = face[sy:ey, sx:ex]


def _tasks_api(model: str, images: list[np.ndarray]) -> list[list[tuple[np.ndarray, np.ndarray, float]]]:
    """MediaPipe's FaceDetector on each image: (box x1 y1 x2 y2, first four keypoints in pixels, score) per face."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceDetectorOptions(
        base_options=BaseOptions(model_asset_path=str(model_path(MODELS[model].file))),
        running_mode=vision.RunningMode.IMAGE, min_detection_confidence=0.3, min_suppression_threshold=0.3)
    task = vision.FaceDetector.create_from_options(options)
    try:
        out = []
        for im in images:
            h, w = im.shape[:2]
            faces = []
            for d in task.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(im))).detections:
                bb = d.bounding_box
                box = np.array([bb.origin_x, bb.origin_y, bb.origin_x + bb.width, bb.origin_y + bb.height], float)
                kp = np.array([[k.x * w, k.y * h] for k in d.keypoints[:4]])
                faces.append((box, kp, d.categories[0].score))
            out.append(faces)
        return out
    finally:
        task.close()


@pytest.mark.parametrize("model", ["short", "full"])
def test_litert_blazeface_matches_the_tasks_api(model: str) -> None:
    scenes = _scenes()
    reference = _tasks_api(model, scenes)
    ours = MediaPipeDetector(model, calibrate=False).detect(scenes)
    box_tol, kp_tol, score_tol = TOLERANCE[model]
    assert sum(len(r) for r in reference) >= 6  # the scenes hold faces the model finds (the short one misses a third)
    for k, (ref, got) in enumerate(zip(reference, ours)):
        assert len(got) == len(ref), (model, k, len(got), len(ref))
        for box, kp, score in ref:
            j = int(np.argmin([np.abs(np.array(f.box) - box).max() for f in got]))
            face = got[j]
            assert np.abs(np.array(face.box) - box).max() <= box_tol, (model, k, face.box, box)
            assert abs(face.score - score) <= score_tol, (model, k, face.score, score)
            # ours orders the eyes left to right in the image; the Tasks API gives the subject's right eye first
            ref_kp = kp[[1, 0, 2, 3]] if kp[0, 0] > kp[1, 0] else kp
            inside = (ref_kp >= 0).all(axis=1) & (ref_kp[:, 0] <= 384) & (ref_kp[:, 1] <= 512)  # ours are clamped to the photo
            assert np.abs(face.keypoints - ref_kp)[inside].max() <= kp_tol, (model, k)


def test_anchors_and_suppression() -> None:
    short, full = ssd_anchors(MODELS["short"]), ssd_anchors(MODELS["full"])
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    # the short model's first grid is 16 x 16 with two anchors a cell, then 8 x 8 with six
    assert np.allclose(short[0], [1 / 32, 1 / 32]) and np.allclose(short[1], short[0])
    assert np.allclose(short[512], [1 / 16, 1 / 16]) and np.allclose(short[512:518], short[512])
    # weighted suppression: two overlapping boxes merge into their score-weighted mean with the best score; a third
    # apart stays
    boxes = np.array([[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8]])
    kps = np.zeros((3, 6, 2))
    kept = weighted_nms(boxes, kps, np.array([0.6, 0.9, 0.5]), 0.3)
    assert len(kept) == 2 and kept[0][2] == 0.9 and kept[1][2] == 0.5
    assert np.allclose(kept[0][0], (0.6 * boxes[0] + 0.9 * boxes[1]) / 1.5)
    # a box above the photo keeps its size and moves onto the edge, as the Tasks API reports it
    assert pixel_box(np.array([0.2, -0.05, 0.5, 0.25]), 100, 200) == (20, 0, 50, 60)
