"""Per-photo quality measures computed in batches straight from the cache's uint8 crops and its manifest.

Nothing is decoded again: every measure reads the cached crop (``images.npy``, memory-mapped) and the
crop's own columns (face box, crop region, photo ``width``/``height``, detector ``score``). The face
box in cache pixels is ``(face - crop origin) x resize scale``; only the part of the crop that came
from the photo is measured (the padding beyond the photo's edge is left out).
"""
from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import pandas as pd

#: One column per measure, in the order quality.csv writes them (see docs/inspect.md#photo-quality).
MEASURE_COLUMNS = ["brightness", "bright_p5", "bright_p99", "contrast", "sharpness", "edges", "entropy", "saturation",
                   "face_px", "face_cache_px", "photo_w", "photo_h", "photo_side", "aspect", "score"]
#: PIL's ImageFilter.FIND_EDGES kernel, which CleanVision's blurry check reads on a 64-px thumbnail.
FIND_EDGES = np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], np.float32)
EDGES_SIDE = 64          # CleanVision's MAX_RESOLUTION_FOR_BLURRY_DETECTION


def _levels(hist: np.ndarray, n: float, q: float) -> float:
    """The grey level (0..1) at quantile ``q`` of a 256-bin histogram holding ``n`` pixels."""
    return float(np.searchsorted(np.cumsum(hist), q * n, side="left")) / 255.0


