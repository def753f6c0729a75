"""``synth``: turn labelled face photos into the competition layout, with masks drawn from each face's keypoints.

Each person gets 7 photos 384 x 512 (mask1..mask5, incorrect_mask, normal) on their own background,
optionally with known label errors injected (``injected.csv``) and a ground-truth file (``truth.csv``).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..errors import InputError
from ..labels import DEFAULT_AGE_BINS, GENDER_NAMES, age_group, parse_age_bins
from ..outputs import check_separate, claim_folder
from ..progress import Progress, Steps
from ..readers import Problem
from .keypoints import detect_people
from .plan import draw_order, parse_balance, parse_inject, plan_people
from .render import write_person
from .scene import PHOTO_HEIGHT, PHOTO_WIDTH
from .sheet import person_sheet
from .sources import FaceSource, read_faces

OUTPUT_FILES = ("train.csv", "info.csv", "truth.csv", "injected.csv", "skipped.csv", "contact.png", "synth.json")


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
    age_bins: tuple[int, ...] = DEFAULT_AGE_BINS


def _prepare_out(out: Path, sources: Sequence[FaceSource]) -> None:
    """Claim ``out`` (never the input folder, inside it or around it); a previous synth output there is replaced."""
    check_separate(out, {Path(s.path).resolve().parent for s in sources if s.image is None}, option="OUT")
    claim_folder(out, "synth", recognise=lambda p: (p / "synth.json").is_file(), option="OUT")
    for name in OUTPUT_FILES:
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "images", ignore_errors=True)


def synthesize_sources(sources: Sequence[FaceSource], out: str | Path, people: int | None = None, seed: int = 0,
                       balance: str | Sequence[str] = (), inject: str | Mapping[str, float] | None = None,
                       eval_layout: bool = False, detector="mtcnn", device: str | None = None,
                       age_bins: str | Sequence[int] = DEFAULT_AGE_BINS, contact: int = 8, workers: int | None = None,
                       quality: int = 92, progress: Progress | None = None, problems: Sequence[Problem] = ()) -> SynthResult:
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

    from ..detect import (
        make_detector,  # torch: imported only once the options are known to be good
    )

    if isinstance(detector, str):
        with make_detector(detector, device=device) as det:
            accepted = detect_people(names, order, by_person, wanted, det, skipped, progress)
    else:  # a Detector the caller owns (and closes)
        det = detector
        accepted = detect_people(names, order, by_person, wanted, det, skipped, progress)
    det_name = det.name
    plans, inj_rows = plan_people(accepted, by_person, fractions, seed, bins)
    rows: list[dict] = []
    sheet: list[tuple[str, dict]] = []
    kinds = {r["id"]: r["kind"] for r in inj_rows}
    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
        steps = Steps(progress, "render + write", len(plans))
        futures = [pool.submit(write_person, p, out, seed, eval_layout, quality, bins) for p in plans]
        for p, fut in zip(plans, futures):
            r, thumbs = fut.result()
            rows.extend(r)
            if len(sheet) < contact:
                note = f"\ninjected: {kinds[p.id]}" if p.id in kinds else ""
                sheet.append((f"{p.folder}\ntrue: {GENDER_NAMES[p.gender]} {p.age}{note}", thumbs))
            steps.advance()

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
    contact_path = person_sheet(sheet, out / "contact.png") if sheet else None
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
