"""Speed of the `embed` pass on a real cache: photos/s for the whole pass, ms per step, and the port checked against dlib.

Copies the first ``--photos`` rows of ``--cache`` into a temporary cache, runs ``embed_cache`` on it
(fresh), and reports wall photos/s, process CPU ms per photo (what the pass would take on idle cores),
CPU ms per photo of each step (landmarks, chip, network: the calling thread's CPU time, all of it with
one torch thread per worker, the default on the CPU) and the idle-core rate those imply, and the load average seen before and after
(the machine is shared). ``--check N``: N aligned chips through both dlib's own network and our PyTorch
port: the max absolute difference and dlib's own ms per face. Prints one JSON line.

  PYTHONPATH=. .venv/bin/python bench/embed_speed.py --cache /tmp/emb/cache --check 200
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def check_port(cache, n: int) -> dict:
    """Chips of the first ``n`` usable photos through dlib's network and the port: max abs diff, ms per face."""
    from facecurate.curate.embed.dlib_backend import DlibBackend
    from facecurate.curate.embed.stage import cache_boxes

    idx = cache.usable()[:n]
    boxes = cache_boxes(cache.manifest, *cache.images.shape[1:3])[idx]
    port, native = DlibBackend("cpu"), DlibBackend("cpu", native=True)
    chips, _ = port.chips(np.asarray(cache.images[idx]), boxes)
    chips = [c for c in chips if c is not None]
    t0 = time.perf_counter()
    ref = native.descriptors(chips)
    t_native = time.perf_counter() - t0
    got = port.descriptors(chips)
    return {"check_faces": len(chips), "check_max_abs_diff": float(np.abs(got - ref).max()),
            "dlib_native_ms_per_face": round(1000 * t_native / len(chips), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, help="a cache written by `crop`")
    ap.add_argument("--photos", type=int, default=0, help="use the first N photos (0: all)")
    ap.add_argument("--backend", default="dlib")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch threads per worker (0: cores / workers)")
    ap.add_argument("--workers", type=int, default=0, help="batches side by side (0: one per core)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--check", type=int, default=0, help="compare the port with dlib's own network on N faces")
    args = ap.parse_args()

    from facecurate.curate.cache import load_cache, save_cache
    from facecurate.curate.embed import EmbedParams, embed_cache

    src = load_cache(args.cache)
    n = args.photos or len(src.manifest)
    out: dict = {"bench": "embed_speed", "photos": n, "backend": args.backend, "batch": args.batch,
                 "threads": args.threads, "workers": args.workers, "device": args.device, "cpus": os.cpu_count(),
                 "load_before": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        meta = {k: v for k, v in src.meta.items() if k not in ("checksums", "embeddings")}
        cache = save_cache(Path(tmp) / "cache", np.asarray(src.images[:n]), src.manifest.iloc[:n], meta)
        c0, t0 = cpu_seconds(), time.perf_counter()
        r = embed_cache(cache.path, EmbedParams(backend=args.backend, batch=args.batch, threads=args.threads, workers=args.workers,
                                                device=args.device, verify="off"))
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    out.update({"pass_s": round(wall, 2), "photos_per_s_pass": round(n / wall, 1),
                "photos_per_s_embedding": round(r.photos_per_s, 1), "cpu_ms_per_photo": round(1000 * cpu / n, 1),
                "embedded": r.embedded, "failed": r.failed, "reasons": r.reasons,
                "cpu_ms_per_photo_step": {k: round(1000 * v / max(r.embedded, 1), 2) for k, v in r.step_seconds.items()}})
    steps = sum(out["cpu_ms_per_photo_step"].values())
    # what the steps' CPU would give on idle cores, one worker each (the pass's setup and I/O not counted)
    out["photos_per_s_idle_estimate"] = round(1000 * out["cpus"] / steps, 1) if steps else None
    if args.check:
        out.update(check_port(src, args.check))
    out["load_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
