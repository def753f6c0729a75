"""`synth` on astronaut-based faces: layout and labels read back, masks sit on the detected keypoints,
a seed reproduces the files byte for byte, injected errors are exactly those listed, eval layout, skips."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _recording import Notes, file_tree
from PIL import Image
from typer.testing import CliRunner

from facecurate.cli import app

from facecurate.curate.decode import read_rgb
from facecurate.curate.detect import make_detector
from facecurate.curate.errors import InputError
from facecurate.curate.labels import age_group
from facecurate.curate.synth.masks import MASK_STYLES, WEARS, draw_mask, mask_geometry
from facecurate.curate.labels import PHOTO_STEMS
from facecurate.curate.readers import read_eval, read_train
from facecurate.curate.synth import (
    FaceSource,
    SynthParams,
    SynthStopped,
    astronaut_variants,
    build_demo_sample,
    read_person_mask,
    synthesize_sources,
)
from facecurate.curate.synth.keypoints import find_keypoints
from facecurate.curate.synth.plan import draw_order, parse_balance, parse_inject, plan_injection
from facecurate.curate.synth.render import render_person

ROOT = Path(__file__).resolve().parents[1]
INJECT = {"gender": 0.2, "age": 0.2, "swap": 0.2}


@pytest.fixture(scope="module")
def detector():
    with make_detector("mtcnn") as det:
        yield det


@pytest.fixture(scope="module")
def demo(tmp_path_factory, detector):
    """10 people built offline from the astronaut, 2 of each injected error kind."""
    out = tmp_path_factory.mktemp("demo") / "train"
    result = build_demo_sample(out, people=10, seed=3, inject=INJECT, detector=detector)
    return out, result


def _patch(img: np.ndarray, xy, r: int = 2) -> np.ndarray:
    x, y = int(round(xy[0])), int(round(xy[1]))
    return img[y - r:y + r + 1, x - r:x + r + 1].reshape(-1, 3).astype(np.float32).mean(0)


def _change(after: np.ndarray, before: np.ndarray, xy, r: int = 2) -> float:
    """Largest per-pixel change (grey levels, any channel) in the 5 x 5 patch around a keypoint."""
    x, y = int(round(xy[0])), int(round(xy[1]))
    a, b = after[y - r:y + r + 1, x - r:x + r + 1], before[y - r:y + r + 1, x - r:x + r + 1]
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


# ----------------------------------------------------------------------------- masks on keypoints


def test_masks_cover_nose_and_mouth_or_expose_them_as_worn(detector):
    """Against keypoints the real detector finds on the astronaut: alpha and pixels at nose and mouth."""
    img = astronaut_variants(1, seed=5)[0]
    (kp, _), = find_keypoints([img], detector)
    nose, mouth = kp[2], kp[3]
    rng = np.random.default_rng(0)
    for style in MASK_STYLES:
        for wear in WEARS:
            for _ in range(3):  # shape jitter must never break the rule
                out, alpha = draw_mask(img, kp, style, wear, rng)
                a_nose = alpha[int(round(nose[1])), int(round(nose[0]))]
                a_mouth = alpha[int(round(mouth[1])), int(round(mouth[0]))]
                d_nose = _change(out, img, nose)
                d_mouth = _change(out, img, mouth)
                if wear == "correct":
                    assert a_nose > 0.99 and a_mouth > 0.99, (style.name, wear)
                    assert d_nose > 20 and d_mouth > 20, (style.name, wear, d_nose, d_mouth)
                elif wear == "nose":
                    assert a_nose == 0 and a_mouth > 0.99, (style.name, wear)
                    assert d_nose == 0 and d_mouth > 20, (style.name, wear, d_mouth)
                else:
                    assert a_nose == 0 and a_mouth == 0, (style.name, wear)
                    assert d_nose == 0 and d_mouth == 0, (style.name, wear)
            # a real mask, not a box: wider than tall at the top? no: it spans cheek to cheek and nose to chin
            ys, xs = np.nonzero(alpha > 0.5)
            eye_dist = float(np.linalg.norm(kp[1] - kp[0]))
            assert 1.6 * eye_dist < xs.max() - xs.min() < 2.4 * eye_dist
            fill = (alpha > 0.5).sum() / ((xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1))
            assert 0.6 < fill < 0.95, (style.name, wear, fill)  # rounded corners, not a rectangle


def test_mask_geometry_follows_the_keypoints():
    """Moving and scaling the face moves and scales the mask with it; incorrect wears sit lower."""
    kp = np.array([[100, 100], [140, 100], [120, 124], [120, 145]], np.float32)
    g = mask_geometry(kp, "correct")
    g2 = mask_geometry(kp * 2 + 30, "correct")
    assert g == g2  # the face frame is scale and translation invariant
    assert mask_geometry(kp, "nose").top > 0.5 > g.top  # nose tip at y = 24/45 of eyes-to-mouth
    assert mask_geometry(kp, "chin").top > 1.0


def test_render_person_masks_sit_on_each_photos_keypoints(detector):
    img = astronaut_variants(2, seed=9)[1]
    (kp, _), = find_keypoints([img], detector)
    wears = set()
    for seed in range(6):
        photos = render_person([(img, kp)], 45, np.random.default_rng(seed))
        assert list(photos) == list(PHOTO_STEMS)
        for stem, ph in photos.items():
            assert ph["image"].shape == (512, 384, 3) and ph["image"].dtype == np.uint8
            nose, mouth = ph["keypoints"][2], ph["keypoints"][3]
            at = (lambda p: ph["alpha"][int(round(p[1])), int(round(p[0]))]) if ph["alpha"] is not None else None
            if stem.startswith("mask"):
                assert at(nose) > 0.99 and at(mouth) > 0.99 and ph["wear"] == "correct"
            elif stem == "incorrect_mask":
                assert at(nose) == 0 and ph["wear"] in ("nose", "chin")
                wears.add(ph["wear"])
            else:
                assert ph["alpha"] is None and ph["wear"] == "none"
    assert wears == {"nose", "chin"}  # the incorrect variant is drawn per person


# ----------------------------------------------------------------------------- the written layout


def test_train_layout_reads_back_with_the_written_labels(demo):
    out, result = demo
    ds = read_train(out)
    assert not [p for p in ds.problems if p.level == "error"]
    m = ds.manifest
    assert result.people == 10 and len(m) == 70 and m.groupby("person").size().eq(7).all()
    train = pd.read_csv(out / "train.csv", dtype=str)
    assert list(train.columns) == ["id", "gender", "race", "age", "path"]
    assert set(train["gender"]) <= {"male", "female"}
    for row in train.itertuples():
        assert row.path == f"{row.id}_{row.gender}_{row.race}_{row.age}"
        got = m[m["person"] == row.path]
        assert sorted(got["photo"]) == sorted(PHOTO_STEMS)
        assert (got["gender"] == {"male": 0, "female": 1}[row.gender]).all() and (got["age"] == int(row.age)).all()
    for p in m["path"].sample(7, random_state=0):
        with Image.open(p) as im:
            assert im.size == (384, 512) and im.mode == "RGB"
    # every gender x age group cell is present (the demo spreads its people over all of them)
    truth = pd.read_csv(out / "truth.csv")
    assert truth.groupby(["gender", "age_group"])["person"].nunique().size == 6
    assert (out / "contact.png").is_file()


def test_written_photos_show_the_mask_at_the_keypoints(demo):
    """In the JPEGs: masks change nose and mouth against the same person's normal photo; incorrect ones leave the exposed part alone."""
    out, _ = demo
    truth = pd.read_csv(out / "truth.csv")
    for person, rows in truth.groupby("person"):
        by = rows.set_index("true_photo")
        imgs = {s: read_rgb(out / "images" / r["image_id"]) for s, r in by.iterrows()}
        kp = {s: (r[["nose_x", "nose_y"]].to_numpy(float), r[["mouth_x", "mouth_y"]].to_numpy(float)) for s, r in by.iterrows()}
        normal = imgs["normal"]
        for s in ("mask1", "mask2"):  # plain colours: patterned masks can match skin in a small patch
            assert np.abs(_patch(imgs[s], kp[s][0]) - _patch(normal, kp["normal"][0])).max() > 30, (person, s)
            assert np.abs(_patch(imgs[s], kp[s][1]) - _patch(normal, kp["normal"][1])).max() > 30, (person, s)
        exposed = 0 if by.loc["incorrect_mask", "wear"] == "nose" else 1
        diff = np.abs(_patch(imgs["incorrect_mask"], kp["incorrect_mask"][exposed]) - _patch(normal, kp["normal"][exposed])).max()
        assert diff < 30, (person, diff)


