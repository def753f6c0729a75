"""The `crop` stage: photos -> subject face -> head-and-shoulders crop -> resumable tensor cache.

Pass 1, chunk by chunk (resumable): decode in threads (ahead of detection) -> the detector's quick look
in batches -> every candidate face kept -> a provisional pick (large and central) -> crop region ->
optional background removal -> resize to ``size`` x ``round(size * aspect)`` -> the cache chunk.
Pass 2 (``person_pass``): each person's consensus box decides the subject (a face in the background
or a spurious box loses; all candidates disagreeing -> the person box); single photos the detector was
unsure about get its full look; photos without a face fall back on the person's or the data set's box;
whatever changed is cropped again. The stage prints nothing: it reports through ``progress`` and
returns a ``CropResult``.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..cache import SUBJECT_COLUMNS, Cache, load_cache
from ..cache_writer import CacheWriter, fingerprint
from ..devices import opencv_threads, resolve_device
from ..errors import InputError
from ..outputs import claimed_output
from ..progress import QUIET, Progress, Steps
from ..readers import Dataset, Problem, read_dataset
from ..versions import package_versions
from .background import find_rembg_model, make_remover
from .contact import crop_contact_sheet
from .fallback import DETECTED, PERSON, PRIOR, assign_boxes
from .first_look import CROP_COLS, FullLookForecast, OnDemandDetector, crop_chunk, decoded, read_photo, render_crop
from .geometry import crop_region, cut, output_shape
from .params import VERSION_PACKAGES, CropParams
from .subject import WEIGHTS
from .person_pass import (FACE_COLS, REJECTED_COLS, RUNNER_COLS, candidates_json, dataset_consensus, decide_subjects, doubtful,
                          off_person)
from .cues import image_cues

#: Columns `crop` adds to the manifest beyond the contract's CROP_COLUMNS.
EXTRA_COLS = ["width", "height", "n_faces", "detector", *REJECTED_COLS, "off_person"]  # + cache.SUBJECT_COLUMNS


@dataclass
class CropResult:
    """What a `crop` run did: the opened ``cache``, how it was obtained and what the photos needed.

    ``state``: "complete" (reused as it was), "resume" (continued an interrupted run) or "fresh";
    ``counts``: photos per box source (detected / person / prior) and failed; ``computed``: photos
    cropped by this call; ``rejected``: photos whose every face disagreed with the person's other
    photos (given the person box); ``off_person``: photos whose final crop still disagrees with their
    person's (all on the contact sheet); ``contact``: the sheet, ``left_out`` crops not drawn on it.
    """

    cache: Cache
    state: str
    counts: dict[str, int]
    seconds: float
    computed: int
    chunks: int = 0
    chunks_resumed: int = 0
    contact: Path | None = None
    left_out: int = 0
    problems: list[Problem] = field(default_factory=list)
    rejected: int = 0
    off_person: int = 0

    @property
    def photos_per_s(self) -> float:
        return self.computed / self.seconds if self.seconds > 0 else float("nan")


class CropStopped(RuntimeError):
    """Raised when ``stop_after_chunks`` chunks are done: the run stops as if interrupted and can be resumed."""


def crop_dataset(data: str | Path | Dataset, out: str | Path, params: CropParams = CropParams(), device: str | None = None,
                 progress: Progress | None = None, stop_after_chunks: int | None = None, replace: bool = False) -> CropResult:
    """Crop every photo of ``data`` (a path any reader knows, or a ``Dataset``) into the cache folder ``out``.

    A complete cache with the same inputs and shaping parameters is reused as it is; a partial one
    resumes from its last finished chunk. A photo that cannot be read is kept as a row with ``error``
    and an all-zero image. ``stop_after_chunks`` stops (``CropStopped``) after that many chunks of
    this call, leaving a resumable cache, as an interruption would. A complete cache made with other
    settings (runs may point at it) is refused with the difference named unless ``replace``.
    """
    progress = progress or QUIET
    params = CropParams.from_dict(params.to_dict()).validate()
    dev = resolve_device(device)
    ds = data if isinstance(data, Dataset) else read_dataset(data, age_bins=params.age_bins, check_files=False)
    out = Path(out)
    if params.background == "rembg":
        find_rembg_model(params.rembg_model)  # fail in one line before touching the cache folder
    inputs = [ds.root] + ([] if isinstance(data, Dataset) else [data])
    with claimed_output(out, "cache", inputs, recognise=_is_cache_folder, what="cache"):
        if not replace:
            _refuse_other_settings(out, params)
        with opencv_threads(1):  # the photos run side by side already: OpenCV's own threads only add CPU
            return _crop_locked(ds, out, params, dev, device, progress, stop_after_chunks)


def settings_changed(old: dict, new: CropParams) -> list[str]:
    """The cache-shaping settings that differ between a cache's meta.json ``params`` and ``new``, as "--size 128 -> 160"."""
    was = CropParams.from_dict(old).shaping()
    now = new.shaping()
    def shown(v) -> str:
        return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
    return [f"--{k.replace('_', '-')} {shown(was[k])} -> {shown(now[k])}" for k in now if shown(was.get(k)) != shown(now[k])]


