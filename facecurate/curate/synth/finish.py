"""Assemble a synth output from its finished blocks: truth.csv, train.csv or info.csv, injected.csv, skipped.csv, contact.png.

Everything here is read from what the blocks left on disk (truth parts, written photos), never from
memory of the render pass, so an interrupted and resumed run assembles the same bytes as an
uninterrupted one. truth.csv is streamed part by part; the contact sheet's thumbnails are read back
from the written JPEGs.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..decode import read_rgb
from ..labels import GENDER_NAMES
from ..readers import Problem
from .partial import SynthParts
from .plan import PersonPlan
from .render import THUMB_H, THUMB_W, TRUTH_COLUMNS, eval_name
from .sheet import person_sheet


def write_truth(out: Path, parts: SynthParts, n_blocks: int) -> list[str]:
    """truth.csv = header + the blocks' parts in order (streamed); returns the image ids in row order."""
    tmp = out / "truth.csv.tmp"
    ids: list[str] = []
    with open(tmp, "wb") as f:
        f.write((",".join(TRUTH_COLUMNS) + "\n").encode())
        for b in range(n_blocks):
            part = parts.truth_part(b)
            with open(part, "rb") as src:
                shutil.copyfileobj(src, f)
            if os.path.getsize(part):
                ids.extend(pd.read_csv(part, header=None, usecols=[0], dtype=str, keep_default_na=False)[0])
    os.replace(tmp, out / "truth.csv")
    return ids


def write_tables(out: Path, plans: Sequence[PersonPlan], ids: Sequence[str], inj_rows: list[dict],
                 skipped: Sequence[Problem], eval_layout: bool, seed: int) -> pd.DataFrame:
    """train.csv (or info.csv), injected.csv and skipped.csv; returns the injected table."""
    if eval_layout:
        info = pd.DataFrame({"ImageID": list(ids)})
        info = info.iloc[np.random.default_rng([seed, 3]).permutation(len(info))].reset_index(drop=True)
        info["ans"] = 0
        info.to_csv(out / "info.csv", index=False)
    else:
        train = pd.DataFrame([{"id": p.id, "gender": GENDER_NAMES[p.written_gender], "race": p.race,
                               "age": p.written_age, "path": p.folder} for p in plans],
                             columns=["id", "gender", "race", "age", "path"])
        train.to_csv(out / "train.csv", index=False)
    injected = pd.DataFrame(inj_rows, columns=["person", "id", "kind", "field", "true", "written"])
    injected.to_csv(out / "injected.csv", index=False)
    pd.DataFrame([{"path": p.path, "reason": p.what} for p in skipped], columns=["path", "reason"]).to_csv(
        out / "skipped.csv", index=False)
    return injected


def write_contact(out: Path, plans: Sequence[PersonPlan], inj_rows: list[dict], stems: Sequence[str], contact: int,
                  eval_layout: bool, seed: int) -> Path | None:
    """contact.png of the first ``contact`` people, thumbnails read back from their written photos."""
    kinds = {r["id"]: r["kind"] for r in inj_rows}
    sheet = []
    for p in plans[:max(contact, 0)]:
        thumbs = {}
        for stem in stems:
            written = {"incorrect_mask": "normal", "normal": "incorrect_mask"}.get(stem, stem) if p.swap else stem
            path = out / "images" / (eval_name(seed, p.folder, written) if eval_layout else f"{p.folder}/{written}.jpg")
            thumbs[written] = cv2.resize(read_rgb(path), (THUMB_W, THUMB_H), interpolation=cv2.INTER_AREA)
        note = f"\ninjected: {kinds[p.id]}" if p.id in kinds else ""
        sheet.append((f"{p.folder}\ntrue: {GENDER_NAMES[p.gender]} {p.age}{note}", thumbs))
    return person_sheet(sheet, out / "contact.png") if sheet else None