def test_injected_errors_are_exactly_those_listed(demo):
    out, _ = demo
    inj = pd.read_csv(out / "injected.csv", dtype=str)
    assert inj["kind"].value_counts().to_dict() == {"gender": 2, "age": 2, "swap": 2}
    m = read_train(out).manifest
    truth = pd.read_csv(out / "truth.csv")
    merged = m.merge(truth, on="image_id", suffixes=("", "_true"))
    assert len(merged) == len(m)
    per = merged.groupby("person").agg(g=("gender", "first"), gt=("gender_true", "first"), a=("age", "first"),
                                       at=("age_true", "first"))
    flipped = set(per.index[per["g"] != per["gt"]])
    aged = set(per.index[per["a"] != per["at"]])
    swapped = set(merged.loc[merged["photo"] != merged["true_photo"], "person"])
    assert flipped == set(inj.loc[inj["kind"] == "gender", "person"])
    assert aged == set(inj.loc[inj["kind"] == "age", "person"])
    assert swapped == set(inj.loc[inj["kind"] == "swap", "person"])
    for r in inj.itertuples():
        if r.kind == "age":  # moved to another age group
            assert age_group(int(r.true)) != age_group(int(r.written)) and per.loc[r.person, "a"] == int(r.written)
        if r.kind == "gender":
            assert per.loc[r.person, "gt"] == int(r.true) and per.loc[r.person, "g"] == int(r.written) != int(r.true)
    sw = merged[merged["person"].isin(swapped)]
    assert set(zip(sw["photo"], sw["true_photo"])) >= {("normal", "incorrect_mask"), ("incorrect_mask", "normal")}
    assert (sw.loc[sw["photo"] == "normal", "mask_true"] == 1).all()  # the file named normal holds the incorrect mask


