"""The `crop` stage: photos -> subject face -> head-and-shoulders crop -> resumable tensor cache.

read -> decode in threads (ahead of detection) -> detect in batches -> pick the subject -> fall back
on the person's / data set's boxes where no face was found -> crop region -> optional background
removal -> resize to ``size`` x ``round(size * aspect)`` -> write into the cache chunk by chunk.
"""
from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from curate.background import BACKGROUNDS, FILLS, find_rembg_model, make_background
from curate.cache import CacheWriter, Cache, fingerprint, load_cache
from curate.contact import crop_contact_sheet
from curate.decode import BadImage, check_image_file, read_rgb
from curate.errors import InputError
from curate.fallback import DETECTED, assign_boxes
from curate.geometry import DEFAULT_MARGINS, EDGES, crop_region, cut, output_shape, parse_margins
from curate.labels import DEFAULT_AGE_BINS, parse_age_bins
from curate.readers import Dataset, read_dataset
from curate.subject import pick_subject

FACE_COLS = ["face_x1", "face_y1", "face_x2", "face_y2"]
CROP_COLS = ["crop_x1", "crop_y1", "crop_x2", "crop_y2"]
#: Columns `crop` adds to the manifest beyond the contract's CROP_COLUMNS.
EXTRA_COLS = ["width", "height", "n_faces", "detector"]
PADS = ("gray", "black", "replicate")
VERSION_PACKAGES = ("torch", "facenet-pytorch", "mediapipe", "numpy", "opencv-contrib-python-headless", "pillow",
                    "pandas", "rembg", "onnxruntime", "facecurate")


class CropStopped(RuntimeError):
    """Raised when ``stop_after_chunks`` chunks are done: the run stops as if interrupted and can be resumed."""


@dataclass
class CropParams:
    """Every option of `crop` (JSON-serialisable); ``RUNTIME_FIELDS`` (batch, threads, chunk) do not change the result."""

    detector: str = "auto"                # auto | mtcnn | mediapipe | ... (curate.detect.DETECTOR_NAMES)
    min_face: int | None = None           # smallest face searched, px; None = from the photo size
    size: int = 256                       # crop height, px
    aspect: float = 0.75                  # crop width / height
    margins: tuple[float, float, float] = DEFAULT_MARGINS  # top, side, bottom, in face widths
    edge: str = "shift"                   # shift the region inside the photo, or pad
    pad: str = "gray"                     # what fills the region beyond the photo: gray | black | replicate
    background: str = "none"              # none | mediapipe | rembg
    fill: str = "gray"                    # background fill: gray | blur | black
    rembg_model: str = "u2netp"           # rembg model name or .onnx path inside U2NET_HOME
    person_fallback: bool = True          # use the person's other photos before the data-set prior
    age_bins: tuple[int, int] = DEFAULT_AGE_BINS
    batch: int = 32                       # photos per detector call
    workers: int = 2                      # decoding threads
    chunk: int = 512                      # photos per resumable chunk
    detect_threads: int = 0               # detector copies run side by side; 0 = one per core on the CPU, 1 on CUDA

    RUNTIME_FIELDS = ("batch", "workers", "chunk", "detect_threads")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["margins"], d["age_bins"] = list(self.margins), list(self.age_bins)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CropParams":
        """Rebuild from ``to_dict`` output (e.g. a run's saved crop settings); unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "margins" in kw:
            kw["margins"] = tuple(float(v) for v in kw["margins"])
        if "age_bins" in kw:
            kw["age_bins"] = tuple(int(v) for v in kw["age_bins"])
        return cls(**kw)

    def shaping(self) -> dict:
        """The parameters that shape the cache's content (all but ``RUNTIME_FIELDS``)."""
        return {k: v for k, v in self.to_dict().items() if k not in self.RUNTIME_FIELDS}

    def validate(self) -> "CropParams":
        """Check every value; InputError naming the option otherwise. Returns self with normalised tuples."""
        from curate.detect import DETECTOR_NAMES

        if self.detector not in DETECTOR_NAMES:
            raise InputError(f"--detector {self.detector!r}: expected one of {', '.join(DETECTOR_NAMES)}")
        if self.min_face is not None and not 8 <= int(self.min_face) <= 4096:
            raise InputError(f"--min-face {self.min_face}: expected 8..4096 pixels")
        if not 16 <= int(self.size) <= 4096:
            raise InputError(f"--size {self.size}: expected 16..4096 pixels")
        if not 0.2 <= float(self.aspect) <= 5:
            raise InputError(f"--aspect {self.aspect}: expected a width/height ratio 0.2..5")
        try:
            self.margins = parse_margins(self.margins)
            self.age_bins = parse_age_bins(self.age_bins)
        except ValueError as e:
            raise InputError(str(e)) from None
        for opt, val, allowed in (("--edge", self.edge, EDGES), ("--pad", self.pad, PADS),
                                  ("--background", self.background, BACKGROUNDS), ("--fill", self.fill, FILLS)):
            if val not in allowed:
                raise InputError(f"{opt} {val!r}: expected one of {', '.join(allowed)}")
        for opt, val in (("--batch", self.batch), ("--workers", self.workers), ("--chunk", self.chunk)):
            if int(val) < 1:
                raise InputError(f"{opt} {val}: expected 1 or more")
        if not 0 <= int(self.detect_threads) <= 64:
            raise InputError(f"--detect-threads {self.detect_threads}: expected 0 (auto) to 64")
        return self


