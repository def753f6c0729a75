"""The crop stage end to end on real files: real MTCNN and MediaPipe on a real face, fallbacks, resume, reuse, bad files."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from _crop_data import astronaut_person, blank, paste_face, save, train_layout
from facecurate.curate.crop.background import find_rembg_model
from facecurate.cli.summaries import RichProgress
from facecurate.curate.cache import load_cache
from facecurate.curate.cache_writer import PARTIAL, PROGRESS
from facecurate.curate.crop import CropParams, CropStopped, crop_dataset
from facecurate.curate.detect import make_detector
from facecurate.curate.errors import InputError
from facecurate.curate.crop.geometry import contains

FAST = dict(detector="mediapipe", workers=2, batch=4)


def _crop_box_contains(row, box, tol=1.0) -> bool:
    return contains((row.crop_x1, row.crop_y1, row.crop_x2, row.crop_y2), box, tol)


@pytest.mark.parametrize("detector", ["mtcnn", "mediapipe"])
def test_real_detector_crop_contains_the_whole_head(tmp_path, detector):
    photos, _ = astronaut_person(2)
    heads = [paste_face(o)[2] for o in [(72, 60), (40, 100)]]
    root = train_layout(tmp_path / "data", {"000001_female_Asian_45": photos})
    params = CropParams(detector=detector, min_face=60, batch=2)
    cache = crop_dataset(root, tmp_path / "cache", params, device="cpu").cache
    m = cache.manifest
    assert cache.images.shape == (2, 256, 192, 3)
    assert list(m["box_source"]) == ["detected", "detected"] and (m["error"] == "").all()
    assert (m["score"] > 0.5).all()
    for row, head in zip(m.itertuples(), heads):
        assert _crop_box_contains(row, head), (row, head)  # whole hair, chin and cheeks inside the crop
    # the face is really in the written crop: a detector finds one face there, filling a good part of it
    with make_detector("mediapipe") as det:
        found = det.detect([np.ascontiguousarray(im) for im in cache.images])
    for faces in found:
        assert len(faces) >= 1
        x1, y1, x2, y2 = faces[0].box
        assert 0.3 * 192 < x2 - x1 < 0.8 * 192 and 20 < (y1 + y2) / 2 < 160
    assert (tmp_path / "cache" / "contact.png").is_file()
    meta = json.loads((tmp_path / "cache" / "meta.json").read_text())
    assert meta["complete"] and meta["params"]["detector"] == detector and meta["n"] == 2
    assert {"torch", "facenet-pytorch", "mediapipe", "numpy", "cv2", "pillow", "facecurate"} <= set(meta["versions"])
    assert CropParams.from_dict(meta["params"]) == params


def test_fallbacks_person_then_prior(tmp_path):
    a_photos, a_faces = astronaut_person(3)
    b_photos, b_faces = astronaut_person(2, start=3)
    root = train_layout(tmp_path / "data", {
        "000001_female_Asian_45": a_photos + [("normal.jpg", blank(120))],   # no face: person fallback
        "000002_male_Asian_20": [("mask1.jpg", blank(90)), ("normal.jpg", blank(160))],  # nobody found: prior
        "000003_female_White_61": b_photos,
    })
    cache = crop_dataset(root, tmp_path / "cache", CropParams(**FAST)).cache
    m = cache.manifest.set_index("image_id")
    src = m["box_source"].to_dict()
    assert src["000001_female_Asian_45/normal.jpg"] == "person"
    assert src["000002_male_Asian_20/mask1.jpg"] == "prior" and src["000002_male_Asian_20/normal.jpg"] == "prior"
    assert all(src[f"000001_female_Asian_45/{n}"] == "detected" for n, _ in a_photos)
    det = m[m["box_source"] == "detected"]
    person_rows = det.loc[[f"000001_female_Asian_45/{n}" for n, _ in a_photos]]
    fb = m.loc["000001_female_Asian_45/normal.jpg"]
    for c in ("face_x1", "face_y1", "face_x2", "face_y2"):
        assert fb[c] == pytest.approx(person_rows[c].median())  # same photo size: the median box itself
        assert m.loc["000002_male_Asian_20/mask1.jpg", c] == pytest.approx(det[c].median())
    assert np.isnan(fb["score"]) and (det["score"] > 0.5).all()
    assert fb["crop_x2"] > fb["crop_x1"] and cache.images[cache.manifest.index[cache.manifest["image_id"] == "000001_female_Asian_45/normal.jpg"][0]].any()


def test_prior_from_photo_size_when_nothing_is_detected(tmp_path):
    root = train_layout(tmp_path / "data", {"000001_female_Asian_45": [("mask1.jpg", blank(100)), ("normal.png", blank(170))]})
    cache = crop_dataset(root, tmp_path / "cache", CropParams(**FAST)).cache
    m = cache.manifest
    assert list(m["box_source"]) == ["prior", "prior"]
    assert (m["face_x1"] + m["face_x2"]).to_numpy() / 2 == pytest.approx([192, 192])


def test_crop_runs_opencv_single_threaded_and_gives_its_threads_back(tmp_path, monkeypatch):
    """crop already runs photos side by side; OpenCV's own pool is held to one thread inside it, then restored."""
    import cv2

    from facecurate.curate.crop import first_look

    seen = []
    real = first_look.image_cues
    monkeypatch.setattr(first_look, "image_cues", lambda *a: (seen.append(cv2.getNumThreads()), real(*a))[1])
    cv2.setNumThreads(2)
    photos, _ = astronaut_person(2)
    root = train_layout(tmp_path / "data", {"000001_female_Asian_45": photos})
    crop_dataset(root, tmp_path / "cache", CropParams(**FAST))
    assert seen and set(seen) == {1}
    assert cv2.getNumThreads() == 2


