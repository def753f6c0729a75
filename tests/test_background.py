"""Background removal never erases the face: the protection on its own (a segmenter that erased the face) and the
real MediaPipe segmenter inside `crop`, face pixels compared with the same crop without removal."""
from __future__ import annotations

import numpy as np
import pytest

from _crop_data import astronaut_person, train_layout
from facecurate.curate.crop import CropParams, crop_dataset
from facecurate.curate.crop.segment_cleanup import crop_box, face_regions, protect_face


def _erased_face_prob(h=256, w=192, face=(60, 70, 132, 150)):
    """A segmenter's output that lost the face (a mask read as background), kept the body, and left specks."""
    prob = np.zeros((h, w), np.float32)
    prob[40:, 30:162] = 0.9                                  # head and body
    x1, y1, x2, y2 = face
    prob[y1 + 20:y2 + 10, 0:x2] = 0.05                       # the masked lower face erased, out to the edge
    prob[100:104, 100:104] = 0.0                             # a small hole inside the body
    prob[5:11, 5:11] = 0.95                                  # a speck of wall called person
    prob[230:256, 0:14] = 0.8                                # a blotch at the corner, not connected
    return prob, face


def test_the_face_box_and_ellipse_are_kept_and_the_rest_cleaned():
    prob, face = _erased_face_prob()
    alpha = protect_face(prob, face)
    x1, y1, x2, y2 = face
    assert alpha[y1:y2, x1:x2].min() == 1.0                  # every face-box pixel kept
    protected, _ = face_regions(prob.shape, face)
    assert alpha[protected].min() == 1.0 and protected[y1 - 15, (x1 + x2) // 2]  # the ellipse reaches the hair
    assert alpha[102, 102] > 0.99                            # the hole is filled
    assert alpha[8, 8] < 0.01 and alpha[245, 5] < 0.01       # specks and blotches away from the person go
    assert alpha[5:30, 170:].max() < 0.01                    # plain background stays background
    assert (protect_face(prob, None)[y1 + 25:y2, x1:x2] < 0.5).mean() > 0.8  # without the face box it would be lost


def test_crop_box_maps_photo_pixels_into_the_crop():
    box = crop_box((110, 120, 190, 220), region=(90, 80, 210, 240), out_hw=(256, 192))
    assert box == pytest.approx((20 * 1.6, 40 * 1.6, 100 * 1.6, 140 * 1.6))


@pytest.mark.parametrize("segmenter", ["mediapipe", "mediapipe-general"])
def test_real_segmenter_in_crop_keeps_every_face_pixel(tmp_path, segmenter):
    photos, _ = astronaut_person(3)
    root = train_layout(tmp_path / "data", {"000001_female_Asian_45": photos})
    fast = dict(detector="mediapipe", workers=2, batch=4)
    plain = crop_dataset(root, tmp_path / "plain", CropParams(**fast)).cache
    result = crop_dataset(root, tmp_path / "bg", CropParams(background=segmenter, fill="black", **fast))
    removed = result.cache
    m = removed.manifest
    for i, r in enumerate(m.itertuples()):
        fx1, fy1, fx2, fy2 = (int(round(v)) for v in crop_box((r.face_x1, r.face_y1, r.face_x2, r.face_y2),
                                                             (r.crop_x1, r.crop_y1, r.crop_x2, r.crop_y2), (256, 192)))
        a = np.asarray(plain.images[i][fy1:fy2, fx1:fx2], int)
        b = np.asarray(removed.images[i][fy1:fy2, fx1:fx2], int)
        assert (np.abs(a - b).max(axis=-1) <= 2).mean() >= 0.995, r.image_id
        assert np.asarray(removed.images[i][:12, :12]).mean() < 40  # the grey canvas corner became black
    assert result.contact is not None and result.contact.is_file()
