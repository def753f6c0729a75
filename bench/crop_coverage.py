#!/usr/bin/env python3
"""Share of photos whose final crop holds the whole face: with and without the person's consensus and fallback.

The photos: a competition-layout sample rendered by ``curate.synth`` from ../shared/data/utkface with
masks drawn on, people composited over ``--backdrops`` street photos (../shared/data/facemask-voc/images:
other people and masked faces behind the subject); its ``truth.csv`` gives each photo's face box (where
the face was pasted). For each detector in ``--detectors`` and each setting (consensus + fallback,
fallback only, neither), `crop` runs on the sample and a crop counts as covering when its region
(``crop_x1..crop_y2``) contains the true face box (clipped to the photo), and the face box grown by
``--grow`` of its size on every side (hair, chin, mask edges). Misses are listed with their source.

  .venv/bin/python bench/crop_coverage.py --people 300 --backdrops ../shared/data/facemask-voc/images
  .venv/bin/python bench/crop_coverage.py --people 300 --crowd     # the crowded set (2,100 photos), misses by cause
Synth faces are easy to detect, so the fallback is also measured on simulated misses: the detections
of a random ``--miss`` share of the masked photos are dropped from the first run's manifest and
their boxes recomputed by the same code `crop` uses (``assign_boxes`` + ``crop_region``).
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def coverage(manifest: pd.DataFrame, truth: pd.DataFrame, grow: float = 0.0) -> pd.Series:
    """Per photo: does the crop region contain the true face box (grown by ``grow`` of its size, clipped to the photo)?"""
    t = truth.set_index("image_id").loc[manifest["image_id"]]
    box = t[["face_x1", "face_y1", "face_x2", "face_y2"]].to_numpy(float)
    w, h = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
    box = box + np.stack([-grow * w, -grow * h, grow * w, grow * h], axis=1)
    size = manifest[["width", "height"]].to_numpy(float)
    box = np.clip(box, 0, np.concatenate([size, size], axis=1))
    crop = manifest[["crop_x1", "crop_y1", "crop_x2", "crop_y2"]].to_numpy(float)
    ok = (crop[:, 0] <= box[:, 0] + 1) & (crop[:, 1] <= box[:, 1] + 1) & (crop[:, 2] >= box[:, 2] - 1) & (crop[:, 3] >= box[:, 3] - 1)
    return pd.Series(ok & (manifest["error"] == "").to_numpy(), index=manifest.index)


def overshoot(manifest: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """Per photo: how many pixels the true face box (clipped to the photo) sticks out of the crop region, worst side.

    A miss of a few pixels is the truth box's own margin (synth's pasted chip, ear loops) more often than a lost face:
    the misses list this next to the box width so a reader can tell the two apart.
    """
    t = truth.set_index("image_id").loc[manifest["image_id"]]
    box = t[["face_x1", "face_y1", "face_x2", "face_y2"]].to_numpy(float)
    size = manifest[["width", "height"]].to_numpy(float)
    box = np.clip(box, 0, np.concatenate([size, size], axis=1))
    crop = manifest[["crop_x1", "crop_y1", "crop_x2", "crop_y2"]].to_numpy(float)
    out = np.stack([crop[:, 0] - box[:, 0], crop[:, 1] - box[:, 1], box[:, 2] - crop[:, 2], box[:, 3] - crop[:, 3]], axis=1)
    return np.maximum(out.max(axis=1), 0.0)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two k x 4 box arrays."""
    x1, y1 = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
    x2, y2 = np.minimum(a[:, 2], b[:, 2]), np.minimum(a[:, 3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def on_bystander(manifest: pd.DataFrame, truth: pd.DataFrame, bystanders: pd.DataFrame | None) -> np.ndarray:
    """Per photo: was the chosen face box a bystander's (it overlaps a bystander's face more than the subject's)?"""
    flag = np.zeros(len(manifest), bool)
    if bystanders is None or not len(bystanders):
        return flag
    face = manifest[["face_x1", "face_y1", "face_x2", "face_y2"]].to_numpy(float)
    t = truth.set_index("image_id").loc[manifest["image_id"], ["face_x1", "face_y1", "face_x2", "face_y2"]].to_numpy(float)
    own = _iou(face, t)
    pos = pd.Series(np.arange(len(manifest)), index=manifest["image_id"].to_numpy())
    b = bystanders[bystanders["image_id"].isin(pos.index)]
    rows = pos.loc[b["image_id"]].to_numpy()
    other = _iou(face[rows], b[["bx1", "by1", "bx2", "by2"]].to_numpy(float))
    hit = (other > 0.3) & (other > own[rows])
    flag[rows[hit]] = True
    return flag


def miss_causes(manifest: pd.DataFrame, truth: pd.DataFrame, covered: np.ndarray, bystander: np.ndarray) -> dict:
    """Why each photo whose crop misses the subject's face missed: the crop is on a bystander, the person box, the
    prior, the subject's own box cut short by a few pixels (``edge``: at most a tenth of the face), or other."""
    src = manifest["box_source"].to_numpy()
    px = overshoot(manifest, truth)
    bw = truth.set_index("image_id").loc[manifest["image_id"]].eval("face_x2 - face_x1").to_numpy()
    miss = ~covered
    cause = np.where(bystander, "bystander", np.where(src == "person", "person_box", np.where(
        src == "prior", "prior", np.where(px <= 0.1 * np.maximum(bw, 1), "edge", "other"))))
    return {c: int((miss & (cause == c)).sum()) for c in ("bystander", "person_box", "prior", "edge", "other")}


def simulate_misses(manifest: pd.DataFrame, truth: pd.DataFrame, params, miss: float, grow: float, seed: int = 0) -> dict:
    """Drop the detections of a random ``miss`` share of masked photos, refill them with and without the person step."""
    from facecurate.curate.crop.fallback import assign_boxes
    from facecurate.curate.crop.geometry import crop_region

    m = manifest.reset_index(drop=True)
    masked = (truth.set_index("image_id").loc[m["image_id"], "mask"] != 2).to_numpy()
    rng = np.random.default_rng(seed)
    cand = np.flatnonzero(masked & (m["box_source"] == "detected").to_numpy())
    drop = rng.choice(cand, size=int(round(miss * len(cand))), replace=False)
    boxes = m[["face_x1", "face_y1", "face_x2", "face_y2"]].to_numpy(float).copy()
    boxes[(m["box_source"] != "detected").to_numpy()] = np.nan
    boxes[drop] = np.nan
    sizes = m[["width", "height"]].to_numpy(float)
    res = {"miss": miss, "dropped": int(len(drop))}
    for person in (True, False):
        filled, src = assign_boxes(boxes, sizes, m["person"].astype(str).tolist(), (m["error"] == "").to_numpy(), use_person=person)
        sim = m.copy()
        regions = np.array([crop_region(b, w, h, params.margins, params.aspect, params.edge) for b, (w, h) in zip(filled, sizes)])
        sim[["crop_x1", "crop_y1", "crop_x2", "crop_y2"]] = regions
        face, grown = coverage(sim, truth), coverage(sim, truth, grow)
        res["person" if person else "no_person"] = {
            "face_covered": round(float(face.mean()), 4), "face_grown_covered": round(float(grown.mean()), 4),
            "dropped_face_covered": round(float(face.iloc[drop].mean()), 4),
            "dropped_grown_covered": round(float(grown.iloc[drop].mean()), 4),
            "sources": {s: int((src == s).sum()) for s in ("detected", "person", "prior")}}
    return res


def spread_of(values) -> dict:
    """min / median / max of ``values``, rounded."""
    v = np.asarray(values, dtype=float)
    return {"min": round(float(v.min()), 3), "median": round(float(np.median(v)), 3), "max": round(float(v.max()), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=40, help="people in the built sample (7 photos each)")
    ap.add_argument("--sample", type=Path, default=None, help="an existing synth output (train layout + truth.csv) to use instead")
    ap.add_argument("--detectors", default="auto", help="detectors to compare, comma separated")
    ap.add_argument("--grow", type=float, default=0.2, help="margin around the face box for the second criterion")
    ap.add_argument("--miss", type=float, default=0.3, help="share of masked photos whose detection is dropped in the simulation")
    ap.add_argument("--backdrops", type=Path, default=None, help="photos to use as backdrops when building the sample")
    ap.add_argument("--work", type=Path, default=None, help="keep the sample and caches here")
    ap.add_argument("--crowd", action="store_true",
                    help="build the crowded sample instead (bystanders 0.5-1x the subject behind each person, blurred, "
                         "masked or not, static for 60%% of the people; UTKFace-large faces over facemask-voc streets)")
    ap.add_argument("--settings", default="consensus,fallback_only,neither", help="which settings to run, comma separated")
    a = ap.parse_args()

    from crop_speed import build_crowded_sample, build_sample
    from facecurate.curate.crop import CropParams, crop_dataset

    out: dict = {"bench": "crop_coverage", "grow": a.grow, "runs": []}
    with tempfile.TemporaryDirectory(prefix="crop_coverage_") as tmp:
        tmp = a.work or Path(tmp)
        sample = a.sample or tmp / "sample"
        if a.crowd and a.sample is None:
            build_crowded_sample(sample, a.people)
        elif not (sample / "truth.csv").is_file():
            build_sample(sample, a.people, seed=2, backdrops=a.backdrops)
        truth = pd.read_csv(sample / "truth.csv")
        bystanders = pd.read_csv(sample / "bystanders.csv") if (sample / "bystanders.csv").is_file() else None
        if bystanders is not None:
            out["crowd"] = {"bystanders": len(bystanders), "per_photo": round(len(bystanders) / len(truth), 2),
                            "scale": spread_of(bystanders["scale"]), "masked": round(float(bystanders["masked"].mean()), 3),
                            "static_people": round(float(bystanders.groupby("person")["static"].first().mean()), 3),
                            "hidden_by_subject": spread_of(bystanders["hidden"])}
        street = truth["backdrop"].fillna("").astype(str).ne("").mean() if "backdrop" in truth else 0.0
        out["backdrops"] = f"street photos for {street:.0%} of the photos" if street else "painted"
        settings = {"consensus": dict(person_consensus=True, person_fallback=True),
                    "fallback_only": dict(person_consensus=False, person_fallback=True),
                    "neither": dict(person_consensus=False, person_fallback=False)}
        settings = {k: v for k, v in settings.items() if k in a.settings.split(",")}
        for det in a.detectors.split(","):
            for name, kw in settings.items():
                t0 = time.perf_counter()
                result = crop_dataset(sample, tmp / f"{det}_{name}", CropParams(detector=det, **kw))
                cache = result.cache
                m = cache.manifest
                face, grown = coverage(m, truth), coverage(m, truth, a.grow)
                by_src = {s: {"photos": int((m["box_source"] == s).sum()),
                              "face_covered": round(float(face[m["box_source"] == s].mean()), 4) if (m["box_source"] == s).any() else None}
                          for s in ("detected", "person", "prior")}
                masked = (truth.set_index("image_id").loc[m["image_id"], "mask"] != 2).to_numpy()
                missed = ~face.to_numpy()
                box_w = truth.set_index("image_id").loc[m["image_id"]].eval("face_x2 - face_x1").to_numpy()
                misses = [{"image_id": r.image_id, "source": r.box_source, "out_px": round(float(px), 1),
                           "out_of_box_width": round(float(px / max(bw, 1.0)), 3)}
                          for r, px, bw in zip(m[missed].itertuples(), overshoot(m, truth)[missed], box_w[missed])]
                bys = on_bystander(m, truth, bystanders)
                out["runs"].append({
                    "miss_causes": miss_causes(m, truth, face.to_numpy(), bys), "on_bystander": int(bys.sum()),
                    "close_calls": int((m["margin"].to_numpy(float) < 1.0).sum()) if "margin" in m else None,
                    "detector": det, "resolved": cache.meta["detector"], "setting": name, "photos": len(m),
                    "face_covered": round(float(face.mean()), 4), "face_grown_covered": round(float(grown.mean()), 4),
                    "masked_face_covered": round(float(face[masked].mean()), 4),
                    "not_covered": int((~face).sum()), "by_source": by_src, "rejected": result.rejected,
                    "off_person": result.off_person, "second_look": cache.meta["counts"].get("second_look"),
                    "misses": misses[:20],
                    "seconds": round(time.perf_counter() - t0, 1),
                })
            first = crop_dataset(sample, tmp / f"{a.detectors.split(',')[0]}_consensus", CropParams(detector=a.detectors.split(",")[0])).cache
            out["simulated_misses"] = simulate_misses(first.manifest, truth, CropParams.from_dict(first.meta["params"]), a.miss, a.grow)
        out["photos"] = len(truth)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
