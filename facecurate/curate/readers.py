"""Read the dataset layouts into one manifest: one row per photo, labels per person.

Layouts: the competition train layout (``train.csv`` + ``images/{id}_{gender}_{race}_{age}/``
with ``mask1..5``, ``incorrect_mask``, ``normal``), its eval layout (``info.csv`` + ``images/``),
a plain CSV (path + person + label columns) and a plain folder of photos (no labels).
The data is taken as it is: what cannot be used is listed as a ``Problem`` and the read goes on.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .decode import DEFAULT_MIN_SIDE, is_photo_name
from .errors import InputError, printable
from .labels import (
    DEFAULT_AGE_BINS,
    GENDER_FROM_TEXT,
    MASK_FROM_STEM,
    MASK_NAMES,
    PHOTO_STEMS,
    age_group,
    encode,
)
from .listing import (
    Problem,
    drop_unusable,
    followable,
    photo_files,
    read_csv_strings,
    utf8,
)
from .outputs import folder_kind

MANIFEST_COLUMNS = ["image_id", "person", "path", "photo", "mask", "gender", "age", "age_group", "label"]
LABEL_COLUMNS = ["mask", "gender", "age", "age_group", "label"]


@dataclass
class Dataset:
    """A manifest (DataFrame, columns ``MANIFEST_COLUMNS`` plus layout extras) and what was wrong."""

    manifest: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    layout: str = ""
    root: str = ""

    @property
    def labelled(self) -> bool:
        return bool(len(self.manifest)) and self.manifest["label"].notna().all()


def _frame(rows: list[dict], extra: list[str], age_bins) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=[c for c in MANIFEST_COLUMNS if c not in ("age_group", "label")] + extra)
    for c in ("mask", "gender", "age"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    df["age_group"] = pd.array([age_group(a, age_bins) if pd.notna(a) else pd.NA for a in df["age"]], dtype="Int64")
    df["label"] = encode(df["mask"], df["gender"], df["age_group"]).astype("Int64")
    for c in ("image_id", "person", "path", "photo"):
        df[c] = df[c].astype(str)
    return df[MANIFEST_COLUMNS + extra].reset_index(drop=True)


def _parse_gender(text: str) -> int | None:
    return GENDER_FROM_TEXT.get(str(text).strip().lower())


def _parse_age(text: str) -> int | None:
    try:
        age = float(str(text).strip())
    except ValueError:
        return None
    return int(age) if 0 <= age < 150 and age == int(age) else None


def find_train_root(path: Path) -> Path | None:
    """The folder holding ``train.csv`` when ``path`` is it, its ``images/`` or ``train.csv`` itself."""
    path = Path(path)
    for cand in (path, path.parent):
        if (cand / "train.csv").is_file():
            return cand
    return None


def read_train(path: str | Path, age_bins=DEFAULT_AGE_BINS, check_files: bool = True,
               min_side: int = DEFAULT_MIN_SIDE) -> Dataset:
    """Read the competition train layout; ``path`` is the folder with ``train.csv``, its ``images/`` or the CSV."""
    root = find_train_root(Path(path))
    if root is None:
        raise InputError(f"{path}: no train.csv here or in the parent folder")
    csv_path = root / "train.csv"
    images = root / "images"
    if not images.is_dir():
        raise InputError(f"{images}: folder not found (the train layout needs train.csv beside images/)")
    table = read_csv_strings(csv_path, ["id", "gender", "age", "path"])
    problems: list[Problem] = []
    persons: dict[str, dict] = {}
    for i, r in enumerate(table.to_dict("records"), start=2):
        folder = r["path"].strip()
        gender, age = _parse_gender(r["gender"]), _parse_age(r["age"])
        if not folder:
            problems.append(Problem(f"{csv_path}:{i}", "empty path; row skipped"))
            continue
        if gender is None or age is None:
            problems.append(Problem(f"{csv_path}:{i}", f"bad gender {r['gender']!r} or age {r['age']!r}; person {folder} skipped"))
            persons[folder] = {"skip": True}
            continue
        if folder in persons:
            problems.append(Problem(f"{csv_path}:{i}", f"folder {folder} listed twice; first row kept", "warning"))
            continue
        persons[folder] = {"id": r["id"].strip(), "gender": gender, "age": age, "race": r.get("race", "").strip()}
    on_disk = {e.name for e in os.scandir(images) if not e.name.startswith(".") and followable(e, problems, folder=True)}
    for folder in sorted(on_disk - set(persons)):
        parts = folder.split("_")
        gender = _parse_gender(parts[1]) if len(parts) >= 4 else None
        age = _parse_age(parts[-1]) if len(parts) >= 4 else None
        if gender is None or age is None:
            problems.append(Problem(str(images / folder), "folder not in train.csv and its name carries no labels; skipped"))
            continue
        problems.append(Problem(str(images / folder), "folder not in train.csv; labels taken from its name", "warning"))
        persons[folder] = {"id": parts[0], "gender": gender, "age": age, "race": "_".join(parts[2:-1])}
    by_id: dict[str, list[str]] = {}
    rows: list[dict] = []
    for folder, info in persons.items():
        if info.get("skip"):
            continue
        if folder not in on_disk:
            problems.append(Problem(str(images / folder), "listed in train.csv but the folder is missing"))
            continue
        by_id.setdefault(info["id"], []).append(folder)
        photos, others = photo_files(images / folder, problems)
        for other in others:
            problems.append(Problem(str(other), "not a photo (unknown extension); ignored", "warning"))
        seen: dict[str, Path] = {}
        for p in photos:
            stem = p.stem.strip().lower()
            if stem not in MASK_FROM_STEM:
                problems.append(Problem(str(p), "extra photo (name not mask1-5/incorrect_mask/normal); ignored", "warning"))
                continue
            if stem in seen:
                problems.append(Problem(str(p), f"second file for {stem} (also {seen[stem].name}); both kept", "warning"))
            seen[stem] = p
            rows.append({
                "image_id": f"{folder}/{p.name}", "person": folder, "path": str(p.resolve()), "photo": stem,
                "mask": MASK_FROM_STEM[stem], "gender": info["gender"], "age": info["age"],
                "id": info["id"], "race": info["race"],
            })
        missing = [s for s in PHOTO_STEMS if s not in seen]
        if missing:
            problems.append(Problem(str(images / folder), f"missing photo(s): {', '.join(missing)}", "warning"))
    for pid, folders in by_id.items():
        if len(folders) > 1:
            problems.append(Problem(str(images), f"id {pid} is used by {len(folders)} folders ({', '.join(folders)}); each folder is its own person", "warning"))
    rows = drop_unusable(rows, problems, check_files, min_side)
    order = {s: i for i, s in enumerate(PHOTO_STEMS)}
    rows.sort(key=lambda r: (r["person"], order[r["photo"]], r["path"]))
    return Dataset(_frame(rows, ["id", "race"], age_bins), problems, "train", str(root))


def read_eval(path: str | Path, check_files: bool = True, min_side: int = DEFAULT_MIN_SIDE) -> Dataset:
    """Read the eval layout: ``info.csv`` (ImageID, ans) beside ``images/``; rows keep info.csv's order."""
    root = Path(path)
    if root.name == "info.csv":
        root = root.parent
    if root.name == "images" and (root.parent / "info.csv").is_file():
        root = root.parent
    csv_path, images = root / "info.csv", root / "images"
    table = read_csv_strings(csv_path, ["ImageID"])
    if not images.is_dir():
        raise InputError(f"{images}: folder not found (the eval layout needs info.csv beside images/)")
    problems: list[Problem] = []
    rows, first = [], {}
    for i, r in enumerate(table.to_dict("records"), start=2):
        name = r["ImageID"].strip()
        p = images / name
        if not name or not p.is_file():
            problems.append(Problem(f"{csv_path}:{i}", f"photo {name!r} not found in {images}"))
            continue
        if name in first:  # one photo, one prediction: the submission still answers every row of info.csv
            problems.append(Problem(f"{csv_path}:{i}", f"photo {name} listed again (first on row {first[name]}); read "
                                                       f"once, every row of it gets the same answer", "warning"))
            continue
        first[name] = i
        rows.append({"image_id": name, "person": name, "path": str(p.resolve()), "photo": "",
                     "mask": None, "gender": None, "age": None, "order": i - 2})
    listed = {r["image_id"] for r in rows}
    for entry in os.scandir(images):
        if is_photo_name(entry.name) and entry.name not in listed and followable(entry, problems):
            problems.append(Problem(entry.path, "photo not listed in info.csv; ignored", "warning"))
    rows = drop_unusable(rows, problems, check_files, min_side)
    return Dataset(_frame(rows, ["order"], DEFAULT_AGE_BINS), problems, "eval", str(root))


