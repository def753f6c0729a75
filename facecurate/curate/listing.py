"""Listing a data folder safely: CSVs read as strings, the photo files of a folder, and every file or name a reader
cannot use (empty, truncated, too small, a symlink loop, bytes that are not UTF-8) turned into a ``Problem``.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .decode import DEFAULT_MIN_SIDE, check_image_file, is_photo_name
from .errors import InputError, printable


@dataclass(frozen=True)
class Problem:
    """Something in the data a user should know about: ``level`` is 'error' (skipped) or 'warning'."""

    path: str
    what: str
    level: str = "error"

    def __post_init__(self) -> None:  # a name with undecodable bytes is kept printable (and writable to problems.csv)
        object.__setattr__(self, "path", printable(self.path))
        object.__setattr__(self, "what", printable(self.what))

    def __str__(self) -> str:
        return f"{self.level}: {self.path}: {self.what}"


def read_csv_strings(path: Path, required: list[str]) -> pd.DataFrame:
    """Read a CSV as strings, or raise InputError naming the file and what is wrong with it."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the CSV is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{path}: malformed CSV ({first})") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(df.columns) or 'none'}")
    return df


def utf8(text: str) -> bool:
    """False for a name holding bytes that are not UTF-8 (Python keeps them as surrogates; parquet cannot store them)."""
    try:
        str(text).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def followable(entry: os.DirEntry, problems: list[Problem], folder: bool = False) -> bool:
    """``entry.is_dir()`` / ``is_file()``; an entry that cannot be followed (a symlink loop) is listed and skipped."""
    try:
        return entry.is_dir() if folder else entry.is_file()
    except OSError as e:
        problems.append(Problem(entry.path, f"cannot be followed ({e.strerror}: a symlink loop?); skipped"))
        return False


def drop_unusable(rows: list[dict], problems: list[Problem], check: bool, min_side: int = DEFAULT_MIN_SIDE) -> list[dict]:
    """Drop rows whose file is empty, truncated, not an image or too small, each listed as a problem; rows whose name
    holds bytes that are not UTF-8 are dropped the same way, checked or not."""
    named = []
    for r in rows:
        if all(utf8(r[c]) for c in ("image_id", "person", "path")):
            named.append(r)
        else:
            problems.append(Problem(r["path"], "its name holds bytes that are not UTF-8; skipped: rename the file or folder"))
    rows = named
    if not check or not rows:
        return rows
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        reasons = list(pool.map(lambda r: check_image_file(r["path"], min_side), rows))
    kept = []
    for row, why in zip(rows, reasons):
        if why is None:
            kept.append(row)
        else:
            problems.append(Problem(row["path"], f"{why}; skipped"))
    return kept


def photo_files(folder: Path, problems: list[Problem]) -> tuple[list[Path], list[Path]]:
    """(photos, other visible files) directly in ``folder``; hidden and ``._*`` files are ignored."""
    photos, others = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(".") or not followable(entry, problems):
            continue
        (photos if is_photo_name(entry.name) else others).append(Path(entry.path))
    return photos, others
