"""``synth``: turn labelled face photos into the competition layout, with masks drawn from each face's keypoints.

Each person gets 7 photos 384 x 512 (mask1..mask5, incorrect_mask, normal) on their own background,
optionally with known label errors injected (``injected.csv``) and a ground-truth file (``truth.csv``).
``build_demo_sample`` does the same offline from skimage's astronaut for ``make demo``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from curate.decode import BadImage, is_photo_name, read_rgb
from curate.errors import InputError
from curate.labels import DEFAULT_AGE_BINS, GENDER_FROM_TEXT, GENDER_NAMES, age_group, age_group_names, encode, parse_age_bins
from curate.masks import MASK_STYLES, WEARS, draw_mask, jitter_style
from curate.readers import PHOTO_STEMS, Problem
from curate.scene import PHOTO_HEIGHT, PHOTO_WIDTH, camera, compose, make_look

UTK_RACES = ("White", "Black", "Asian", "Indian", "Other")  # UTKFace race codes 0..4
UTK_NAME = re.compile(r"^(\d{1,3})_([01])_([0-4])_")
INJECT_KINDS = ("gender", "age", "swap")
BALANCE_KEYS = ("age", "gender")
THUMB_W, THUMB_H = 144, 192  # contact-sheet thumbnails: big enough to see where a mask sits
OUTPUT_FILES = ("train.csv", "info.csv", "truth.csv", "injected.csv", "skipped.csv", "contact.png", "synth.json")


@dataclass
class FaceSource:
    """One labelled face photo: a file ``path`` (or an in-memory ``image``), its person and labels."""

    path: str
    person: str
    age: int
    gender: int
    race: str = "Asian"
    image: np.ndarray | None = field(default=None, repr=False)


@dataclass
class SynthResult:
    """What ``synthesize`` wrote: the folder, layout, people and photos written, faces skipped, errors injected."""

    out: Path
    layout: str
    people: int
    photos: int
    skipped: list[Problem]
    injected: pd.DataFrame
    groups: pd.DataFrame  # people per gender x age group, as written
    seconds: float
    detector: str
    contact: Path | None = None
    wanted: int = 0
    age_bins: tuple[int, int] = DEFAULT_AGE_BINS


# ----------------------------------------------------------------------------- reading the faces


def read_faces(path: str | Path) -> tuple[list[FaceSource], list[Problem]]:
    """Labelled faces from a folder of UTKFace-named photos (``age_gender_race_*.jpg``) or a CSV.

    The CSV needs ``path``, ``age`` and ``gender`` (0/1 or male/female) columns, ``person`` and
    ``race`` optional; paths are relative to the CSV's folder. Unusable rows are listed, not fatal.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    problems: list[Problem] = []
    faces: list[FaceSource] = []
    if p.is_dir():
        names = sorted(e.name for e in os.scandir(p) if e.is_file() and is_photo_name(e.name))
        for name in names:
            m = UTK_NAME.match(name)
            if not m:
                problems.append(Problem(str(p / name), "name is not age_gender_race_*.jpg; skipped"))
                continue
            age, gender, race = int(m.group(1)), int(m.group(2)), int(m.group(3))
            faces.append(FaceSource(str((p / name).resolve()), name, age, gender, UTK_RACES[race]))
        if not names:
            raise InputError(f"{p}: no photos (.jpg, .jpeg, .png) found in this folder")
    elif p.suffix.lower() == ".csv":
        try:
            table = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise InputError(f"{p}: unreadable CSV ({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})") from None
        table.columns = [c.strip() for c in table.columns]
        missing = [c for c in ("path", "age", "gender") if c not in table.columns]
        if missing:
            raise InputError(f"{p}: missing column(s) {', '.join(missing)}; found {', '.join(table.columns) or 'none'}")
        for i, r in enumerate(table.to_dict("records"), start=2):
            rel = r["path"].strip()
            file = p.parent / rel
            gender = GENDER_FROM_TEXT.get(r["gender"].strip().lower())
            try:
                age = int(float(r["age"]))
            except ValueError:
                age = -1
            if not rel or not file.is_file():
                problems.append(Problem(f"{p}:{i}", f"photo {rel!r} not found; skipped"))
            elif gender is None or not 0 <= age < 150:
                problems.append(Problem(f"{p}:{i}", f"bad gender {r['gender']!r} or age {r['age']!r}; skipped"))
            else:
                person = (r.get("person") or "").strip() or rel
                race = (r.get("race") or "").strip() or "Asian"
                faces.append(FaceSource(str(file.resolve()), person, age, gender, race))
    else:
        raise InputError(f"{p}: expected a folder of age_gender_race_*.jpg photos or a .csv with path, age, gender")
    if not faces:
        raise InputError(f"{p}: no usable labelled faces ({len(problems)} skipped, e.g. {problems[0] if problems else '-'})")
    return faces, problems