def _parse_mask(text: str) -> int | None:
    t = str(text).strip().lower().replace("_", " ")
    if t in ("0", "1", "2"):
        return int(t)
    if t in MASK_NAMES:
        return MASK_NAMES.index(t)
    stem = t.replace(" ", "_")
    return MASK_FROM_STEM.get(stem, {"incorrect mask": 1, "wrong": 1, "none": 2, "no mask": 2, "mask": 0}.get(t))


def read_plain_csv(path: str | Path, path_col: str = "path", person_col: str = "person", mask_col: str = "mask",
                   gender_col: str = "gender", age_col: str = "age", age_bins=DEFAULT_AGE_BINS,
                   check_files: bool = True, min_side: int = DEFAULT_MIN_SIDE) -> Dataset:
    """Read a CSV with a photo path per row (relative to the CSV's folder) and, optionally, labels.

    Label columns that are absent leave the labels empty; a person column that is absent makes each
    photo its own person. Mask accepts 0/1/2, wear/incorrect/not worn or the competition stems.
    """
    csv_path = Path(path)
    table = read_csv_strings(csv_path, [path_col])
    base = csv_path.parent
    has = {c: c in table.columns for c in (person_col, mask_col, gender_col, age_col)}
    problems: list[Problem] = []
    rows = []
    for i, r in enumerate(table.to_dict("records"), start=2):
        rel = r[path_col].strip()
        p = (base / rel) if rel else None
        if p is None or not p.is_file():
            problems.append(Problem(f"{csv_path}:{i}", f"photo {rel!r} not found"))
            continue
        mask = _parse_mask(r[mask_col]) if has[mask_col] else None
        gender = _parse_gender(r[gender_col]) if has[gender_col] else None
        age = _parse_age(r[age_col]) if has[age_col] else None
        bad = [c for c, v in ((mask_col, mask), (gender_col, gender), (age_col, age)) if has[c] and v is None]
        if bad:
            problems.append(Problem(f"{csv_path}:{i}", f"unreadable {', '.join(bad)}; labels left empty", "warning"))
        person = r[person_col].strip() if has[person_col] and r[person_col].strip() else rel
        rows.append({"image_id": rel, "person": person, "path": str(p.resolve()), "photo": "",
                     "mask": mask, "gender": gender, "age": age})
    rows = drop_unusable(rows, problems, check_files, min_side)
    return Dataset(_frame(rows, [], age_bins), problems, "csv", str(base))