def test_same_seed_writes_the_same_files(tmp_path, detector):
    a = build_demo_sample(tmp_path / "a", people=4, seed=11, inject={"swap": 0.25})  # its own detector
    b = build_demo_sample(tmp_path / "b", people=4, seed=11, inject={"swap": 0.25}, detector=detector)
    assert a.people == b.people == 4
    for name in ("train.csv", "truth.csv", "injected.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a" / "images").rglob("*.jpg"))
    assert len(files) == 28
    for f in files:
        assert np.array_equal(read_rgb(tmp_path / "a" / f), read_rgb(tmp_path / "b" / f)), f
    build_demo_sample(tmp_path / "c", people=2, seed=12, detector=detector)
    assert (tmp_path / "c" / "train.csv").read_bytes() != (tmp_path / "a" / "train.csv").read_bytes()


def test_eval_layout_writes_info_csv_and_a_separate_truth(tmp_path, detector):
    out = tmp_path / "eval"
    r = build_demo_sample(out, people=3, seed=2, eval_layout=True, detector=detector)
    info = pd.read_csv(out / "info.csv", dtype=str)
    assert list(info.columns) == ["ImageID", "ans"] and len(info) == 21 == r.photos
    assert all(re.fullmatch(r"[0-9a-f]{40}\.jpg", n) for n in info["ImageID"])
    assert not (out / "train.csv").exists()
    ds = read_eval(out)
    assert len(ds.manifest) == 21 and not ds.problems and ds.manifest["label"].isna().all()
    truth = pd.read_csv(out / "truth.csv")
    assert set(truth["image_id"]) == set(info["ImageID"])
    assert all(sorted(v) == [0, 0, 0, 0, 0, 1, 2] for _, v in truth.groupby("person")["mask"])
    assert truth["label"].between(0, 17).all()
    with pytest.raises(InputError):
        build_demo_sample(tmp_path / "e2", people=2, eval_layout=True, inject={"gender": 0.5})


