"""The cache `crop` writes and `train` reads: ``images.npy`` + ``manifest.parquet`` + ``meta.json`` (the reader).

- ``images.npy``: uint8 N x H x W x 3 RGB, opened memory-mapped; row i is manifest row i.
- ``manifest.parquet``: the reader's manifest plus what `crop` learned (see ``CROP_COLUMNS``);
  rows whose ``error`` is not empty hold an all-zero image and are skipped by training.
- ``meta.json``: every parameter and package version that shaped the cache, and ``complete``.

``cache_writer.CacheWriter`` fills a cache chunk by chunk; this module only opens and checks one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .labels import DEFAULT_AGE_BINS

IMAGES, MANIFEST, META = "images.npy", "manifest.parquet", "meta.json"
CROP_COLUMNS = ["face_x1", "face_y1", "face_x2", "face_y2", "crop_x1", "crop_y1", "crop_x2", "crop_y2",
                "score", "box_source", "error"]


@dataclass
class Cache:
    """An opened cache: ``images`` is memory-mapped, nothing is decoded."""

    path: Path
    images: np.ndarray
    manifest: pd.DataFrame
    meta: dict

    @property
    def age_bins(self) -> tuple[int, ...]:
        """The age cut points the cache's labels were made with (``meta.json`` params), else the default 30, 60."""
        bins = self.meta.get("age_bins") or self.meta.get("params", {}).get("age_bins") or DEFAULT_AGE_BINS
        return tuple(int(b) for b in bins)  # type: ignore[return-value]

    def usable(self) -> np.ndarray:
        """Indices of the rows that hold a real crop (no error)."""
        if "error" not in self.manifest:
            return np.arange(len(self.manifest))
        return np.flatnonzero(self.manifest["error"].fillna("").astype(str).to_numpy() == "")


def load_cache(path: str | Path, mmap: bool = True) -> Cache:
    """Open the cache in ``path``; InputError naming the folder when it is missing, partial or inconsistent."""
    path = Path(path)
    for name in (IMAGES, MANIFEST, META):
        if not (path / name).is_file():
            raise InputError(f"{path}: not a cache ({name} missing); run `crop` first")
    meta = json.loads((path / META).read_text())
    if not meta.get("complete", False):
        raise InputError(f"{path}: the cache is incomplete (interrupted run); run `crop` again to resume it")
    images = np.load(path / IMAGES, mmap_mode="r" if mmap else None)
    manifest = pd.read_parquet(path / MANIFEST)
    if images.ndim != 4 or images.shape[0] != len(manifest) or images.dtype != np.uint8:
        raise InputError(f"{path}: images.npy {images.shape} {images.dtype} does not match manifest.parquet ({len(manifest)} rows)")
    return Cache(path, images, manifest, meta)


def save_cache(path: str | Path, images: np.ndarray, manifest: pd.DataFrame, meta: dict) -> Cache:
    """Write a whole cache at once (small caches, tests); `crop` writes its large ones chunk by chunk."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    images = np.ascontiguousarray(images, dtype=np.uint8)
    np.save(path / IMAGES, images)
    manifest.reset_index(drop=True).to_parquet(path / MANIFEST, index=False)
    (path / META).write_text(json.dumps({**meta, "n": int(len(images)), "complete": True}, indent=2, default=str))
    return load_cache(path)