def _refuse_other_settings(out: Path, params: CropParams) -> None:
    """InputError when ``out`` holds a complete cache cropped with other shaping settings (``--replace`` overrides)."""
    try:
        meta = json.loads((out / "meta.json").read_text())
    except (OSError, json.JSONDecodeError):
        return
    if not (isinstance(meta, dict) and meta.get("complete") and isinstance(meta.get("params"), dict)):
        return
    changed = settings_changed(meta["params"], params)
    if changed:
        raise InputError(f"{out}: holds a cache cropped with other settings ({'; '.join(changed)}); runs may point at it: "
                         f"pass --replace to overwrite it, or give another --out")


def _is_cache_folder(path: Path) -> bool:
    """A cache written before markers existed: its meta.json holds a fingerprint."""
    return (path / "meta.json").is_file() and "fingerprint" in (path / "meta.json").read_text()


def _crop_locked(ds: Dataset, out: Path, params: CropParams, dev: str, device: str | None, progress: Progress,
                 stop_after_chunks: int | None) -> CropResult:
    manifest = ds.manifest.reset_index(drop=True)
    if ds.problems:
        progress.note(f"{len(ds.problems)} problem(s) in the data, e.g. {ds.problems[0]}; `inspect` lists them all")
    n = len(manifest)
    if n == 0:
        raise InputError(f"{ds.root}: no photos to crop")
    out_hw = output_shape(params.size, params.aspect)
    detector_key = params.detector if params.detector != "auto" else f"auto@{'cuda' if dev.startswith('cuda') else 'cpu'}"
    # package versions are part of the key: a new mediapipe/torch/facecurate may detect or crop differently
    versions = package_versions(VERSION_PACKAGES)
    key = fingerprint({**params.shaping(), "detector_key": detector_key, "versions": versions}, manifest)
    writer = CacheWriter.open(out, n, (*out_hw, 3), key, params.chunk)
    if writer.reason:
        progress.note(f"{out}: {writer.reason}")
    if writer.state == "complete":
        progress.note(f"cache reused: {out} ({n} photos; same inputs and parameters, nothing recomputed)")
        cache = load_cache(out, verify="off")  # CacheWriter.open verified it
        if not (out / "contact.png").is_file():  # a sheet the disk had no room for: drawn now
            _sheet(out, cache, cache.manifest["path"].astype(str).tolist(), params, out_hw)
        return CropResult(cache, "complete", dict(cache.meta.get("counts", {})), 0.0, 0, writer.n_chunks,
                          problems=ds.problems, contact=out / "contact.png")
    if writer.state == "resume":
        progress.note(f"resuming {out}: {len(writer.done)} of {writer.n_chunks} chunks already done")
    paths = manifest["path"].astype(str).tolist()
    t0 = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=max(1, params.workers), thread_name_prefix="decode")
    background = make_remover(params.background, params.fill, params.rembg_model)
    detector = OnDemandDetector(params, device)  # opened when a pass first looks: both passes take it the same way
    try:
        pending = writer.pending_chunks()
        steps = Steps(progress, "crop", n, done=n - sum(len(writer.chunk_range(c)) for c in pending))
        if pending and params.ray:  # pass 1 on a Ray cluster: chunks come back in any order, each written as it lands
            from .ray_pass import connect, first_pass

            connect(params.ray)
            results = first_pass(pending, writer.chunk_range, paths, params, device, out_hw, params.ray_workers or None)
            for done_now, (c, crops, recs) in enumerate(results, start=1):
                writer.images[writer.chunk_range(c).start:writer.chunk_range(c).stop] = crops
                writer.finish_chunk(c, recs)
                steps.advance(len(crops))
                if stop_after_chunks is not None and done_now >= stop_after_chunks and done_now < len(pending):
                    raise CropStopped(f"stopped after {done_now} chunk(s) as asked; run again to resume")
        elif pending:
            order = [i for c in pending for i in writer.chunk_range(c)]
            stream = decoded(pool, order, paths, ahead=max(2 * params.batch, 2 * params.workers), min_side=params.min_photo_size)
            forecast = FullLookForecast()  # loads the full look's detectors during pass 1 when pass 2 will need them
            for done_now, c in enumerate(pending, start=1):
                writer.finish_chunk(c, crop_chunk(writer, c, stream, detector, background, params, out_hw, steps, forecast))
                if stop_after_chunks is not None and done_now >= stop_after_chunks and c != pending[-1]:
                    raise CropStopped(f"stopped after {done_now} chunk(s) as asked; run again to resume")
        rows, second_look = _second_pass(writer, writer.finished_rows(), manifest, ds.layout, pool, detector, background,
                                         params, out_hw, progress)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        detector.close()
        if background is not None:
            background.close()
    seconds = time.perf_counter() - t0
    crop_cols = {c: rows[c].to_numpy() for c in FACE_COLS + CROP_COLS + ["score", "box_source", "error"] + SUBJECT_COLUMNS + EXTRA_COLS}
    full = manifest.drop(columns=[c for c in crop_cols if c in manifest.columns]).assign(**crop_cols)
    counts = {s: int((full["box_source"] == s).sum()) for s in (DETECTED, PERSON, PRIOR)}
    counts["failed"] = int((full["error"] != "").sum())
    rejected = int(np.isfinite(full["rejected_x1"].to_numpy(np.float64)).sum())
    meta = {
        "params": params.to_dict(), "versions": versions, "source": str(Path(ds.root).resolve()) if ds.root else "",
        "layout": ds.layout, "detector": detector.name if detector.opened else params.detector, "device": dev,
        "counts": {**counts, "rejected": rejected, "off_person": int(full["off_person"].sum()), "second_look": second_look},
        "problems": len(ds.problems), "chunks": writer.n_chunks, "chunk": writer.chunk,
        "chunks_resumed": writer.resumed, "seconds": round(seconds, 2),
    }
    cache = writer.finalize(full, meta)
    contact, left_out = _sheet(out, cache, paths, params, out_hw)
    return CropResult(cache, writer.state, counts, seconds, n - writer.resumed_rows, writer.n_chunks, writer.resumed,
                      contact, left_out, ds.problems, rejected, int(full["off_person"].sum()))