def parse_inject(text: str | Mapping[str, float] | None) -> dict[str, float]:
    """``"gender=0.05,age=0.03,swap=0.03"`` -> {kind: fraction of people}; kinds gender, age, swap."""
    if not text:
        return {}
    items = text.items() if isinstance(text, Mapping) else (kv.split("=", 1) if "=" in kv else (kv, "") for kv in str(text).split(",") if kv.strip())
    out: dict[str, float] = {}
    for k, v in items:
        k = str(k).strip()
        if k not in INJECT_KINDS:
            raise InputError(f"--inject: unknown kind {k!r}; expected some of {', '.join(INJECT_KINDS)} like gender=0.05,age=0.03,swap=0.03")
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise InputError(f"--inject: {k} needs a fraction like {k}=0.05, got {v!r}") from None
        if not 0 <= f <= 1:
            raise InputError(f"--inject: {k}={f} is not a fraction between 0 and 1")
        out[k] = f
    if sum(out.values()) > 1:
        raise InputError("--inject: the fractions add up to more than 1 (each person gets at most one error)")
    return out


def parse_balance(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"age,gender"`` -> ('age', 'gender'): the labels whose groups are drawn evenly."""
    if not text:
        return ()
    keys = [k.strip() for k in (text.split(",") if isinstance(text, str) else text) if k.strip()]
    bad = [k for k in keys if k not in BALANCE_KEYS]
    if bad:
        raise InputError(f"--balance: unknown key(s) {', '.join(bad)}; expected age and/or gender")
    return tuple(k for k in BALANCE_KEYS if k in keys)


# ----------------------------------------------------------------------------- pure planning


def draw_order(cells: Sequence[tuple], rng: np.random.Generator) -> list[int]:
    """Indices in the order people are drawn: shuffled within each cell, then taken round-robin over the cells.

    Any prefix of the order is as even over the cells as the cells allow: scarce groups come first
    in every round, so they are never starved by the plentiful ones.
    """
    by_cell: dict[tuple, list[int]] = {}
    for i, c in enumerate(cells):
        by_cell.setdefault(c, []).append(i)
    keys = sorted(by_cell)
    lists = [list(rng.permutation(by_cell[k])) for k in keys]
    order: list[int] = []
    for r in range(max((len(lst) for lst in lists), default=0)):
        for lst in sorted(lists, key=len):
            if r < len(lst):
                order.append(int(lst[r]))
    return order


def age_in_group(group: int, rng: np.random.Generator, bins: Sequence[int] = DEFAULT_AGE_BINS) -> int:
    """A plausible adult age inside age group 0, 1 or 2."""
    lo, hi = ((18, bins[0] - 1), (bins[0], bins[1] - 1), (bins[1], bins[1] + 25))[group]
    return int(rng.integers(min(lo, hi), hi + 1))


def plan_injection(n_people: int, fractions: Mapping[str, float], rng: np.random.Generator) -> dict[int, str]:
    """Which people (by index) get which error: ``round(fraction * n)`` distinct people per kind."""
    perm = list(rng.permutation(n_people))
    plan: dict[int, str] = {}
    for kind in INJECT_KINDS:
        k = int(round(fractions.get(kind, 0.0) * n_people))
        for _ in range(min(k, len(perm))):
            plan[int(perm.pop())] = kind
    return plan


def person_rng(seed: int, key: str, stream: int = 0) -> np.random.Generator:
    """A generator for one person that depends only on the seed and the person's source key (not on order)."""
    return np.random.default_rng([seed, zlib.crc32(key.encode()), stream])


# ----------------------------------------------------------------------------- detection


def pad_for_detection(image: np.ndarray, fraction: float = 0.25) -> tuple[np.ndarray, int]:
    """Pad a tight face crop with its border colour so a detector sees the whole face; returns (image, pad)."""
    h, w = image.shape[:2]
    pad = int(round(fraction * max(h, w)))
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).reshape(-1, 3)
    colour = [int(c) for c in np.median(border, axis=0)]
    return cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=colour), pad


