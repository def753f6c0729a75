"""The ``relabel-report`` stage: out-of-fold probabilities + the cache -> report.html, issues.csv, overrides.csv.

The probabilities come from a ``train`` run's ``oof.parquet`` (the CLI trains a quick one first when
none is given: ``facecurate.train.quick_oof``). The stage reads the cache and writes only into ``out``:
the user's data is never touched.
"""
from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..cache import Cache, load_cache
from ..errors import InputError
from ..identity import IdentityAudit
from ..labels import parse_age_bins
from ..outputs import OWN_NAMES, claimed_output
from ..progress import QUIET, Progress
from .checks import audit_labels
from .faces import FaceEvidence, ensure_embeddings, read_faces
from .kinds import KINDS
from .oof import read_oof
from .options import ReportOptions
from .quality import HeadQuality
from .report_html import overrides_from_flags, write_report
from .simulate import KindEstimate


IDENTITY_KINDS = ("stranger", "duplicate_id", "identity_leak")  # kinds read from the face embeddings' identity audit


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
    candidates: int = 0  # suggested fixes of low-confidence kinds (in overrides.csv only with include_candidates)
    options: ReportOptions = field(default_factory=ReportOptions)  # the options it ran with
    scored_people: int = 0  # people with at least one photo the oof gives probabilities for (a --fold run: fewer)
    photos: int = 0  # labelled photos in the cache
    scored_photos: int = 0  # of them, photos with probabilities in the oof

    @property
    def coverage(self) -> str:
        """"20 of 40 people checked (the oof covers 140 of 280 photos)", or "40 people checked" when it covers all."""
        if self.scored_people >= self.people and self.scored_photos >= self.photos:
            return f"{self.people} people checked"
        return (f"{self.scored_people} of {self.people} people checked (the oof covers {self.scored_photos} of "
                f"{self.photos} photos)")
    faces: FaceEvidence | None = None  # what the face embeddings said (probe weights, identity audit); None without them

    def detector_status(self, kind: str) -> str:
        """"on", or "off (why)" for a kind that is not model-based (``structure``, ``near_duplicate``, the identity
        kinds, ``photo_quality``): what its zero flags mean."""
        o = self.options
        if kind in IDENTITY_KINDS:
            if self.faces is None:
                return "off (no face embeddings)"
            if kind == "identity_leak" and not o.against:
                return "off (no --against)"
            if self.faces.identity is None:
                return "off (--no-identity)"
            if self.faces.identity.off:
                return "off (faces not told apart)"
        if kind == "near_duplicate" and not o.near_duplicates:
            return "off (--no-near-duplicates)"
        if kind == "photo_quality" and not o.photo_quality:
            return "off (--no-photo-quality)"
        return "on"


def _title(c: Cache) -> str:
    """The page's title: the data the cache was cropped from (meta.json's source), and the cache folder."""
    source = str(c.meta.get("source") or "")
    data = Path(source).name if source and Path(source).name not in ("", "images") else Path(source).parent.name
    cache = c.path.resolve().name
    return f"relabel report: {data} (cache {cache})" if data and data != cache else f"relabel report: {cache}"


def _age_bins(cache: Cache, oof_path: Path | None, age_bins: tuple[int, ...] | None) -> tuple[int, ...]:
    """The age bins the labels were cut with: given (parsed by ``ReportOptions``), else the run's config.json, else the cache's."""
    if age_bins is not None:
        return age_bins
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


def cache_source(cache: str | Path) -> Path | None:
    """The photo folder a cache was cropped from (its meta.json's ``source``), or None when unknown or unreadable."""
    try:
        source = json.loads((Path(cache) / "meta.json").read_text()).get("source")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return Path(source) if isinstance(source, str) and source and Path(source).is_absolute() else None


def report_folder(cache: str | Path, out: str | Path | None = None) -> AbstractContextManager[Path]:
    """The report folder for ``cache`` (``out`` or the default), checked, claimed and locked for a ``with`` block.

    The one place a report folder is claimed: the CLI holds it around the quick training and the report. The
    folder may lie neither in the cache nor in the photo folder the cache was cropped from (meta.json's source).
    """
    out = Path(out) if out is not None else default_report_dir(cache)
    return claimed_output(out, "report", [cache, cache_source(cache)], recognise=_is_report, what="report folder")


def _scored(frame: pd.DataFrame) -> pd.Series:
    """Rows of an oof table holding at least one finite probability (a killed run or a NaN-filled row holds none)."""
    cols = [c for c in frame.columns if c.startswith("p_")]
    return frame[cols].notna().any(axis=1) if cols else pd.Series(False, index=frame.index)