def read_folder(path: str | Path, check_files: bool = True, min_side: int = DEFAULT_MIN_SIDE) -> Dataset:
    """Every photo under ``path`` (recursively, sorted), no labels; a photo's person is its folder."""
    root = Path(path)
    rows = []
    problems: list[Problem] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not is_photo_name(name):
                continue
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            try:
                resolved = str(p.resolve())
            except (OSError, RuntimeError) as e:  # Python 3.11 raises RuntimeError on a symlink loop
                problems.append(Problem(str(p), f"cannot be followed ({e}); skipped"))
                continue
            rows.append({"image_id": rel, "person": str(Path(rel).parent), "path": resolved, "photo": "",
                         "mask": None, "gender": None, "age": None})
    if not rows:
        raise InputError(f"{root}: no photos (.jpg, .jpeg, .png) found in this folder")
    rows = drop_unusable(rows, problems, check_files, min_side)
    return Dataset(_frame(rows, [], DEFAULT_AGE_BINS), problems, "folder", str(root))


def dataset_name(path: str | Path) -> str:
    """A short name for the data set at ``path``, for default output folders: the folder holding train.csv /
    info.csv (also when ``path`` is that CSV or its ``images/``), a CSV's stem, else the folder's name."""
    p = Path(path).resolve()
    if p.name in ("train.csv", "info.csv") or (p.name == "images" and ((p.parent / "train.csv").is_file()
                                                                       or (p.parent / "info.csv").is_file())):
        return p.parent.name
    return p.stem if p.is_file() else (p.name or "data")


