"""The cache `crop` writes and `train` reads: ``images.npy`` + ``manifest.parquet`` + ``meta.json`` (the reader).

- ``images.npy``: uint8 N x H x W x 3 RGB, opened memory-mapped; row i is manifest row i.
- ``manifest.parquet``: the reader's manifest plus what `crop` learned (see ``CROP_COLUMNS``);
  rows whose ``error`` is not empty hold an all-zero image and are skipped by training.
- ``meta.json``: every parameter and package version that shaped the cache, ``complete``, and the
  ``checksums`` of all three files (``checksums.py``), verified whenever a cache is opened.
- optional, written by `embed` (``curate/embed``): ``embeddings.npy`` (float32 N x D, NaN rows for
  photos without a usable face) and ``embeddings.parquet`` (image_id, embed_error), described by
  meta.json's ``embeddings`` entry and covered by its checksums. A row is the identity embedding
  (``identity_dim`` columns) and then the face attributes the backend reads (``attributes``: age, male_logit).

``cache_writer.CacheWriter`` fills a cache chunk by chunk; this module opens, checks and, for small
caches, writes one.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .checksums import chunk_hashes, file_hash, meta_hash
from .chunks import Chunks
from .errors import InputError
from .labels import DEFAULT_AGE_BINS, age_group, encode
from .locks import writer_of

IMAGES, MANIFEST, META = "images.npy", "manifest.parquet", "meta.json"
EMBEDDINGS, EMBED_TABLE = "embeddings.npy", "embeddings.parquet"
#: The subject rule's runner-up face and its margin (close calls); caches written before them load with NaN there.
SUBJECT_COLUMNS = ["runner_x1", "runner_y1", "runner_x2", "runner_y2", "margin"]
CROP_COLUMNS = ["face_x1", "face_y1", "face_x2", "face_y2", "crop_x1", "crop_y1", "crop_x2", "crop_y2",
                "score", "box_source", "error", *SUBJECT_COLUMNS]
VERIFY = ("quick", "full", "off")
CHECK_CHUNK = 512  # rows per image checksum of caches written whole (`save_cache`)
FIX = "run `crop` again to rebuild it"


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

    def _embedding_file(self) -> np.ndarray:
        return np.load(self.path / EMBEDDINGS, mmap_mode="r")

    @property
    def embeddings(self) -> np.ndarray | None:
        """float32 N x D identity embeddings (memory-mapped; NaN rows: not embedded, see ``embed_errors``), or None."""
        if "embeddings" not in self.meta:
            return None
        e = self.meta["embeddings"]
        dim = e.get("identity_dim") or e.get("dim")  # caches embedded before the attribute columns: dim only
        vectors = self._embedding_file()
        return vectors[:, :int(dim)] if dim else vectors

    @property
    def face_attributes(self) -> pd.DataFrame | None:
        """Per photo, what the embedding pass read from the face besides identity (columns ``attributes``: ``age`` in
        years, ``male_logit``; NaN where not embedded), or None when the cache's embeddings hold none."""
        e = self.meta.get("embeddings") or {}
        names = list(e.get("attributes") or [])
        if not names:
            return None
        start = int(e.get("identity_dim", 0))
        return pd.DataFrame(np.asarray(self._embedding_file()[:, start:start + len(names)], np.float64), columns=names)

    @property
    def embed_errors(self) -> pd.Series | None:
        """Per photo, why it has no embedding ("" when it has one), or None when the cache has no embeddings."""
        if "embeddings" not in self.meta:
            return None
        return pd.read_parquet(self.path / EMBED_TABLE)["embed_error"].fillna("").astype(str)

    def usable(self) -> np.ndarray:
        """Indices of the rows that hold a real crop (no error)."""
        if "error" not in self.manifest:
            return np.arange(len(self.manifest))
        return np.flatnonzero(self.manifest["error"].fillna("").astype(str).to_numpy() == "")


