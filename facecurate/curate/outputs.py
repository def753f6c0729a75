"""Output folders that never touch the user's data: refuse overlaps with inputs, claim a folder before writing.

Every stage that writes goes through ``claimed_output``, the one way to claim an output folder: it
checks the folder against the stage's inputs (``check_separate``: an output equal to, inside or
containing an input folder is refused), claims it (``claim_folder``: a folder is written only when it
is new, empty, or already a facecurate folder of the same kind, marked by ``.facecurate.json``) and
holds its lock while the stage writes (``locks.folder_lock``). Each step raises ``InputError`` with one
line before anything is written; nothing here deletes a file.
"""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .errors import InputError
from .locks import LOCK, folder_lock

MARKER = ".facecurate.json"
#: Names of our own bookkeeping files: they never make a folder "not empty".
OWN_NAMES = {MARKER, LOCK}


def _folder_of(p: Path) -> Path:
    p = p.resolve()
    return p if p.is_dir() or not p.suffix else p.parent


def check_separate(out: str | Path, inputs: Iterable[str | Path], option: str = "--out") -> None:
    """InputError when ``out`` equals, lies inside or contains one of the ``inputs`` (files count as their folder)."""
    o = Path(out).expanduser().resolve()
    for raw in inputs:
        if raw is None:
            continue
        i = _folder_of(Path(raw).expanduser())
        if o == i or i in o.parents:
            raise InputError(f"{o}: {option} must not be the input folder {i} or inside it (nothing of your data is "
                             f"ever written); choose a folder elsewhere")
        if o in i.parents:
            raise InputError(f"{o}: {option} must not contain the input folder {i}; choose a folder elsewhere")


def _read_marker(path: Path) -> dict | None:
    try:
        data = json.loads((path / MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def folder_kind(path: str | Path) -> str | None:
    """The facecurate kind ("cache", "run", "report", ...) marked in ``path``, or None."""
    marker = _read_marker(Path(path))
    return str(marker.get("kind")) if marker else None


def claim_folder(path: str | Path, kind: str, recognise: Callable[[Path], bool] | None = None,
                 option: str = "--out") -> Path:
    """Make ``path`` a facecurate ``kind`` folder we may write in, or raise InputError; returns the path.

    Accepted: a new or empty folder, a folder already marked as ``kind``, or one ``recognise`` knows as
    ours (a folder written before markers existed). Refused: a file, an unwritable place, a folder
    holding anything else (it is left exactly as it was).
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: {option} is an existing file; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (PermissionError, FileExistsError, NotADirectoryError, OSError) as e:
        raise InputError(f"{path}: cannot create the {option} folder ({e.strerror or type(e).__name__})") from None
    marker = _read_marker(path)
    if marker is not None and marker.get("kind") != kind:
        raise InputError(f"{path}: this is a facecurate {marker.get('kind')} folder, not a {kind} folder; choose another {option}")
    if marker is None:
        others = [e.name for e in os.scandir(path) if e.name not in OWN_NAMES]
        if others and not (recognise is not None and recognise(path)):
            raise InputError(f"{path}: {option} is not empty and is not a facecurate {kind} folder (it holds e.g. "
                             f"{sorted(others)[0]}); choose an empty or new folder: nothing in it was changed")
        try:
            tmp = path / (MARKER + ".tmp")
            tmp.write_text(json.dumps({"kind": kind}) + "\n")
            os.replace(tmp, path / MARKER)
        except OSError as e:
            raise InputError(f"{path}: cannot write in the {option} folder ({e.strerror or type(e).__name__})") from None
    elif not os.access(path, os.W_OK):
        raise InputError(f"{path}: cannot write in the {option} folder (permission denied)")
    return path


#: Suffixes of the files stages write: an ``--out`` that does not exist yet and ends so was meant as a file.
FILE_SUFFIXES = (".csv", ".parquet", ".json", ".html", ".png", ".npy", ".txt")


def check_folder_name(out: str | Path, option: str = "--out") -> None:
    """InputError when ``out`` does not exist yet and is named like a file (``my_submission.csv``): every ``--out`` is
    a folder, and a folder named like a file would only mislead (an existing file is ``claim_folder``'s to refuse)."""
    out = Path(out)
    if not out.exists() and out.suffix.lower() in FILE_SUFFIXES:
        raise InputError(f"{out}: {option} is a folder (the command writes its files inside it), not a {out.suffix} file; "
                         f"give a folder such as {out.with_suffix('')}")


def claim_output(out: str | Path, kind: str, inputs: Iterable[str | Path | None] = (),
                 recognise: Callable[[Path], bool] | None = None, option: str = "--out") -> Path:
    """``check_folder_name``, ``check_separate`` then ``claim_folder``: the checks every stage makes before it
    writes; returns the folder.

    For a stage that must claim its folder early (before a long step, so a wrong ``--out`` fails first)
    and lock it later; ``claimed_output`` does both at once.
    """
    check_folder_name(out, option=option)
    check_separate(out, [i for i in inputs if i is not None], option=option)
    return claim_folder(out, kind, recognise=recognise, option=option)


@contextlib.contextmanager
def claimed_output(out: str | Path, kind: str, inputs: Iterable[str | Path | None] = (),
                   recognise: Callable[[Path], bool] | None = None, option: str = "--out",
                   lock: bool = True, what: str | None = None) -> Iterator[Path]:
    """Check, claim and lock ``out`` as a facecurate ``kind`` folder for the block; yields the folder.

    ``inputs``: folders or files the output must not overlap (None entries are skipped). ``recognise``:
    knows a folder of this kind written before markers existed. ``lock=False`` for a caller that holds
    the lock some other way (a DDP rank that is not rank 0 never writes). ``what``: the folder's name in
    the lock's message ("cache", "run"; default "<kind> folder").
    """
    path = claim_output(out, kind, inputs, recognise=recognise, option=option)
    if not lock:
        yield path
        return
    with folder_lock(path, what or f"{kind} folder"):
        yield path
