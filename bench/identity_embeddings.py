"""dlib 128-d face descriptors of a cache's crops, for the identity benchmark until the `embed` branch lands.

Each cached crop's face box (manifest ``face_*`` mapped into the crop by ``crop_*``) gets dlib's 5-point
landmarks and ``compute_face_descriptor``; rows with an error or an unusable box are NaN. Writes
``embeddings.npy`` (float32 N x 128, manifest order) into the cache folder's sibling ``--out`` and prints one JSON line:

  .venv/bin/python bench/identity_embeddings.py CACHE --out CACHE_embeddings.npy
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd


def dlib_models():
    """The 5-point shape predictor and the ResNet face recogniser, located without importing face_recognition_models."""
    import dlib

    d = importlib.util.find_spec("face_recognition_models").submodule_search_locations[0]
    sp = dlib.shape_predictor(os.path.join(d, "models", "shape_predictor_5_face_landmarks.dat"))
    fr = dlib.face_recognition_model_v1(os.path.join(d, "models", "dlib_face_recognition_resnet_model_v1.dat"))
    return sp, fr


def crop_face_boxes(manifest: pd.DataFrame, height: int, width: int) -> np.ndarray:
    """(N, 4) face boxes in crop pixels: the photo's face box mapped through the crop region onto the cached image."""
    f = manifest[["face_x1", "face_y1", "face_x2", "face_y2"]].to_numpy(float)
    c = manifest[["crop_x1", "crop_y1", "crop_x2", "crop_y2"]].to_numpy(float)
    sx = width / (c[:, 2] - c[:, 0])
    sy = height / (c[:, 3] - c[:, 1])
    return np.stack([(f[:, 0] - c[:, 0]) * sx, (f[:, 1] - c[:, 1]) * sy,
                     (f[:, 2] - c[:, 0]) * sx, (f[:, 3] - c[:, 1]) * sy], axis=1)


def embed_images(images: np.ndarray, boxes: np.ndarray, ok: np.ndarray | None = None, jitter: int = 0) -> np.ndarray:
    """dlib descriptors (N x 128 float32) of RGB uint8 ``images`` at ``boxes`` (crop pixels); NaN where not ``ok``."""
    import dlib

    sp, fr = dlib_models()
    out = np.full((len(images), 128), np.nan, np.float32)
    ok = np.ones(len(images), bool) if ok is None else ok
    for i in range(len(images)):
        b = boxes[i]
        if not ok[i] or not np.all(np.isfinite(b)) or b[2] - b[0] < 8 or b[3] - b[1] < 8:
            continue
        img = np.ascontiguousarray(images[i])
        rect = dlib.rectangle(round(b[0]), round(b[1]), round(b[2]), round(b[3]))
        shape = sp(img, rect)
        out[i] = np.asarray(fr.compute_face_descriptor(img, shape, jitter), np.float32)
    return out


def embed_cache(cache_dir: str | Path) -> np.ndarray:
    """Descriptors of every cached photo, manifest order (NaN for error rows)."""
    from facecurate.curate.cache import load_cache

    c = load_cache(cache_dir)
    m = c.manifest
    h, w = c.images.shape[1:3]
    ok = m["error"].fillna("").astype(str).to_numpy() == "" if "error" in m else np.ones(len(m), bool)
    return embed_images(c.images, crop_face_boxes(m, h, w), ok)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cache")
    ap.add_argument("--out", required=True, help="where to write embeddings.npy")
    a = ap.parse_args()
    t = time.perf_counter()
    e = embed_cache(a.cache)
    np.save(a.out, e)
    print(json.dumps({"photos": len(e), "embedded": int(np.isfinite(e[:, 0]).sum()),
                      "seconds": round(time.perf_counter() - t, 1)}))


if __name__ == "__main__":
    main()