def checksums_of(path: Path, images: np.ndarray, meta: dict, chunk: int) -> dict:
    """The ``checksums`` entry of meta.json for the files now in ``path``."""
    return {"chunk": int(chunk), "images": chunk_hashes(images, chunk), "images_bytes": os.path.getsize(path / IMAGES),
            "manifest": file_hash(path / MANIFEST), "meta": meta_hash(meta)}


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads((path / META).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path / META}: not readable JSON ({type(e).__name__}); the cache is damaged: {FIX}") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path / META}: not a cache's meta.json; {FIX}")
    return meta


def _verify(path: Path, images: np.ndarray, manifest: pd.DataFrame, meta: dict, level: str) -> None:
    sums = meta.get("checksums")
    if not isinstance(sums, dict):
        raise InputError(f"{path / META}: no checksums (written by an older facecurate); {FIX}")
    if sums.get("meta") != meta_hash(meta):
        raise InputError(f"{path / META}: its content was changed after the cache was written; {FIX}")
    if sums.get("images_bytes") != os.path.getsize(path / IMAGES):
        raise InputError(f"{path / IMAGES}: {os.path.getsize(path / IMAGES)} bytes, expected {sums.get('images_bytes')}; {FIX}")
    if sums.get("manifest") != file_hash(path / MANIFEST):
        raise InputError(f"{path / MANIFEST}: checksum mismatch (the file was changed or damaged); {FIX}")
    got = chunk_hashes(images, int(sums.get("chunk", CHECK_CHUNK)))
    bad = [i for i, (a, b) in enumerate(zip(got, sums.get("images", []))) if a != b]
    if bad or len(got) != len(sums.get("images", [])):
        rows = Chunks(len(images), int(sums.get("chunk", CHECK_CHUNK))).rows(bad[0]) if bad else None
        where = f"rows {rows.start}..{rows.stop - 1}" if rows is not None else "chunk count"
        raise InputError(f"{path / IMAGES}: checksum mismatch in {len(bad) or 1} chunk(s) ({where}); the file is damaged; {FIX}")
    if "embeddings" in meta:
        verify_embeddings(path, len(images), meta)
    if level == "full":
        _verify_content(path, images, manifest, meta)


def verify_embeddings(path: Path, n: int, meta: dict) -> None:
    """embeddings.npy and embeddings.parquet: present, the checksums meta.json holds, N x dim float32; else InputError."""
    fix = "run `embed` again to rebuild them"
    sums = meta.get("checksums", {})
    for name, key in ((EMBEDDINGS, "embeddings"), (EMBED_TABLE, "embeddings_table")):
        if not (path / name).is_file():
            raise InputError(f"{path / name}: missing although meta.json lists embeddings; {fix}")
        if sums.get(key) != file_hash(path / name):
            raise InputError(f"{path / name}: checksum mismatch (the file was changed or damaged); {fix}")
    try:
        vec = np.load(path / EMBEDDINGS, mmap_mode="r")
    except (ValueError, OSError, EOFError):
        raise InputError(f"{path / EMBEDDINGS}: not a readable .npy array; {fix}") from None
    dim = meta["embeddings"].get("dim")
    if vec.shape != (n, dim) or vec.dtype != np.float32:
        raise InputError(f"{path / EMBEDDINGS}: {vec.shape} {vec.dtype}, expected ({n}, {dim}) float32; {fix}")


def _verify_content(path: Path, images: np.ndarray, manifest: pd.DataFrame, meta: dict) -> None:
    """``--verify full``: what the checksums cannot know: labels that agree with each other, crops where rows say so."""
    if {"mask", "gender", "age_group", "label"} <= set(manifest.columns):
        lab = manifest.dropna(subset=["mask", "gender", "age_group", "label"])
        want = encode(lab["mask"].astype(int), lab["gender"].astype(int), lab["age_group"].astype(int))
        if (want != lab["label"].astype(int)).any():
            raise InputError(f"{path / MANIFEST}: labels disagree with mask/gender/age_group; {FIX}")
        if "age" in lab:
            aged = lab.dropna(subset=["age"])
            bins = meta.get("params", {}).get("age_bins") or DEFAULT_AGE_BINS
            if len(aged) and (age_group(aged["age"].astype(int).to_numpy(), bins) != aged["age_group"].astype(int).to_numpy()).any():
                raise InputError(f"{path / MANIFEST}: age groups disagree with the ages and the cache's age bins; {FIX}")
    if "error" in manifest:
        err = manifest["error"].fillna("").astype(str).to_numpy() != ""
        for i in range(len(images)):
            if err[i] == bool(images[i].any()):
                raise InputError(f"{path / IMAGES}: row {i} {'holds a crop although its photo failed' if err[i] else 'is blank'}; {FIX}")


