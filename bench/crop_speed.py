#!/usr/bin/env python3
"""Speed of `crop` as the user feels it: the whole command against the teams' loop, side by side, repeated.

Both sides run as whole processes from start to exit, in turns (ours, anchor, ours, anchor, ...) on the
same photos, each into a fresh output folder: ``python -m facecurate crop SAMPLE --out ...`` (default
settings) against ``../shared/anchors/naive_crop.py SAMPLE/images ...`` (PIL + facenet MTCNN per photo,
its default 2 torch threads). Reported per side: wall seconds and photos/s as min / median / max over
``--repeat`` turns, and the ratio anchor / ours of each turn (min / median / max): the machine's speed
drifts, so a pair's ratio is what holds. Ours also reports its own in-process rate and how many photos
took which path. The photos: a competition-layout sample rendered by ``curate.synth`` from
../shared/data/utkface (masks drawn on), with ``--backdrops`` street photos behind the people (e.g.
../shared/data/facemask-voc/images, full of other faces), unless ``--sample`` names one.
With CUDA present, ours also runs once on the GPU. Prints one JSON line.

  .venv/bin/python bench/crop_speed.py --people 300 --backdrops ../shared/data/facemask-voc/images --repeat 3
  .venv/bin/python bench/crop_speed.py --people 300 --crowd --repeat 3 --warmup # the crowded set (crop_coverage --crowd)
  .venv/bin/python bench/crop_speed.py --people 100 --baseline /tmp/base --no-naive   # code against code, plain walls
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = next((p / "shared" for p in ROOT.parents if (p / "shared" / "data").is_dir()), ROOT.parent / "shared")  # ../shared, or
# ../../shared from a worktree
ANCHOR = SHARED / "anchors" / "naive_crop.py"
FACES = SHARED / "data" / "utkface"
FACES_LARGE = SHARED / "data" / "utkface-large"
STREET = SHARED / "data" / "facemask-voc" / "images"


def _backdrops(sample: Path) -> str:
    """What is behind the sample's people: synth's --backdrops folder (and share), else painted walls."""
    meta = sample / "synth.json"
    params = json.loads(meta.read_text()).get("params", {}) if meta.is_file() else {}
    if not params:
        return "unknown (not a synth output)"
    return f"{params['backdrops']} (share {params.get('backdrop_share')})" if params.get("backdrops") else "painted"


def build_sample(out: Path, people: int, seed: int = 1, backdrops: Path | None = None) -> Path:
    """A competition-layout folder of ``people`` x 7 photos 384x512 rendered from UTKFace faces (masks drawn on)."""
    from facecurate.curate.synth import synthesize

    extra = {"backdrops": backdrops} if backdrops else {}
    synthesize(FACES, out, people=people, seed=seed, **extra)
    return out


def build_crowded_sample(out: Path, people: int, seed: int = 26, backdrops: Path | None = STREET, static: float = 0.6,
                         faded: float = 0.1, faces: Path = FACES_LARGE) -> Path:
    """A crowded sample: synth's photos of ``people`` x 7 (UTKFace faces over blurred ``backdrops``) with 1 to 3
    bystanders painted behind each subject (``synth.backdrops.crowd_photo``): other people of the sample, 0.5 to 1
    times the subject's face, blurred, masked or not; at the same place in all of a person's photos for a
    ``static`` share of the people, drawn anew per photo for the others; a ``faded`` share of subjects low in contrast.
    Writes ``bystanders.csv`` (image_id, each bystander's face box, its size against the subject's, whether it is
    masked and static, the share of its box the subject hides). Reused when ``crowd.json`` says it is done."""
    import cv2
    import numpy as np
    import pandas as pd

    from facecurate.curate.synth import synthesize
    from facecurate.curate.synth.backdrops import crowd_photo, plan_bystanders
    from facecurate.curate.synth.person_mask import read_person_mask

    marker = out / "crowd.json"
    if marker.is_file():
        return out
    synthesize(faces, out, people=people, seed=seed, backdrops=backdrops, contact=0)
    truth = pd.read_csv(out / "truth.csv")
    cols = ["face_x1", "face_y1", "face_x2", "face_y2"]
    rows = []
    donors_of = {}  # a few photos of other people, decoded once: the bystanders' heads and shoulders
    rng = np.random.default_rng(seed)
    pool = truth.iloc[rng.choice(len(truth), size=min(len(truth), 160), replace=False)]
    for r in pool.itertuples():
        img = cv2.cvtColor(cv2.imread(str(out / "images" / r.image_id)), cv2.COLOR_BGR2RGB)
        donors_of[r.image_id] = (img, read_person_mask(out, r.image_id), np.array([getattr(r, c) for c in cols]), r.person, r.mask)
    donor_ids = list(donors_of)
    for p, (person, g) in enumerate(truth.groupby("person", sort=True)):
        prng = np.random.default_rng([seed, p])
        own = [k for k, d in enumerate(donor_ids) if donors_of[d][3] != person]
        donors = [donors_of[donor_ids[k]][:3] for k in own]
        is_static = bool(prng.random() < static)
        fade = float(prng.uniform(0.35, 0.5)) if prng.random() < faded else 0.0
        plan = plan_bystanders(prng, len(donors))
        blur = float(prng.uniform(1.5, 3.0))
        for r in g.itertuples():
            if not is_static:
                plan = plan_bystanders(prng, len(donors))
            path = out / "images" / r.image_id
            img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            person_mask = read_person_mask(out, r.image_id)
            box = np.array([getattr(r, c) for c in cols])
            photo, boxes = crowd_photo(img, person_mask, box, donors, plan, blur, fade)
            cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
            for b, bx in zip(sorted(plan, key=lambda b: b.scale), boxes):
                x1, y1, x2, y2 = (int(np.clip(v, 0, s)) for v, s in zip(bx, (384, 512, 384, 512)))
                hidden = float(person_mask[y1:y2, x1:x2].mean()) if x2 > x1 and y2 > y1 else 1.0
                rows.append({"image_id": r.image_id, "person": person, "bx1": bx[0], "by1": bx[1], "bx2": bx[2], "by2": bx[3],
                             "scale": b.scale, "blur": b.blur, "masked": int(donors_of[donor_ids[own[b.donor]]][4] != 2),
                             "static": int(is_static), "faded": fade, "hidden": round(hidden, 3)})
    pd.DataFrame(rows).to_csv(out / "bystanders.csv", index=False)
    marker.write_text(json.dumps({"people": people, "seed": seed, "static": static, "faded": faded,
                                  "backdrops": str(backdrops) if backdrops else None}))
    return out


def spread(values: list[float], digits: int = 2) -> dict:
    return {"min": round(min(values), digits), "median": round(statistics.median(values), digits),
            "max": round(max(values), digits)}


def timed(cmd: list[str], code: Path = ROOT) -> float:
    """Wall seconds of ``cmd`` run with ``code``'s facecurate first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=code, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=300, help="people in the built sample (7 photos each)")
    ap.add_argument("--sample", type=Path, default=None, help="an existing competition-layout folder to use instead")
    ap.add_argument("--backdrops", type=Path, default=None, help="photos to use as backdrops when building the sample")
    ap.add_argument("--repeat", type=int, default=3, help="turns of each side")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the naive loop")
    ap.add_argument("--work", type=Path, default=None, help="keep the sample here (reused when it exists)")
    ap.add_argument("--crowd", action="store_true", help="build the crowded sample (crop_coverage.py --crowd's) instead")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another checkout of facecurate (e.g. `git worktree add /tmp/base main`): its crop runs in the same "
                         "turns, and the ratio baseline / ours is reported")
    ap.add_argument("--no-naive", action="store_true", help="skip the teams' loop (with --baseline: code against code only)")
    ap.add_argument("--warmup", action="store_true",
                    help="run each side once, untimed, before the turns (a fresh checkout's first run also compiles its "
                         "Python files, and the first read of the photos may come from disk)")
    a = ap.parse_args()

    work = a.work or Path(tempfile.mkdtemp(prefix="crop_speed_"))
    sample = a.sample or work / "sample"
    if a.sample is None and a.crowd:
        build_crowded_sample(sample, a.people)
    elif a.sample is None and not (sample / "train.csv").is_file():
        build_sample(sample, a.people, backdrops=a.backdrops)
    n = sum(1 for p in (sample / "images").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    ours_s, naive_s, base_s = [], [], []
    for t in range(a.repeat + a.warmup):
        for d in (work / "ours", work / "naive", work / "base"):
            shutil.rmtree(d, ignore_errors=True)
        ours = timed([sys.executable, "-m", "facecurate", "crop", str(sample), "--out", str(work / "ours")])
        naive = None if a.no_naive else timed([sys.executable, str(ANCHOR), str(sample / "images"), str(work / "naive"),
                                                "--threads", str(a.threads)])
        base = None if not a.baseline else timed([sys.executable, "-m", "facecurate", "crop", str(sample), "--out",
                                                   str(work / "base")], code=a.baseline.resolve())
        if a.warmup and t == 0:
            continue
        ours_s.append(ours)
        naive_s += [naive] if naive is not None else []
        base_s += [base] if base is not None else []
    meta = json.loads((work / "ours" / "meta.json").read_text())
    from facecurate.curate.cache import load_cache

    m = load_cache(work / "ours", verify="off").manifest
    cuda: dict | str = "unmeasured (no CUDA on this machine)"
    import torch

    if torch.cuda.is_available():
        shutil.rmtree(work / "ours_cuda", ignore_errors=True)
        gs = timed([sys.executable, "-m", "facecurate", "crop", str(sample), "--out", str(work / "ours_cuda"), "--device", "cuda"])
        cuda = {"device": torch.cuda.get_device_name(0), "photos": n, "wall_s": round(gs, 2), "photos_per_s": round(n / gs, 1)}
    print(json.dumps({
        "bench": "crop_speed", "photos": n, "photo_size": "384x512", "cpu_cores": os.cpu_count(), "repeat": a.repeat,
        "sample": str(sample), "backdrops": _backdrops(sample), "warmup": a.warmup,
        "turns_wall_s": {"ours": [round(v, 2) for v in ours_s], **({"naive": [round(v, 2) for v in naive_s]} if naive_s else {}),
                         **({"baseline": [round(v, 2) for v in base_s]} if base_s else {})},
        "ours": {"wall_s": spread(ours_s), "photos_per_s": spread([n / s for s in ours_s], 1),
                 "in_process_photos_per_s": round(n / meta["seconds"], 1) if meta.get("seconds") else None,
                 "detector": meta["detector"], "counts": meta["counts"], "usable": int((m["error"] == "").sum())},
        **({"naive": {"wall_s": spread(naive_s), "photos_per_s": spread([n / s for s in naive_s], 1)},
            "ratio_naive_over_ours": spread([b / o for o, b in zip(ours_s, naive_s)])} if naive_s else {}),
        **({"baseline": {"code": str(a.baseline), "wall_s": spread(base_s), "photos_per_s": spread([n / s for s in base_s], 1)},
            "ratio_baseline_over_ours": spread([b / o for o, b in zip(ours_s, base_s)])} if base_s else {}),
        "cuda": cuda,
    }))


if __name__ == "__main__":
    main()