def pick_face(faces: Sequence, height: int, width: int):
    """The subject among detected faces: big, confident and central; None when there is none."""
    if not faces:
        return None
    def worth(f) -> float:
        x1, y1, x2, y2 = f.box
        cx, cy = (x1 + x2) / 2 / width - 0.5, (y1 + y2) / 2 / height - 0.5
        return f.score * np.sqrt(max((x2 - x1) * (y2 - y1), 1.0)) * (1.0 - min(1.0, np.hypot(cx, cy)))
    return max(faces, key=worth)


def find_keypoints(images: Sequence[np.ndarray], detector, pad_fraction: float = 0.25) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """(keypoints (4, 2), box (4,)) of the subject's face in each image, or None; images are padded first."""
    padded = [pad_for_detection(im, pad_fraction) for im in images]
    results = detector.detect([p for p, _ in padded])
    out: list[tuple[np.ndarray, np.ndarray] | None] = []
    for (img, pad), faces in zip(padded, results):
        f = pick_face(faces, *img.shape[:2])
        if f is None:
            out.append(None)
            continue
        kp = np.asarray(f.keypoints, np.float32).reshape(4, 2) - pad
        d = float(np.linalg.norm(kp[1] - kp[0]))
        out.append(None if not np.isfinite(kp).all() or d < 8 else (kp, np.asarray(f.box, np.float32) - pad))
    return out


# ----------------------------------------------------------------------------- rendering


@dataclass
class PersonPlan:
    """Everything needed to render and write one person."""

    key: str
    faces: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (image, keypoints, box)
    age: int
    gender: int
    race: str
    written_age: int
    written_gender: int
    swap: bool
    folder: str
    id: str


def render_person(faces: Sequence[tuple[np.ndarray, np.ndarray]], age: int, rng: np.random.Generator,
                  incorrect: tuple[int, str] | None = None) -> dict[str, dict]:
    """The 7 photos of one person from their face(s) with keypoints: {stem: {image, keypoints, alpha, style, wear}}.

    ``incorrect`` = (style index, wear) of the incorrect_mask photo; drawn from ``rng`` when None
    (any of the five masks, nose or chin exposed with equal odds).
    """
    look = make_look(rng, age)
    styles = [jitter_style(s, rng) for s in MASK_STYLES]
    if incorrect is None:
        incorrect = (int(rng.integers(len(MASK_STYLES))), str(rng.choice(WEARS[1:])))
    photos: dict[str, dict] = {}
    for stem in PHOTO_STEMS:
        image, kp = faces[int(rng.integers(len(faces)))] if len(faces) > 1 else faces[0]
        photo, kp_photo = compose(image, kp, look, rng)
        alpha = None
        if stem.startswith("mask"):
            k, wear = int(stem[4:]) - 1, "correct"
        elif stem == "incorrect_mask":
            k, wear = incorrect
        else:
            k, wear = -1, "none"
        if k >= 0:
            photo, alpha = draw_mask(photo, kp_photo, styles[k], wear, rng)
        photos[stem] = {"image": camera(photo, look, rng), "keypoints": kp_photo, "alpha": alpha,
                        "style": MASK_STYLES[k].name if k >= 0 else "", "wear": wear}
    return photos


def _box_in_photo(box: np.ndarray, kp_src: np.ndarray, kp_photo: np.ndarray) -> np.ndarray:
    """The detector's face box carried into the photo by the similarity that maps the keypoints there."""
    m, _ = cv2.estimateAffinePartial2D(kp_src.astype(np.float32), kp_photo.astype(np.float32))
    if m is None:
        return np.full(4, np.nan, np.float32)
    x1, y1, x2, y2 = box
    corners = np.array([[x1, y1, 1], [x2, y1, 1], [x1, y2, 1], [x2, y2, 1]], np.float64) @ m.T
    return np.concatenate([corners.min(0), corners.max(0)]).astype(np.float32)


def _save_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    Image.fromarray(image).save(path, format="JPEG", quality=quality, subsampling=0)