# ----------------------------------------------------------------------------- input, skips, CLI


def test_cli_skips_a_face_without_keypoints_and_lists_it(tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    for img, name in zip(astronaut_variants(2, seed=4), ("25_0_0_20170101.jpg.chip.jpg", "67_1_2_20170102.jpg.chip.jpg")):
        Image.fromarray(img).save(faces / name)
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(faces / "40_1_0_20170103.jpg.chip.jpg")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(faces / "holiday.jpg")
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["synth", str(faces), str(out), "--people", "3", "--balance", "age,gender", "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert "40_1_0_20170103.jpg.chip.jpg: no face keypoints found" in r.output
    skipped = pd.read_csv(out / "skipped.csv")
    assert {Path(p).name for p in skipped["path"]} == {"40_1_0_20170103.jpg.chip.jpg", "holiday.jpg"}
    train = pd.read_csv(out / "train.csv", dtype=str)
    assert sorted(zip(train["gender"], train["race"], train["age"])) == [("female", "Asian", "67"), ("male", "White", "25")]
    assert len(read_train(out).manifest) == 14
    # input is never touched, and a non-synth folder is never overwritten
    assert sorted(p.name for p in faces.iterdir()) == sorted(["25_0_0_20170101.jpg.chip.jpg", "67_1_2_20170102.jpg.chip.jpg",
                                                              "40_1_0_20170103.jpg.chip.jpg", "holiday.jpg"])
    bad = subprocess.run([sys.executable, "-m", "facecurate", "synth", str(faces), str(tmp_path / "x"), "--inject", "gender=2"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "--inject" in bad.stderr
    assert not (tmp_path / "x").exists()  # options are checked before anything is written


def test_csv_input_with_several_photos_per_person(tmp_path, detector):
    imgs = astronaut_variants(3, seed=6)
    faces = tmp_path / "faces"  # the output may not lie inside the input's folder
    faces.mkdir()
    for i, img in enumerate(imgs):
        Image.fromarray(img).save(faces / f"p{i}.png")
    (faces / "faces.csv").write_text("path,age,gender,person\np0.png,33,male,ann\np1.png,33,male,ann\np2.png,71,1,bob\n")
    from facecurate.curate.synth import synthesize
    r = synthesize(faces / "faces.csv", tmp_path / "out", seed=0, detector=detector)
    assert r.people == 2 and r.photos == 14
    train = pd.read_csv(tmp_path / "out" / "train.csv", dtype=str)
    assert sorted(zip(train["gender"], train["age"])) == [("female", "71"), ("male", "33")]
    with pytest.raises(InputError, match="missing column"):
        (tmp_path / "bad.csv").write_text("file,age\np0.png,3\n")
        synthesize(tmp_path / "bad.csv", tmp_path / "out2")
    with pytest.raises(InputError, match="not empty"):
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "keep.txt").write_text("mine")
        synthesize_sources([FaceSource("x", "x", 30, 0, image=imgs[0])], tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


# ----------------------------------------------------------------------------- pure planning


def test_draw_order_does_not_starve_scarce_groups():
    cells = [("a",)] * 90 + [("b",)] * 6 + [("c",)] * 4
    order = draw_order(cells, np.random.default_rng(0))
    assert sorted(order) == list(range(100))
    first = [cells[i][0] for i in order[:12]]
    assert first.count("c") == 4 and first.count("b") == 4 and first.count("a") == 4
    assert draw_order(cells, np.random.default_rng(0)) == order


def test_synth_options_are_one_record_checked_once(demo):
    """SynthParams parses text as typed once, keeps every message naming its option, and says what synth.json keeps."""
    p = SynthParams(balance="gender,age", inject="gender=0.1", photos="normal,mask1", age_bins="20,50", block=20).validate()
    assert (p.balance, p.inject, p.photos, p.age_bins, p.block) == (("age", "gender"), {"gender": 0.1}, ("mask1", "normal"),
                                                                    (20, 50), 32)  # block: whole detector batches of 16
    assert p.validate() == p  # checking the checked record changes nothing
    assert SynthParams.of(p, seed=4).seed == 4 and SynthParams.of(p, seed=4).balance == p.balance
    for bad, option in ((dict(people=0), "--people"), (dict(quality=0), "--quality"), (dict(backdrop_share=0.5), "--backdrop-share"),
                        (dict(eval_layout=True, inject="age=0.1"), "--inject"), (dict(photos="mask1", inject="swap=0.1"), "--photos"),
                        (dict(age_bins="60,30"), "age")):
        with pytest.raises(InputError, match=option):
            SynthParams(**bad).validate()
    with pytest.raises(TypeError, match="unknown synth option"):
        SynthParams.of(peeple=3)
    out, _ = demo
    written = json.loads((out / "synth.json").read_text())["params"]
    assert set(written) == set(SynthParams().validate().shaping(None))


def test_the_synth_command_defaults_are_the_records():
    """The command writes its defaults out (importing the synth package would slow every --help): they must be
    SynthParams' own, parsed the way the stage parses them."""
    import typer

    cmd = typer.main.get_command(app).commands["synth"]
    shown = {p.name: p.default for p in cmd.params}
    cli = SynthParams(**{k: shown[k] for k in ("people", "seed", "balance", "inject", "photos", "eval_layout", "detector",
                                                "device", "age_bins", "backdrops", "backdrop_share", "dedup", "person_masks",
                                                "contact", "quality", "block")}, workers=shown["render_threads"])
    assert cli.validate() == SynthParams().validate()


def test_plan_injection_and_option_parsing():
    plan = plan_injection(100, {"gender": 0.05, "age": 0.03, "swap": 0.03}, np.random.default_rng(1))
    assert sorted(pd.Series(plan).value_counts().items()) == [("age", 3), ("gender", 5), ("swap", 3)]
    assert parse_inject("gender=0.05, age=0.03,swap=0") == {"gender": 0.05, "age": 0.03, "swap": 0.0}
    assert parse_balance("gender,age") == ("age", "gender") and parse_balance("") == ()
    for bad in ("sex=0.1", "gender", "gender=x", "gender=0.7,age=0.5"):
        with pytest.raises(InputError):
            parse_inject(bad)
    with pytest.raises(InputError):
        parse_balance("race")


# ----------------------------------------------------------------------------- streaming, resume, dedup, backdrops, masks


def _people(n: int, seed: int) -> list[FaceSource]:
    """``n`` astronaut variants as in-memory people with ages over all groups."""
    return [FaceSource(f"v{seed}-{i}", f"v{seed}-{i}", 20 + 23 * (i % 3), i % 2, "Other", image=img)
            for i, img in enumerate(astronaut_variants(n, seed=seed))]


def _backdrop_folder(path: Path, plain: tuple[int, int, int] | None = None) -> Path:
    """A few street-like backdrops: small astronaut faces pasted on a gradient (or one plain colour)."""
    path.mkdir()
    if plain is not None:
        Image.fromarray(np.full((300, 400, 3), plain, np.uint8)).save(path / "plain.png")
        return path
    faces = astronaut_variants(4, seed=21, size=80)
    for k in range(3):
        canvas = np.zeros((300 + 40 * k, 420, 3), np.uint8)
        canvas[:] = np.linspace(40, 220, 420, dtype=np.uint8)[None, :, None]
        canvas[..., k] = 255 - canvas[..., k]
        for j, f in enumerate(faces):
            y, x = 20 + 60 * j + 10 * k, 30 + 90 * j
            canvas[y:y + 80, x:x + 80] = f
        Image.fromarray(canvas).save(path / f"street{k}.jpg", quality=92)
    return path



def test_an_interrupted_run_resumes_to_the_same_files(tmp_path, detector):
    """Stopped after a keypoint block, then after the first render block, then finished: every file equals an
    uninterrupted run's; the same options over a finished or differently-seeded output start over."""
    sources = _people(6, seed=13)
    sources.append(FaceSource("copy", "copy", 70, 1, "Other", image=sources[2].image.copy()))  # byte-identical
    backdrops = _backdrop_folder(tmp_path / "bd")
    opts = dict(people=5, seed=4, inject={"gender": 0.2}, photos="mask1,incorrect_mask,normal", backdrops=backdrops,
                backdrop_share=0.6, block=2, detect_batch=2, detector=detector, balance="age,gender")
    whole = synthesize_sources(sources, tmp_path / "whole", **opts)
    assert whole.people == 5 and whole.photos == 15 and whole.resumed == 0
    out = tmp_path / "parts"
    with pytest.raises(SynthStopped):
        synthesize_sources(sources, out, stop_after_blocks=1, **opts)
    assert (out / ".partial" / "progress.json").is_file() and not (out / "truth.csv").exists()
    prog = json.loads((out / ".partial" / "progress.json").read_text())
    assert prog["scan_blocks"] == 1 and not prog["scan_complete"]
    with pytest.raises(SynthStopped):  # the rest of the keypoint pass and one render block
        synthesize_sources(sources, out, stop_after_blocks=int(3), **opts)
    prog = json.loads((out / ".partial" / "progress.json").read_text())
    assert prog["scan_complete"] and len(prog["render_done"]) >= 1
    notes = Notes()
    done = synthesize_sources(sources, out, progress=notes, **opts)
    assert done.resumed >= 3 and any("resuming" in n for n in notes)
    assert not (out / ".partial").exists()
    assert file_tree(out) == file_tree(tmp_path / "whole")
    # each person has exactly the photos asked for
    m = read_train(out).manifest
    assert m["person"].nunique() == 5
    assert all(sorted(v) == ["incorrect_mask", "mask1", "normal"] for _, v in m.groupby("person")["photo"])
    # a different seed over an interrupted output starts over, and so does the same one over a finished output
    with pytest.raises(SynthStopped):
        synthesize_sources(sources, out, stop_after_blocks=1, **{**opts, "seed": 5})
    again = synthesize_sources(sources, out, **opts)
    assert again.resumed == 0 and file_tree(out) == file_tree(tmp_path / "whole")


def test_duplicate_faces_are_listed_and_skipped(tmp_path, detector):
    """A byte-identical copy and a re-encoded, slightly rescaled copy are skipped as duplicates of the first drawn;
    different variants of the astronaut are not."""
    sources = _people(5, seed=17)
    import cv2
    ok, jpg = cv2.imencode(".jpg", cv2.resize(sources[1].image, (224, 224))[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 70])
    near = np.ascontiguousarray(cv2.imdecode(jpg, cv2.IMREAD_COLOR)[..., ::-1])
    sources += [FaceSource("same", "same", 40, 0, image=sources[0].image.copy()),
                FaceSource("near", "near", 66, 1, image=near)]
    r = synthesize_sources(sources, tmp_path / "out", detector=detector, photos="normal", seed=1)
    skipped = pd.read_csv(tmp_path / "out" / "skipped.csv")
    assert r.duplicates == 2 and r.people == 5
    reasons = dict(zip(skipped["path"], skipped["reason"]))
    assert len(reasons) == 2
    # whichever of a pair came first in the draw order is kept, the other names it
    for (a, b), how in ((("v17-0", "same"), "identical bytes"), (("v17-1", "near"), "near-identical")):
        assert (a in reasons) != (b in reasons)
        kept, dup = (a, b) if b in reasons else (b, a)
        assert reasons[dup].startswith(f"duplicate of {kept} ({how}"), reasons[dup]
    # without dedup every face is a person
    assert synthesize_sources(sources, tmp_path / "all", detector=detector, photos="normal", seed=1, dedup=False).people == 7


def test_backdrops_sit_behind_the_person_and_the_person_mask_is_true(tmp_path, detector):
    """On a plain green backdrop photo: every pixel outside the true person mask is the backdrop, almost none inside;
    the mask covers the face and its keypoints and leaves the top of the frame; truth.csv names the backdrop."""
    green = _backdrop_folder(tmp_path / "green", plain=(20, 200, 30))
    out = tmp_path / "out"
    r = synthesize_sources(_people(3, seed=23), out, detector=detector, backdrops=green, seed=2)
    truth = pd.read_csv(out / "truth.csv", keep_default_na=False)
    assert r.photos == 21 and set(truth["backdrop"]) == {"plain.png"}
    import cv2
    for row in truth.itertuples():
        img = read_rgb(out / "images" / row.image_id).astype(int)
        person = read_person_mask(out, row.image_id)
        assert person.shape == img.shape[:2] == (512, 384)
        band = np.ones((5, 5), np.uint8)
        inside = cv2.erode(person.astype(np.uint8), band).astype(bool)
        outside = ~cv2.dilate(person.astype(np.uint8), band).astype(bool)
        is_green = (img[..., 1] > 140) & (img[..., 0] < 70) & (img[..., 2] < 80)
        assert is_green[outside].mean() > 0.995, row.image_id
        assert is_green[inside].mean() < 0.01, row.image_id
        assert not person[:25].any()  # the top of the frame is backdrop
        for part in ("leye", "reye", "nose", "mouth"):
            assert person[int(round(getattr(row, f"{part}_y"))), int(round(getattr(row, f"{part}_x")))]
        x1, y1, x2, y2 = row.face_x1, row.face_y1, row.face_x2, row.face_y2
        cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 4, (y2 - y1) / 4
        assert person[int(cy - hh):int(cy + hh), int(cx - hw):int(cx + hw)].all()  # the inner half of the face box
        box = person[max(int(y1), 0):int(y2), max(int(x1), 0):int(x2)]
        assert box.mean() > 0.7  # the box's corners may be backdrop beside the cheeks and neck

    # a street-like folder through the CLI: the crop window is recorded and is what shows behind the person
    streets = _backdrop_folder(tmp_path / "streets")
    faces = tmp_path / "faces"
    faces.mkdir()
    for img, name in zip(astronaut_variants(2, seed=29), ("31_0_0_a.jpg.chip.jpg", "52_1_1_b.jpg.chip.jpg")):
        Image.fromarray(img).save(faces / name)
    res = CliRunner().invoke(app, ["synth", str(faces), str(tmp_path / "cli"), "--backdrops", str(streets), "--photos",
                                   "mask1,normal", "--block", "1", "--seed", "3", "--no-person-masks"])
    assert res.exit_code == 0, res.output
    truth = pd.read_csv(tmp_path / "cli" / "truth.csv", keep_default_na=False)
    assert len(truth) == 4 and set(truth["backdrop"]) <= {f"street{k}.jpg" for k in range(3)}
    assert not (tmp_path / "cli" / "masks").exists()
    for row in truth.itertuples():
        src = read_rgb(streets / row.backdrop)
        win = src[int(row.backdrop_y0):int(row.backdrop_y1), int(row.backdrop_x0):int(row.backdrop_x1)]
        want = cv2.resize(win, (384, 512), interpolation=cv2.INTER_LINEAR).astype(float).mean(2)
        if row.backdrop_flip:
            want = want[:, ::-1]
        got = read_rgb(tmp_path / "cli" / "images" / row.image_id).astype(float).mean(2)
        top = slice(0, 40)  # above the head: backdrop only
        corr = np.corrcoef(want[top].ravel(), got[top].ravel())[0, 1]
        wrong = np.corrcoef(want[top][:, ::-1].ravel(), got[top].ravel())[0, 1]
        assert corr > 0.9 and corr > wrong + 0.1, (row.image_id, corr, wrong)
    bad = CliRunner().invoke(app, ["synth", str(faces), str(tmp_path / "x"), "--backdrop-share", "0.5"])
    assert bad.exit_code == 2 and "--backdrops" in bad.output
    bad = CliRunner().invoke(app, ["synth", str(faces), str(tmp_path / "x"), "--photos", "mask1,mask9"])
    assert bad.exit_code == 2 and "--photos" in bad.output
