"""kill -9 `embed` at random moments, run it again until it finishes, and compare with an uninterrupted pass.

The first ``--photos`` rows of ``--cache`` are copied into a fresh cache per trial; ``python -m
facecurate embed`` runs there as a real process, is killed with SIGKILL after one or two random delays
drawn over an uninterrupted pass's length, then runs again until it exits 0. A trial is "identical"
when embeddings.npy and embeddings.parquet equal the uninterrupted pass's byte for byte and the cache
passes ``load_cache``. Prints one JSON line.

  PYTHONPATH=. .venv/bin/python bench/embed_kill_resume.py --cache /tmp/emb/cache --photos 300 --kills 5
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kill_resume import command, killed_until_done, run_once  # noqa: E402  (after the path insert)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, help="a cache written by `crop`")
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--kills", type=int, default=5, help="trials (one random kill each, sometimes two)")
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    from facecurate.curate.cache import load_cache, save_cache

    rng = np.random.default_rng(a.seed)
    src = load_cache(a.cache)
    meta = {k: v for k, v in src.meta.items() if k not in ("checksums", "embeddings")}
    images, manifest = np.asarray(src.images[:a.photos]), src.manifest.iloc[:a.photos]
    work = Path(tempfile.mkdtemp(prefix="embed_kill_"))
    args = ("--chunk", a.chunk, "--quiet")
    ref = save_cache(work / "ref", images, manifest, meta).path
    total = run_once(command("embed", ref, *args))
    want = [(ref / f).read_bytes() for f in ("embeddings.npy", "embeddings.parquet")]
    out = {"bench": "embed_kill_resume", "photos": len(images), "chunk": a.chunk, "uninterrupted_s": round(total, 1),
           "load_before": round(os.getloadavg()[0], 2)}
    identical, landed, trials = 0, 0, []
    for t in range(a.kills):
        target = save_cache(work / f"trial_{t}", images, manifest, meta).path
        delays = list(rng.uniform(0.3, total, size=1 if rng.random() < 0.7 else 2))
        log: list = []
        landed += killed_until_done(command("embed", target, *args), delays, log)
        got = [(target / f).read_bytes() for f in ("embeddings.npy", "embeddings.parquet")]
        same = got == want and load_cache(target).embeddings is not None
        identical += same
        trials.append({"delays": log, "identical": bool(same)})
    out.update({"trials": a.kills, "kills_landed": landed, "identical": identical, "log": trials,
                "load_after": round(os.getloadavg()[0], 2)})
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
