"""The `embed` stage: one face embedding per cached photo, computed from the cached crop (no photo decoded again).

The face box in cache pixels is the manifest's face box minus the crop's origin, scaled by the crop's
resize (``cache_boxes``). The backend turns crops + boxes into vectors, chunk by chunk under the
cache's exclusive lock, resumably (``store``). A finished pass with the same backend, model files and
cache content is reused as it is. The stage prints nothing: it reports through ``progress`` and returns
an ``EmbedResult``.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ..cache import META, Cache, load_cache, verify_embeddings
from ..devices import resolve_device
from ..errors import InputError
from ..outputs import claimed_output
from ..progress import QUIET, Progress, Steps
from .backend import WHY_SMALL, embed_rows
from .params import EmbedParams
from .registry import check_ready, make_backend
from .store import EmbedStore

WHY_NO_CROP = "no crop (the photo failed in crop)"


@dataclass
class EmbedResult:
    """What a pass did: ``state`` "complete" (reused), "resume" or "fresh"; ``embedded`` / ``failed`` photos,
    ``reasons`` (reason -> photos), ``computed`` photos embedded by this call in ``seconds``."""

    cache: Cache
    state: str
    backend: str
    dim: int
    embedded: int
    failed: int
    seconds: float
    computed: int
    device: str
    chunks: int = 0
    chunks_resumed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)  # the backend's CPU seconds per step (landmarks, chip, net)

    @property
    def photos_per_s(self) -> float:
        return self.computed / self.seconds if self.seconds > 0 else float("nan")


def cache_boxes(manifest: pd.DataFrame, height: int, width: int) -> np.ndarray:
    """N x 4 face boxes in cache pixels: (face - crop origin) scaled by the crop's resize to ``width`` x ``height``;
    NaN rows where the manifest has no box."""
    face = manifest[["face_x1", "face_y1", "face_x2", "face_y2"]].to_numpy(np.float64)
    crop = manifest[["crop_x1", "crop_y1", "crop_x2", "crop_y2"]].to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        sx = width / (crop[:, 2] - crop[:, 0])
        sy = height / (crop[:, 3] - crop[:, 1])
    scale = np.stack([sx, sy, sx, sy], axis=1)
    return (face - crop[:, [0, 1, 0, 1]]) * scale


def pass_key(cache: Cache, backend: str, provenance: dict, params: EmbedParams) -> str:
    """SHA-256 of what decides the vectors: backend, its model files and versions, min_face, the cache's content."""
    sums = cache.meta.get("checksums", {})
    body = {"backend": backend, "provenance": provenance, "min_face": int(params.min_face), "boxes": params.boxes,
            "images": sums.get("images"), "manifest": sums.get("manifest")}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _is_cache(p: Path) -> bool:
    """A cache written before folder markers existed (``load_cache`` has already accepted it)."""
    return (p / META).is_file()


