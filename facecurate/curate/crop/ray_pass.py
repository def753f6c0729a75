"""Pass 1 of `crop` on a Ray cluster (``crop --ray``): chunks of photos to a pool of workers, crops back to the driver.

Ray Data runs the embarrassingly parallel part: each chunk of the cache (the same row ranges a local run
uses) is one item; a pool of actors (``FirstLook``, one per CPU, each opening its detector and background
remover once) decodes the chunk's photos and runs the same ``first_look`` a local run does. The
driver writes every returned chunk into the cache as it arrives (``CacheWriter.finish_chunk``: the same
chunk files, the same lock, the same resume), then runs pass 2 itself: the person's consensus needs all
of a person's photos, and it is a small share of the work. A worker that dies is restarted and its chunk
retried by Ray; a killed driver leaves the finished chunks for the next run to resume.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError


def connect(address: str) -> None:
    """Start or join Ray: "local" starts a local instance, "auto" joins the running cluster, else an address
    like ray://host:10001 or host:6379. A session already initialised in this process is used as it is."""
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs the ray package: pip install 'facecurate[ray]' (or ray[data])") from None
    if ray.is_initialized():
        return
    try:
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise InputError(f"--ray {address}: cannot reach a Ray cluster ({type(e).__name__}: {str(e).splitlines()[0]})") from None


class FirstLook:
    """A Ray Data actor: its own detector and background remover, pass 1 on one chunk per call."""

    def __init__(self, params: dict, device: str | None, out_hw: tuple[int, int]) -> None:
        from ..detect import make_detector
        from .background import make_remover
        from .params import CropParams

        self.params = CropParams.from_dict(params)
        self.out_hw = tuple(out_hw)
        self.detector = make_detector(self.params.detector, device=device, min_face=self.params.min_face, threads=1)
        self.background = make_remover(self.params.background, self.params.fill, self.params.rembg_model)

    def __call__(self, batch: dict) -> dict:
        from .first_look import first_look, read_photo

        out = {"chunk": [], "images": [], "recs": []}
        for c, rows, paths in zip(batch["chunk"], batch["rows"], batch["paths"]):
            recs, crops = [], []
            for s in range(0, len(rows), self.params.batch):
                part = [(int(i), *read_photo(str(p), self.params.min_photo_size))
                        for i, p in zip(rows[s:s + self.params.batch], paths[s:s + self.params.batch])]
                for rec, crop in first_look(part, self.detector, self.background, self.params, self.out_hw):
                    recs.append(rec)
                    crops.append(np.zeros((*self.out_hw, 3), np.uint8) if crop is None else crop)
            out["chunk"].append(int(c))
            out["images"].append(np.stack(crops).tobytes())
            out["recs"].append(json.dumps(recs, default=float))
        return {k: np.array(v, dtype=object) if k != "chunk" else np.array(v) for k, v in out.items()}


def first_pass(chunks: Sequence[int], rows_of, paths: Sequence[str], params, device: str | None,
               out_hw: tuple[int, int], workers: int | None = None) -> Iterator[tuple[int, np.ndarray, pd.DataFrame]]:
    """Yield (chunk, crops n x H x W x 3, pass-1 rows) for each of ``chunks`` as Ray's workers finish them.

    ``rows_of(c)`` gives chunk ``c``'s row indices; ``workers`` actors (default: one per CPU of the cluster).
    """
    import ray

    items = [{"chunk": int(c), "rows": list(rows_of(c)), "paths": [paths[i] for i in rows_of(c)]} for c in chunks]
    n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map_batches(FirstLook, batch_size=1, batch_format="numpy", concurrency=min(n, len(items)), num_cpus=1,
                        fn_constructor_kwargs={"params": params.to_dict(), "device": device, "out_hw": list(out_hw)},
                        max_restarts=-1, max_task_retries=3)
    h, w = out_hw
    for batch in ds.iter_batches(batch_size=1, batch_format="numpy", prefetch_batches=2):
        c = int(batch["chunk"][0])
        crops = np.frombuffer(batch["images"][0], np.uint8).reshape(-1, h, w, 3)
        yield c, crops, pd.DataFrame(json.loads(batch["recs"][0]))