def _sheet(out: Path, cache: Cache, paths: list[str], params: CropParams, out_hw) -> tuple[Path, int]:
    """contact.png of a complete cache (with background removal: each sample before and after, the photos cut again;
    close calls drawn on their whole photo); a failed write is one line that says the cache itself is complete."""
    def originals(rows: list[int]) -> list[np.ndarray]:
        imgs = [read_photo(paths[i], params.min_photo_size)[0] for i in rows]
        return [cut(img, cache.manifest.loc[i, CROP_COLS].to_numpy(np.float64), out_hw, params.pad) if img is not None
                else np.zeros((*out_hw, 3), np.uint8) for i, img in zip(rows, imgs)]
    def photos(rows: list[int]) -> list[np.ndarray | None]:  # close calls are drawn on their whole photo
        return [read_photo(paths[i], params.min_photo_size)[0] for i in rows]
    try:
        return crop_contact_sheet(cache.images, cache.manifest, out / "contact.png",
                                  originals=originals if params.background != "none" else None, photos=photos,
                                  close=WEIGHTS.close)
    except OSError as e:
        raise InputError(f"{out / 'contact.png'}: cannot write it ({e.strerror or e}); the cache itself is complete and "
                         f"usable: free some space and run `crop` again to draw the sheet") from None


