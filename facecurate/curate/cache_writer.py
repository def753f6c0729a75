"""Fill a cache folder chunk by chunk, resumably, and decide by fingerprint whether an existing cache can be reused.

`crop` fills a preallocated images.npy (np.lib.format.open_memmap) chunk by chunk. After each
finished chunk the images are flushed, the chunk's manifest rows are saved under .partial/ and
.partial/progress.json lists the finished chunks, so an interrupted run resumes from its last
finished chunk. A fingerprint of parameters + inputs decides whether a cache can be reused.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .cache import IMAGES, MANIFEST, META, Cache, load_cache

PARTIAL, PROGRESS = ".partial", "progress.json"


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def _file_stats(paths: list[str]) -> list[tuple[int, int]]:
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((int(st.st_size), int(st.st_mtime_ns)))
        except OSError:
            out.append((-1, -1))
    return out


def fingerprint(params: dict, manifest: pd.DataFrame, path_column: str = "path") -> str:
    """SHA-256 (hex) of the parameters (JSON) and the inputs: every manifest cell plus each photo's size and mtime.

    The same photos, labels and parameters give the same fingerprint; touching or replacing a photo,
    editing a label or changing a parameter gives a new one.
    """
    h = hashlib.sha256()
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(json.dumps([str(c) for c in manifest.columns]).encode())
    frame = manifest.reset_index(drop=True).astype(str)
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    if path_column in manifest:
        h.update(np.asarray(_file_stats(list(manifest[path_column].astype(str))), dtype=np.int64).tobytes())
    return h.hexdigest()


class CacheWriter:
    """Fill a cache folder chunk by chunk; ``state`` says what ``open`` found: "complete", "resume" or "fresh".

    Use ``CacheWriter.open``; then ``images`` (writable memmap), ``pending_chunks()``,
    ``finish_chunk(c, rows)`` per chunk, ``finished_rows()`` and finally ``finalize(manifest, meta)``.
    """

    def __init__(self, path: Path, n: int, shape: tuple[int, int, int], key: str, chunk: int, state: str,
                 done: list[int], images: np.ndarray | None) -> None:
        self.path, self.n, self.shape, self.key, self.chunk = path, n, shape, key, chunk
        self.state, self.done, self.images = state, sorted(done), images
        self.resumed = len(self.done) if state == "resume" else 0
        self.resumed_rows = sum(len(self.chunk_range(c)) for c in self.done) if state == "resume" else 0

    @classmethod
    def open(cls, path: str | Path, n: int, shape: tuple[int, int, int], key: str, chunk: int = 512) -> "CacheWriter":
        """Open ``path`` for a cache of ``n`` images of ``shape`` (H, W, 3) with fingerprint ``key``.

        A complete cache with the same key is left as it is ("complete"); a partial one with the same
        key, size and shape is reopened where it stopped ("resume", keeping its chunk size); anything
        else of ours in the folder is replaced ("fresh"). Nothing but the cache's own files is touched.
        """
        path = Path(path)
        shape = tuple(int(s) for s in shape)
        meta_p, prog_p = path / META, path / PARTIAL / PROGRESS
        if meta_p.is_file() and (path / IMAGES).is_file() and (path / MANIFEST).is_file():
            try:
                meta = json.loads(meta_p.read_text())
            except json.JSONDecodeError:
                meta = {}
            if meta.get("complete") and meta.get("fingerprint") == key and meta.get("n") == n:
                return cls(path, n, shape, key, chunk, "complete", [], None)
        if prog_p.is_file() and (path / IMAGES).is_file():
            try:
                prog = json.loads(prog_p.read_text())
                images = np.lib.format.open_memmap(path / IMAGES, mode="r+")
            except (json.JSONDecodeError, ValueError, OSError):
                prog, images = {}, None
            if (images is not None and prog.get("fingerprint") == key and prog.get("n") == n
                    and images.shape == (n, *shape) and images.dtype == np.uint8):
                done = [int(c) for c in prog.get("done", [])]
                return cls(path, n, shape, key, int(prog["chunk"]), "resume", done, images)
            del images
        # fresh: mark the folder incomplete first, then replace our files
        path.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(meta_p, {"complete": False, "fingerprint": key, "n": n})
        for name in (MANIFEST, IMAGES, "contact.png"):
            (path / name).unlink(missing_ok=True)
        if (path / PARTIAL).is_dir():
            shutil.rmtree(path / PARTIAL)
        (path / PARTIAL).mkdir()
        images = np.lib.format.open_memmap(path / IMAGES, mode="w+", dtype=np.uint8, shape=(n, *shape))
        writer = cls(path, n, shape, key, int(chunk), "fresh", [], images)
        writer._save_progress()
        return writer

    @property
    def n_chunks(self) -> int:
        return (self.n + self.chunk - 1) // self.chunk

    def chunk_range(self, c: int) -> range:
        """Row indices of chunk ``c``."""
        return range(c * self.chunk, min(self.n, (c + 1) * self.chunk))

    def pending_chunks(self) -> list[int]:
        """Chunks not finished yet, in order."""
        done = set(self.done)
        return [c for c in range(self.n_chunks) if c not in done]

    def _save_progress(self) -> None:
        _write_json_atomic(self.path / PARTIAL / PROGRESS, {"fingerprint": self.key, "n": self.n, "chunk": self.chunk,
                                                            "shape": list(self.shape), "done": self.done})

    def finish_chunk(self, c: int, rows: pd.DataFrame) -> None:
        """Record chunk ``c`` as finished: flush its images, save its rows (one per image, in order), update progress."""
        if len(rows) != len(self.chunk_range(c)):
            raise ValueError(f"chunk {c}: {len(rows)} rows for {len(self.chunk_range(c))} images")
        self.images.flush()
        rows.reset_index(drop=True).to_parquet(self.path / PARTIAL / f"chunk_{c:06d}.parquet", index=False)
        self.done = sorted(set(self.done) | {c})
        self._save_progress()

    def finished_rows(self) -> pd.DataFrame:
        """The rows saved by ``finish_chunk`` for every finished chunk, in row order."""
        frames = [pd.read_parquet(self.path / PARTIAL / f"chunk_{c:06d}.parquet") for c in self.done]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def finalize(self, manifest: pd.DataFrame, meta: dict) -> Cache:
        """Write manifest.parquet and the complete meta.json (with the fingerprint), drop .partial/, open the cache."""
        if len(manifest) != self.n:
            raise ValueError(f"manifest has {len(manifest)} rows for {self.n} images")
        if self.images is not None:
            self.images.flush()
            self.images = None
        manifest.reset_index(drop=True).to_parquet(self.path / MANIFEST, index=False)
        _write_json_atomic(self.path / META, {**meta, "fingerprint": self.key, "n": self.n, "complete": True})
        shutil.rmtree(self.path / PARTIAL, ignore_errors=True)
        return load_cache(self.path)
