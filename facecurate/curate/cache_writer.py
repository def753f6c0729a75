"""Fill a cache folder chunk by chunk, resumably, and decide by fingerprint whether an existing cache can be reused.

`crop` fills a preallocated images.npy (np.lib.format.open_memmap) chunk by chunk. After each
finished chunk the images are flushed, the chunk's manifest rows are saved under .partial/ and
.partial/progress.json lists the finished chunks with their checksums, so an interrupted run resumes
from its last finished chunk (a finished chunk whose bytes changed since is redone). A fingerprint
of parameters + inputs decides whether a cache can be reused; a reused cache must also pass its
checksums, else it is rebuilt. The caller holds the folder's lock (``locks.folder_lock``) throughout.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .cache import EMBED_TABLE, EMBEDDINGS, IMAGES, MANIFEST, META, Cache, checksums_of, load_cache, write_meta
from .checksums import file_hash, hash_bytes
from .chunks import ChunkedRows, Chunks, write_progress
from .errors import InputError

PARTIAL, PROGRESS = ".partial", "progress.json"
EMBED_PARTIAL = ".embed_partial"  # `embed`'s unfinished pass (curate/embed/store.py): stale once the images change



def _disk_full(path: Path, e: OSError) -> InputError:
    """A write that failed (a full disk, most often): one line; the cache stays marked incomplete and resumes."""
    return InputError(f"{path}: cannot write it ({e.strerror or e}); the cache stays incomplete: free some space, then "
                      f"run `crop` again and it resumes where it stopped")


def _reserve(path: Path) -> None:
    """Allocate images.npy's blocks now: a full disk is then an OSError here, not a SIGBUS when the memmap is written."""
    try:
        with open(path, "r+b") as f:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):  # a file system without it: written as it goes
            return
        size, free = os.path.getsize(path), shutil.disk_usage(path.parent).free
        raise InputError(f"{path}: no room for it ({e.strerror}: {size / 1e9:.2f} GB needed, {free / 1e9:.2f} GB free); "
                         f"the cache stays incomplete: free some space, then run `crop` again and it resumes") from None


def _rows_readable(part: Path, want: str | None) -> bool:
    """A finished chunk's rows file is whole: its recorded xxh3 matches (older progress files: it parses)."""
    if not part.is_file():
        return False
    if want is not None:
        return file_hash(part) == want
    try:
        pd.read_parquet(part)
        return True
    except Exception:  # pyarrow's ArrowInvalid / OSError on a cut file
        return False


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


