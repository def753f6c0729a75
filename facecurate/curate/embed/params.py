"""``EmbedParams``: every option of `embed`, checked in one place; the CLI reads its defaults from here.

Apart from the stage so that reading the defaults loads neither pandas nor OpenCV nor a backend (the CLI's
start-up stays fast); ``validate`` imports the registry and the cache's verify levels only when it runs.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError

#: Which of crop's face boxes are embedded. A fallback box (the person's median box, the data set's prior) is where a
#: face probably is, not where one was seen: on a photo without a face it yields a confident vector of nothing.
BOXES = ("detected", "all")


@dataclass
class EmbedParams:
    """Every option of `embed`; ``RUNTIME_FIELDS`` do not change the vectors (beyond float rounding across devices)."""

    backend: str = "dlib"       # curate.embed.backend_names(): dlib (default), dlib-native, facenet
    min_face: int = 20          # face boxes narrower than this many cache pixels get no vector
    boxes: str = "detected"     # detected: only faces a detector found; all: also crop's fallback boxes (person, prior)
    batch: int = 64             # photos per network call
    chunk: int = 512            # photos per resumable chunk
    threads: int = 0            # torch CPU threads per worker; 0 = every core / workers
    workers: int = 0            # batches embedded side by side (threads); 0 = one per core on the CPU, 1 on CUDA
    device: str | None = None   # torch device; None = CUDA when present
    verify: str = "quick"       # how the cache is checked before the pass: quick | full | off
    ray: str = ""               # chunks on Ray: "local", "auto" or a cluster address; "" = in this process
    ray_workers: int = 0        # Ray actors (0 = one per CPU of the cluster)

    RUNTIME_FIELDS = ("batch", "chunk", "threads", "workers", "device", "verify", "ray", "ray_workers")

    def validate(self) -> EmbedParams:
        """Check every value; InputError naming the option otherwise."""
        from ..cache import VERIFY
        from .registry import backend_names

        if self.backend not in backend_names():
            raise InputError(f"--backend {self.backend!r}: expected one of {', '.join(backend_names())}")
        for opt, val in (("--batch-size", self.batch), ("--chunk", self.chunk), ("--min-face", self.min_face)):
            if int(val) < 1:
                raise InputError(f"{opt} {val}: expected 1 or more")
        if not 0 <= int(self.threads) <= 256:
            raise InputError(f"--threads {self.threads}: expected 0 (every core) to 256")
        if not 0 <= int(self.ray_workers) <= 100_000:
            raise InputError(f"--ray-workers {self.ray_workers}: expected 0 (one per CPU) or more")
        if not 0 <= int(self.workers) <= 64:
            raise InputError(f"--workers {self.workers}: expected 0 (one per core) to 64")
        if self.boxes not in BOXES:
            raise InputError(f"--boxes {self.boxes!r}: expected one of {', '.join(BOXES)}")
        if self.verify not in VERIFY:
            raise InputError(f"--verify {self.verify!r}: expected one of {', '.join(VERIFY)}")
        return self