def eval_name(seed: int, folder: str, stem: str) -> str:
    """Hashed file name of a photo in the eval layout (like the competition's 40-hex names)."""
    return hashlib.sha1(f"{seed}:{folder}:{stem}".encode()).hexdigest() + ".jpg"


def _write_person(plan: PersonPlan, out: Path, seed: int, eval_layout: bool, quality: int,
                  age_bins: Sequence[int]) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Render one person, write their 7 JPEGs, return their truth rows and small thumbnails for the contact sheet."""
    rng = person_rng(seed, plan.key, 1)
    photos = render_person([(im, kp) for im, kp, _ in plan.faces], plan.age, rng)
    folder = out / "images" if eval_layout else out / "images" / plan.folder
    folder.mkdir(parents=True, exist_ok=True)
    rows, thumbs = [], {}
    for stem in PHOTO_STEMS:
        written = {"incorrect_mask": "normal", "normal": "incorrect_mask"}.get(stem, stem) if plan.swap else stem
        ph = photos[stem]
        name = eval_name(seed, plan.folder, written) if eval_layout else f"{written}.jpg"
        _save_jpeg(folder / name, ph["image"], quality)
        src_kp = plan.faces[0][1]
        box = _box_in_photo(plan.faces[0][2], src_kp, ph["keypoints"])
        kp = ph["keypoints"]
        mask = {"correct": 0, "nose": 1, "chin": 1, "none": 2}[ph["wear"]]
        grp = age_group(plan.age, age_bins)
        rows.append({
            "image_id": name if eval_layout else f"{plan.folder}/{name}",
            "person": plan.folder, "id": plan.id, "photo": written, "true_photo": stem,
            "mask": mask, "gender": plan.gender, "age": plan.age, "age_group": grp,
            "label": encode(mask, plan.gender, grp), "style": ph["style"], "wear": ph["wear"],
            **{f"{n}_{a}": float(kp[i, j]) for i, n in enumerate(("leye", "reye", "nose", "mouth")) for j, a in enumerate("xy")},
            **{f"face_{k}": float(v) for k, v in zip(("x1", "y1", "x2", "y2"), box)},
        })
        thumbs[written] = cv2.resize(ph["image"], (THUMB_W, THUMB_H), interpolation=cv2.INTER_AREA)
    return rows, thumbs


def contact_sheet(people: Sequence[tuple[str, dict[str, np.ndarray]]], path: Path) -> Path:
    """A PNG: one row per person (their label text, then mask1..5, incorrect_mask, normal thumbnails)."""
    tw, th, label_w, head = THUMB_W, THUMB_H, 150, 16
    sheet = Image.new("RGB", (label_w + tw * len(PHOTO_STEMS), head + th * len(people)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, stem in enumerate(PHOTO_STEMS):
        draw.text((label_w + j * tw + 4, 2), stem, fill=(0, 0, 0))
    for i, (label, thumbs) in enumerate(people):
        y = head + i * th
        for k, line in enumerate(label.split("\n")):
            draw.text((4, y + 40 + 14 * k), line, fill=(0, 0, 0))
        for j, stem in enumerate(PHOTO_STEMS):
            if stem in thumbs:
                sheet.paste(Image.fromarray(thumbs[stem]), (label_w + j * tw, y))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


# ----------------------------------------------------------------------------- the stage


def _prepare_out(out: Path, sources: Sequence[FaceSource]) -> None:
    """Create ``out``; a previous synth output there is replaced, anything else there is refused."""
    if out.exists() and any(out.iterdir()):
        if not (out / "synth.json").is_file():
            raise InputError(f"{out}: the folder is not empty and not a previous synth output; choose an empty or new folder")
        for name in OUTPUT_FILES:
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "images", ignore_errors=True)
    srcs = {Path(s.path).resolve().parent for s in sources if s.image is None}
    if any(out.resolve() == s or out.resolve() in s.parents for s in srcs):
        raise InputError(f"{out}: the output folder must not be the input folder or inside it")
    out.mkdir(parents=True, exist_ok=True)


def _detect_people(names: Sequence[str], order: Sequence[int], by_person: Mapping[str, list[FaceSource]], wanted: int,
                   det, skipped: list[Problem], prog, batch: int = 16) -> list[tuple[str, list]]:
    """Walk the draw order in batches, detect keypoints, keep the first ``wanted`` people with a usable face."""
    accepted: list[tuple[str, list]] = []
    task = prog.add_task("detect keypoints", total=wanted)
    pos = 0
    while len(accepted) < wanted and pos < len(order):
        chunk = [names[i] for i in order[pos:pos + batch]]
        pos += len(chunk)
        items: list[tuple[str, FaceSource, np.ndarray]] = []
        for name in chunk:
            for s in by_person[name]:
                try:
                    img = s.image if s.image is not None else read_rgb(s.path)
                except BadImage as e:
                    skipped.append(Problem(s.path, f"{e}; skipped"))
                    continue
                items.append((name, s, img))
        found = find_keypoints([img for _, _, img in items], det) if items else []
        got: dict[str, list] = {}
        for (name, s, img), kb in zip(items, found):
            if kb is None:
                skipped.append(Problem(s.path, "no face keypoints found; skipped"))
            else:
                got.setdefault(name, []).append((img, kb[0], kb[1]))
        for name in chunk:
            if name in got and len(accepted) < wanted:
                accepted.append((name, got[name]))
                prog.advance(task)
    return accepted


def plan_people(accepted: Sequence[tuple[str, list]], by_person: Mapping[str, list[FaceSource]],
                fractions: Mapping[str, float], seed: int, bins: Sequence[int]) -> tuple[list[PersonPlan], list[dict]]:
    """Ids, folder names and written labels of the accepted people, with the planned label errors (rows of injected.csv)."""
    plan_rng = np.random.default_rng([seed, 2])
    injection = plan_injection(len(accepted), fractions, plan_rng)
    plans: list[PersonPlan] = []
    inj_rows: list[dict] = []
    for i, (name, faces) in enumerate(accepted):
        s = by_person[name][0]
        kind = injection.get(i)
        w_gender, w_age = s.gender, s.age
        if kind == "gender":
            w_gender = 1 - s.gender
        elif kind == "age":
            g = age_group(s.age, bins)
            w_age = age_in_group(int(plan_rng.choice([x for x in range(3) if x != g])), plan_rng, bins)
        pid = f"{i + 1:06d}"
        race = re.sub(r"[^A-Za-z0-9]+", "", s.race) or "Other"
        folder = f"{pid}_{GENDER_NAMES[w_gender]}_{race}_{w_age}"
        plans.append(PersonPlan(name, faces, s.age, s.gender, race, w_age, w_gender, kind == "swap", folder, pid))
        if kind:
            true, written = {"gender": (s.gender, w_gender), "age": (s.age, w_age),
                             "swap": ("incorrect_mask", "normal")}[kind]
            inj_rows.append({"person": folder, "id": pid, "kind": kind, "field": {"swap": "photo"}.get(kind, kind),
                             "true": true, "written": written})
    return plans, inj_rows


def synthesize_sources(sources: Sequence[FaceSource], out: str | Path, people: int | None = None, seed: int = 0,
                       balance: str | Sequence[str] = (), inject: str | Mapping[str, float] | None = None,
                       eval_layout: bool = False, detector="mtcnn", device: str | None = None,
                       age_bins: str | Sequence[int] = DEFAULT_AGE_BINS, contact: int = 8, workers: int | None = None,
                       quality: int = 92, progress: bool = True, problems: Sequence[Problem] = ()) -> SynthResult:
    """Detect keypoints on ``sources``, draw ``people`` people (balanced over ``balance``), render and write them.

    Writes the train layout (``train.csv`` + ``images/<folder>/<stem>.jpg``) or, with ``eval_layout``,
    ``info.csv`` + ``images/<sha1>.jpg``; plus ``truth.csv`` (per photo: true labels, mask style and wear,
    keypoints and face box in the photo), ``injected.csv``, ``skipped.csv``, ``contact.png``, ``synth.json``.
    ``detector`` is a name for ``make_detector`` or an open ``Detector`` (reused, not closed).
    """
    t0 = time.perf_counter()
    try:
        bins = parse_age_bins(age_bins)
    except ValueError as e:
        raise InputError(str(e)) from None
    keys = parse_balance(balance)
    fractions = parse_inject(inject)
    if eval_layout and fractions:
        raise InputError("--inject applies to the train layout only (the eval layout carries no labels)")
    if people is not None and people < 1:
        raise InputError(f"--people must be at least 1, got {people}")
    out = Path(out)
    _prepare_out(out, sources)
    skipped: list[Problem] = list(problems)

    by_person: dict[str, list[FaceSource]] = {}
    for s in sources:
        by_person.setdefault(s.person, []).append(s)
    names = sorted(by_person)
    cells = [tuple(({"age": age_group(by_person[n][0].age, bins), "gender": by_person[n][0].gender}[k]) for k in keys) for n in names]
    order = draw_order(cells, np.random.default_rng([seed, 0]))
    wanted = len(names) if people is None else min(people, len(names))

    from curate.detect import make_detector  # torch: imported only once the options are known to be good

    prog = _progress(progress)
    with prog:
        if isinstance(detector, str):
            with make_detector(detector, device=device) as det:
                accepted = _detect_people(names, order, by_person, wanted, det, skipped, prog)
        else:  # a Detector the caller owns (and closes)
            det = detector
            accepted = _detect_people(names, order, by_person, wanted, det, skipped, prog)
        det_name = det.name
        plans, inj_rows = plan_people(accepted, by_person, fractions, seed, bins)
        rows: list[dict] = []
        sheet: list[tuple[str, dict]] = []
        kinds = {r["id"]: r["kind"] for r in inj_rows}
        with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
            task = prog.add_task("render + write", total=len(plans))
            futures = [pool.submit(_write_person, p, out, seed, eval_layout, quality, bins) for p in plans]
            for p, fut in zip(plans, futures):
                r, thumbs = fut.result()
                rows.extend(r)
                if len(sheet) < contact:
                    note = f"\ninjected: {kinds[p.id]}" if p.id in kinds else ""
                    sheet.append((f"{p.folder}\ntrue: {GENDER_NAMES[p.gender]} {p.age}{note}", thumbs))
                prog.advance(task)

    truth = pd.DataFrame(rows)
    if eval_layout:
        info = truth[["image_id"]].rename(columns={"image_id": "ImageID"})
        info = info.iloc[np.random.default_rng([seed, 3]).permutation(len(info))].reset_index(drop=True)
        info["ans"] = 0
        info.to_csv(out / "info.csv", index=False)
    else:
        train = pd.DataFrame([{"id": p.id, "gender": GENDER_NAMES[p.written_gender], "race": p.race,
                               "age": p.written_age, "path": p.folder} for p in plans],
                             columns=["id", "gender", "race", "age", "path"])
        train.to_csv(out / "train.csv", index=False)
    truth.to_csv(out / "truth.csv", index=False, float_format="%.2f")
    injected = pd.DataFrame(inj_rows, columns=["person", "id", "kind", "field", "true", "written"])
    injected.to_csv(out / "injected.csv", index=False)
    pd.DataFrame([{"path": p.path, "reason": p.what} for p in skipped], columns=["path", "reason"]).to_csv(out / "skipped.csv", index=False)
    contact_path = contact_sheet(sheet, out / "contact.png") if sheet else None
    groups = pd.crosstab(pd.Series([GENDER_NAMES[p.gender] for p in plans], name="gender"),
                         pd.Series([age_group(p.age, bins) for p in plans], name="age_group")) if plans else pd.DataFrame()
    seconds = time.perf_counter() - t0
    meta = {"params": {"people": people, "seed": seed, "balance": list(keys), "inject": fractions, "eval": eval_layout,
                       "detector": detector if isinstance(detector, str) else detector.name, "age_bins": list(bins), "quality": quality,
                       "size": [PHOTO_WIDTH, PHOTO_HEIGHT]},
            "detector": det_name, "people": len(plans), "photos": len(rows), "skipped": len(skipped),
            "injected": len(inj_rows), "seconds": round(seconds, 2),
            "versions": {"numpy": np.__version__, "opencv": cv2.__version__, "pandas": pd.__version__}}
    (out / "synth.json").write_text(json.dumps(meta, indent=2) + "\n")
    return SynthResult(out, "eval" if eval_layout else "train", len(plans), len(rows), skipped, injected, groups,
                       seconds, det_name, contact_path, wanted, bins)


def synthesize(faces: str | Path, out: str | Path, **kwargs) -> SynthResult:
    """``synth`` on a folder of UTKFace-named photos or a CSV (see ``read_faces``); options as ``synthesize_sources``."""
    sources, problems = read_faces(faces)
    return synthesize_sources(sources, out, problems=problems, **kwargs)


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, *a, **k) -> int:
        return 0

    def advance(self, *a, **k) -> None:
        return None


def _progress(show: bool):
    if not show:
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False)


# ----------------------------------------------------------------------------- the embedded demo


def astronaut_variants(n: int, seed: int = 0, size: int = 240) -> list[np.ndarray]:
    """``n`` different-looking face photos from skimage's astronaut: rotation, flip, scale, crop, colour."""
    from skimage import data

    base = data.astronaut()
    rng = np.random.default_rng([seed, 7])
    out = []
    for _ in range(n):
        img = base[:, ::-1] if rng.random() < 0.5 else base
        cx = 220.0 if img is base else 511 - 220.0
        cy = 118.0
        side = rng.uniform(230, 330)
        angle = rng.uniform(-12, 12)
        m = cv2.getRotationMatrix2D((cx, cy), angle, size / side)
        m[:, 2] += np.array([size / 2, size / 2]) - np.array([cx, cy]) + rng.uniform(-0.06, 0.06, 2) * size
        crop = cv2.warpAffine(np.ascontiguousarray(img), m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8)) % 180
        hsv[..., 1] *= rng.uniform(0.6, 1.25)
        hsv[..., 2] *= rng.uniform(0.75, 1.15)
        crop = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
        crop = 255.0 * (crop / 255.0) ** rng.uniform(0.8, 1.25)
        if rng.random() < 0.1:
            crop = np.repeat(crop.mean(2, keepdims=True), 3, axis=2)
        out.append(np.clip(crop, 0, 255).astype(np.uint8))
    return out


