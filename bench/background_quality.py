#!/usr/bin/env python3
"""Background removal against the truth: foreground IoU, face pixels kept, backdrop removed, speed, per method.

The photos: people synthesized from ../shared/data/utkface by ``synth``, half of them over street photos
(../shared/data/facemask-voc/images: other people, masked faces), half over painted walls; synth writes
each photo's true person mask (hair, head, face, neck, torso, the drawn mask). They are cropped once
without removal (default settings); then each method computes its alpha on every crop, and the true
mask is cut from the photo with the same region. Per method, over photos:

- ``iou``: foreground IoU of alpha >= 0.5 against the true mask (mean, 5th percentile, minimum);
- ``face_kept``: share of the face box's pixels (synth's true face box, in the crop) left unchanged
  (alpha >= 0.99): the minimum over photos is the goal (>= 99.5% on every photo), and photos below 99.5%;
  ``face_kept_in_person``: the same over the box's pixels that the true mask says are the person (the
  box's corners can be backdrop: the strict reading of "the face is never erased");
- ``backdrop_removed``: share of the true background's pixels with alpha < 0.5 (mean, minimum);
- ``ms_per_photo``: the remover's time per crop (segmentation, face protection, composite), on top of the crop.

Methods: ``mediapipe-raw`` / ``mediapipe-general-raw`` (the segmenter alone: what `crop` did before the
face was protected), ``mediapipe`` / ``mediapipe-general`` (protected: ``segment_cleanup.protect_face``) and
``rembg`` when its model file is in U2NET_HOME. With ``--learn``, also the out-of-fold macro F1 of the
quick 5-fold (``train.quick_oof``) with and without removal. Prints one JSON line.

  .venv/bin/python bench/background_quality.py --people 40
  .venv/bin/python bench/background_quality.py --people 300 --learn
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def _stats(v: np.ndarray) -> dict:
    v = np.asarray(v, float)
    return {"mean": round(float(v.mean()), 4), "p5": round(float(np.percentile(v, 5)), 4), "min": round(float(v.min()), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=40)
    ap.add_argument("--backdrop-share", type=float, default=0.5, help="share of people over street photos")
    ap.add_argument("--work", type=Path, default=None, help="keep the sample and caches here (reused)")
    ap.add_argument("--learn", action="store_true", help="also train the quick 5-fold with and without removal")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--methods", default=None, help="comma-separated subset of the methods (default: all available)")
    ap.add_argument("--cleanup-sizes", "--person-mask", dest="person_mask", default="", metavar="NAME=V,...",
                    help="override segment_cleanup's sizes for this run (e.g. BOX_PAD=0,BOX_PAD_BELOW=0.1): one point of the "
                         "face-kept / IoU trade-off")
    a = ap.parse_args()

    from facecurate.curate.crop import CropParams, crop_dataset, segment_cleanup
    from facecurate.curate.crop.background import composite, find_rembg_model, make_remover
    from facecurate.curate.crop.geometry import cut
    from facecurate.curate.crop.segment_cleanup import crop_box
    from facecurate.curate.errors import InputError
    from facecurate.curate.synth import synthesize
    from facecurate.curate.synth.person_mask import read_person_mask

    try:
        overrides = {k.strip(): float(v) for k, v in (kv.split("=") for kv in a.person_mask.split(",") if kv.strip())}
    except ValueError:
        sys.exit(f"--cleanup-sizes {a.person_mask!r}: expected NAME=NUMBER,... (e.g. BOX_PAD=0,BOX_PAD_BELOW=0.1)")
    for name, value in overrides.items():
        if not hasattr(segment_cleanup, name):
            sys.exit(f"--cleanup-sizes: segment_cleanup has no size {name!r}")
        setattr(segment_cleanup, name, value)
    work = a.work or Path(tempfile.mkdtemp(prefix="background_quality_"))
    sample = work / "sample"
    if not (sample / "truth.csv").is_file():
        synthesize(DATA / "utkface", sample, people=a.people, seed=3, balance="age,gender",
                   backdrops=DATA / "facemask-voc" / "images", backdrop_share=a.backdrop_share)
    truth = pd.read_csv(sample / "truth.csv").set_index("image_id")
    plain = crop_dataset(sample, work / "cache_none", CropParams()).cache
    m = plain.manifest
    out_hw = tuple(plain.images.shape[1:3])
    methods = ["mediapipe-raw", "mediapipe", "mediapipe-general-raw", "mediapipe-general"]
    try:
        find_rembg_model()
        methods.append("rembg")
    except InputError:
        pass
    if a.methods:
        methods = [x for x in methods if x in a.methods.split(",")]
    street = truth["backdrop"].fillna("").astype(str).ne("") if "backdrop" in truth else pd.Series(False, index=truth.index)
    results: dict = {}
    for method in methods:
        base = method.removesuffix("-raw")
        remover = make_remover(base, "black")
        iou, kept, kept_in, removed, secs = [], [], [], [], 0.0
        for i, r in enumerate(m.itertuples()):
            if r.error:
                continue
            crop = np.asarray(plain.images[i])
            region = (r.crop_x1, r.crop_y1, r.crop_x2, r.crop_y2)
            face = crop_box((r.face_x1, r.face_y1, r.face_x2, r.face_y2), region, out_hw)
            t0 = time.perf_counter()
            alpha = remover.mask(crop) if method.endswith("-raw") else remover.alpha(crop, face)
            composite(crop, alpha, "black")  # what apply() costs: the alpha, then the blend
            secs += time.perf_counter() - t0
            true = read_person_mask(sample, r.image_id).astype(np.uint8) * 255
            true = cut(np.repeat(true[..., None], 3, axis=2), region, out_hw, "black")[..., 0] >= 128
            fg = alpha >= 0.5
            iou.append((fg & true).sum() / max((fg | true).sum(), 1))
            t = truth.loc[r.image_id]
            tb = crop_box((t.face_x1, t.face_y1, t.face_x2, t.face_y2), region, out_hw)
            x1, y1 = max(int(np.floor(tb[0])), 0), max(int(np.floor(tb[1])), 0)
            x2, y2 = min(int(np.ceil(tb[2])), out_hw[1]), min(int(np.ceil(tb[3])), out_hw[0])
            box, inside = alpha[y1:y2, x1:x2] >= 0.99, true[y1:y2, x1:x2]
            kept.append(float(box.mean()) if box.size else 1.0)
            kept_in.append(float(box[inside].mean()) if inside.any() else 1.0)
            removed.append(float((alpha[~true] < 0.5).mean()) if (~true).any() else 1.0)
        remover.close()
        iou, kept, kept_in, removed = map(np.array, (iou, kept, kept_in, removed))
        results[method] = {"photos": len(iou), "iou": _stats(iou), "face_kept": _stats(kept),
                           "face_kept_in_person": _stats(kept_in),
                           "photos_face_kept_below_99_5": int((kept < 0.995).sum()),
                           "backdrop_removed": _stats(removed), "ms_per_photo": round(1000 * secs / max(len(iou), 1), 2)}
        on_street = street.reindex(m.loc[m["error"] == "", "image_id"]).to_numpy()
        if on_street.any():
            results[method]["iou_street"] = round(float(iou[on_street].mean()), 4)
            results[method]["iou_painted"] = round(float(iou[~on_street].mean()), 4)
    out = {"bench": "background_quality", "people": a.people, "photos": int(len(m)), "crop": list(out_hw),
           "street_share": a.backdrop_share, "person_mask": overrides, "methods": results, "cpu_cores": os.cpu_count(),
           "goals": {"face_kept_min": 0.995, "iou_mean": 0.90, "backdrop_removed_mean": 0.90, "ms_per_photo": 5.0}}
    if a.learn:
        from facecurate.train import quick_oof

        learn = {}
        for method in ("none", "mediapipe"):
            cache = plain if method == "none" else crop_dataset(sample, work / f"cache_{method}", CropParams(background=method)).cache
            t0 = time.perf_counter()
            oof = quick_oof(cache, work / f"run_{method}", epochs=a.epochs, threads=a.threads)
            summary = json.loads((oof.parent / "summary.json").read_text())
            learn[method] = {k: round(summary[k], 4) for k in ("oof_f1", "oof_f1_mask", "oof_f1_gender", "oof_f1_age")}
            learn[method]["train_s"] = round(time.perf_counter() - t0, 1)
        out["learn"] = learn
    print(json.dumps(out))


if __name__ == "__main__":
    main()
