#!/usr/bin/env python3
"""Photo-quality flags against planted defects: per-kind recall and precision, the clean set's flag rate, photos/s.

Per seed: ``synth`` writes ``--people`` people (7 photos each) from UTKFace faces; ``crop`` caches them
as they are (the clean set); then one photo of most people is damaged with one defect, each kind on its
own known list of photos, and the damaged copy is cropped too (the planted set). Defects (strength drawn
per photo, uniform in the range):

- ``dark``: pixel values x 0.30..0.50 (1 to 1.7 stops under);
- ``blurry``: Gaussian blur, sigma 2.0..3.5 px on the 384 x 512 photo (faces are ~110-190 px wide);
- ``odd_size`` (downscaled): the photo saved at 0.30..0.50 of its size;
- ``grayscale``: saved as a grey (mode L) JPEG;
- ``small_face`` (zoomed out): the photo shrunk to 0.30..0.42 and pasted in the middle of a blurred copy of itself;
- ``odd_aspect_ratio``: stretched or squashed sideways by 1.5..1.9x (the photo's w/h changes by that much).

``--strength mild`` plants about half that damage (x 0.55..0.70 dark, sigma 1.0..2.0, 0.55..0.70 of the
size, zoomed out to 0.50..0.62, 1.25..1.4x sideways): where the cuts stop finding them.

Recall: planted photos of a kind flagged with that kind; precision: photos flagged with a kind that were
planted with it. ``clean_flag_rate``: photos of the clean cache with any flag. ``photos_per_s``: the
measures and flags on the clean cache (second pass, the cache in the page cache), ``--threads`` threads,
wall clock; ``cpu_ms_per_photo``: the process's CPU time for it (every thread) per photo, the figure that
does not depend on what else the machine runs (``load_avg_1m`` says how busy it was).
Prints one JSON line.

  .venv/bin/python bench/photo_quality.py --people 300 --seeds 0,1,2 --work /tmp/pq
  .venv/bin/python bench/photo_quality.py --seeds 3 --backdrops ../shared/data/facemask-voc/images --work /tmp/pq_street
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FACES = next((p for p in (ROOT.parent / "shared/data/utkface-large", Path("/work/shared/data/utkface-large")) if p.is_dir()),
             ROOT.parent / "shared/data/utkface-large")
KINDS = ("dark", "blurry", "odd_size", "grayscale", "small_face", "odd_aspect_ratio")


def cli(*args: str) -> None:
    """Run one facecurate command quietly; stop the bench with its stderr when it fails."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "facecurate", *args, "-q"], capture_output=True, text=True, env=env)
    if r.returncode:
        raise SystemExit(f"facecurate {' '.join(args)} failed: {r.stderr.strip()}")


#: (low, high) of each kind's strength: "standard" is the done-criterion's set, "mild" about half the damage
STRENGTHS = {"standard": {"dark": (0.30, 0.50), "blurry": (2.0, 3.5), "odd_size": (0.30, 0.50), "small_face": (0.30, 0.42),
                          "odd_aspect_ratio": (1.5, 1.9)},
             "mild": {"dark": (0.55, 0.70), "blurry": (1.0, 2.0), "odd_size": (0.55, 0.70), "small_face": (0.50, 0.62),
                      "odd_aspect_ratio": (1.25, 1.4)}}


def damage(img: np.ndarray, kind: str, rng: np.random.Generator, strength: str = "standard") -> tuple[Image.Image, float]:
    """The photo with one defect of ``kind`` and the strength drawn."""
    h, w = img.shape[:2]
    if kind == "grayscale":
        return Image.fromarray(img).convert("L"), 0.0
    s = rng.uniform(*STRENGTHS[strength][kind])
    if kind == "dark":
        return Image.fromarray(np.clip(img * s + 0.5, 0, 255).astype(np.uint8)), s
    if kind == "blurry":
        return Image.fromarray(cv2.GaussianBlur(img, (0, 0), s)), s
    if kind == "odd_size":
        return Image.fromarray(cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)), s
    if kind == "small_face":
        canvas = cv2.GaussianBlur(img, (0, 0), 25)
        sw, sh = round(w * s), round(h * s)
        x, y = (w - sw) // 2, (h - sh) // 2
        canvas[y:y + sh, x:x + sw] = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
        return Image.fromarray(canvas), s
    s = s ** rng.choice([-1, 1])
    return Image.fromarray(cv2.resize(img, (round(w * s), h), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)), s


