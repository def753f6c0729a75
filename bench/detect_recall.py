#!/usr/bin/env python3
"""Face-detector recall, false positives and speed per detector setting, on real masked-face photos.

View 1, facemask-voc (street photos, Pascal VOC boxes): recall at IoU >= 0.5 per class for annotated
faces with min(w, h) >= --min-size px (default 40), one-to-one greedy matching; false positives per
image = detections matching no annotated face of any size at IoU >= 0.3 (the annotations miss some
faces, so this is an upper bound). View 2, maskedface (CWM/IWM, one face each): each 512x512 photo
centre-cropped to 384 x 512 (the task's portrait shape); share of photos with a face found and ms/photo.
Prints one JSON line; a readable table goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from facecurate.curate.decode import read_rgb  # noqa: E402
from facecurate.curate.detect import (RECALL_THRESHOLDS, Detector, FusedDetector, MediaPipeDetector,  # noqa: E402
                           MTCNNDetector, box_iou, make_detector, make_face)

CLASSES = ("with_mask", "mask_weared_incorrect", "without_mask")


class FacenetNaive(Detector):
    """The anchor's detector: facenet-pytorch's own MTCNN.detect, one photo at a time, default settings."""

    name = "facenet-naive"

    def __init__(self) -> None:
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(keep_all=True, device="cpu")

    def detect(self, images):
        out = []
        for im in images:
            boxes, probs, points = self.mtcnn.detect(im, landmarks=True)
            faces = []
            for b, p, k in zip(boxes if boxes is not None else [], probs if probs is not None else [], points if points is not None else []):
                kp = np.stack([k[0], k[1], k[2], (k[3] + k[4]) / 2])
                faces.append(make_face(b, float(p), kp, "facenet", im.shape[0], im.shape[1], calibrate=False))
            out.append(faces)
        return out


def build(setting: str) -> Detector:
    """Detector for a bench setting name (make_detector names plus a few variants)."""
    variants = {
        "mp-full-tile": lambda: MediaPipeDetector("full", tile=True),
        "mp-short-tile": lambda: MediaPipeDetector("short", tile=True),
        "facenet-naive": FacenetNaive,
        "mtcnn-mf20": lambda: MTCNNDetector(device="cpu", min_face=20),
        "mtcnn-low": lambda: MTCNNDetector(device="cpu", thresholds=RECALL_THRESHOLDS),
        # the same with torchvision's NMS and roi_align (our CPU default avoids their import): side by side
        "mtcnn-low-tv": lambda: MTCNNDetector(device="cpu", thresholds=RECALL_THRESHOLDS, torchvision_ops=True),
        "mtcnn-raw": lambda: MTCNNDetector(device="cpu", calibrate=False),
        "fused-raw": lambda: FusedDetector([MediaPipeDetector("full", calibrate=False),
                                            MediaPipeDetector("short", tile=True, calibrate=False),
                                            MTCNNDetector(device="cpu", thresholds=RECALL_THRESHOLDS, calibrate=False)],
                                           name="fused-raw"),
    }
    if setting in variants:
        return variants[setting]()
    return make_detector(setting, device="cpu")


def read_voc(xml_path: Path) -> list[tuple[str, tuple[float, float, float, float]]]:
    root = ET.parse(xml_path).getroot()
    out = []
    for obj in root.findall("object"):
        b = obj.find("bndbox")
        box = tuple(float(b.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
        out.append((obj.find("name").text.strip(), box))
    return out


def match(gt: np.ndarray, det: np.ndarray, thr: float) -> np.ndarray:
    """Greedy one-to-one matching by IoU; returns for each gt the matched det index or -1."""
    res = np.full(len(gt), -1)
    if len(gt) == 0 or len(det) == 0:
        return res
    iou = box_iou(gt, det)
    pairs = sorted(((iou[i, j], i, j) for i in range(len(gt)) for j in range(len(det)) if iou[i, j] >= thr), reverse=True)
    used_g, used_d = set(), set()
    for _, i, j in pairs:
        if i not in used_g and j not in used_d:
            res[i] = j
            used_g.add(i)
            used_d.add(j)
    return res


def timed_detect(det: Detector, images: list[np.ndarray], batch: int) -> tuple[list, float]:
    out, t = [], 0.0
    for s in range(0, len(images), batch):
        t0 = time.perf_counter()
        out += det.detect(images[s:s + batch])
        t += time.perf_counter() - t0
    return out, t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--settings", default="facenet-naive,mp-short,mp-full,mp-short-tile,mtcnn-raw,mtcnn,mtcnn-low,mediapipe,fused-raw,fused,mtcnn-first,adaptive,auto")
    ap.add_argument("--min-size", type=float, default=40.0, help="annotated faces with min(w,h) >= this count")
    ap.add_argument("--limit", type=int, default=0, help="first N photos of each view (0 = all)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 is fastest on a shared, oversubscribed 2-core machine")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    xmls = sorted((a.data / "facemask-voc" / "annotations").glob("*.xml"))
    if a.limit:
        xmls = xmls[: a.limit]
    voc = []
    for x in xmls:
        objs = read_voc(x)
        voc.append((read_rgb(a.data / "facemask-voc" / "images" / (x.stem + ".jpg")), objs))
    masked = []
    for cls in ("CWM", "IWM"):
        paths = sorted((a.data / "maskedface" / cls).glob("*.jpg"))
        if a.limit:
            paths = paths[: a.limit]
        for p in paths:
            im = read_rgb(p)
            x0 = (im.shape[1] - 384) // 2
            masked.append((cls, np.ascontiguousarray(im[:, x0:x0 + 384])))

    results: dict[str, dict] = {}
    for setting in a.settings.split(","):
        with build(setting) as det:
            det.detect([voc[0][0]])  # warm-up
            det.n_photos = det.n_extra = 0  # AdaptiveDetector's counters (ignored by the others)
            dets, t_voc = timed_detect(det, [im for im, _ in voc], a.batch)
            extra_voc = det.n_extra / len(voc)
            det.n_extra = 0
            mdets, t_m = timed_detect(det, [im for _, im in masked], a.batch)
            extra_m = det.n_extra / len(masked)
        hits = {c: [0, 0] for c in CLASSES}
        fp = n_det = tp = 0
        ratios = []
        for (im, objs), faces in zip(voc, dets):
            gt_all = np.array([b for _, b in objs]).reshape(-1, 4)
            big = [i for i, (_, b) in enumerate(objs) if min(b[2] - b[0], b[3] - b[1]) >= a.min_size]
            db = np.array([f.box for f in faces]).reshape(-1, 4)
            m = match(gt_all[big], db, 0.5)
            for k, i in enumerate(big):
                c = objs[i][0]
                hits[c][1] += 1
                hits[c][0] += int(m[k] >= 0)
                if m[k] >= 0:
                    g, d = gt_all[i], db[m[k]]
                    ratios.append(((d[2] - d[0]) / (g[2] - g[0]), (d[3] - d[1]) / (g[3] - g[1])))
            any_m = match(gt_all, db, 0.3)
            n_det += len(faces)
            fp += len(faces) - int((any_m >= 0).sum())
            tp += int((m >= 0).sum())
        found = {c: [0, 0] for c in ("CWM", "IWM")}
        for (cls, _), faces in zip(masked, mdets):
            found[cls][1] += 1
            found[cls][0] += int(len(faces) > 0)
        masked_hits = hits["with_mask"][0] + hits["mask_weared_incorrect"][0]
        masked_n = hits["with_mask"][1] + hits["mask_weared_incorrect"][1]
        all_hits, all_n = sum(v[0] for v in hits.values()), sum(v[1] for v in hits.values())
        r = np.array(ratios).reshape(-1, 2)
        results[setting] = {
            "name": det.name,
            "recall": {c: round(v[0] / max(v[1], 1), 3) for c, v in hits.items()},
            "recall_masked": round(masked_hits / max(masked_n, 1), 3),
            "recall_all": round(all_hits / max(all_n, 1), 3),
            "fp_per_image": round(fp / len(voc), 3),
            "dets_per_image": round(n_det / len(voc), 3),
            "box_w_h_ratio_vs_gt": [round(float(v), 3) for v in np.median(r, 0)] if len(r) else None,
            "ms_per_photo_voc": round(1000 * t_voc / len(voc), 2),
            "maskedface_found": {c: round(v[0] / max(v[1], 1), 3) for c, v in found.items()},
            "ms_per_photo_384x512": round(1000 * t_m / len(masked), 2),
        }
        if hasattr(det, "quick"):
            results[setting]["share_to_extra"] = {"voc": round(extra_voc, 3), "maskedface": round(extra_m, 3)}
        print(f"{setting:14s} " + json.dumps(results[setting]), file=sys.stderr, flush=True)
    counts = {}
    for _, objs in voc:
        for c, b in objs:
            if min(b[2] - b[0], b[3] - b[1]) >= a.min_size:
                counts[c] = counts.get(c, 0) + 1
    print(json.dumps({"voc_photos": len(voc), "voc_faces_ge_min_size": counts, "min_size_rule": f"min(w,h) >= {a.min_size:g}",
                      "maskedface_photos": len(masked), "threads": a.threads, "batch": a.batch, "settings": results}))


if __name__ == "__main__":
    main()
