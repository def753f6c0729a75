"""Labelled face photos for `synth`: a folder of UTKFace-named files or a CSV, read into ``FaceSource`` records."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..decode import is_photo_name
from ..errors import InputError
from ..labels import GENDER_FROM_TEXT
from ..readers import Problem

UTK_RACES = ("White", "Black", "Asian", "Indian", "Other")  # UTKFace race codes 0..4
UTK_NAME = re.compile(r"^(\d{1,3})_([01])_([0-4])_")


@dataclass
class FaceSource:
    """One labelled face photo: a file ``path`` (or an in-memory ``image``), its person and labels."""

    path: str
    person: str
    age: int
    gender: int
    race: str = "Asian"
    image: np.ndarray | None = field(default=None, repr=False)


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
