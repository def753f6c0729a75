"""``ensemble``: several runs' fold ensembles combined (``stack``'s methods), scored out of fold and/or used on new data.

``--oof`` reads every run's ``oof.parquet``. The runs must hold the same photos with the same labels (trained on
one cache with the same overrides), else they cannot be compared photo by photo and the command says which run
differs. Stacking also needs the same person-grouped folds (the same ``--folds`` and ``--seed``): the nested
score holds out each shared fold in turn. When the folds differ, mean and vote are still scored and the stackers
are left out, with the reason. ``oof.parquet`` here is the mean ensemble's out-of-fold table, in a run's own
format (``relabel-report --oof`` reads it).

With ``DATA``, each run crops it with its own crop settings (``predict.crop_for_run``; runs that share settings
share the cache) and predicts it with its folds and flips (``predict_cache``); the chosen ``--method`` combines
them into ``submission.csv``. A stacker for new data is fitted on all the runs' out-of-fold rows.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...curate.errors import InputError
from ...curate.outputs import claimed_output
from ...curate.progress import QUIET, Progress, Steps
from ..data import OUTPUT_CLASSES
from ..predict import crop_for_run, predict_cache, read_run, submission_frame
from .stack import METHODS, STACKERS, features, fit_stacker, mean_probs, method_scores, oof_table, stacker_probs

CLASS_COLUMNS = [f"p_class_{j}" for j in range(OUTPUT_CLASSES["class"])]
PROB_COLUMNS = [f"p_{h}_{j}" for h, n in OUTPUT_CLASSES.items() for j in range(n)]


@dataclass
class RunsOOF:
    """The runs' out-of-fold tables aligned photo by photo (in the first run's row order)."""

    names: list[str]
    frames: list[pd.DataFrame]
    labels: np.ndarray
    folds: np.ndarray | None      # the shared fold of every photo; None when the runs' folds differ
    folds_note: str               # why the stackers cannot be scored, when they cannot

    @property
    def probs(self) -> np.ndarray:
        return np.stack([f[CLASS_COLUMNS].to_numpy(np.float64) for f in self.frames])


@dataclass
class EnsembleResult:
    """What ``ensemble`` wrote: the out-of-fold table (``--oof``) and/or the submission (``DATA``)."""

    out: Path
    names: list[str]
    method: str
    table: pd.DataFrame | None = None
    folds_note: str = ""
    submission: Path | None = None
    rows: int = 0


def run_names(runs: list[Path]) -> list[str]:
    """The runs' folder names, with the parent folder added where two share a name (trials of two tunes)."""
    names = [Path(r).name for r in runs]
    return [f"{Path(r).parent.name}/{n}" if names.count(n) > 1 else n for r, n in zip(runs, names)]


def default_ensemble_dir(runs: list[Path]) -> Path:
    """``artifacts/ensembles/<run>+<run>...`` (the names shortened when they are long)."""
    name = "+".join(Path(r).name for r in runs)
    return Path("artifacts/ensembles") / (name if len(name) <= 80 else f"{Path(runs[0]).name}+{len(runs) - 1}-more")


def read_oof_table(path: Path) -> pd.DataFrame:
    """A run's ``oof.parquet``, checked: readable, with its ids, folds, labels and finite probabilities (InputError
    naming the file otherwise: a cut, flipped or all-NaN table is damage, never a score)."""
    try:
        frame = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError on a cut or flipped file
        raise InputError(f"{path}: not a readable parquet table ({type(e).__name__}); the run is damaged: train it "
                         f"again") from None
    missing = [c for c in ("image_id", "fold", "label", *PROB_COLUMNS) if c not in frame]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}; "
                         f"not an out-of-fold table written by `train`")
    probs = frame[PROB_COLUMNS].to_numpy(np.float64)
    bad = ~np.isfinite(probs).all(axis=1)
    if bad.any() or not len(frame):
        raise InputError(f"{path}: {int(bad.sum())} of {len(frame)} rows hold no finite probabilities; the run is "
                         f"damaged: train it again")
    if frame["image_id"].duplicated().any():
        raise InputError(f"{path}: photo {frame.loc[frame['image_id'].duplicated(), 'image_id'].iloc[0]} is listed twice; "
                         f"the run is damaged: train it again")
    return frame


