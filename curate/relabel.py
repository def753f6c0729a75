"""The ``relabel-report`` stage: out-of-fold probabilities + the cache -> report.html, issues.csv, overrides.csv.

Uses ``oof.parquet`` from a ``train`` run when given; otherwise trains a quick person-grouped K-fold
on the cache first (``train.fit.train``). It reads the cache and writes only into ``out``: the
user's data is never touched.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from curate.cache import Cache, load_cache
from curate.consistency import KINDS, find_issues, sort_flags, validate_oof
from curate.errors import InputError
from curate.labels import parse_age_bins
from curate.near_duplicates import near_duplicate_flags
from curate.report import KIND_TITLES, overrides_from_flags, write_report


@dataclass
class RelabelResult:
    """What the stage wrote (``paths``), every flag, and where the out-of-fold probabilities came from."""

    out: Path
    paths: dict[str, Path]
    flags: pd.DataFrame
    oof_path: Path
    people: int = 0
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (flags, people)


def _age_bins(cache: Cache, oof_path: Path | None, age_bins) -> tuple[int, int]:
    """The age bins the labels were cut with: given, else the run's config.json, else the cache's."""
    if age_bins is not None:
        return parse_age_bins(age_bins)
    if oof_path is not None and (oof_path.parent / "config.json").is_file():
        try:
            bins = json.loads((oof_path.parent / "config.json").read_text()).get("age_bins")
            if bins:
                return parse_age_bins(bins)
        except (InputError, json.JSONDecodeError):
            pass  # an unreadable run config: fall back on the cache's bins
    return cache.age_bins


def quick_oof(cache: Cache, out: Path, folds: int = 5, epochs: int = 6, model: str | None = None,
              image_size: int = 128, batch_size: int = 64, device: str | None = None, seed: int = 0,
              progress: bool = True) -> Path:
    """Train a small person-grouped K-fold on the cache (``train.fit.quick_config``) and return its ``oof.parquet``.

    The input keeps the cache's aspect ratio at ``image_size`` pixels high; ``model`` None = the trainer's default.
    """
    from train.fit import quick_config, train

    h, w = (int(s) for s in cache.images.shape[1:3])
    size = (int(image_size), max(8, round(image_size * w / h)))
    changes = dict(folds=folds, epochs=epochs, img_size=size, batch_size=batch_size, device=device, seed=seed)
    if model:
        changes["model"] = model
    run = train(cache, out, cfg=quick_config(**changes), progress=progress)
    oof = Path(run) / "oof.parquet"
    if not oof.is_file():
        raise InputError(f"{run}: the quick training run wrote no oof.parquet")
    return oof


def read_oof(path: str | Path) -> pd.DataFrame:
    """Read ``oof.parquet`` and check its contract; InputError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found (expected RUN/oof.parquet from `train`)")
    try:
        oof = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a file that is not parquet
        raise InputError(f"{path}: not a readable parquet file ({type(e).__name__})") from None
    return validate_oof(oof, name=str(path))


def relabel_report(cache: str | Path, oof: str | Path | None = None, out: str | Path | None = None,
                   pool: str = "mean", near_duplicates: bool = True, max_hash_distance: int = 4,
                   min_corr: float = 0.97, max_cards: int = 1000, age_bins=None, folds: int = 5, epochs: int = 6,
                   model: str | None = None, image_size: int = 128, batch_size: int = 64, device: str | None = None,
                   seed: int = 0, progress: bool = True, console: Console | None = None) -> RelabelResult:
    """Flag likely label errors in a cache and write report.html, issues.csv and overrides.csv into ``out``.

    ``oof``: a run's oof.parquet; without it a quick K-fold (``folds`` x ``epochs``, ``model`` at ``image_size``)
    is trained into ``out/quick_run`` first. ``pool``: how a person's photo probabilities are combined
    (``mean`` or ``log``). Near-duplicates: pHash distance <= ``max_hash_distance`` confirmed by thumbnail
    correlation >= ``min_corr``.
    """
    console = console or Console()
    c = load_cache(cache)
    out = Path(out) if out is not None else Path("artifacts") / "relabel" / c.path.resolve().name
    manifest = c.manifest.reset_index(drop=True)
    if "label" not in manifest or manifest["label"].isna().all():
        raise InputError(f"{c.path}: the cache holds no labels (an eval-layout or unlabelled dataset); nothing to check")
    if oof is None:
        console.print(f"[bold]relabel-report[/]: no --oof given; training a quick {folds}-fold {model or 'default'} "
                      f"model ({epochs} epoch(s), {image_size} px high) on {c.path} for out-of-fold probabilities")
        oof_path = quick_oof(c, out / "quick_run", folds=folds, epochs=epochs, model=model, image_size=image_size,
                             batch_size=batch_size, device=device, seed=seed, progress=progress)
    else:
        oof_path = Path(oof)
    frame = read_oof(oof_path)
    known = set(manifest["image_id"].astype(str))
    unknown = ~frame["image_id"].isin(known)
    if unknown.all():
        raise InputError(f"{oof_path}: none of its image_ids are in {c.path}; is it from a run on another cache?")
    if unknown.any():
        console.print(f"[yellow]warning[/]: {int(unknown.sum())} oof row(s) not in the cache are ignored")
        frame = frame[~unknown].reset_index(drop=True)
    bins = _age_bins(c, oof_path if oof is not None else None, age_bins)
    labelled = manifest[manifest["label"].notna()]
    flags = find_issues(frame, manifest=labelled, pool=pool, age_bins=bins)
    if near_duplicates:
        if progress:
            console.print(f"near-duplicates: hashing {len(manifest)} cached photos")
        nd = near_duplicate_flags(c.images, manifest, max_distance=max_hash_distance, min_corr=min_corr, age_bins=bins)
        flags = sort_flags(pd.concat([x for x in (flags, nd) if len(x)], ignore_index=True)) if len(nd) else flags
    note = f"Cache: {c.path}. Out-of-fold probabilities: {oof_path}. Person pooling: {pool}."
    paths = write_report(out, flags, manifest, c.images, title=f"relabel report: {c.path.resolve().name}",
                         age_bins=bins, max_cards=max_cards, note=note)
    counts = {k: (int((flags["kind"] == k).sum()), int(flags.loc[flags["kind"] == k, "person"].nunique())) for k in KINDS}
    result = RelabelResult(out=out, paths=paths, flags=flags, oof_path=oof_path,
                           people=int(manifest["person"].nunique()), counts=counts)
    console.print(summary_table(result))
    return result


def summary_table(result: RelabelResult) -> Table:
    """Flags and flagged people per kind, and the files written."""
    t = Table(title=f"relabel-report: {result.people} people checked")
    t.add_column("kind")
    t.add_column("flags", justify="right")
    t.add_column("people", justify="right")
    for k in KINDS:
        n, p = result.counts.get(k, (0, 0))
        t.add_row(KIND_TITLES[k], str(n), str(p))
    n_over = len(overrides_from_flags(result.flags))
    t.add_row("[bold]all[/]", str(len(result.flags)), str(result.flags["person"].nunique() if len(result.flags) else 0),
              end_section=True)
    t.caption = (f"{n_over} suggested fix(es) in {result.paths['overrides']}; every flag in {result.paths['issues']}; "
                 f"open {result.paths['html']}")
    return t