def relabel_report(cache: str | Path | Cache, oof: str | Path, out: str | Path | None = None,
                   options: ReportOptions | None = None, progress: Progress | None = None,
                   **changes) -> RelabelResult:
    """Flag likely label errors in a cache and write report.html, issues.csv, overrides.csv and quality.json into ``out``.

    ``oof``: a run's oof.parquet (out-of-fold probabilities). ``options``: a ``ReportOptions`` (default: the
    CLI's defaults); ``changes``: options by their CLI names over it (``gate=0.3``, ``include_candidates=True``).
    The folder (``out``, default ``artifacts/relabel/<cache name>``) is claimed and locked while it is written.
    """
    options = (options or ReportOptions()).replace(**changes)
    c = cache if isinstance(cache, Cache) else load_cache(cache, verify=options.verify)
    with report_folder(c.path, out) as folder:
        return write_relabel_report(c, oof, folder, options, progress)


def write_relabel_report(c: Cache, oof: str | Path, folder: Path, options: ReportOptions,
                         progress: Progress | None = None, identity: IdentityAudit | None = None) -> RelabelResult:
    """The report of ``c`` from the out-of-fold table ``oof`` into ``folder``, already claimed (``report_folder``).

    Every registered kind runs (``checks.audit_labels``); a head below the quality gate (``options.gate``) raises
    none of its model-based kinds; each other model-based kind's threshold is the lowest reaching
    ``options.target_precision`` in simulated draws, never within ``options.margin`` of a tie; kinds that miss
    the target are low-confidence candidates, in overrides.csv only with ``options.include_candidates``.
    ``identity``: the identity audit when the caller already ran it (``faces.check_identity``).
    """
    progress = progress or QUIET
    oof_path = Path(oof)
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
    scored = _scored(frame)
    if not scored.any():
        raise InputError(f"{oof_path}: every probability is missing (NaN); is the run that wrote it finished?")
    frame = frame[scored].reset_index(drop=True)
    labelled = manifest[manifest["label"].notna()]
    people, photos = int(labelled["person"].nunique()), len(labelled)
    scored_people, scored_photos = int(frame["person"].nunique()), int(frame["image_id"].nunique())
    coverage = ""
    if scored_people < people or scored_photos < photos:
        coverage = (f"{scored_people} of {people} people checked (the oof covers {scored_photos} of {photos} photos; "
                    f"a --fold run or an unfinished one scores only part of the cache)")
        progress.note(f"warning: {coverage}; the others get no model-based flags")
    bins = _age_bins(c, oof_path, options.age_bins)
    c = ensure_embeddings(c, options, progress)
    faces, frame = read_faces(c, frame, labelled, options, folder, progress, identity=identity)
    for line in faces.notes if faces is not None else []:
        progress.note(line)
    progress.note(f"relabel-report: measuring the out-of-fold model and simulating each kind of flag ({options.draws}+ draws)")
    audit = audit_labels(frame, manifest=labelled, options=options, age_bins=bins, cache=c, progress=progress, faces=faces)
    flags = audit.flags
    note = (f"Cache: {c.path}. Out-of-fold probabilities: {oof_path}"
            f"{' combined with a linear probe on face embeddings' if faces is not None and faces.probe is not None else ''}. "
            f"Person pooling: {options.pool}. Target precision {options.target_precision:.2f}, tie margin {options.margin:.2f}."
            + (f" Partial out-of-fold table: {coverage}." if coverage else ""))
    paths = write_report(folder, flags, manifest, c.images, title=_title(c),
                         age_bins=bins, max_cards=options.max_cards, note=note, quality=audit.quality,
                         estimates=audit.estimates, include_candidates=options.include_candidates,
                         notes=faces.notes if faces is not None else ())
    counts = {k: (int((flags["kind"] == k).sum()), int(flags.loc[flags["kind"] == k, "person"].nunique())) for k in KINDS}
    fixes = len(overrides_from_flags(flags, include_candidates=options.include_candidates))
    return RelabelResult(out=folder, paths=paths, flags=flags, oof_path=oof_path, people=people,
                         counts=counts, fixes=fixes, quality=audit.quality, estimates=audit.estimates,
                         candidates=len(overrides_from_flags(flags, include_candidates=True)) - len(overrides_from_flags(flags)),
                         options=options, scored_people=scored_people, photos=photos, scored_photos=scored_photos,
                         faces=faces)