def default_cache_dir(data: str | Path, root: str | Path = "artifacts/cache") -> Path:
    """``root/<data name>``: the folder's name, a CSV's stem, or the folder holding train.csv / info.csv."""
    src = Path(data).resolve()
    name = src.parent.name if src.name in ("train.csv", "info.csv") else src.stem if src.is_file() else src.name
    return Path(root) / name


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape a cache (``"absent"`` when one is not installed)."""
    out = {}
    for name in VERSION_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    import cv2

    out["cv2"] = cv2.__version__
    return out


def _read(path: str) -> tuple[np.ndarray | None, str]:
    """(RGB image, "") or (None, why it cannot be read)."""
    why = check_image_file(path)
    if why is not None:
        return None, why
    try:
        return read_rgb(path), ""
    except BadImage as e:
        return None, str(e)


def _decoded(pool: ThreadPoolExecutor, indices: Sequence[int], paths: Sequence[str], ahead: int) -> Iterator[tuple[int, np.ndarray | None, str]]:
    """Yield (row, image, error) in order while up to ``ahead`` photos decode in ``pool`` threads."""
    it = iter(indices)
    queue: deque[tuple[int, Future]] = deque((i, pool.submit(_read, paths[i])) for i in itertools.islice(it, ahead))
    while queue:
        i, fut = queue.popleft()
        nxt = next(it, None)
        if nxt is not None:
            queue.append((nxt, pool.submit(_read, paths[nxt])))
        img, err = fut.result()
        yield i, img, err


def _empty_row() -> dict:
    row = {c: np.nan for c in FACE_COLS + CROP_COLS}
    row.update(score=np.nan, box_source="", error="", width=0, height=0, n_faces=0, detector="")
    return row


def _resolve_device(device: str | None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def crop_dataset(data: str | Path | Dataset, out: str | Path, params: CropParams = CropParams(), device: str | None = None,
                 progress: bool = True, stop_after_chunks: int | None = None) -> Cache:
    """Crop every photo of ``data`` (a path any reader knows, or a ``Dataset``) into the cache folder ``out``.

    A complete cache with the same inputs and shaping parameters is reused as it is; a partial one
    resumes from its last finished chunk. A photo that cannot be read is kept as a row with ``error``
    and an all-zero image. ``stop_after_chunks`` stops (``CropStopped``) after that many chunks of
    this call, leaving a resumable cache, as an interruption would.
    """
    from rich.console import Console

    console = Console(quiet=not progress, highlight=False)
    params = CropParams.from_dict(params.to_dict()).validate()
    ds = data if isinstance(data, Dataset) else read_dataset(data, age_bins=params.age_bins, check_files=False)
    manifest = ds.manifest.reset_index(drop=True)
    if ds.problems:
        console.print(f"{len(ds.problems)} problem(s) in the data, e.g. {ds.problems[0]}; `inspect` lists them all", soft_wrap=True)
    n = len(manifest)
    if n == 0:
        raise InputError(f"{ds.root or data}: no photos to crop")
    out = Path(out)
    dev = _resolve_device(device)
    out_hw = output_shape(params.size, params.aspect)
    detector_key = params.detector if params.detector != "auto" else f"auto@{'cuda' if dev.startswith('cuda') else 'cpu'}"
    # package versions are part of the key: a new mediapipe/torch/facecurate may detect or crop differently
    key = fingerprint({**params.shaping(), "detector_key": detector_key, "versions": package_versions()}, manifest)
    if params.background == "rembg":
        find_rembg_model(params.rembg_model)  # fail in one line before touching the cache folder
    writer = CacheWriter.open(out, n, (*out_hw, 3), key, params.chunk)
    if writer.state == "complete":
        console.print(f"cache reused: {out} ({n} photos; same inputs and parameters, nothing recomputed)", soft_wrap=True)
        return load_cache(out)
    if writer.state == "resume":
        console.print(f"resuming {out}: {len(writer.done)} of {writer.n_chunks} chunks already done", soft_wrap=True)
    paths = manifest["path"].astype(str).tolist()
    t0 = time.perf_counter()
    done_now = 0
    detector_name = ""
    pool = ThreadPoolExecutor(max_workers=max(1, params.workers), thread_name_prefix="decode")
    background = make_background(params.background, params.fill, params.rembg_model)
    detector = None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console, disable=not progress)
    try:
        pending = writer.pending_chunks()
        with bar:
            task = bar.add_task("crop", total=n, completed=n - sum(len(writer.chunk_range(c)) for c in pending))
            if pending:
                from curate.detect import default_threads, make_detector

                threads = params.detect_threads or default_threads(params.detector, device)
                detector = make_detector(params.detector, device=device, min_face=params.min_face, threads=threads)
                detector_name = detector.name
                order = [i for c in pending for i in writer.chunk_range(c)]
                stream = _decoded(pool, order, paths, ahead=max(2 * params.batch, 2 * params.workers))
                for c in pending:
                    rows = _crop_chunk(writer, c, stream, detector, background, params, out_hw, bar, task)
                    writer.finish_chunk(c, rows)
                    done_now += 1
                    if stop_after_chunks is not None and done_now >= stop_after_chunks and c != pending[-1]:
                        raise CropStopped(f"stopped after {done_now} chunk(s) as asked; run again to resume")
            bar.update(task, description="fallback")
            rows = writer.finished_rows()
            rows = _fallback_pass(writer, rows, manifest, pool, background, params, out_hw)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if detector is not None:
            detector.close()
        if background is not None:
            background.close()
    seconds = time.perf_counter() - t0
    crop_cols = {c: rows[c].to_numpy() for c in FACE_COLS + CROP_COLS + ["score", "box_source", "error"] + EXTRA_COLS}
    full = manifest.drop(columns=[c for c in crop_cols if c in manifest.columns]).assign(**crop_cols)
    counts = {s: int((full["box_source"] == s).sum()) for s in ("detected", "person", "prior")}
    counts["failed"] = int((full["error"] != "").sum())
    meta = {
        "params": params.to_dict(), "versions": package_versions(), "source": str(Path(ds.root).resolve()) if ds.root else "", "layout": ds.layout,
        "detector": detector_name or "(resumed; see the first run)", "device": dev, "image_shape": [*out_hw, 3],
        "counts": counts, "problems": len(ds.problems), "chunks": writer.n_chunks, "chunk": writer.chunk,
        "chunks_resumed": writer.resumed, "seconds": round(seconds, 2),
    }
    cache = writer.finalize(full, meta)
    _, left_out = crop_contact_sheet(cache.images, cache.manifest, out / "contact.png")
    _summary(console, n, counts, seconds, n - writer.resumed_rows, out, left_out)
    return cache


def _crop_chunk(writer: CacheWriter, c: int, stream: Iterator, detector, background, params: CropParams,
                out_hw: tuple[int, int], bar, task) -> pd.DataFrame:
    """Decode, detect, pick and crop the photos of chunk ``c``; photos without a face are left for the fallback pass."""
    idx = list(writer.chunk_range(c))
    recs = [_empty_row() for _ in idx]
    start = idx[0]
    for b in range(0, len(idx), params.batch):
        batch = [next(stream) for _ in idx[b:b + params.batch]]
        good = []
        for i, img, err in batch:
            rec = recs[i - start]
            if img is None:
                rec["error"] = err
                writer.images[i] = 0
            else:
                rec["width"], rec["height"] = int(img.shape[1]), int(img.shape[0])
                good.append((i, img))
        faces = detector.detect([img for _, img in good]) if good else []
        for (i, img), found in zip(good, faces):
            rec = recs[i - start]
            rec["n_faces"] = len(found)
            if not found:
                writer.images[i] = 0
                continue
            k = pick_subject(np.array([f.box for f in found]), [f.score for f in found], img.shape[1], img.shape[0])
            face = found[k]
            region = crop_region(face.box, img.shape[1], img.shape[0], params.margins, params.aspect, params.edge)
            writer.images[i] = _render(img, region, out_hw, params.pad, background)
            rec.update(zip(FACE_COLS, (float(v) for v in face.box)))
            rec.update(zip(CROP_COLS, region))
            rec.update(score=float(face.score), box_source=DETECTED, detector=face.source or detector.name)
        bar.advance(task, len(batch))
    return pd.DataFrame(recs)


def _render(img: np.ndarray, region, out_hw: tuple[int, int], pad: str, background) -> np.ndarray:
    crop = cut(img, region, out_hw, pad)
    return background.apply(crop) if background is not None else crop


def _fallback_pass(writer: CacheWriter, rows: pd.DataFrame, manifest: pd.DataFrame, pool: ThreadPoolExecutor,
                   background, params: CropParams, out_hw: tuple[int, int]) -> pd.DataFrame:
    """Give every readable photo without a detected face the person's or the data set's box, and crop it."""
    rows = rows.copy()
    usable = (rows["error"] == "").to_numpy()
    boxes = rows[FACE_COLS].to_numpy(dtype=np.float64, copy=True)
    boxes[rows["box_source"].to_numpy() != DETECTED] = np.nan
    sizes = rows[["width", "height"]].to_numpy(dtype=np.float64)
    new_boxes, source = assign_boxes(boxes, sizes, manifest["person"].astype(str).tolist(), usable,
                                     use_person=params.person_fallback)
    todo = np.flatnonzero(usable & (source != DETECTED))
    paths = manifest["path"].astype(str).tolist()
    for i, (img, err) in zip(todo, pool.map(_read, [paths[i] for i in todo])):
        if img is None:  # changed since the first pass
            rows.loc[i, "error"] = err
            writer.images[i] = 0
            continue
        region = crop_region(new_boxes[i], img.shape[1], img.shape[0], params.margins, params.aspect, params.edge)
        writer.images[i] = _render(img, region, out_hw, params.pad, background)
        rows.loc[i, FACE_COLS] = new_boxes[i]
        rows.loc[i, CROP_COLS] = region
        rows.loc[i, "box_source"] = source[i]
    return rows


def _summary(console, n: int, counts: dict, seconds: float, computed: int, out: Path, left_out: int) -> None:
    from rich.table import Table

    table = Table(title=f"crop -> {out}")
    for col in ("photos", "detected", "person", "prior", "failed", "seconds", "photos/s"):
        table.add_column(col, justify="right")
    rate = computed / seconds if seconds > 0 else float("nan")
    table.add_row(str(n), str(counts["detected"]), str(counts["person"]), str(counts["prior"]), str(counts["failed"]),
                  f"{seconds:.1f}", f"{rate:.1f}")
    console.print(table)
    console.print(f"contact sheet: {out / 'contact.png'}" + (f" ({left_out} fallback crops not shown)" if left_out else ""))
