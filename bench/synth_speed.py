#!/usr/bin/env python3
"""Speed and memory of `synth` on N people from a faces folder: photos/s, peak RSS, people, skipped, duplicates.

Each measurement runs ``synthesize`` in its own process (so peak RSS, from ``resource.getrusage``, is
that run's alone) into a temporary folder; ``photos_per_s`` is photos written over the stage's own
time, ``command_s`` the whole process from start to exit (imports, detector start-up, contact sheet),
``cpu_ms_per_photo`` the process's CPU time (all threads, start-up included) per photo: the figure
least moved by other jobs on a shared machine.
``--compare REF`` also runs the code of git ref REF (exported with ``git archive``) on the same
people, alternating with this tree ``--repeat`` times, so both sides see the same machine load;
options the older code lacks are left at their defaults there. Prints one JSON line.

  .venv/bin/python bench/synth_speed.py --people 200 --compare HEAD~3 --repeat 2   # before/after, ~3 min
  .venv/bin/python bench/synth_speed.py --people 0                                 # every face (~23,000 with
      --faces ../shared/data/utkface-large; about an hour on 2 cores)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "utkface-large"


def child(a: argparse.Namespace) -> None:
    """One measured run (in a subprocess): import the code under ``--root``, synthesize, print a JSON line."""
    sys.path.insert(0, a.root)
    import resource

    import facecurate
    from facecurate.curate.synth import synthesize

    kwargs = {"people": a.people or None, "seed": a.seed, "detector": a.detector, "workers": a.workers, "contact": a.contact}
    for k in ("photos", "backdrops", "block"):  # new options: passed only when asked for (older code lacks them)
        if getattr(a, k) is not None:
            kwargs[k] = getattr(a, k)
    r = synthesize(a.faces, a.out, **kwargs)
    print(json.dumps({"code": facecurate.__file__, "people": r.people, "photos": r.photos, "skipped": len(r.skipped),
                      "duplicates": getattr(r, "duplicates", None), "seconds": round(r.seconds, 2),
                      "photos_per_s": round(r.photos / r.seconds, 2) if r.seconds else None,
                      "cpu_s": round((u := resource.getrusage(resource.RUSAGE_SELF)).ru_utime + u.ru_stime, 1),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def export(ref: str, where: Path) -> Path:
    """``git archive`` of ``ref`` unpacked under ``where``; returns its root."""
    dest = where / "ref"
    dest.mkdir()
    tar = where / "ref.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(tar), ref], cwd=ROOT, check=True)
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
    return dest


def measure(a: argparse.Namespace, root: Path, out: Path) -> dict:
    args = [sys.executable, str(Path(__file__).resolve()), "--child", "--root", str(root), "--faces", str(a.faces),
            "--out", str(out), "--people", str(a.people), "--seed", str(a.seed), "--detector", a.detector,
            "--contact", str(a.contact)]
    for k in ("workers", "photos", "backdrops", "block"):
        if getattr(a, k) is not None:
            args += [f"--{k}", str(getattr(a, k))]
    t0 = time.perf_counter()
    p = subprocess.run(args, capture_output=True, text=True, cwd=root, check=False)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"synth failed ({root}):\n{p.stderr[-3000:]}")
    got = json.loads(p.stdout.strip().splitlines()[-1])
    got["command_s"] = round(wall, 2)
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=FACES, help="folder of UTKFace-named faces (or a CSV)")
    ap.add_argument("--people", type=int, default=200, help="people to write (0: every usable face)")
    ap.add_argument("--detector", default="mtcnn")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--contact", type=int, default=8)
    ap.add_argument("--photos", default=None, help="synth --photos (this tree only)")
    ap.add_argument("--backdrops", default=None, help="synth --backdrops (this tree only)")
    ap.add_argument("--block", type=int, default=None)
    ap.add_argument("--compare", default=None, help="git ref to run side by side with this tree")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--keep", type=Path, default=None, help="write the (last) output of this tree here instead of a temp folder")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--root", default=str(ROOT), help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a)
    a.faces = a.faces.resolve()
    if a.backdrops:
        a.backdrops = str(Path(a.backdrops).resolve())
    with tempfile.TemporaryDirectory(prefix="synth_speed_") as tmp:
        tmp = Path(tmp)
        sides = {"tree": ROOT}
        if a.compare:
            sides = {a.compare: export(a.compare, tmp), "tree": ROOT}
        runs: dict[str, list[dict]] = {k: [] for k in sides}
        for i in range(a.repeat):
            for name, root in sides.items():
                b = argparse.Namespace(**vars(a))
                if name != "tree":  # the old code gets only the options it knows
                    b.photos = b.backdrops = b.block = None
                out = a.keep if (a.keep and name == "tree") else tmp / f"out_{name.replace('/', '_')}_{i}"
                runs[name].append(measure(b, root, out))
                if out != a.keep:
                    subprocess.run(["rm", "-rf", str(out)], check=True)
    summary = {name: {"photos_per_s_median": statistics.median(r["photos_per_s"] for r in rs),
                      "cpu_ms_per_photo_median": statistics.median(round(1000 * r["cpu_s"] / max(r["photos"], 1), 1) for r in rs),
                      "command_s_median": statistics.median(r["command_s"] for r in rs),
                      "peak_rss_mb_max": max(r["peak_rss_mb"] for r in rs), "runs": rs} for name, rs in runs.items()}
    print(json.dumps({"bench": "synth_speed", "faces": str(a.faces), "people_asked": a.people, "detector": a.detector,
                      "cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2), **summary}))


if __name__ == "__main__":
    main()