def _layout_for_resume(tmp_path):
    photos, _ = astronaut_person(5)
    return train_layout(tmp_path / "data", {
        "000001_female_Asian_45": photos[:3] + [("normal.jpg", blank(100))],
        "000002_male_Asian_20": photos[3:],
    })


def test_interrupted_run_resumes_and_equals_an_uninterrupted_run(tmp_path, capsys):
    root = _layout_for_resume(tmp_path)
    params = CropParams(chunk=2, **FAST)
    with pytest.raises(CropStopped):
        crop_dataset(root, tmp_path / "cut", params, stop_after_chunks=1)
    with pytest.raises(InputError):
        load_cache(tmp_path / "cut")  # a partial cache is never read as a cache
    assert json.loads((tmp_path / "cut" / "meta.json").read_text())["complete"] is False
    progress = json.loads((tmp_path / "cut" / PARTIAL / PROGRESS).read_text())
    assert progress["done"] == [0] and progress["chunk"] == 2
    first_chunk = np.array(np.load(tmp_path / "cut" / "images.npy", mmap_mode="r")[:2])
    assert first_chunk.any()
    # resume (with another --chunk: the partial cache keeps its own)
    with RichProgress() as shown:
        resumed = crop_dataset(root, tmp_path / "cut", CropParams(chunk=3, **FAST), progress=shown).cache
    assert "resuming" in capsys.readouterr().out
    assert resumed.meta["chunks_resumed"] == 1 and resumed.meta["chunks"] == 3
    assert not (tmp_path / "cut" / PARTIAL).exists()
    assert np.array_equal(np.asarray(resumed.images[:2]), first_chunk)  # the finished chunk was not redone
    whole = crop_dataset(root, tmp_path / "whole", params).cache
    assert np.array_equal(np.asarray(resumed.images), np.asarray(whole.images))
    cols = ["image_id", "box_source", "face_x1", "face_y2", "crop_x1", "crop_y2", "score", "error"]
    pd.testing.assert_frame_equal(resumed.manifest[cols], whole.manifest[cols])
    assert "person" in set(whole.manifest["box_source"])