def load_cache(path: str | Path, mmap: bool = True, verify: str = "quick") -> Cache:
    """Open the cache in ``path`` and check it; InputError naming the file and the fix when it is not sound.

    ``verify``: ``quick`` (default) checks sizes, the .npy header and the checksums of every file (every
    byte, xxh3); ``full`` also checks the manifest's labels and that failed rows are blank; ``off`` only
    sizes and header (for a cache known to be sound, e.g. just after writing it).
    """
    path = Path(path)
    if verify not in VERIFY:
        raise InputError(f"--verify {verify!r}: expected one of {', '.join(VERIFY)}")
    for name in (IMAGES, MANIFEST, META):
        if not (path / name).is_file():
            raise InputError(f"{path}: not a cache ({name} missing); run `crop` first")
    holder = writer_of(path)
    if holder is not None:
        raise InputError(f"{path}: this cache is being written by {holder}; wait for it to finish, then run again")
    meta = _read_meta(path)
    if not meta.get("complete", False):
        raise InputError(f"{path}: the cache is incomplete (interrupted run); run `crop` again to resume it")
    try:
        images = np.load(path / IMAGES, mmap_mode="r" if mmap else None)
    except (ValueError, OSError, EOFError) as e:
        raise InputError(f"{path / IMAGES}: not a readable .npy array ({type(e).__name__}: truncated or damaged); {FIX}") from None
    try:
        manifest = pd.read_parquet(path / MANIFEST)
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError and others for a damaged file
        raise InputError(f"{path / MANIFEST}: not a readable parquet file ({type(e).__name__}); {FIX}") from None
    if images.ndim != 4 or images.shape[0] != len(manifest) or images.dtype != np.uint8 or images.shape[-1] != 3:
        raise InputError(f"{path / IMAGES}: {images.shape} {images.dtype} does not match {MANIFEST} ({len(manifest)} rows); {FIX}")
    shape = meta.get("image_shape")
    if meta.get("n", len(manifest)) != len(manifest) or (shape and list(images.shape[1:]) != list(shape)):
        raise InputError(f"{path / META}: says {meta.get('n')} photos of {shape}, the files hold {images.shape}; {FIX}")
    if verify != "off":
        _verify(path, images, manifest, meta, verify)
    if "face_x1" in manifest:  # a crop cache from before the subject rule's columns: they load as NaN
        manifest = manifest.assign(**{c: np.nan for c in SUBJECT_COLUMNS if c not in manifest})
    return Cache(path, images, manifest, meta)


def write_meta(path: Path, meta: dict) -> None:
    """meta.json, written atomically."""
    tmp = path / (META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str))
    os.replace(tmp, path / META)


def save_cache(path: str | Path, images: np.ndarray, manifest: pd.DataFrame, meta: dict) -> Cache:
    """Write a whole cache at once (small caches, tests), with its checksums; `crop` writes large ones chunk by chunk."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    images = np.ascontiguousarray(images, dtype=np.uint8)
    np.save(path / IMAGES, images)
    manifest.reset_index(drop=True).to_parquet(path / MANIFEST, index=False)
    meta = {**meta, "n": int(len(images)), "image_shape": list(images.shape[1:]), "complete": True}
    meta["checksums"] = checksums_of(path, images, meta, CHECK_CHUNK)
    write_meta(path, meta)
    return load_cache(path)