def plant(clean: Path, out: Path, seed: int, share: float = 0.6, strength: str = "standard") -> pd.DataFrame:
    """Copy the synth output ``clean`` to ``out`` with one photo of ``share`` of the people damaged, kinds dealt in turn."""
    if (out / "planted.csv").is_file():
        return pd.read_csv(out / "planted.csv")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(clean, out, copy_function=os.link, ignore=shutil.ignore_patterns(".partial", "masks"))
    rng = np.random.default_rng(seed + 1000)
    people = sorted(p.name for p in (out / "images").iterdir() if p.is_dir())
    chosen = rng.permutation(people)[: int(share * len(people))]
    rows = []
    for i, person in enumerate(chosen):
        kind = KINDS[i % len(KINDS)]
        photos = sorted((out / "images" / person).glob("*.jpg"))
        path = photos[rng.integers(len(photos))]
        with Image.open(path) as im:
            img = np.asarray(im.convert("RGB"))
        bad, drawn = damage(img, kind, rng, strength)
        path.unlink()  # a hard link to the clean photo: replace it, never write through it
        bad.save(path, "JPEG", quality=92)
        rows.append({"image_id": f"{person}/{path.name}", "kind": kind, "strength": round(float(drawn), 3)})
    planted = pd.DataFrame(rows)
    planted.to_csv(out / "planted.csv", index=False)
    return planted


def score(defects: pd.DataFrame, planted: pd.DataFrame) -> dict:
    """Per kind: recall, precision, planted, flagged."""
    out = {}
    for kind in KINDS:
        truth = set(planted.loc[planted["kind"] == kind, "image_id"])
        got = set(defects.loc[defects["kind"] == kind, "image_id"])
        out[kind] = {"recall": round(len(truth & got) / max(len(truth), 1), 3), "precision": round(len(truth & got) / max(len(got), 1), 3),
                     "planted": len(truth), "flagged": len(got), "missed": sorted(truth - got)[:5], "wrong": sorted(got - truth)[:5]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=FACES)
    ap.add_argument("--people", type=int, default=300)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--work", type=Path, default=Path("/tmp/photo_quality_bench"), help="synth outputs and caches (reused)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--strength", choices=sorted(STRENGTHS), default="standard", help="how hard the planted damage is")
    ap.add_argument("--backdrops", type=Path, default=None, help="synth --backdrops: photos behind the people (e.g. "
                    "../shared/data/facemask-voc/images) instead of painted walls")
    args = ap.parse_args()
    from facecurate.curate.cache import load_cache
    from facecurate.curate.photo_quality import photo_quality

    result: dict = {"bench": "photo_quality", "people": args.people, "backdrops": str(args.backdrops or ""),
                    "strength": args.strength, "seeds": {}}
    for seed in (int(s) for s in args.seeds.split(",")):
        w = args.work
        tag = "" if args.strength == "standard" else f"_{args.strength}"
        synth, planted_dir = w / f"synth_s{seed}", w / f"planted{tag}_s{seed}"
        clean_cache, planted_cache = w / f"cache_clean_s{seed}", w / f"cache_planted{tag}_s{seed}"
        if not (synth / "synth.json").is_file():
            cli("synth", str(args.faces), str(synth), "--people", str(args.people), "--seed", str(seed), "--detector", "adaptive",
                "--no-person-masks", "--contact", "4", *(["--backdrops", str(args.backdrops)] if args.backdrops else []))
        cli("crop", str(synth), "--out", str(clean_cache))
        planted = plant(synth, planted_dir, seed, strength=args.strength)
        cli("crop", str(planted_dir), "--out", str(planted_cache))
        clean = load_cache(clean_cache)
        photo_quality(clean, threads=args.threads)  # first pass: reads the cache from disk
        t0, c0, load = time.perf_counter(), time.process_time(), os.getloadavg()[0]
        rc = photo_quality(clean, threads=args.threads)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        rp = photo_quality(load_cache(planted_cache), threads=args.threads)
        flagged = rc.defects["image_id"].nunique()
        result["seeds"][seed] = {
            "clean_photos": len(rc.measures), "clean_flagged": int(flagged), "clean_flag_rate": round(flagged / len(rc.measures), 4),
            "clean_kinds": {k: int(v) for k, v in rc.counts().items() if v}, "clean_notes": rc.notes,
            "photos_per_s": round(len(rc.measures) / dt, 1), "cpu_ms_per_photo": round(1000 * cpu / len(rc.measures), 3),
            "load_avg_1m": round(load, 1), "planted_photos": len(rp.measures),
            "per_kind": score(rp.defects, planted), "planted_notes": rp.notes,
            "planted_other_flags": int((~rp.defects["image_id"].isin(planted["image_id"])).sum())}
    seeds = result["seeds"].values()
    result["min_recall"] = min(s["per_kind"][k]["recall"] for s in seeds for k in KINDS)
    result["min_precision"] = min(s["per_kind"][k]["precision"] for s in seeds for k in KINDS)
    result["max_clean_flag_rate"] = max(s["clean_flag_rate"] for s in seeds)
    result["min_photos_per_s"] = min(s["photos_per_s"] for s in seeds)
    result["max_cpu_ms_per_photo"] = max(s["cpu_ms_per_photo"] for s in seeds)
    result["cpu_count"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