def test_unchanged_cache_is_reused_and_changes_recompute(tmp_path, capsys):
    photos, _ = astronaut_person(2)
    root = train_layout(tmp_path / "data", {"000001_female_Asian_45": photos})
    out = tmp_path / "cache"
    crop_dataset(root, out, CropParams(**FAST))
    stamp = os.stat(out / "images.npy").st_mtime_ns
    with RichProgress() as shown:  # runtime knobs only
        again = crop_dataset(root, out, CropParams(detector="mediapipe", workers=1, batch=1), progress=shown).cache
    assert "cache reused" in capsys.readouterr().out
    assert os.stat(out / "images.npy").st_mtime_ns == stamp and len(again.manifest) == 2
    with RichProgress() as shown:  # a shaping parameter changed
        crop_dataset(root, out, CropParams(size=128, **FAST), progress=shown, replace=True)
    assert "cache reused" not in capsys.readouterr().out
    assert load_cache(out).images.shape == (2, 128, 96, 3)
    stamp = os.stat(out / "images.npy").st_mtime_ns
    save(blank(50), root / "images" / "000001_female_Asian_45" / "mask2.jpg")  # an input changed
    changed = crop_dataset(root, out, CropParams(size=128, **FAST)).cache
    assert os.stat(out / "images.npy").st_mtime_ns != stamp
    assert changed.manifest.set_index("image_id").loc["000001_female_Asian_45/mask2.jpg", "box_source"] == "person"


def test_bad_files_are_listed_and_the_run_goes_on(tmp_path):
    photos, _ = astronaut_person(2)
    root = train_layout(tmp_path / "data", {"000001_female_Asian_45": photos})
    folder = root / "images" / "000001_female_Asian_45"
    (folder / "mask3.jpg").write_bytes(b"")
    good = (folder / "mask1.jpg").read_bytes()
    (folder / "mask4.jpg").write_bytes(good[: len(good) // 2])
    (folder / "mask5.jpg").write_text("this is not a photo")
    cache = crop_dataset(root, tmp_path / "cache", CropParams(**FAST)).cache
    m = cache.manifest.set_index("image_id")
    err = m["error"].to_dict()
    p = "000001_female_Asian_45/"
    assert "empty" in err[p + "mask3.jpg"] and "truncated" in err[p + "mask4.jpg"] and "not an image" in err[p + "mask5.jpg"]
    assert err[p + "mask1.jpg"] == "" and m.loc[p + "mask1.jpg", "box_source"] == "detected"
    bad = cache.manifest.index[cache.manifest["error"] != ""]
    assert len(bad) == 3 and not np.asarray(cache.images[bad]).any()
    assert list(cache.usable()) == list(cache.manifest.index[cache.manifest["error"] == ""])
    assert set(m.loc[[p + "mask3.jpg", p + "mask4.jpg"], "box_source"]) == {""}


def test_eval_layout_plain_folder_and_csv(tmp_path):
    img, face, head = paste_face((72, 60))
    ev = tmp_path / "eval"
    save(img, ev / "images" / "a1.jpg")
    save(blank(), ev / "images" / "b2.png")
    (ev / "info.csv").write_text("ImageID,ans\nb2.png,0\na1.jpg,0\n")
    c = crop_dataset(ev, tmp_path / "c_eval", CropParams(**FAST)).cache
    assert list(c.manifest["image_id"]) == ["b2.png", "a1.jpg"]  # info.csv's order, for submission.csv
    assert list(c.manifest["box_source"]) == ["prior", "detected"]
    assert _crop_box_contains(c.manifest.iloc[1], head)
    plain = tmp_path / "plain"
    save(img, plain / "x" / "one.jpg")
    c = crop_dataset(plain, tmp_path / "c_plain", CropParams(**FAST)).cache
    assert c.meta["layout"] == "folder" and list(c.manifest["box_source"]) == ["detected"]
    (plain / "list.csv").write_text("path,person\nx/one.jpg,p1\n")
    c = crop_dataset(plain / "list.csv", tmp_path / "c_csv", CropParams(**FAST)).cache
    assert c.meta["layout"] == "csv" and c.manifest["person"].tolist() == ["p1"]


def test_mediapipe_background_fill(tmp_path):
    photos, _ = astronaut_person(1)
    root = train_layout(tmp_path / "data", {"000001_female_Asian_45": photos})
    plain = crop_dataset(root, tmp_path / "plain", CropParams(**FAST)).cache.images[0].astype(int)
    black = crop_dataset(root, tmp_path / "black", CropParams(background="mediapipe", fill="black", **FAST)).cache.images[0].astype(int)
    # the canvas around the head (grey 150 in the photo) turns black; the face centre stays
    assert plain[:12, :12].mean() > 100 and black[:12, :12].mean() < 30
    assert np.abs(black[90:130, 80:110] - plain[90:130, 80:110]).mean() < 10


def test_rembg_without_model_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "u2net"))
    with pytest.raises(InputError, match="U2NET_HOME") as e:
        find_rembg_model("u2netp")
    assert "\n" not in str(e.value) and "--background mediapipe" in str(e.value)
    photos, _ = astronaut_person(1)
    root = train_layout(tmp_path / "data", {"000001_female_Asian_45": photos})
    with pytest.raises(InputError, match="u2netp"):
        crop_dataset(root, tmp_path / "cache", CropParams(background="rembg", **FAST)).cache
    assert not (tmp_path / "cache").exists()


