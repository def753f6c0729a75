"""The ``relabel-report`` stage: out-of-fold probabilities + the cache -> report.html, issues.csv, overrides.csv.

The probabilities come from a ``train`` run's ``oof.parquet`` (the CLI trains a quick one first when
none is given: ``facecurate.train.quick_oof``). The stage reads the cache and writes only into ``out``:
the user's data is never touched.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..cache import Cache, load_cache
from ..errors import InputError
from ..labels import parse_age_bins
from ..locks import folder_lock
from ..outputs import OWN_NAMES, check_separate, claim_folder
from ..progress import QUIET, Progress
from .checks import audit_labels
from .flags import KINDS, sort_flags
from .near_duplicates import near_duplicate_flags
from .oof import read_oof
from .quality import HeadQuality
from .simulate import KindEstimate
from .report_html import overrides_from_flags, write_report


@dataclass
class RelabelResult:
    """What the stage wrote (``paths``), every flag, and where the out-of-fold probabilities came from."""

    out: Path
    paths: dict[str, Path]
    flags: pd.DataFrame
    oof_path: Path
    people: int = 0
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (flags, people)
    fixes: int = 0  # rows of overrides.csv
    quality: dict[str, HeadQuality] = field(default_factory=dict)  # head -> how well the model reads it (the gate)
    estimates: dict[str, KindEstimate] = field(default_factory=dict)  # model-based kind -> threshold and expected precision
    candidates: int = 0  # suggested fixes of low-confidence kinds (in overrides.csv only with include_low)


def validate_options(pool: str = "mean", max_hash_distance: int = 4, min_corr: float = 0.97, max_cards: int = 1000,
                     target_precision: float = 0.8, margin: float = 0.1, draws: int = 8, lift: float = 0.5) -> None:
    """InputError naming the option when a report option is out of range (checked before any training)."""
    checks = [("--pool", pool, pool in ("mean", "log"), "mean or log"),
              ("--max-hash-distance", max_hash_distance, 0 <= max_hash_distance <= 64, "0..64"),
              ("--min-corr", min_corr, 0 < min_corr <= 1, "in (0, 1]"),
              ("--max-cards", max_cards, max_cards >= 0, ">= 0"),
              ("--target-precision", target_precision, 0 < target_precision < 1, "in (0, 1)"),
              ("--margin", margin, 0 < margin < 0.5, "in (0, 0.5)"),
              ("--draws", draws, 1 <= draws <= 200, "1..200"),
              ("--gate", lift, 0 <= lift < 1, "in [0, 1)")]
    for name, value, ok, want in checks:
        if not ok:
            raise InputError(f"{name} {value}: expected {want}")


def _age_bins(cache: Cache, oof_path: Path | None, age_bins) -> tuple[int, ...]:
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


QUICK_RUN = "quick_run"  # where the CLI trains the quick out-of-fold model when no --oof is given


def _is_report(path: Path) -> bool:
    """A report folder written before folder markers existed, or one holding only the quick run so far."""
    names = {e.name for e in path.iterdir()} - OWN_NAMES
    return names <= {QUICK_RUN} or {"issues.csv", "report.html"} <= names


def default_report_dir(cache: str | Path, root: str | Path = "artifacts/relabel") -> Path:
    """``root/<cache folder name>``: where a report goes when ``out`` is not given."""
    return Path(root) / Path(cache).resolve().name


def prepare_report_dir(cache: str | Path, out: str | Path | None = None) -> Path:
    """The report folder for ``cache`` (``out`` or the default), checked and claimed before anything is written there."""
    out = Path(out) if out is not None else default_report_dir(cache)
    check_separate(out, [cache], option="--out")
    return claim_folder(out, "report", recognise=_is_report)


def relabel_report(cache: str | Path | Cache, oof: str | Path, out: str | Path | None = None, pool: str = "mean",
                   near_duplicates: bool = True, max_hash_distance: int = 4, min_corr: float = 0.97,
                   max_cards: int = 1000, age_bins=None, target_precision: float = 0.8, margin: float = 0.1,
                   draws: int = 8, lift: float = 0.5, include_low: bool = False, seed: int = 0,
                   progress: Progress | None = None) -> RelabelResult:
    """Flag likely label errors in a cache and write report.html, issues.csv, overrides.csv and quality.json into ``out``.

    ``oof``: a run's oof.parquet (out-of-fold probabilities). ``pool``: how a person's photo probabilities
    are combined (``mean`` or ``log``). Near-duplicates: pHash distance <= ``max_hash_distance`` confirmed
    by thumbnail correlation >= ``min_corr``. ``age_bins``: for the names shown (default: the run's, else the cache's).
    The model-based kinds: a head below the quality gate (``lift``, ``quality``) raises none; each other kind's
    threshold is the lowest reaching ``target_precision`` in ``draws`` simulated draws (``simulate``), never within
    ``margin`` of a tie; kinds that miss the target are low-confidence candidates, in overrides.csv only with
    ``include_low``.
    """
    validate_options(pool, max_hash_distance, min_corr, max_cards, target_precision, margin, draws, lift)
    progress = progress or QUIET
    c = cache if isinstance(cache, Cache) else load_cache(cache)
    out = prepare_report_dir(c.path, out)
    options = dict(pool=pool, near_duplicates=near_duplicates, max_hash_distance=max_hash_distance, min_corr=min_corr,
                   max_cards=max_cards, age_bins=age_bins, target_precision=target_precision, margin=margin, draws=draws,
                   lift=lift, include_low=include_low, seed=seed)
    with folder_lock(out, "report folder"):
        return _report(c, Path(oof), out, progress, **options)


def _report(c: Cache, oof_path: Path, out: Path, progress: Progress, pool: str, near_duplicates: bool,
            max_hash_distance: int, min_corr: float, max_cards: int, age_bins, target_precision: float, margin: float,
            draws: int, lift: float, include_low: bool, seed: int) -> RelabelResult:
    manifest = c.manifest.reset_index(drop=True)
    if "label" not in manifest or manifest["label"].isna().all():
        raise InputError(f"{c.path}: the cache holds no labels (an eval-layout or unlabelled dataset); nothing to check")
    frame = read_oof(oof_path)
    known = set(manifest["image_id"].astype(str))
    unknown = ~frame["image_id"].isin(known)
    if unknown.all():
        raise InputError(f"{oof_path}: none of its image_ids are in {c.path}; is it from a run on another cache?")
    if unknown.any():
        progress.note(f"warning: {int(unknown.sum())} oof row(s) not in the cache are ignored")
        frame = frame[~unknown].reset_index(drop=True)
    bins = _age_bins(c, oof_path, age_bins)
    labelled = manifest[manifest["label"].notna()]
    progress.note(f"relabel-report: measuring the out-of-fold model and simulating each kind of flag ({draws}+ draws)")
    audit = audit_labels(frame, manifest=labelled, pool=pool, age_bins=bins, target_precision=target_precision,
                         margin=margin, draws=draws, lift=lift, seed=seed)
    flags = audit.flags
    if near_duplicates:
        progress.note(f"near-duplicates: hashing {len(manifest)} cached photos")
        nd = near_duplicate_flags(c.images, manifest, max_distance=max_hash_distance, min_corr=min_corr, age_bins=bins)
        flags = sort_flags(pd.concat([x for x in (flags, nd) if len(x)], ignore_index=True)) if len(nd) else flags
    note = (f"Cache: {c.path}. Out-of-fold probabilities: {oof_path}. Person pooling: {pool}. "
            f"Target precision {target_precision:.2f}, tie margin {margin:.2f}.")
    paths = write_report(out, flags, manifest, c.images, title=f"relabel report: {c.path.resolve().name}",
                         age_bins=bins, max_cards=max_cards, note=note, quality=audit.quality, estimates=audit.estimates,
                         include_low=include_low)
    counts = {k: (int((flags["kind"] == k).sum()), int(flags.loc[flags["kind"] == k, "person"].nunique())) for k in KINDS}
    fixes = len(overrides_from_flags(flags, include_low=include_low))
    return RelabelResult(out=out, paths=paths, flags=flags, oof_path=oof_path, people=int(manifest["person"].nunique()),
                         counts=counts, fixes=fixes, quality=audit.quality, estimates=audit.estimates,
                         candidates=len(overrides_from_flags(flags, include_low=True)) - len(overrides_from_flags(flags)))
