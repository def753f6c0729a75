"""External training data (``train --extra CACHE[,CACHE...]``): photos that join every training fold and nothing else.

An extra cache's people are never in a validation fold or in ``oof.parquet``: the splits are made on the
main data alone and the extra rows come after it. Labels an extra cache lacks (plain faces with no mask
label, a data set with gender only: NA in the manifest, -1 in ``label_array``) are left out of that head's
loss (``losses.masked_loss``); with ``--task single`` only the photos with all three labels can train, the
rest are left out and counted. Age groups are recomputed from the age in years when the extra cache was
cut at other age bins than the main cache.

Leaks: an extra photo whose 64-bit pHash (``curate.audit.near_duplicates.perceptual_hash``, the hash
relabel-report's near-duplicate check uses) is within ``DUPLICATE_DISTANCE`` bits of a main photo's is a
duplicate; the whole extra person it belongs to is dropped, because a person's other photos are the same
face in another mask. The hashes are of the crops, so duplicates are found between caches cut alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..curate.cache import Cache, load_cache
from ..curate.errors import InputError
from ..curate.labels import HEAD_FIELDS, HEADS, age_group
from .data import LABEL_COLUMN, label_array

DUPLICATE_DISTANCE = 4  # bits of 64: relabel-report's near-duplicate default; copies of one photo are within 0-2


@dataclass
class ExtraCache:
    """One extra cache as the run uses it: its rows, their labels, and the record config.json keeps."""

    cache: Cache
    rows: np.ndarray            # cache rows that train
    labels: np.ndarray          # len(rows) x 4, -1 where a label is missing
    record: dict = field(default_factory=dict)


def _fingerprint(cache: Cache) -> str:
    """The cache's own fingerprint (crop writes one), else the checksum of its manifest (caches written whole)."""
    meta = cache.meta or {}
    return str(meta.get("fingerprint") or (meta.get("checksums") or {}).get("manifest") or "")


def _labels(cache: Cache, rows: np.ndarray, age_bins) -> np.ndarray:
    """``label_array`` of ``rows``, with age groups recomputed at ``age_bins`` when the cache was cut at others."""
    manifest = cache.manifest.iloc[rows].copy()
    col = HEAD_FIELDS["age"]
    other_bins = tuple(cache.age_bins) != tuple(age_bins)
    if other_bins and col in manifest and "age" not in manifest:
        raise InputError(f"{cache.path}: its age groups are cut at {list(cache.age_bins)}, the main cache's at "
                         f"{list(age_bins)}, and it holds no age in years to regroup; crop it with --age-bins "
                         f"{','.join(map(str, age_bins))}")
    if "age" in manifest and (other_bins or col not in manifest):
        years = pd.to_numeric(manifest["age"], errors="coerce")
        grouped = pd.Series(pd.NA, index=manifest.index, dtype="Int64")
        ok = years.notna()
        grouped[ok] = age_group(years[ok].to_numpy(), age_bins)
        manifest[col] = grouped
    for h in HEADS:  # a data set without a head's column has none of its labels
        if HEAD_FIELDS[h] not in manifest:
            manifest[HEAD_FIELDS[h]] = pd.NA
    return label_array(manifest)


def hashes_of(images: np.ndarray, rows: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """pHash of ``images[rows]``, read in chunks from the memory map."""
    from ..curate.audit.near_duplicates import perceptual_hash

    parts = [perceptual_hash(np.asarray(images[rows[s:s + chunk]])) for s in range(0, len(rows), chunk)]
    return np.concatenate(parts) if parts else np.zeros(0, np.uint64)


def duplicates_of(main: np.ndarray, other: np.ndarray, max_distance: int = DUPLICATE_DISTANCE, block: int = 256) -> np.ndarray:
    """Boolean per ``other`` hash: within ``max_distance`` bits of some ``main`` hash (blocks keep memory small)."""
    out = np.zeros(len(other), bool)
    if not len(main):
        return out
    for s in range(0, len(other), block):
        d = np.bitwise_count(other[s:s + block, None] ^ main[None, :])
        out[s:s + block] = (d <= max_distance).any(axis=1)
    return out


def load_extra(paths, main: Cache, main_rows: np.ndarray, task: str, age_bins, progress) -> list[ExtraCache]:
    """Open, label and de-duplicate every extra cache against the main cache's training rows; InputError when unusable."""
    paths = [Path(p) for p in paths]
    seen = {Path(main.path).resolve()}
    out: list[ExtraCache] = []
    main_hashes = None
    for p in paths:
        if p.resolve() in seen:
            raise InputError(f"--extra {p}: the main cache or an extra cache given twice; extra data must be other photos")
        seen.add(p.resolve())
        cache = load_cache(p)
        rows = cache.usable()
        labels = _labels(cache, rows, age_bins)
        heads = labels[:, [LABEL_COLUMN[h] for h in HEADS]]
        useful = (heads >= 0).any(axis=1) if task == "multi" else labels[:, LABEL_COLUMN["class"]] >= 0
        unlabelled = int((~useful).sum())
        rows, labels = rows[useful], labels[useful]
        if not len(rows):
            need = "any of mask, gender, age" if task == "multi" else "all three labels (--task single); use --task multi"
            raise InputError(f"--extra {p}: no usable photo holds {need}")
        if main_hashes is None:
            main_hashes = hashes_of(main.images, main_rows)
        dup = duplicates_of(main_hashes, hashes_of(cache.images, rows))
        m = cache.manifest.iloc[rows]
        people = (m["person"] if "person" in m else m["image_id"]).astype(str).to_numpy()
        drop = np.isin(people, np.unique(people[dup]))
        if drop.all():
            raise InputError(f"--extra {p}: every photo belongs to a person with a photo in the main data; nothing left to add")
        rows, labels, kept = rows[~drop], labels[~drop], people[~drop]
        record = {"path": str(p.resolve()), "fingerprint": _fingerprint(cache), "people": int(len(np.unique(kept))),
                  "photos": int(len(rows)), "image_size": [int(v) for v in cache.images.shape[1:3]],
                  "duplicates": int(dup.sum()), "dropped_people": int(len(np.unique(people[drop]))),
                  "dropped_photos": int(drop.sum()), "left_out_unlabelled": unlabelled,
                  "labelled": {h: int((labels[:, LABEL_COLUMN[h]] >= 0).sum()) for h in HEADS}}
        progress.note(f"extra {p}: {record['photos']} photos of {record['people']} people join every training fold"
                      + (f"; {record['duplicates']} photo(s) duplicate main photos: {record['dropped_people']} people "
                         f"({record['dropped_photos']} photos) dropped" if record["duplicates"] else "")
                      + (f"; {unlabelled} photo(s) without a usable label left out" if unlabelled else ""))
        out.append(ExtraCache(cache, rows, labels, record))
    return out