def test_cli_crop_and_bad_option(tmp_path):
    from facecurate.cli import app

    photos, _ = astronaut_person(2)
    root = train_layout(tmp_path / "data", {"000001_female_Asian_45": photos})
    runner = CliRunner()
    res = runner.invoke(app, ["crop", str(root), "--out", str(tmp_path / "cache"), "--detector", "mediapipe",
                              "--size", "128", "--margins", "0.8,0.5,0.6"])
    assert res.exit_code == 0, res.output
    cache = load_cache(tmp_path / "cache")
    assert cache.images.shape == (2, 128, 96, 3) and cache.meta["params"]["margins"] == [0.8, 0.5, 0.6]
    with Image.open(tmp_path / "cache" / "contact.png") as im:
        assert im.size[0] > 96
    res = runner.invoke(app, ["crop", str(root), "--out", str(tmp_path / "c2"), "--margins", "1,2"])
    assert res.exit_code == 2 and "margins" in res.output
    res = runner.invoke(app, ["crop", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "nowhere" in res.output


class _Recorder:
    """A Progress that keeps what a stage reported."""

    def __init__(self):
        self.updates, self.notes = [], []

    def update(self, task, done, total, info=""):
        self.updates.append((task, done, total))

    def note(self, text):
        self.notes.append(text)


def test_the_stage_prints_nothing_and_reports_through_progress(tmp_path, capsys):
    photos, _ = astronaut_person(2)
    root = train_layout(tmp_path / "data", {"000001_female_Asian_45": photos})
    rec = _Recorder()
    result = crop_dataset(root, tmp_path / "cache", CropParams(**FAST), progress=rec)
    assert capsys.readouterr().out == ""
    assert ("crop", 2, 2) in rec.updates and result.state == "fresh" and result.computed == 2
    again = crop_dataset(root, tmp_path / "cache", CropParams(**FAST), progress=rec)
    assert again.state == "complete" and any("cache reused" in n for n in rec.notes)
    assert capsys.readouterr().out == ""


def _crowded_person(hidden=(2, 5)):
    """One person's 7 photos with two smaller copies of the face in the backdrop (passers-by, a poster);
    in the ``hidden`` photos the subject's own face is blurred away, so only the background faces are found."""
    import cv2
    from skimage.data import astronaut

    src = astronaut()[0:330, 100:340]
    small = cv2.resize(src, (src.shape[1] // 2, src.shape[0] // 2), interpolation=cv2.INTER_AREA)
    offsets = [(72, 80), (60, 90), (84, 74), (66, 70), (78, 92), (70, 84), (80, 78)]  # one person's framing
    photos, faces = [], []
    stems = ["mask1", "mask2", "mask3", "mask4", "mask5", "incorrect_mask", "normal"]
    for k, (stem, off) in enumerate(zip(stems, offsets)):
        img, face, _ = paste_face(off)
        for x, y in ((6, 4), (378 - small.shape[1], 10)):
            img[y:y + small.shape[0], x:x + small.shape[1]] = small
        if k in hidden:
            x1, y1, x2, y2 = (int(v) for v in face)
            img[y1:y2, x1:x2] = cv2.GaussianBlur(img[y1:y2, x1:x2], (0, 0), 25)
        photos.append((f"{stem}.jpg", img))
        faces.append(face)
    return photos, faces


def test_the_persons_other_photos_decide_which_face_is_theirs(tmp_path):
    """Background faces lose to the person's consensus; a photo whose only faces are in the background gets the
    person box (the rejected box kept for review); without the consensus those crops miss the subject."""
    photos, faces = _crowded_person()
    root = train_layout(tmp_path / "data", {"000001_female_Asian_45": photos})
    result = crop_dataset(root, tmp_path / "cache", CropParams(**FAST))
    m = result.cache.manifest
    assert all(_crop_box_contains(r, f) for r, f in zip(m.itertuples(), faces))  # the whole face in every crop
    hidden = m["image_id"].str.contains("mask3|incorrect_mask")
    assert (m.loc[hidden, "box_source"] == "person").all() and (m.loc[~hidden, "box_source"] == "detected").all()
    assert m.loc[hidden, "rejected_x1"].notna().all() and m.loc[~hidden, "rejected_x1"].isna().all()
    assert result.rejected == 2 and result.off_person == 0
    plain = crop_dataset(root, tmp_path / "plain", CropParams(person_consensus=False, **FAST)).cache.manifest
    missed = [not _crop_box_contains(r, f) for r, f in zip(plain.itertuples(), faces)]
    assert sum(missed) == 2 and all(np.array(missed) == hidden.to_numpy())


def test_single_photos_keep_the_large_and_central_rule(tmp_path):
    """Eval layout: every photo is its own person; the big central face wins over the passers-by."""
    from PIL import Image

    photos, faces = _crowded_person(hidden=())
    (tmp_path / "ev" / "images").mkdir(parents=True)
    for name, img in photos:
        Image.fromarray(img).save(tmp_path / "ev" / "images" / name)
    pd.DataFrame({"ImageID": [n for n, _ in photos], "ans": 0}).to_csv(tmp_path / "ev" / "info.csv", index=False)
    m = crop_dataset(tmp_path / "ev", tmp_path / "c", CropParams(**FAST)).cache.manifest.set_index("image_id")
    for (name, _), face in zip(photos, faces):
        assert _crop_box_contains(m.loc[name], face) and m.loc[name, "box_source"] == "detected"


def test_mediapipe_and_litert_say_nothing_on_stderr(tmp_path):
    """Their native log lines ("Logging before InitGoogle()", "Input tensor memory is not aligned") are silenced at the
    source: a whole `crop` process, detection and segmentation included, writes nothing to stderr."""
    import subprocess
    import sys

    photos, _ = astronaut_person(2)
    root = train_layout(tmp_path / "data", {"000001_female_Asian_45": photos})
    r = subprocess.run([sys.executable, "-m", "facecurate", "crop", str(root), "--out", str(tmp_path / "c"),
                        "--background", "mediapipe"], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "cache:" in r.stdout, r.stderr
    assert r.stderr == ""


def _bystander_person(blur: float = 2.5, scale: float = 0.8):
    """One person's 7 photos: the astronaut off-centre on the right, and behind her a smaller, blurred astronaut (a
    bystander) nearer the centre, at the same place in every photo. Returns (photos, subject face boxes, bystander box)."""
    import cv2
    from skimage.data import astronaut

    src = astronaut()[0:330, 165:290]  # face at x 10..100, y 60..175 of this strip
    by = cv2.GaussianBlur(cv2.resize(src, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), (0, 0), blur)
    bx0, by0 = int(185 - 55 * scale), int(200 - 117 * scale)
    by_face = (bx0 + 10 * scale, by0 + 60 * scale, bx0 + 100 * scale, by0 + 175 * scale)
    photos, faces = [], []
    stems = ["mask1", "mask2", "mask3", "mask4", "mask5", "incorrect_mask", "normal"]
    for k, (dx, dy) in enumerate([(0, 0), (6, 4), (-5, 8), (4, -6), (-6, -3), (3, 7), (-2, 2)]):
        rng = np.random.default_rng(k)
        img = cv2.GaussianBlur(cv2.add(np.full((512, 384, 3), 120, np.uint8), rng.integers(0, 30, (512, 384, 3), dtype=np.uint8)), (0, 0), 3)
        img[by0:by0 + by.shape[0], bx0:bx0 + by.shape[1]] = by
        sx, sy = 226 + dx, 80 + dy
        img[sy:sy + 330, sx:sx + 125] = src[:512 - sy, :384 - sx]
        photos.append((f"{stems[k]}.jpg", img))
        faces.append((sx + 10, sy + 60, sx + 100, sy + 175))
    return photos, faces, by_face


def _iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(x2 - x1, 0) * max(y2 - y1, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_a_blurred_bystander_at_the_same_place_loses_to_the_sharp_subject(tmp_path):
    """Large-and-central alone picks the bystander in every photo (so the old consensus locked onto it); the subject
    rule's focus cue picks the subject in all 7, keeps the bystander as the runner-up with a positive margin."""
    from facecurate.curate.crop.cues import image_cues
    from facecurate.curate.crop.subject import pick_subject

    photos, faces, by_face = _bystander_person()
    root = train_layout(tmp_path / "data", {"000001_female_White_45": photos})
    m = crop_dataset(root, tmp_path / "cache", CropParams(**FAST)).cache.manifest
    assert (m["box_source"] == "detected").all() and (m["n_faces"] == 2).all()
    for r, face in zip(m.itertuples(), faces):
        assert _crop_box_contains(r, face)
        assert _iou((r.face_x1, r.face_y1, r.face_x2, r.face_y2), face) > 0.5
        assert _iou((r.runner_x1, r.runner_y1, r.runner_x2, r.runner_y2), by_face) > 0.5 and r.margin > 0
    # the old rule (large and central) on the same detections: the bystander, every time
    with make_detector("mediapipe") as det:
        found = det.detect([img for _, img in photos])
    for (_, img), fs in zip(photos, found):
        boxes = np.array([f.box for f in fs])
        old = boxes[pick_subject(boxes, [f.score for f in fs], 384, 512)]
        assert _iou(old, by_face) > 0.5
        focus, _ = image_cues(img, boxes)
        assert focus[np.argmax([_iou(b, by_face) for b in boxes])] < focus.max()  # the bystander is the softer one


def test_the_person_vote_can_be_outvoted_and_never_alone_moves_a_person(tmp_path):
    """The rule's pure parts: with no image cues it is today's ranking; the person's consensus adds at most
    ``person`` to a face's evidence, so a much sharper face elsewhere still wins; the runner-up is never the same face."""
    from facecurate.curate.crop.subject import WEIGHTS, choose, closeness, own_evidence, pick_subject

    boxes = np.array([[40, 40, 120, 130], [150, 150, 250, 260], [152, 150, 250, 262]], float)
    scores = [0.95, 0.9, 0.8]
    plain = own_evidence(boxes, scores, 384, 512)
    assert int(np.argmax(plain)) == pick_subject(boxes, scores, 384, 512)
    ch = choose(plain, boxes)
    assert ch.index == 1 and ch.runner == 0  # box 2 is box 1 seen again, not a rival
    consensus = boxes[0] / np.array([384, 512, 384, 512])
    vote = WEIGHTS.person * closeness(boxes, 384, 512, consensus)
    assert vote.max() <= WEIGHTS.person + 1e-9
    sharp = own_evidence(boxes, scores, 384, 512, focus=[0.4, 2.5, 2.5])
    assert choose(sharp + vote, boxes).index == 1  # the person's vote for box 0 is outvoted by focus


def test_old_caches_load_with_the_subject_columns_blank(tmp_path):
    """A cache written before the runner-up and margin columns existed still loads; those columns read as NaN."""
    from facecurate.curate.cache import SUBJECT_COLUMNS

    photos, _ = astronaut_person(2)
    root = train_layout(tmp_path / "data", {"000001_female_Asian_45": photos})
    cache = crop_dataset(root, tmp_path / "cache", CropParams(**FAST)).cache
    assert set(SUBJECT_COLUMNS) <= set(cache.manifest.columns)
    cache.manifest.drop(columns=SUBJECT_COLUMNS).to_parquet(tmp_path / "cache" / "manifest.parquet")
    old = load_cache(tmp_path / "cache", verify="off").manifest
    assert set(SUBJECT_COLUMNS) <= set(old.columns) and old[SUBJECT_COLUMNS].isna().all().all()


def test_the_forecast_loads_the_full_look_only_when_a_photo_is_in_doubt():
    """Pass 1's forecast (``FullLookForecast``): photos framed alike and clear are never in doubt; the first winner far
    off the framing of the picks seen so far is (as pass 2's ``in_doubt`` would say), and after it nothing is; a photo
    without a face is in doubt from the start."""
    from facecurate.curate.crop.first_look import FullLookForecast
    from facecurate.curate.crop.subject import choose, own_evidence

    def look(forecast, box, w=384, h=512):
        boxes = np.array([box], float)
        return forecast.in_doubt(choose(own_evidence(boxes, [0.9], w, h), boxes), boxes, [0.9], w, h)

    rng = np.random.default_rng(0)
    framed = FullLookForecast(min_picks=8, every=4)
    assert not any(look(framed, np.array([140, 150, 240, 270]) + rng.normal(0, 3, 4)) for _ in range(40))
    assert framed.prior is not None and not framed.done
    assert look(framed, [10, 380, 60, 440])  # a face a whole face width off the framing: pass 2 will look again
    assert not look(framed, [10, 380, 60, 440]) and framed.done  # told once
    empty = FullLookForecast()
    assert empty.in_doubt(choose(np.zeros(0), np.zeros((0, 4))), np.zeros((0, 4)), [], 384, 512)


def test_a_box_on_part_of_the_face_gives_the_person_box():
    """The full look found only a box on the lower half of a masked face (inside the person's usual face box, a third
    of its area) and a bystander beside it: the photo gets the person box, the partial box kept as rejected; the
    person's other photos keep their own boxes (``subject.part_of`` in ``decide_subjects``)."""
    from facecurate.curate.crop.fallback import DETECTED, PERSON
    from facecurate.curate.crop.person_pass import FACE_COLS, REJECTED_COLS, candidates_json, decide_subjects
    from facecurate.curate.crop.subject import part_of
    from facecurate.curate.detect import Face

    w, h = 384, 512
    rel = lambda b: np.asarray(b, float) / np.array([w, h, w, h])  # noqa: E731
    face, partial, bystander = (100, 160, 250, 330), (157, 194, 246, 285), (20, 60, 157, 214)
    assert part_of(rel(partial), rel(face)) and not part_of(rel(face), rel(face)) and not part_of(rel(bystander), rel(face))
    assert not part_of(rel((110, 170, 240, 320)), rel(face))  # a slightly smaller face is the face, not a part of it
    kp = np.zeros((4, 2), np.float32)
    photos = [[Face(face, 0.95, kp, "x"), Face(bystander, 0.6, kp, "x")] for _ in range(3)]
    photos.append([Face(partial, 0.9, kp, "x"), Face(bystander, 0.6, kp, "x")])
    rows = pd.DataFrame({"width": w, "height": h, "error": "", "clear": False, "score": np.nan,
                         "candidates": [candidates_json(f) for f in photos]})
    for c in FACE_COLS:
        rows[c] = np.nan
    out = decide_subjects(rows, ["p1"] * 4)
    assert out["box_source"].tolist() == [DETECTED] * 3 + [PERSON]
    np.testing.assert_allclose(out.loc[:2, FACE_COLS].to_numpy(), [face] * 3)
    np.testing.assert_allclose(out.loc[3, REJECTED_COLS].to_numpy(np.float64), partial)
    np.testing.assert_allclose(out.loc[3, FACE_COLS].to_numpy(np.float64), face, atol=1e-6)


def test_a_lone_bystander_beside_a_steady_person_gives_the_person_box():
    """000041's case on the crowded bench set: a person framed steadily (their face at one place in every photo), and
    in one photo no detector found the subject, only a bystander whose centre lies 0.9 face widths from the person's
    consensus: it is not taken for the subject (within 3/4 of a face width for a steady person), the photo gets the
    person box and the bystander is kept as rejected; a photo where the subject sits 0.4 face widths off keeps its
    own face. A person whose photos move (faces 0.4-0.6 face widths apart) keeps one face width: their lone face 0.9
    off is theirs."""
    from facecurate.curate.crop.fallback import DETECTED, PERSON
    from facecurate.curate.crop.person_pass import FACE_COLS, REJECTED_COLS, candidates_json, decide_subjects
    from facecurate.curate.crop.subject import disagreement
    from facecurate.curate.detect import Face

    w, h = 384, 512
    face = np.array([60.0, 130.0, 210.0, 300.0])  # 150 px wide
    beside = face + [135, -20, 135, -20]            # 0.9 face widths to the right, a little higher
    moved = face + [60, 0, 60, 0]                   # the subject 0.4 face widths off
    rel = lambda b: np.asarray(b, float).reshape(-1, 4) / np.array([w, h, w, h])  # noqa: E731
    d, _ = disagreement(rel([beside, moved]), rel(face)[0], w / h)
    np.testing.assert_allclose(d, [np.hypot(135, 20) / 150, 0.4], atol=1e-9)
    kp = np.zeros((4, 2), np.float32)
    photos = [[Face(tuple(face), 0.95, kp, "x"), Face(tuple(beside), 0.7, kp, "x")] for _ in range(4)]
    photos.append([Face(tuple(beside), 0.9, kp, "x")])                               # only the bystander found
    photos.append([Face(tuple(moved), 0.9, kp, "x"), Face(tuple(beside), 0.7, kp, "x")])
    # a second person, framed loosely: one face a photo, 0.4-0.6 face widths around the same place, one 0.9 off
    shifts = [(0, 0), (60, 0), (-60, 0), (0, 60), (0, -90), (135, -20)]
    loose = [[Face(tuple(face + [dx, dy, dx, dy]), 0.95, kp, "x")] for dx, dy in shifts]
    rows = pd.DataFrame({"width": w, "height": h, "error": "", "clear": False, "score": np.nan,
                         "candidates": [candidates_json(f) for f in photos + loose]})
    for c in FACE_COLS:
        rows[c] = np.nan
    out = decide_subjects(rows, ["p1"] * 6 + ["p2"] * 6)
    assert out["box_source"].tolist() == [DETECTED] * 4 + [PERSON, DETECTED] + [DETECTED] * 6
    np.testing.assert_allclose(out.loc[4, REJECTED_COLS].to_numpy(np.float64), beside)
    np.testing.assert_allclose(out.loc[4, FACE_COLS].to_numpy(np.float64), face, atol=1e-6)
    np.testing.assert_allclose(out.loc[5, FACE_COLS].to_numpy(np.float64), moved)
    np.testing.assert_allclose(out.loc[11, FACE_COLS].to_numpy(np.float64), face + [135, -20, 135, -20])
