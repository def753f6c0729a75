"""Real MTCNN and real MediaPipe BlazeFace on a real face (skimage's astronaut) pasted into 384 x 512 canvases."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from skimage import data
from skimage.transform import rescale

from facecurate.curate.detect import (AdaptiveDetector, Face, MTCNNDetector, box_iou, calibrate_box, default_min_face, fuse_faces,
                                      make_detector)
from facecurate.curate.detect.mtcnn import pyramid_scales
from facecurate.curate.errors import InputError
from facecurate.curate.models import MODELS_DIR, model_names, model_path

# The astronaut's face in the original 512 x 512 photo (x1, y1, x2, y2), from the brief.
FACE = np.array([175.0, 60.0, 265.0, 175.0])


def _canvas(scale: float, x0: int, y0: int, height: int = 512, width: int = 384, grey: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut scaled by ``scale`` pasted at (x0, y0) on a grey canvas; returns (image, face box)."""
    src = data.astronaut()
    small = (rescale(src, scale, channel_axis=2, anti_aliasing=True) * 255).round().astype(np.uint8)
    canvas = np.full((height, width, 3), grey, np.uint8)
    h, w = min(small.shape[0], height - y0), min(small.shape[1], width - x0)
    canvas[y0:y0 + h, x0:x0 + w] = small[:h, :w]
    return canvas, FACE * scale + np.array([x0, y0, x0, y0])


@pytest.fixture(scope="module")
def scenes() -> list[tuple[np.ndarray, np.ndarray]]:
    return [_canvas(0.5, 50, 100), _canvas(0.75, 0, 64), _canvas(0.6, 60, 180)]


@pytest.fixture(scope="module")
def mtcnn() -> MTCNNDetector:
    return MTCNNDetector(device="cpu")


