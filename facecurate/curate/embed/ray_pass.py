"""`embed --ray`: chunks of the cache to a pool of Ray actors, vectors back to the driver.

Each chunk (the same row ranges and batches a local pass uses) is one Ray Data item carrying its crops,
boxes and skip reasons, so workers need no access to the cache folder. A pool of actors (``EmbedChunk``,
one per CPU, each loading the backend once with one torch thread) runs ``backend.embed_rows`` batch by
batch, as a local pass does. The driver writes each returned chunk as it arrives (``EmbedStore.finish_chunk``:
the same files, the same lock, the same resume). Ray's connection is crop's (``crop.ray_pass.connect``).
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import numpy as np


class EmbedChunk:
    """A Ray Data actor: its own backend; one chunk per call."""

    def __init__(self, backend: str, min_face: int, device: str | None, batch: int) -> None:
        from ..devices import resolve_device
        from .registry import make_backend

        self.backend = make_backend(backend, device=resolve_device(device), threads=1, min_face=min_face)
        self.batch = int(batch)

    def __call__(self, item: dict) -> dict:
        from .backend import embed_rows

        out: dict = {"chunk": [], "vectors": [], "errors": []}
        for c, raw, shape, boxes, skip in zip(item["chunk"], item["images"], item["shape"], item["boxes"], item["skip"]):
            images = np.frombuffer(raw, np.uint8).reshape(tuple(int(v) for v in shape))
            boxes = np.frombuffer(boxes, np.float64).reshape(-1, 4)
            skip = np.array(json.loads(skip), dtype=object)
            vecs, why = [], []
            for s in range(0, len(images), self.batch):
                v, w = embed_rows(self.backend, images[s:s + self.batch], boxes[s:s + self.batch], skip[s:s + self.batch])
                vecs.append(v)
                why += w
            out["chunk"].append(int(c))
            out["vectors"].append(np.concatenate(vecs).tobytes())
            out["errors"].append(json.dumps(why))
        return {k: np.array(v) if k == "chunk" else np.array(v, dtype=object) for k, v in out.items()}


def embed_chunks(chunks: Sequence[int], rows_of, images: np.ndarray, boxes: np.ndarray, skip: np.ndarray, dim: int,
                 backend: str, min_face: int, device: str | None, batch: int,
                 workers: int | None = None) -> Iterator[tuple[int, np.ndarray, list[str]]]:
    """Yield (chunk, vectors rows x dim, reasons) for each of ``chunks`` as Ray's workers finish them."""
    import ray

    def item(c: int) -> dict:
        r = rows_of(c)
        crops = np.ascontiguousarray(images[r.start:r.stop])
        return {"chunk": int(c), "images": crops.tobytes(), "shape": list(crops.shape),
                "boxes": np.ascontiguousarray(boxes[r.start:r.stop], np.float64).tobytes(),
                "skip": json.dumps([str(s) for s in skip[r.start:r.stop]])}

    n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    ds = ray.data.from_items([item(c) for c in chunks], override_num_blocks=len(chunks))
    ds = ds.map_batches(EmbedChunk, batch_size=1, batch_format="numpy", concurrency=min(n, len(chunks)), num_cpus=1,
                        fn_constructor_kwargs={"backend": backend, "min_face": min_face, "device": device, "batch": batch},
                        max_restarts=-1, max_task_retries=3)
    for out in ds.iter_batches(batch_size=1, batch_format="numpy", prefetch_batches=2):
        yield int(out["chunk"][0]), np.frombuffer(out["vectors"][0], np.float32).reshape(-1, dim), json.loads(out["errors"][0])