def build_demo_sample(out: str | Path, people: int = 40, seed: int = 0, eval_layout: bool = False,
                      inject: str | Mapping[str, float] | None = None, detector="mtcnn",
                      device: str | None = None, progress: bool = False) -> SynthResult:
    """A small offline sample in the competition layout from skimage's astronaut, ages and genders over all groups.

    Each person is a different variant of the one public-domain photo; their assigned gender and age
    cycle through the 6 gender x age-group cells. Same synthesis as ``synth`` (keypoints detected).
    """
    if people < 1:
        raise InputError(f"people must be at least 1, got {people}")
    rng = np.random.default_rng([seed, 8])
    faces = astronaut_variants(people + people // 4 + 2, seed)  # spares stand in for any variant without keypoints
    sources = []
    for i, img in enumerate(faces):
        gender, grp = i % 2, (i // 2) % 3
        age = age_in_group(grp, rng)
        sources.append(FaceSource(f"astronaut-{seed}-{i:04d}", f"astronaut-{seed}-{i:04d}", age, gender, "Other", image=img))
    return synthesize_sources(sources, out, people=people, seed=seed, balance=("age", "gender"), inject=inject,
                              eval_layout=eval_layout,
                              detector=detector, device=device, progress=progress)


def summary_table(result: SynthResult, show: int = 10):
    """A rich table of what ``synth`` wrote (people per group, photos, skipped, injected), and the first skipped faces."""
    from rich.table import Table

    t = Table(title=f"synth -> {result.out} ({result.layout} layout)", show_header=False)
    t.add_row("people", f"{result.people} written" + (f" of {result.wanted} wanted" if result.wanted != result.people else ""))
    t.add_row("photos", f"{result.photos} (384 x 512)")
    names = age_group_names(result.age_bins)
    for g, row in result.groups.iterrows():
        t.add_row(f"  {g}", ", ".join(f"{names[int(a)]}: {n}" for a, n in row.items()))
    t.add_row("skipped faces", f"{len(result.skipped)} (skipped.csv)")
    kinds = result.injected["kind"].value_counts().to_dict() if len(result.injected) else {}
    t.add_row("injected errors", (", ".join(f"{k}: {v}" for k, v in kinds.items()) or "none") + " (injected.csv)")
    t.add_row("detector", result.detector)
    t.add_row("contact sheet", str(result.contact) if result.contact else "-")
    t.add_row("time", f"{result.seconds:.1f} s")
    lines = [f"skipped: {p.path}: {p.what}" for p in result.skipped[:show]]
    if len(result.skipped) > show:
        lines.append(f"... and {len(result.skipped) - show} more in skipped.csv")
    return t, lines
