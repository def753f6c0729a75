"""Unit tests of the crop stage's pure core: crop geometry, subject pick, fallback boxes, compositing, contact sheet."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facecurate.curate.crop.background import composite
from facecurate.curate.crop.contact import contact_sheet
from facecurate.curate.crop.fallback import PERSON, PRIOR, assign_boxes, centred_prior, dataset_prior, person_medians, relative_boxes
from facecurate.curate.crop.geometry import contains, crop_region, cut, expand_box, output_shape, parse_margins, place_region
from facecurate.curate.crop.subject import pick_subject


# ------------------------------------------------------------------ geometry

@pytest.mark.parametrize("aspect", [0.5, 0.75, 1.0, 1.5])
@pytest.mark.parametrize("face", [(100, 100, 200, 220), (100, 100, 200, 150), (0, 0, 30, 30)])
def test_expand_box_keeps_aspect_and_margins(face, aspect):
    margins = (0.7, 0.45, 0.55)
    x1, y1, x2, y2 = expand_box(face, margins, aspect)
    w = face[2] - face[0]
    assert (x2 - x1) / (y2 - y1) == pytest.approx(aspect)
    assert x1 <= face[0] - 0.45 * w + 1e-9 and x2 >= face[2] + 0.45 * w - 1e-9
    assert y1 == pytest.approx(face[1] - 0.7 * w)
    # the bottom leaves room below max(box bottom, box top + width): a mask or chin under a short box fits
    assert y2 >= max(face[3], face[1] + w) + 0.55 * w - 1e-9


def test_short_box_of_masked_face_still_reaches_below_the_chin():
    # a detector box that stops at the nose (half as tall as wide) gets the same bottom as a full face box
    full = expand_box((100, 100, 200, 200), (0.7, 0.45, 0.55), 0.75)
    short = expand_box((100, 100, 200, 150), (0.7, 0.45, 0.55), 0.75)
    assert short[3] == pytest.approx(full[3])
    assert short[3] > 200 + 50


def test_place_region_shift_moves_inside_and_keeps_size():
    r = place_region((-30, -10, 170, 250), 384, 512, "shift")
    assert r == pytest.approx((0, 0, 200, 260))
    r = place_region((300, 400, 450, 600), 384, 512, "shift")
    assert r == pytest.approx((234, 312, 384, 512))
    # larger than the photo: centred on it, the overflow split evenly
    r = place_region((0, 0, 500, 600), 384, 512, "shift")
    assert r == pytest.approx((-58, -44, 442, 556))
    assert place_region((-30, -10, 170, 250), 384, 512, "pad") == pytest.approx((-30, -10, 170, 250))
    with pytest.raises(ValueError):
        place_region((0, 0, 1, 1), 10, 10, "wrap")


@pytest.mark.parametrize("edge", ["shift", "pad"])
def test_crop_region_contains_face_anywhere_in_the_photo(edge):
    rng = np.random.default_rng(0)
    for _ in range(200):
        w = rng.uniform(20, 300)
        h = w * rng.uniform(0.5, 1.3)
        x1, y1 = rng.uniform(0, 384 - w), rng.uniform(0, 512 - h)
        face = (x1, y1, x1 + w, y1 + h)  # a face box inside the photo
        region = crop_region(face, 384, 512, (0.7, 0.45, 0.55), 0.75, edge)
        assert contains(region, face, tol=1e-6)
        assert (region[2] - region[0]) / (region[3] - region[1]) == pytest.approx(0.75)


def test_cut_pads_outside_and_resizes():
    img = np.zeros((100, 80, 3), np.uint8)
    img[:, :] = (200, 10, 10)
    out = cut(img, (-40, 0, 80, 160), (64, 48), pad="black")
    assert out.shape == (64, 48, 3) and out.dtype == np.uint8
    assert (out[:, :10] == 0).all()                 # left third is beyond the photo: black
    assert (out[:30, 24:] == (200, 10, 10)).all()   # inside the photo: the photo
    assert (out[50:, 30:] == 0).all()               # below the photo: black
    grey = cut(img, (-40, 0, 80, 160), (64, 48), pad="gray")
    assert (grey[:, :10] == 128).all()
    rep = cut(img, (-40, 0, 80, 160), (64, 48), pad="replicate")
    assert (rep[:, :10] == (200, 10, 10)).all()
    # entirely outside the photo: all padding
    assert (cut(img, (500, 500, 560, 580), (8, 6), pad="gray") == 128).all()


def test_parse_margins_and_output_shape():
    assert parse_margins("0.5, 0.2,1") == (0.5, 0.2, 1.0)
    for bad in ("1,2", "a,b,c", "-1,0,0", "1,1,1,1"):
        with pytest.raises(ValueError):
            parse_margins(bad)
    assert output_shape(256, 0.75) == (256, 192)
    assert output_shape(100, 1.0) == (100, 100)


# ------------------------------------------------------------------ subject

def test_pick_subject_prefers_large_central_face_over_first_one():
    # first returned: a sharp small face in a corner (higher score); second: the large central subject
    boxes = np.array([[10, 10, 50, 50], [130, 150, 260, 300]], float)
    assert pick_subject(boxes, [0.99, 0.90], 384, 512) == 1
    # equal size: the central one wins
    boxes = np.array([[0, 300, 100, 400], [140, 200, 240, 300]], float)
    assert pick_subject(boxes, [0.95, 0.95], 384, 512) == 1
    # a near-zero score does not win on size alone
    boxes = np.array([[100, 100, 300, 300], [150, 180, 230, 260]], float)
    assert pick_subject(boxes, [0.01, 0.95], 384, 512) == 1
    assert pick_subject(np.zeros((0, 4)), [], 384, 512) is None


# ------------------------------------------------------------------ fallback

def test_assign_boxes_person_then_prior_then_centred():
    sizes = np.array([[384, 512]] * 6 + [[768, 1024]], float)
    nan = [np.nan] * 4
    boxes = np.array([
        [100, 100, 200, 200],   # A detected
        [120, 110, 220, 210],   # A detected
        nan,                    # A missed -> person median
        [50, 60, 150, 160],     # B detected
        nan,                    # C missed, no detection of C -> prior
        nan,                    # unreadable
        nan,                    # C missed on a photo twice as large -> prior scaled
    ], float)
    persons = ["A", "A", "A", "B", "C", "D", "C"]
    usable = np.array([1, 1, 1, 1, 1, 0, 1], bool)
    out, src = assign_boxes(boxes, sizes, persons, usable)
    assert list(src) == ["detected", "detected", PERSON, "detected", PRIOR, "", PRIOR]
    assert out[2] == pytest.approx([110, 105, 210, 205])
    prior = np.median(relative_boxes(boxes[[0, 1, 3]], sizes[[0, 1, 3]]), axis=0)
    assert out[4] == pytest.approx(prior * [384, 512, 384, 512])
    assert out[6] == pytest.approx(prior * [768, 1024, 768, 1024])
    assert np.isnan(out[5]).all()
    # without the person step, A's miss gets the prior
    out2, src2 = assign_boxes(boxes, sizes, persons, usable, use_person=False)
    assert src2[2] == PRIOR and out2[2] == pytest.approx(out[4])


def test_assign_boxes_with_no_detection_at_all_uses_centred_prior():
    sizes = np.array([[384, 512], [200, 200]], float)
    boxes = np.full((2, 4), np.nan)
    out, src = assign_boxes(boxes, sizes, ["A", "B"])
    assert list(src) == [PRIOR, PRIOR]
    assert out[0] == pytest.approx(centred_prior(384, 512) * [384, 512, 384, 512])
    x1, y1, x2, y2 = out[0]
    assert (x1 + x2) / 2 == pytest.approx(192) and x2 - x1 == pytest.approx(0.45 * 384) and y2 - y1 == pytest.approx(x2 - x1)
    assert dataset_prior(np.zeros((2, 4)), np.zeros(2, bool)) is None
    assert person_medians(np.zeros((2, 4)), ["A", "B"], np.zeros(2, bool)) == {}


# ------------------------------------------------------------------ compositing, contact sheet

@pytest.mark.parametrize("fill,expect", [("gray", 128), ("black", 0)])
def test_composite_replaces_background_only(fill, expect):
    img = np.full((40, 30, 3), 220, np.uint8)
    alpha = np.zeros((40, 30), np.float32)
    alpha[10:30, 5:25] = 1
    out = composite(img, alpha, fill)
    assert (out[10:30, 5:25] == 220).all() and (out[:5] == expect).all()


def test_composite_blur_keeps_person_and_softens_background():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (64, 48, 3)).astype(np.uint8)
    alpha = np.zeros((64, 48), np.float32)
    alpha[20:40, 10:30] = 1
    out = composite(img, alpha, "blur")
    assert (out[20:40, 10:30] == img[20:40, 10:30]).all()
    assert out[:10].astype(float).std() < img[:10].astype(float).std() / 3


def test_contact_sheet_grid(tmp_path):
    imgs = [np.full((64, 48, 3), v, np.uint8) for v in (0, 100, 200, 250, 30)]
    p = contact_sheet(imgs, ["a", "b", "c", "d", "e\nline 2"], tmp_path / "sheet.png", cols=2, thumb_h=64, title="t")
    with Image.open(p) as im:
        w, h = im.size
        arr = np.asarray(im.convert("RGB"))
    assert w == 2 * (48 + 3) + 3 and h > 3 * 64
    assert (arr == 200).all(axis=2).sum() > 0.8 * 64 * 48  # the third thumbnail is drawn whole
    with pytest.raises(ValueError):
        contact_sheet(imgs, ["a"], tmp_path / "x.png")