def embed_cache(cache: str | Path, params: EmbedParams = EmbedParams(), progress: Progress | None = None) -> EmbedResult:
    """Embed every photo of the cache folder ``cache`` into its embeddings.npy (see ``store`` for the files).

    Holds the cache's lock exclusively. An interruption (Ctrl-C, kill, an exception from ``progress``) keeps
    the finished chunks; the next call resumes them to the same bytes as one uninterrupted pass.
    """
    progress = progress or QUIET
    path = Path(cache)
    if not (path / META).is_file():
        raise InputError(f"{path}: not a cache (meta.json missing); run `crop` first")
    load_cache(path, verify="off")  # a folder that is not a sound cache is refused before anything is written in it
    params = EmbedParams(**{k: v for k, v in asdict(params).items()}).validate()
    device = resolve_device(params.device)
    check_ready(params.backend)
    with claimed_output(path, "cache", recognise=_is_cache, option="CACHE", what="cache"):
        c = load_cache(path, verify=params.verify)
        cores = len(os.sched_getaffinity(0))
        workers = params.workers or (1 if device.startswith("cuda") else cores)
        threads = params.threads or max(1, cores // workers)
        backend = make_backend(params.backend, device=device, threads=threads, min_face=params.min_face)
        pool = ThreadPoolExecutor(workers, thread_name_prefix="embed") if workers > 1 else None
        try:
            return _embed_locked(c, backend, params, device, progress, pool)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            backend.close()


def skip_reasons(manifest: pd.DataFrame, boxes: str = "detected") -> np.ndarray:
    """Per row, why it is not looked at ("" when it is): crop's error rows, and fallback boxes unless ``boxes="all"``."""
    n = len(manifest)
    error = manifest["error"].fillna("").astype(str).to_numpy() if "error" in manifest else np.full(n, "")
    source = manifest["box_source"].fillna("").astype(str).to_numpy() if "box_source" in manifest else np.full(n, "detected")
    why = np.where(error != "", WHY_NO_CROP, "").astype(object)
    if boxes == "detected":
        fallback = (error == "") & (source != "detected")
        why[fallback] = [f"no face detected ({s} box)" for s in source[fallback]]
    return why


def _embed_batch(c: Cache, backend, boxes: np.ndarray, skip: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Rows ``idx`` (consecutive) of the cache through ``embed_rows``."""
    a, b = int(idx[0]), int(idx[-1]) + 1
    return embed_rows(backend, c.images[a:b], boxes[a:b], skip[a:b])


def _embed_locked(c: Cache, backend, params: EmbedParams, device: str, progress: Progress,
                  pool: ThreadPoolExecutor | None) -> EmbedResult:
    n, (height, width) = len(c.manifest), c.images.shape[1:3]
    provenance = backend.provenance()
    key = pass_key(c, backend.name, provenance, params)
    old = c.meta.get("embeddings", {})
    if old.get("key") == key:
        try:
            verify_embeddings(c.path, n, c.meta)
        except InputError as e:
            progress.note(f"{e}: computing them again")
            old = {}
    if old.get("key") == key:
        errors = c.embed_errors
        progress.note(f"embeddings reused: {c.path} ({n} photos; same cache, backend and model files)")
        return _result(c, "complete", backend, errors.tolist(), 0.0, 0, device, old.get("chunks", 0), 0)
    store = EmbedStore.open(c.path, n, backend.dim, key, params.chunk, params.batch)
    pending = store.pending_chunks()
    if store.state == "resume":
        progress.note(f"resuming the embedding pass in {c.path}: {len(store.done)} of {store.n_chunks} chunks already done")
    boxes = cache_boxes(c.manifest, height, width)
    skip = skip_reasons(c.manifest, params.boxes)
    todo = sum(len(store.chunk_range(k)) for k in pending)
    steps = Steps(progress, "embed", n, done=n - todo)
    t0, computed = time.perf_counter(), 0
    def advance(n_rows: int) -> None:
        nonlocal computed
        computed += n_rows
        rate = computed / max(time.perf_counter() - t0, 1e-9)
        steps.advance(n_rows, f"{rate:.0f} photos/s, ETA {_eta((todo - computed) / rate)}")

    if pending and params.ray:  # chunks on a Ray cluster, each written as it lands
        from ..crop.ray_pass import connect
        from .ray_pass import embed_chunks

        connect(params.ray)
        for k, vec, errors in embed_chunks(pending, store.chunk_range, c.images, boxes, skip, backend.dim, params.backend,
                                           params.min_face, params.device, store.batch, params.ray_workers or None):
            rows = store.chunk_range(k)
            store.vectors[rows.start:rows.stop] = vec
            store.finish_chunk(k, errors)
            advance(len(rows))
    for k in pending if not params.ray else []:
        rows = store.chunk_range(k)
        errors = []
        batches = [np.arange(s, min(rows.stop, s + store.batch)) for s in range(rows.start, rows.stop, store.batch)]
        work = partial(_embed_batch, c, backend, boxes, skip)
        for idx, (vec, why) in zip(batches, pool.map(work, batches) if pool is not None else map(work, batches)):
            store.vectors[idx] = vec
            errors += why
            advance(len(idx))
        store.finish_chunk(k, errors)
    seconds = time.perf_counter() - t0
    errors = store.all_errors()
    counts = _reasons(errors)
    entry = {"backend": backend.name, "dim": int(backend.dim), "identity_dim": int(backend.identity_dim),
             "attributes": list(backend.attributes), "key": key, **provenance,
             "params": {"min_face": int(params.min_face), "boxes": params.boxes, "batch": store.batch, "chunk": store.chunk},
             "device": device, "embedded": int(sum(e == "" for e in errors)), "reasons": counts,
             "chunks": store.n_chunks, "seconds": round(seconds, 2)}
    meta = store.finalize(c.manifest["image_id"], entry)
    cache = Cache(c.path, c.images, c.manifest, meta)
    resumed = store.n_chunks - len(pending)
    result = _result(cache, store.state, backend, errors, seconds, computed, device, store.n_chunks, resumed)
    result.step_seconds = {k: round(v, 3) for k, v in getattr(backend, "seconds", {}).items()}
    return result


def _eta(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _reasons(errors: list[str]) -> dict[str, int]:
    """Reasons without their per-photo detail (``face too small (12 px ...)`` -> ``face too small``), counted."""
    return dict(Counter(e.split(" (")[0] if e.startswith(WHY_SMALL) else e for e in errors if e))


def _result(cache: Cache, state: str, backend, errors: list[str], seconds: float, computed: int, device: str,
            chunks: int, resumed: int) -> EmbedResult:
    failed = int(sum(e != "" for e in errors))
    return EmbedResult(cache, state, backend.name, int(backend.dim), len(errors) - failed, failed, seconds, computed,
                       device, chunks, resumed, _reasons(errors))