def _check_face(face: Face, truth: np.ndarray, shape: tuple[int, ...]) -> None:
    box = np.array(face.box)
    inter = box_iou(box[None], truth[None])[0, 0]
    assert inter >= 0.4, (face, truth)
    # contains the central part of the true face
    cx, cy = (truth[0] + truth[2]) / 2, (truth[1] + truth[3]) / 2
    assert box[0] < cx < box[2] and box[1] < cy < box[3]
    assert 0 <= box[0] < box[2] <= shape[1] and 0 <= box[1] < box[3] <= shape[0]
    assert 0.0 <= face.score <= 1.0
    kp = face.keypoints
    assert kp.shape == (4, 2) and kp.dtype == np.float32
    assert ((kp[:, 0] >= box[0]) & (kp[:, 0] <= box[2]) & (kp[:, 1] >= box[1]) & (kp[:, 1] <= box[3])).all(), kp
    left_eye, right_eye, nose, mouth = kp
    assert left_eye[0] < right_eye[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < mouth[1]
    assert left_eye[0] < nose[0] < right_eye[0]


def test_mtcnn_finds_the_face(mtcnn: MTCNNDetector, scenes) -> None:
    found = mtcnn.detect([im for im, _ in scenes])
    assert len(found) == len(scenes)
    for (im, truth), faces in zip(scenes, found):
        assert faces, "no face found"
        assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
        assert faces[0].source == "mtcnn"
        _check_face(faces[0], truth, im.shape)


@pytest.mark.parametrize("name", ["mp-full", "mediapipe", "auto", "fused", "mtcnn-first"])
def test_mediapipe_and_combinations_find_the_face(name: str, scenes) -> None:
    with make_detector(name, device="cpu") as det:
        found = det.detect([im for im, _ in scenes])
    for (im, truth), faces in zip(scenes, found):
        assert faces, f"{name}: no face found"
        _check_face(faces[0], truth, im.shape)


def test_short_range_finds_a_large_face() -> None:
    im, truth = _canvas(0.75, 0, 64)
    with make_detector("mp-short") as det:
        faces = det.detect([im])[0]
    assert faces and faces[0].source == "mp-short"
    _check_face(faces[0], truth, im.shape)


@pytest.mark.parametrize("name", ["mtcnn", "mp-full", "mp-short", "auto"])
def test_uniform_images_have_no_face(name: str) -> None:
    blank = np.full((512, 384, 3), 128, np.uint8)
    dark = np.zeros((300, 400, 3), np.uint8)
    with make_detector(name, device="cpu") as det:
        assert det.detect([blank, dark]) == [[], []]
        assert det.detect([]) == []


def test_tiny_photos_give_no_face_and_no_error() -> None:
    tiny = [np.zeros((1, 1, 3), np.uint8), np.full((5, 300, 3), 100, np.uint8), np.full((40, 30, 3), 100, np.uint8)]
    with make_detector("fused", device="cpu") as det:
        assert det.detect(tiny) == [[], [], []]
        im, truth = _canvas(0.5, 50, 100)
        _check_face(det.detect([im])[0][0], truth, im.shape)  # still works afterwards


def test_batched_mtcnn_matches_one_by_one(mtcnn: MTCNNDetector, scenes) -> None:
    images = [im for im, _ in scenes]
    batched = mtcnn.detect(images)
    for im, faces in zip(images, batched):
        alone = mtcnn.detect([im])[0]
        assert len(alone) == len(faces)
        for a, b in zip(alone, faces):
            np.testing.assert_allclose(a.box, b.box, atol=0.5)
            np.testing.assert_allclose(a.keypoints, b.keypoints, atol=0.5)
            assert abs(a.score - b.score) < 1e-3


def test_mixed_sizes_in_one_call(mtcnn: MTCNNDetector) -> None:
    a, ta = _canvas(0.5, 50, 100)
    b, tb = _canvas(0.5, 20, 30, height=400, width=300)
    full = data.astronaut()
    found = mtcnn.detect([a, full, b])
    for (im, truth), faces in zip([(a, ta), (full, FACE), (b, tb)], found):
        assert faces
        _check_face(faces[0], truth, im.shape)


def test_min_face_limits_the_pyramid(mtcnn: MTCNNDetector) -> None:
    assert default_min_face(512, 384) == 38 and default_min_face(100, 100) == 20
    assert len(pyramid_scales(512, 384, 38)) < len(pyramid_scales(512, 384, 20))
    # a face smaller than min_face is not searched for
    im, truth = _canvas(0.25, 100, 200)  # face about 23 x 29 px
    assert MTCNNDetector(device="cpu", min_face=20).detect([im])[0]
    assert MTCNNDetector(device="cpu", min_face=120).detect([im])[0] == []


def test_fuse_faces_merges_overlaps() -> None:
    kp = np.zeros((4, 2), np.float32)
    a = Face((10, 10, 50, 50), 0.8, kp, "x")
    b = Face((12, 10, 52, 50), 0.6, kp, "y")
    c = Face((200, 200, 240, 240), 0.5, kp, "x")
    fused = fuse_faces([[a, c], [b]])
    assert len(fused) == 2
    assert fused[0].source == "x+y" and fused[0].score == pytest.approx(1 - 0.2 * 0.4)
    assert 10 < fused[0].box[0] < 12 and fused[1].box == c.box


def test_adaptive_routes_only_unclear_photos_to_the_extra_detectors() -> None:
    kp = np.zeros((4, 2), np.float32)
    rule = AdaptiveDetector([], [], confident=0.8, large=0.2)
    big = Face((100, 100, 250, 280), 0.95, kp, "x")
    assert not rule.needs_extra([big], 512, 384)
    assert rule.needs_extra([], 512, 384)
    assert rule.needs_extra([big, Face((10, 10, 40, 40), 0.9, kp, "x")], 512, 384)  # a second face: maybe a crowd
    assert rule.needs_extra([Face(big.box, 0.6, kp, "x")], 512, 384)  # not confident
    assert rule.needs_extra([Face((100, 100, 150, 160), 0.95, kp, "x")], 512, 384)  # small: 50 < 0.2 * 384
    src = (rescale(data.astronaut(), 1.5, channel_axis=2, anti_aliasing=True) * 255).round().astype(np.uint8)
    portrait = np.ascontiguousarray(src[20:532, 150:534])  # face about 135 x 170 px in a 384 x 512 photo
    truth = FACE * 1.5 - np.array([150, 20, 150, 20])
    with make_detector("adaptive") as det:
        faces = det.detect([portrait])[0]
        assert (det.n_photos, det.n_extra) == (1, 0)
        _check_face(faces[0], truth, portrait.shape)
        assert det.detect([np.full((512, 384, 3), 90, np.uint8)]) == [[]]
        assert (det.n_photos, det.n_extra) == (2, 1)


def test_threaded_copies_share_one_mtcnn_and_find_what_one_copy_finds(scenes) -> None:
    """Two threaded copies of "adaptive" use one MTCNN (built once, by ``prepare`` in the background) and find the
    same faces as a single copy given each half of the photos."""
    blank = np.full((512, 384, 3), 90, np.uint8)  # no face: every photo goes to the extra detectors
    photos = [img for img, _ in scenes] + [blank]
    with make_detector("adaptive", threads=2) as two, make_detector("adaptive") as one:
        shared = [d.extra[-1] for d in two.copies]  # forcing each copy's extra list does not build MTCNN itself
        assert shared[0] is shared[1] and shared[0]._detector is None
        two.prepare()
        for d in two.copies:
            d._preparing.join(timeout=120)
        assert isinstance(shared[0]._detector, MTCNNDetector)
        half = len(photos) // 2
        assert two.detect(photos) == one.detect(photos[:half]) + one.detect(photos[half:])
        assert two.n_extra == 4 and two.n_photos == 4


def test_calibration_moves_boxes_onto_one_convention() -> None:
    assert calibrate_box((0, 0, 100, 100), "unknown") == (0, 0, 100, 100)
    x1, y1, x2, y2 = calibrate_box((0, 0, 100, 100), "mtcnn")
    assert y1 > 0 and y2 > 100  # MTCNN boxes start higher on the forehead than annotated face boxes
    raw = MTCNNDetector(device="cpu", calibrate=False)
    im, _ = _canvas(0.6, 60, 180)
    a, b = raw.detect([im])[0][0], MTCNNDetector(device="cpu").detect([im])[0][0]
    np.testing.assert_allclose(b.box, calibrate_box(a.box, "mtcnn"), atol=1e-3)


def test_bad_input_and_names() -> None:
    with pytest.raises(InputError):
        make_detector("nope")
    with make_detector("mp-full") as det, pytest.raises(InputError):
        det.detect([np.zeros((10, 10), np.uint8)])


def test_model_path_verifies_checksums(tmp_path) -> None:
    names = model_names()
    for n in ("face_detection_short_range", "face_detection_full_range_sparse", "selfie_segmentation"):
        assert n in names
        assert model_path(n).is_file() and model_path(n + ".tflite") == model_path(n)
    folder = tmp_path / "models"
    shutil.copytree(MODELS_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    assert model_path("selfie_segmentation", folder=folder) == folder / "selfie_segmentation.tflite"
    target = folder / "face_detection_short_range.tflite"
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    target.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="corrupt"):
        model_path("face_detection_short_range", folder=folder)
    (folder / "face_detection_full_range_sparse.tflite").unlink()
    with pytest.raises(InputError, match="missing"):
        model_path("face_detection_full_range_sparse", folder=folder)
    with pytest.raises(InputError, match="unknown"):
        model_path("no_such_model")


def test_selfie_segmenter_loads_in_tasks_api() -> None:
    from mediapipe import Image, ImageFormat
    from mediapipe.tasks.python import BaseOptions, vision

    im, _ = _canvas(0.75, 0, 64)
    opts = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=str(model_path("selfie_segmentation"))),
                                        running_mode=vision.RunningMode.IMAGE, output_confidence_masks=True)
    with vision.ImageSegmenter.create_from_options(opts) as seg:
        result = seg.segment(Image(image_format=ImageFormat.SRGB, data=im))
        # numpy_view() borrows MediaPipe's buffer, freed with the result: copy it while both are alive
        mask = np.array(result.confidence_masks[0].numpy_view())
    assert mask.shape[:2] == im.shape[:2]
    assert mask[150:200, 150:180].mean() > 0.5  # the astronaut's face is foreground
    assert mask[:40].mean() < mask[150:200, 150:180].mean()