def read_oofs(runs: list[Path]) -> RunsOOF:
    """Every run's ``oof.parquet``, aligned and checked (InputError naming the run that does not fit)."""
    frames = []
    for r in runs:
        read_run(r)
        path = Path(r) / "oof.parquet"
        if not path.is_file():
            raise InputError(f"{r}: no oof.parquet (the run has not finished a fold); ensemble --oof needs finished runs")
        frames.append(read_oof_table(path))
    names = run_names(runs)
    first = frames[0].set_index("image_id")
    aligned = [frames[0].reset_index(drop=True)]
    for name, run, f in zip(names[1:], runs[1:], frames[1:]):
        ids = set(f["image_id"])
        if ids != set(first.index):
            common = len(ids & set(first.index))
            raise InputError(f"{run}: its out-of-fold photos are not those of {runs[0]} ({len(ids)} vs {len(first)} photos, "
                             f"{common} in common); ensemble the runs of one cache (with the same --overrides)")
        f = f.set_index("image_id").loc[first.index].reset_index()
        if (f["label"].to_numpy() != frames[0]["label"].to_numpy()).any():
            raise InputError(f"{run}: its labels differ from those of {runs[0]} on "
                             f"{int((f['label'].to_numpy() != frames[0]['label'].to_numpy()).sum())} photos (other "
                             f"--overrides?); the runs must be scored against the same labels")
        aligned.append(f)
    folds, note = frames[0]["fold"].to_numpy(np.int64), ""
    for name, f in zip(names[1:], aligned[1:]):
        if (f["fold"].to_numpy() != folds).any():
            folds, note = None, (f"no stacker: run {name}'s folds differ from run {names[0]}'s (another --folds or --seed); "
                                 f"a stacker's nested score needs the runs' shared person-grouped folds")
            break
    return RunsOOF(names, aligned, aligned[0]["label"].to_numpy(np.int64), folds, note)


def _mean_oof(oofs: RunsOOF) -> pd.DataFrame:
    """The mean ensemble's out-of-fold table, in a run's oof.parquet format."""
    base = oofs.frames[0].drop(columns=[c for c in oofs.frames[0].columns if c.startswith("p_")] + ["pred"], errors="ignore")
    mean = sum(f[PROB_COLUMNS].to_numpy(np.float64) for f in oofs.frames) / len(oofs.frames)
    frame = pd.concat([base, pd.DataFrame(mean.astype(np.float32), columns=PROB_COLUMNS)], axis=1)
    frame["pred"] = mean[:, [PROB_COLUMNS.index(c) for c in CLASS_COLUMNS]].argmax(1)
    return frame


def _predict_data(runs: list[Path], data: Path, cache_root: Path, device, batch_size: int, tta: bool,
                  progress: Progress) -> tuple[list[pd.DataFrame], object]:
    frames, cache = [], None
    steps = Steps(progress, f"ensemble: {len(runs)} run(s) on {data.name}", len(runs))
    for r in runs:
        config, _, _ = read_run(r)
        cache = crop_for_run(config, data, cache_root, device=device, progress=progress)
        frames.append(predict_cache(r, cache, device=device, batch_size=batch_size, tta=tta, progress=progress))
        steps.advance()
    ids = frames[0]["image_id"]
    for r, f in zip(runs[1:], frames[1:]):
        if list(f["image_id"]) != list(ids):
            raise InputError(f"{r}: its crops of {data} hold other photos than {runs[0]}'s; crop DATA again")
    return frames, cache