class CacheWriter(ChunkedRows):
    """Fill a cache folder chunk by chunk; ``state`` says what ``open`` found: "complete", "resume" or "fresh".

    Use ``CacheWriter.open``; then ``images`` (writable memmap), ``pending_chunks()``,
    ``finish_chunk(c, rows)`` per chunk, ``finished_rows()`` and finally ``finalize(manifest, meta)``.
    """

    def __init__(self, path: Path, n: int, shape: tuple[int, int, int], key: str, chunk: int, state: str,
                 done: list[int], images: np.ndarray | None, hashes: dict[int, str] | None = None, reason: str = "",
                 row_hashes: dict[int, str] | None = None) -> None:
        self.path, self.n, self.shape, self.key, self.chunk = path, n, shape, key, chunk
        self.state, self.done, self.images = state, sorted(done), images
        self.hashes = dict(hashes or {})
        self.row_hashes = dict(row_hashes or {})  # xxh3 of each finished chunk's .partial/chunk_*.parquet
        self.reason = reason  # why an existing cache was not reused or not fully resumed ("" when it was)
        self.resumed = len(self.done) if state == "resume" else 0
        self.resumed_rows = sum(len(self.chunk_range(c)) for c in self.done) if state == "resume" else 0

    @classmethod
    def open(cls, path: str | Path, n: int, shape: tuple[int, int, int], key: str, chunk: int = 512) -> "CacheWriter":
        """Open ``path`` for a cache of ``n`` images of ``shape`` (H, W, 3) with fingerprint ``key``.

        A complete cache with the same key that passes its checksums is left as it is ("complete"); a
        partial one with the same key, size and shape is reopened where it stopped ("resume", keeping its
        chunk size, redoing any finished chunk whose checksum no longer matches); anything else is
        replaced ("fresh"). The folder must already be claimed as a cache (``outputs.claim_folder``):
        only the cache's own files are ever replaced.
        """
        path = Path(path)
        shape = tuple(int(s) for s in shape)
        meta_p, prog_p = path / META, path / PARTIAL / PROGRESS
        reason = ""
        if meta_p.is_file() and (path / IMAGES).is_file() and (path / MANIFEST).is_file():
            try:
                meta = json.loads(meta_p.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                meta, reason = {}, "its meta.json was unreadable"
            if isinstance(meta, dict) and meta.get("complete") and meta.get("fingerprint") == key and meta.get("n") == n:
                try:
                    load_cache(path)
                    return cls(path, n, shape, key, chunk, "complete", [], None)
                except InputError as e:
                    reason = f"it failed its check ({e}); rebuilding"
        if prog_p.is_file() and (path / IMAGES).is_file():
            try:
                prog = json.loads(prog_p.read_text())
                images = np.lib.format.open_memmap(path / IMAGES, mode="r+")
            except (json.JSONDecodeError, UnicodeDecodeError, ValueError, OSError):
                prog, images = {}, None
            if (images is not None and prog.get("fingerprint") == key and prog.get("n") == n
                    and images.shape == (n, *shape) and images.dtype == np.uint8):
                c_size = int(prog["chunk"])
                hashes = {int(c): h for c, h in prog.get("hashes", {}).items()}
                row_hashes = {int(c): h for c, h in prog.get("row_hashes", {}).items()}
                done, damaged = [], []
                for c in (int(c) for c in prog.get("done", [])):
                    rows = Chunks(n, c_size).rows(c)
                    ok = (hashes.get(c) == hash_bytes(images[rows.start:rows.stop])
                          and _rows_readable(path / PARTIAL / f"chunk_{c:06d}.parquet", row_hashes.get(c)))
                    (done if ok else damaged).append(c)
                if damaged:
                    reason = f"finished chunk(s) {', '.join(map(str, damaged))} changed since they were written; redoing them"
                _reserve(path / IMAGES)
                return cls(path, n, shape, key, c_size, "resume", done, images, {c: hashes[c] for c in done}, reason,
                           {c: row_hashes[c] for c in done if c in row_hashes})
            del images
        # fresh: mark the folder incomplete first, then replace our files
        try:
            path.mkdir(parents=True, exist_ok=True)
            write_progress(meta_p, {"complete": False, "fingerprint": key, "n": n})
            for name in (MANIFEST, IMAGES, "contact.png", EMBEDDINGS, EMBED_TABLE):  # embeddings describe the old images
                (path / name).unlink(missing_ok=True)
            for name in (PARTIAL, EMBED_PARTIAL):
                if (path / name).is_dir():
                    shutil.rmtree(path / name)
            (path / PARTIAL).mkdir()
            images = np.lib.format.open_memmap(path / IMAGES, mode="w+", dtype=np.uint8, shape=(n, *shape))
            _reserve(path / IMAGES)
            writer = cls(path, n, shape, key, int(chunk), "fresh", [], images, reason=reason)
            writer._save_progress()
        except OSError as e:
            raise _disk_full(Path(e.filename) if e.filename else path, e) from None
        return writer

    def _save_progress(self) -> None:
        write_progress(self.path / PARTIAL / PROGRESS, {"fingerprint": self.key, "n": self.n, "chunk": self.chunk,
                                                            "shape": list(self.shape), "done": self.done,
                                                            "hashes": {str(c): self.hashes[c] for c in self.done},
                                                            "row_hashes": {str(c): self.row_hashes[c] for c in self.done
                                                                           if c in self.row_hashes}})

    def finish_chunk(self, c: int, rows: pd.DataFrame) -> None:
        """Record chunk ``c`` as finished: flush its images, save its rows (one per image, in order), update progress."""
        if len(rows) != len(self.chunk_range(c)):
            raise ValueError(f"chunk {c}: {len(rows)} rows for {len(self.chunk_range(c))} images")
        self.images.flush()
        part = self.path / PARTIAL / f"chunk_{c:06d}.parquet"
        try:
            rows.reset_index(drop=True).to_parquet(part.with_suffix(".tmp"), index=False)
            os.replace(part.with_suffix(".tmp"), part)
            r = self.chunk_range(c)
            self.hashes[c] = hash_bytes(self.images[r.start:r.stop])
            self.row_hashes[c] = file_hash(part)
            self.done = sorted(set(self.done) | {c})
            self._save_progress()
        except OSError as e:
            part.with_suffix(".tmp").unlink(missing_ok=True)
            (self.path / PARTIAL / (PROGRESS + ".tmp")).unlink(missing_ok=True)
            raise _disk_full(part, e) from None

    def finished_rows(self) -> pd.DataFrame:
        """The rows saved by ``finish_chunk`` for every finished chunk, in row order."""
        frames = [pd.read_parquet(self.path / PARTIAL / f"chunk_{c:06d}.parquet") for c in self.done]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def finalize(self, manifest: pd.DataFrame, meta: dict) -> Cache:
        """Write manifest.parquet and the complete meta.json (fingerprint + checksums), drop .partial/, open the cache."""
        if len(manifest) != self.n:
            raise ValueError(f"manifest has {len(manifest)} rows for {self.n} images")
        if self.images is not None:
            self.images.flush()
        tmp = self.path / (MANIFEST + ".tmp")
        try:
            manifest.reset_index(drop=True).to_parquet(tmp, index=False)
            os.replace(tmp, self.path / MANIFEST)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise _disk_full(self.path / MANIFEST, e) from None
        images = self.images if self.images is not None else np.load(self.path / IMAGES, mmap_mode="r")
        meta = {**meta, "fingerprint": self.key, "n": self.n, "image_shape": list(self.shape), "complete": True}
        meta["checksums"] = checksums_of(self.path, images, meta, self.chunk)  # after the fallback pass rewrote rows
        self.images = None
        try:
            write_meta(self.path, meta)
        except OSError as e:
            (self.path / (META + ".tmp")).unlink(missing_ok=True)
            raise _disk_full(self.path / META, e) from None
        shutil.rmtree(self.path / PARTIAL, ignore_errors=True)
        return load_cache(self.path, verify="off")