def _unfinished_synth(folder: Path) -> bool:
    """``folder`` is a synth output whose run has not finished: synth's ``.partial/`` bookkeeping is there, or its
    folder marker says synth and ``synth.json`` (written last) is missing."""
    try:
        prog = json.loads((folder / ".partial" / "progress.json").read_text())
        if isinstance(prog, dict) and "scan_blocks" in prog:
            return True
    except (OSError, ValueError):
        pass
    return folder_kind(folder) == "synth" and not (folder / "synth.json").is_file()


def detect_layout(path: str | Path) -> str:
    """'train', 'eval', 'csv' or 'folder' for ``path``; InputError when it does not exist or is (inside) a synth output
    that did not finish (its masks/ would be read as photos, its train.csv may be missing or partial)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    for folder in (p, p.parent) if p.name in ("images", "masks", "train.csv", "info.csv") else (p,):
        if folder.is_dir() and _unfinished_synth(folder):
            raise InputError(f"{folder}: an unfinished synth output (its run was interrupted before it wrote synth.json); "
                             f"finish it by running the same `facecurate synth` command again, then use it")
    if p.is_file():
        if p.name == "train.csv":
            return "train"
        if p.name == "info.csv":
            return "eval"
        if p.suffix.lower() == ".csv":
            return "csv"
        raise InputError(f"{p}: expected a folder or a .csv file")
    if find_train_root(p) is not None and ((p / "train.csv").is_file() or p.name == "images"):
        return "train"
    if (p / "info.csv").is_file() or (p.name == "images" and (p.parent / "info.csv").is_file()):
        return "eval"
    return "folder"


def read_dataset(path: str | Path, age_bins=DEFAULT_AGE_BINS, check_files: bool = True,
                 min_side: int = DEFAULT_MIN_SIDE, **csv_columns) -> Dataset:
    """Read whatever layout ``path`` holds (see ``detect_layout``) into a ``Dataset``.

    ``check_files`` opens every photo's header (empty, truncated, non-image files and photos whose
    shorter side is under ``min_side`` px are listed as problems and left out).
    """
    if not utf8(Path(path).resolve()):
        raise InputError(f"{printable(Path(path).resolve())}: the path holds bytes that are not UTF-8; rename the folder "
                         f"(or move the data to a path without them) and run again")
    layout = detect_layout(path)
    if layout == "train":
        return read_train(path, age_bins, check_files, min_side)
    if layout == "eval":
        return read_eval(path, check_files, min_side)
    if layout == "csv":
        return read_plain_csv(path, age_bins=age_bins, check_files=check_files, min_side=min_side, **csv_columns)
    return read_folder(path, check_files, min_side)