def combine(method: str, probs: np.ndarray, oofs: RunsOOF | None, balanced: bool, seed: int) -> np.ndarray:
    """N x 18 scores of ``method`` on new data's R x N x 18 probabilities (a stacker fitted on all the oof rows)."""
    if method not in STACKERS:
        return method_scores(method, probs, np.zeros(0), None)
    model = fit_stacker(method, features(oofs.probs), oofs.labels, balanced, seed)
    return stacker_probs(model, features(probs))


def ensemble(runs: list[str | Path], out: str | Path, data: str | Path | None = None, method: str = "mean",
             oof: bool = False, balanced: bool = True, seed: int = 0, device: str | None = None,
             cache_root: str | Path | None = None, batch_size: int = 128, tta: bool = True,
             progress: Progress | None = None) -> EnsembleResult:
    """Score the combinations out of fold (``oof``) and/or predict ``data`` with ``method``; see the module doc."""
    progress = progress or QUIET
    runs = [Path(r) for r in runs]
    if len(runs) < 2:
        raise InputError("ensemble: give two or more run folders")
    if len({r.resolve() for r in runs}) < len(runs):
        raise InputError("ensemble: a run is given twice")
    if method not in METHODS:
        raise InputError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    if not oof and data is None:
        raise InputError("ensemble: nothing to do; give DATA to predict and/or --oof to score the methods out of fold")
    for r in runs:
        read_run(r)
    oofs = read_oofs(runs) if oof or method in STACKERS else None
    if method in STACKERS and oofs.folds is None:
        raise InputError(f"--method {method}: {oofs.folds_note}; use --method mean or vote, or train the runs with the same "
                         f"--folds and --seed")
    out = Path(out)
    result = EnsembleResult(out, run_names(runs), method, folds_note=oofs.folds_note if oofs else "")
    record = {"runs": [str(r.resolve()) for r in runs], "method": method, "balanced": balanced, "seed": seed}
    with claimed_output(out, "ensemble", [*runs, data], recognise=lambda p: (p / "ensemble.json").is_file()):
        if oof:
            progress.note(f"ensemble: scoring {', '.join(METHODS)} on {len(oofs.labels)} out-of-fold photos")
            result.table = oof_table(oofs.names, oofs.probs, oofs.labels, oofs.folds, METHODS, balanced, seed)
            result.table.to_csv(out / "oof_scores.csv", index=False, float_format="%.4f")
            _mean_oof(oofs).to_parquet(out / "oof.parquet", index=False)
            record["oof"] = {"photos": int(len(oofs.labels)), "shared_folds": oofs.folds is not None,
                             "note": oofs.folds_note, "scores": result.table.to_dict(orient="records")}
        if data is not None:
            data = Path(data)
            frames, cache = _predict_data(runs, data, Path(cache_root) if cache_root else out / "cache", device,
                                          batch_size, tta, progress)
            probs = np.stack([f[CLASS_COLUMNS].to_numpy(np.float64) for f in frames])
            scores = combine(method, probs, oofs, balanced, seed)
            table = frames[0][["image_id", "person", "error"]].copy()
            mean = mean_probs(np.stack([f[PROB_COLUMNS].to_numpy(np.float64) for f in frames]))
            table = pd.concat([table, pd.DataFrame(mean.astype(np.float32), columns=PROB_COLUMNS)], axis=1)
            table["pred"] = scores.argmax(1).astype(np.int64)
            for name, f in zip(result.names, frames):
                table[f"pred_{name}"] = f["pred"].to_numpy()
            sub, missing = submission_frame(table, data, str((cache.meta or {}).get("layout", "")))
            sub.to_csv(out / "submission.csv", index=False)
            table.to_parquet(out / "probs.parquet", index=False)
            result.submission, result.rows = out / "submission.csv", len(sub)
            record["predict"] = {"data": str(data.resolve()), "cache": str(cache.path), "rows": len(sub),
                                 "missing_photos": missing, "tta": tta}
        (out / "ensemble.json").write_text(json.dumps(record, indent=2, default=float))
    return result