def _second_pass(writer: CacheWriter, rows: pd.DataFrame, manifest: pd.DataFrame, layout: str, pool: ThreadPoolExecutor,
                 detector, background, params: CropParams, out_hw: tuple[int, int],
                 progress: Progress) -> tuple[pd.DataFrame, int]:
    """Pass 2: photos whose cues leave the subject in doubt get the detector's full look; the subject rule, with the
    person's consensus as one vote, decides each subject; photos without a face fall back on the person's or the data
    set's box, and every changed crop is redone. Returns the rows and how many photos needed the full look."""
    rows = rows.copy()
    persons = manifest["person"].astype(str).tolist()
    paths = manifest["path"].astype(str).tolist()
    use_consensus = params.person_consensus and layout != "folder"  # in a plain folder a folder is not a person
    prior = dataset_consensus(rows)
    todo = np.flatnonzero(doubtful(rows, prior))  # the cues disagree: the detector's full look, then the rule again
    if len(todo):
        steps = Steps(progress, "second look (photos whose subject the quick look left in doubt)", len(todo))
        for s in range(0, len(todo), params.batch):
            part = todo[s:s + params.batch]
            read = list(pool.map(lambda p: read_photo(p, params.min_photo_size), [paths[i] for i in part]))
            ok = [(i, img) for i, (img, _) in zip(part, read) if img is not None]
            found = detector.detect([img for _, img in ok]) if ok else []
            for (i, img), faces in zip(ok, found):
                boxes = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
                focus, below = image_cues(img, boxes)
                rows.loc[i, ["n_faces", "candidates"]] = [len(faces), candidates_json(faces, focus, below)]
            steps.advance(len(part))
    choice = decide_subjects(rows, persons, use_consensus, params.person_fallback, prior)
    usable = (rows["error"] == "").to_numpy()
    boxes = choice[FACE_COLS].to_numpy(np.float64, copy=True)
    boxes[choice["box_source"].to_numpy() == PERSON] = np.nan  # the person box is filled in with the others below
    sizes = rows[["width", "height"]].to_numpy(np.float64, copy=True)
    filled, source = assign_boxes(boxes, sizes, persons, usable, use_person=params.person_fallback)
    person_rows = (choice["box_source"] == PERSON).to_numpy()
    filled[person_rows] = choice.loc[person_rows, FACE_COLS].to_numpy(np.float64)
    source[person_rows] = PERSON
    regions = np.full((len(rows), 4), np.nan)
    for i in np.flatnonzero(usable):
        regions[i] = crop_region(filled[i], sizes[i, 0], sizes[i, 1], params.margins, params.aspect, params.edge)
    old = rows[CROP_COLS].to_numpy(np.float64, copy=True)
    redo = np.flatnonzero(usable & ~np.all(np.isclose(regions, old, atol=1e-6), axis=1))
    steps = Steps(progress, "crop again (subject changed or fallback box)", len(redo)) if len(redo) else None
    for i, (img, err) in zip(redo, pool.map(lambda p: read_photo(p, params.min_photo_size), [paths[i] for i in redo])):
        steps.advance()
        if img is None:  # changed since the first pass
            rows.loc[i, "error"] = err
            writer.images[i] = 0
            continue
        writer.images[i] = render_crop(img, regions[i], out_hw, params.pad, background, filled[i])
    keep = usable & (rows["error"] == "").to_numpy()
    rows[FACE_COLS] = np.where(keep[:, None], filled, np.nan)
    rows[CROP_COLS] = np.where(keep[:, None], regions, np.nan)
    rows["box_source"] = np.where(keep, source, "")
    det = choice["box_source"].to_numpy() == DETECTED
    rows["score"] = np.where(keep & det, choice["score"].to_numpy(np.float64), np.nan)
    rows["detector"] = np.where(keep & det, choice["detector"].to_numpy(), np.where(keep, source, ""))
    rows[REJECTED_COLS] = choice[REJECTED_COLS].to_numpy(np.float64)
    rows[RUNNER_COLS] = np.where((keep & det)[:, None], choice[RUNNER_COLS].to_numpy(np.float64), np.nan)
    rows["margin"] = np.where(keep & det, choice["margin"].to_numpy(np.float64), np.nan)
    rows["off_person"] = off_person(rows[FACE_COLS].to_numpy(np.float64), sizes, persons, use_consensus)
    return rows, int(len(todo))