def crop_geometry(manifest: pd.DataFrame, image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(face boxes, photo areas) in cache pixels, n x 4 each, from the crop columns; NaN rows where there is no crop."""
    h, w = image_hw
    if not {"crop_x1", "face_x1"} <= set(manifest.columns):  # a cache written whole (save_cache) without crop columns
        return np.full((len(manifest), 4), np.nan), np.tile(np.array([0.0, 0.0, w, h]), (len(manifest), 1))
    crop = manifest[["crop_x1", "crop_y1", "crop_x2", "crop_y2"]].to_numpy(np.float64)
    face = manifest[["face_x1", "face_y1", "face_x2", "face_y2"]].to_numpy(np.float64)
    crop_r = np.round(crop)  # geometry.cut rounds the region before resizing it
    sx = w / np.maximum(crop_r[:, 2] - crop_r[:, 0], 1.0)
    sy = h / np.maximum(crop_r[:, 3] - crop_r[:, 1], 1.0)
    scale = np.stack([sx, sy, sx, sy], axis=1)
    origin = np.stack([crop_r[:, 0], crop_r[:, 1], crop_r[:, 0], crop_r[:, 1]], axis=1)
    photo = np.zeros_like(crop)
    photo[:, 2] = manifest["width"].to_numpy(np.float64) if "width" in manifest else np.inf
    photo[:, 3] = manifest["height"].to_numpy(np.float64) if "height" in manifest else np.inf
    return (face - origin) * scale, (photo - origin) * scale


def _std(a: np.ndarray) -> float:
    """Standard deviation of a 2-D array (OpenCV's, several times numpy's speed on small patches)."""
    return float(cv2.meanStdDev(np.ascontiguousarray(a))[1][0, 0])


def _clip(box: np.ndarray, h: int, w: int) -> tuple[int, int, int, int] | None:
    """An integer (x1, y1, x2, y2) inside an h x w image, or None when empty or NaN."""
    if not np.all(np.isfinite(box[:2])):
        return None
    x1, y1 = int(max(0, np.floor(box[0]))), int(max(0, np.floor(box[1])))
    x2 = int(min(w, np.ceil(box[2]))) if np.isfinite(box[2]) else w
    y2 = int(min(h, np.ceil(box[3]))) if np.isfinite(box[3]) else h
    return (x1, y1, x2, y2) if x2 - x1 >= 4 and y2 - y1 >= 4 else None


def image_measures(image: np.ndarray, photo: np.ndarray) -> tuple[float, ...]:
    """brightness, p5, p99, contrast, sharpness, edges, entropy, saturation of one cached crop (H x W x 3 uint8).

    ``photo`` is the photo's area in cache pixels: the padding beyond it is not measured. Brightness is Rec.601 luma (OpenCV's grey); sharpness is mean |Laplacian| over mean |gradient|
    (Sobel, scaled so a sharp step reads about 1): an edge's second derivative over its first falls as the
    edge widens, whatever the contrast or how many edges the scene holds, so darker or plainer photos do
    not read as blurred; edges is CleanVision's blurriness (std of PIL's FIND_EDGES on a 64-px thumbnail);
    saturation is sum(max - min) / sum(max) over the channels (0 for a grey photo).
    """
    h, w = image.shape[:2]
    area = _clip(photo, h, w) or (0, 0, w, h)
    x1, y1, x2, y2 = area
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    g = gray[y1:y2, x1:x2]
    n = float(g.size)
    hist = cv2.calcHist([np.ascontiguousarray(g)], [0], None, [256], [0, 256]).ravel()
    levels = np.arange(256, dtype=np.float64)
    mean = float(hist @ levels / n)
    contrast = float(np.sqrt(max(hist @ (levels - mean) ** 2 / n, 0.0))) / 255.0
    p = hist[hist > 0] / n
    entropy = float(-(p * np.log2(p)).sum())
    r, gr, b = cv2.split(np.ascontiguousarray(image[y1:y2, x1:x2]))
    mx, mn = cv2.max(cv2.max(r, gr), b), cv2.min(cv2.min(r, gr), b)
    saturation = cv2.sumElems(cv2.subtract(mx, mn))[0] / max(cv2.sumElems(mx)[0], 1.0)
    side = max(g.shape)
    thumb = cv2.resize(g, (max(1, round(g.shape[1] * EDGES_SIDE / side)), max(1, round(g.shape[0] * EDGES_SIDE / side))),
                       interpolation=cv2.INTER_AREA) if side > EDGES_SIDE else g
    edges = _std(np.clip(cv2.filter2D(thumb.astype(np.float32), -1, FIND_EDGES, borderType=cv2.BORDER_REPLICATE), 0, 255))
    gf = g.astype(np.float32)
    lap = cv2.Laplacian(gf, cv2.CV_32F, ksize=1)[1:-1, 1:-1]
    grad = (np.abs(cv2.Sobel(gf, cv2.CV_32F, 1, 0, ksize=3)) + np.abs(cv2.Sobel(gf, cv2.CV_32F, 0, 1, ksize=3)))[1:-1, 1:-1]
    spread = cv2.sumElems(grad)[0]
    sharp = 8.0 * cv2.sumElems(np.abs(lap))[0] / spread if spread > 0 else np.nan
    return (mean / 255.0, _levels(hist, n, 0.05), _levels(hist, n, 0.99), contrast, sharp, edges, entropy, saturation)


def face_width(manifest: pd.DataFrame) -> np.ndarray:
    """The face's width in original-photo pixels: the detected box, or the one the person's other photos rejected
    (still the face the detector saw); NaN when no face was detected (a fallback box says nothing of its size)."""
    if "face_x1" not in manifest:
        return np.full(len(manifest), np.nan)
    width = (manifest["face_x2"] - manifest["face_x1"]).to_numpy(np.float64)
    source = manifest["box_source"].astype(str).to_numpy() if "box_source" in manifest else np.full(len(manifest), "detected")
    out = np.where(source == "detected", width, np.nan)
    if "rejected_x1" in manifest:
        rejected = (manifest["rejected_x2"] - manifest["rejected_x1"]).to_numpy(np.float64)
        out = np.where(np.isfinite(rejected), rejected, out)
    return out


def iter_batches(n: int, batch: int) -> Iterator[slice]:
    """Consecutive slices of ``batch`` rows covering 0..n."""
    for s in range(0, n, batch):
        yield slice(s, min(n, s + batch))


def measure_rows(images: np.ndarray, manifest: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """The measures (``MEASURE_COLUMNS``) of cache rows ``rows``: one pass over their crops, in row order."""
    m = manifest.iloc[rows]
    face, photo = crop_geometry(m, images.shape[1:3])
    data = np.full((len(rows), 8), np.nan)
    for j, r in enumerate(rows):  # contiguous batches of a memory-mapped array: read once, no copy kept
        data[j] = image_measures(np.asarray(images[r]), photo[j])
    out = pd.DataFrame(data, columns=MEASURE_COLUMNS[:8], index=m.index)
    w = m["width"].to_numpy(np.float64) if "width" in m else np.full(len(m), np.nan)
    h = m["height"].to_numpy(np.float64) if "height" in m else np.full(len(m), np.nan)
    out["face_px"] = face_width(m)
    out["face_cache_px"] = face[:, 2] - face[:, 0]
    out["photo_w"], out["photo_h"] = w, h
    out["photo_side"] = np.sqrt(w * h)
    out["aspect"] = np.where(h > 0, w / np.where(h > 0, h, 1), np.nan)
    out["score"] = m["score"].to_numpy(np.float64) if "score" in m else np.nan
    return out[MEASURE_COLUMNS]
