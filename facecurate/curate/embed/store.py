"""Where a pass's vectors live: ``.embed_partial/`` while it runs (resumable by chunk), then beside images.npy.

Why a second file for the reasons (``embeddings.parquet``: image_id, embed_error) and not a column of
manifest.parquet: the manifest is crop's output, checksummed and fingerprinted with the images; adding
a column would rewrite it and change the checksum other stages and runs compare. The embedding files
get checksums of their own in meta.json (``embeddings``, ``embeddings_table``) beside the manifest's,
and meta.json's ``embeddings`` entry (backend, dim, model file sha256, versions, key) says what they hold.

While a pass runs: ``.embed_partial/vectors.npy`` (a float32 N x D memmap) and ``progress.json`` (key,
chunk, batch, finished chunks with the xxh3 of their rows and their reasons). A finished chunk is
flushed before it is listed, so ``kill -9`` loses at most the chunk in flight; a rerun redoes any
listed chunk whose bytes changed. The caller holds the cache's lock throughout.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..cache import EMBED_TABLE, EMBEDDINGS, META, write_meta
from ..cache_writer import EMBED_PARTIAL
from ..checksums import file_hash, hash_bytes, meta_hash
from ..chunks import ChunkedRows, write_progress

PROGRESS, VECTORS = "progress.json", "vectors.npy"



class EmbedStore(ChunkedRows):
    """An unfinished pass: ``vectors`` (writable memmap), ``pending_chunks()``, ``finish_chunk(c, errors)``, ``finalize``."""

    def __init__(self, path: Path, n: int, dim: int, key: str, chunk: int, batch: int, state: str,
                 done: list[int], hashes: dict[int, str], errors: dict[int, list[str]], vectors: np.ndarray) -> None:
        self.path, self.n, self.dim, self.key, self.chunk, self.batch = path, n, dim, key, chunk, batch
        self.state, self.done, self.hashes, self.errors, self.vectors = state, sorted(done), hashes, errors, vectors

    @property
    def partial(self) -> Path:
        return self.path / EMBED_PARTIAL

    @classmethod
    def open(cls, path: str | Path, n: int, dim: int, key: str, chunk: int = 512, batch: int = 64) -> "EmbedStore":
        """Reopen the pass in ``path`` with the same key ("resume": its chunk and batch sizes kept, so resumed rows
        come out byte for byte as in one go), or start one ("fresh")."""
        path = Path(path)
        part = path / EMBED_PARTIAL
        try:
            prog = json.loads((part / PROGRESS).read_text())
            vectors = np.lib.format.open_memmap(part / VECTORS, mode="r+")
        except (OSError, ValueError, UnicodeDecodeError):
            prog, vectors = {}, None
        if vectors is not None and prog.get("key") == key and vectors.shape == (n, dim) and vectors.dtype == np.float32:
            store = cls(path, n, dim, key, int(prog["chunk"]), int(prog["batch"]), "resume", [], {}, {}, vectors)
            for c in (int(c) for c in prog.get("done", [])):
                r = store.chunk_range(c)
                if prog["hashes"].get(str(c)) == hash_bytes(vectors[r.start:r.stop]):
                    store.done.append(c)
                    store.hashes[c], store.errors[c] = prog["hashes"][str(c)], list(prog["errors"][str(c)])
            return store
        del vectors
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        vectors = np.lib.format.open_memmap(part / VECTORS, mode="w+", dtype=np.float32, shape=(n, dim))
        store = cls(path, n, dim, key, int(chunk), int(batch), "fresh", [], {}, {}, vectors)
        store._save()
        return store

    def _save(self) -> None:
        write_progress(self.partial / PROGRESS, indent=1, state={
            "key": self.key, "n": self.n, "dim": self.dim, "chunk": self.chunk, "batch": self.batch, "done": self.done,
            "hashes": {str(c): self.hashes[c] for c in self.done}, "errors": {str(c): self.errors[c] for c in self.done}})

    def finish_chunk(self, c: int, errors: list[str]) -> None:
        """Record chunk ``c`` (its rows already in ``vectors``) as finished: flush, hash, list it."""
        r = self.chunk_range(c)
        if len(errors) != len(r):
            raise ValueError(f"chunk {c}: {len(errors)} reasons for {len(r)} rows")
        self.vectors.flush()
        self.hashes[c], self.errors[c] = hash_bytes(self.vectors[r.start:r.stop]), list(errors)
        self.done = sorted(set(self.done) | {c})
        self._save()

    def all_errors(self) -> list[str]:
        """Every row's reason, in row order (all chunks must be finished)."""
        return [e for c in range(self.n_chunks) for e in self.errors[c]]

    def finalize(self, image_ids: pd.Series, entry: dict) -> dict:
        """Move the vectors beside images.npy, write embeddings.parquet, and record ``entry`` and both checksums in
        meta.json (the old entry is dropped first, so a crash in between never leaves a listed file that does not
        match). Returns the new meta."""
        self.vectors.flush()
        self.vectors = None
        meta = json.loads((self.path / META).read_text())
        if "embeddings" in meta:
            meta.pop("embeddings")
            for k in ("embeddings", "embeddings_table"):
                meta["checksums"].pop(k, None)
            meta["checksums"]["meta"] = meta_hash(meta)
            write_meta(self.path, meta)
        os.replace(self.partial / VECTORS, self.path / EMBEDDINGS)
        table = pd.DataFrame({"image_id": image_ids.to_numpy(), "embed_error": self.all_errors()})
        tmp = self.path / (EMBED_TABLE + ".tmp")
        table.to_parquet(tmp, index=False)
        os.replace(tmp, self.path / EMBED_TABLE)
        meta["embeddings"] = entry
        meta["checksums"]["embeddings"] = file_hash(self.path / EMBEDDINGS)
        meta["checksums"]["embeddings_table"] = file_hash(self.path / EMBED_TABLE)
        meta["checksums"]["meta"] = meta_hash(meta)
        write_meta(self.path, meta)
        shutil.rmtree(self.partial, ignore_errors=True)
        return meta
