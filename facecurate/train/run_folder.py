"""What a run folder holds, and the rule that keeps two runs from mixing in one: a run without --resume never writes
over another run's files (``check_fresh``); only ``train(replace=True)`` clears them first (``clear_run``)."""
from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from ..curate.errors import InputError
from .checkpoint import write_atomic
from .config import TrainConfig

#: What a run writes in its folder (besides the ``fold_*`` folders): a run without --resume refuses a folder holding any.
RUN_NAMES = ("config.json", "metrics.csv", "oof.parquet", "summary.json", "per_class.csv", "confusion.png", "curves.png",
             "tensorboard", ".folds")  # .folds: the folds' own runs while they train side by side (fold_pool)


def run_files(out: Path) -> list[Path]:
    """The run files and ``fold_*`` folders in ``out``, sorted."""
    return sorted([out / n for n in RUN_NAMES if (out / n).exists()] + [p for p in out.glob("fold_*") if p.is_dir()])


def check_fresh(out: Path, cfg: TrainConfig) -> None:
    """A run without --resume never writes over another run: InputError when ``out`` holds a finished run (its
    summary.json) or an unfinished one (any other run file, e.g. a fold_2 left by a run with more folds)."""
    held = [] if cfg.resume else run_files(out)
    if not held:
        return
    what = ("a finished run (summary.json)" if (out / "summary.json").is_file()
            else f"an unfinished run ({held[0].name}, no summary.json)")
    raise InputError(f"{out}: holds {what}; pass --resume to continue it (or to add a --fold to it), or choose another "
                     f"--out; nothing in it was changed")


def clear_run(out: Path, cfg: TrainConfig | None = None) -> None:
    """Delete a run's own files in ``out`` (``RUN_NAMES`` and ``fold_*``), nothing else: ``train(replace=True)`` (``cfg``:
    unused, as ``check_fresh`` takes it)."""
    for p in run_files(out):
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """``frame`` as parquet through ``write_atomic``: a full disk is one line and leaves no temporary file."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    write_atomic(path, buf.getvalue())


@contextlib.contextmanager
def plot_guard(path: Path) -> Iterator[None]:
    """Around a plot saved straight to ``path`` (matplotlib's savefig): a failed write (a full disk) removes the cut file
    and is one line naming it; summary.json is not written yet, so ``train --resume`` finishes the run."""
    try:
        yield
    except OSError as e:
        path.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write it ({e.strerror or e}); free some space, then `train --resume` finishes "
                         f"the run") from None
