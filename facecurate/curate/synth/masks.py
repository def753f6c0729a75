"""Draw a face mask onto a photo from the face's own keypoints (eyes, nose tip, mouth centre).

Geometry lives in a face frame: x in eye distances across (eyes at x = -0.5 / +0.5), y in eye-to-mouth
distances down (eyes at y = 0, mouth at y = 1). A mask is a smoothed polygon in that frame, worn
correctly (bridge of the nose to under the chin), under the nose (nose tip exposed) or on the chin
(mouth exposed), shaded with the photo's own lighting and one of five colours / patterns.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace

import cv2
import numpy as np

WEARS = ("correct", "nose", "chin")  # worn correctly; nose exposed; pulled down on the chin


@dataclass(frozen=True)
class MaskStyle:
    """How a mask looks: outline ``shape`` (surgical | cloth | kf94), colours and surface ``pattern``."""

    name: str
    shape: str
    colour: tuple[int, int, int]
    pattern: str  # pleats | plain | seam | dots | gingham
    accent: tuple[int, int, int] = (255, 255, 255)
    loop: tuple[int, int, int] = (235, 235, 235)
    grain: float = 4.0  # fabric noise, grey levels


# mask1..mask5 of the competition layout: five different masks, as a person would own.
MASK_STYLES: tuple[MaskStyle, ...] = (
    MaskStyle("mask1", "surgical", (122, 176, 214), "pleats", accent=(236, 242, 246), loop=(240, 240, 240), grain=2.5),
    MaskStyle("mask2", "cloth", (34, 34, 38), "plain", accent=(20, 20, 22), loop=(30, 30, 32), grain=5.0),
    MaskStyle("mask3", "kf94", (236, 236, 232), "seam", accent=(200, 200, 196), loop=(245, 245, 245), grain=2.0),
    MaskStyle("mask4", "cloth", (32, 52, 98), "dots", accent=(238, 236, 228), loop=(28, 40, 80), grain=4.0),
    MaskStyle("mask5", "cloth", (190, 48, 52), "gingham", accent=(245, 240, 236), loop=(200, 200, 200), grain=3.0),
)


@dataclass(frozen=True)
class FaceFrame:
    """Face frame from keypoints: origin at the eye centre, ``ex`` one eye distance across, ``ey`` eyes-to-mouth down."""

    origin: np.ndarray
    ex: np.ndarray
    ey: np.ndarray

    @property
    def eye_dist(self) -> float:
        return float(np.linalg.norm(self.ex))

    @property
    def matrix(self) -> np.ndarray:
        return np.stack([self.ex, self.ey], axis=1)  # columns ex, ey

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Face-frame points (N, 2) -> image pixels (N, 2)."""
        return self.origin + np.asarray(xy, np.float64) @ self.matrix.T

    def to_face(self, pts: np.ndarray) -> np.ndarray:
        """Image pixels (N, 2) -> face-frame points (N, 2)."""
        return (np.asarray(pts, np.float64) - self.origin) @ np.linalg.inv(self.matrix).T


def face_frame(keypoints: np.ndarray) -> FaceFrame:
    """The face frame of keypoints (4, 2): left eye, right eye (as seen in the image), nose tip, mouth centre."""
    kp = np.asarray(keypoints, np.float64).reshape(4, 2)
    le, re, _, mouth = kp
    origin = (le + re) / 2
    ex = re - le
    d = float(np.linalg.norm(ex))
    if not np.isfinite(d) or d < 2:
        raise ValueError(f"eyes too close or invalid ({d:.1f} px apart)")
    down = np.array([-ex[1], ex[0]]) / d  # ex rotated by +90 degrees: points down for an upright face
    h = float((mouth - origin) @ down)
    h = float(np.clip(h, 0.6 * d, 1.8 * d))  # guard against a mouth point on the eye line
    return FaceFrame(origin, ex, down * h)


def _chaikin(points: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Corner-cutting smoothing of a closed polygon: a rounded outline through the control points."""
    p = np.asarray(points, np.float64)
    for _ in range(iterations):
        q = np.roll(p, -1, axis=0)
        p = np.stack([0.75 * p + 0.25 * q, 0.25 * p + 0.75 * q], axis=1).reshape(-1, 2)
    return p


# Outline control points per shape in a unit box: u across (-1 left .. 1 right), v down (0 top .. 1 bottom),
# from the top centre clockwise over the right half; the left half mirrors it. v stays in 0..1, so the
# geometry's ``top`` and ``bottom`` bound the mask (smoothing only cuts corners inwards).
_SHAPES: dict[str, list[tuple[float, float]]] = {
    "surgical": [(0.0, 0.0), (0.45, 0.04), (0.9, 0.12), (1.0, 0.2), (1.0, 0.55), (0.93, 0.78), (0.6, 0.94), (0.0, 1.0)],
    "cloth": [(0.0, 0.0), (0.4, 0.07), (0.8, 0.17), (1.0, 0.32), (0.98, 0.6), (0.82, 0.82), (0.45, 0.96), (0.0, 1.0)],
    "kf94": [(0.0, 0.0), (0.12, 0.06), (0.55, 0.14), (0.95, 0.24), (1.0, 0.52), (0.8, 0.77), (0.2, 0.97), (0.0, 1.0)],
}
_SMOOTH = {"surgical": 2, "cloth": 3, "kf94": 2}


@dataclass(frozen=True)
class MaskGeometry:
    """Where a mask sits in the face frame: centre ``top``/``bottom`` y, half ``width`` in eye distances, centre shift."""

    top: float
    bottom: float
    width: float
    shift_top: float  # x of the mask's centre line at its top (follows the nose when the head turns)
    shift_bottom: float


def face_point(frame: FaceFrame, keypoints: np.ndarray, index: int) -> np.ndarray:
    """Keypoint ``index`` (2 nose, 3 mouth) in face-frame coordinates."""
    return frame.to_face(np.asarray(keypoints, np.float64).reshape(4, 2)[index:index + 1])[0]


def mask_geometry(keypoints: np.ndarray, wear: str = "correct", rng: np.random.Generator | None = None) -> MaskGeometry:
    """Place a mask for ``wear`` (correct | nose | chin) from the keypoints, with small random jitter when ``rng`` is given."""
    if wear not in WEARS:
        raise ValueError(f"wear must be one of {WEARS}, got {wear!r}")
    frame = face_frame(keypoints)
    nx, ny = face_point(frame, keypoints, 2)
    mx, _ = face_point(frame, keypoints, 3)
    ny = float(np.clip(ny, 0.3, 0.85))
    j = (lambda s: float(rng.uniform(-s, s))) if rng is not None else (lambda s: 0.0)
    if wear == "correct":  # over the bridge of the nose, well above the tip, to under the chin
        top = min(0.3, ny - 0.25) + j(0.04)
        bottom, width = 1.9 + j(0.06), 1.0 + j(0.04)
    elif wear == "nose":  # top edge on the upper lip, between nose tip and mouth: nose exposed, mouth covered
        top = ny + (1.0 - ny) * (0.5 + j(0.08))
        bottom, width = 1.9 + j(0.06), 1.0 + j(0.04)
    else:  # pulled down on the chin: mouth and nose exposed
        top = 1.28 + j(0.04)
        bottom, width = 2.15 + j(0.06), 0.86 + j(0.04)
    shift_top = float(np.clip(nx if wear != "chin" else mx, -0.35, 0.35))
    return MaskGeometry(top, bottom, width, shift_top, float(np.clip(mx, -0.35, 0.35)))


def _unit_to_face(uv: np.ndarray, g: MaskGeometry) -> np.ndarray:
    """Shape coordinates (u across, v down) -> face frame; the centre line bends to follow nose and mouth."""
    u, v = uv[:, 0], uv[:, 1]
    y = g.top + v * (g.bottom - g.top)
    shift = g.shift_top + (g.shift_bottom - g.shift_top) * np.clip(v, 0, 1)
    x = u * g.width + shift * (1 - np.abs(u))  # edges stay at the cheeks, the centre follows the face
    return np.stack([x, y], axis=1)


def mask_outline(keypoints: np.ndarray, wear: str = "correct", shape: str = "cloth",
                 rng: np.random.Generator | None = None, geometry: MaskGeometry | None = None) -> np.ndarray:
    """The mask's outline in image pixels (N, 2 float64): a rounded polygon from the face's keypoints."""
    g = geometry or mask_geometry(keypoints, wear, rng)
    half = np.array(_SHAPES[shape], np.float64)
    if rng is not None:  # small shape jitter; the top and bottom centre stay put, nothing rises above the top
        half[1:-1] += rng.uniform(-0.025, 0.025, (len(half) - 2, 2))
        half[1:-1, 1] = np.clip(half[1:-1, 1], 0.02, 0.98)
    right = half
    left = half[-2:0:-1] * np.array([-1.0, 1.0])  # mirror, skipping the two centre points
    uv = np.concatenate([right, left], axis=0)
    poly = _chaikin(uv, _SMOOTH[shape])
    return face_frame(keypoints).to_image(_unit_to_face(poly, g))


def _channels(a: np.ndarray) -> np.ndarray:
    """H x W -> H x W x 3 (numpy multiplies an (H, W, 1) array into (H, W, 3) about 10x slower than this)."""
    return cv2.merge((a, a, a))


def _rasterise(poly: np.ndarray, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """Anti-aliased coverage (float32 0..1) of a polygon inside the box (x0, y0, w, h)."""
    canvas = np.zeros((h, w), np.uint8)
    pts = np.round((poly - [x0, y0]) * 16).astype(np.int32)  # 4 fractional bits
    cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_AA, shift=4)
    return canvas.astype(np.float32) / 255.0


def jitter_style(style: MaskStyle, rng: np.random.Generator, amount: float = 0.06) -> MaskStyle:
    """The same mask in a slightly different dye: hue, saturation and value moved by up to ``amount``."""
    def move(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
        h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
        h = (h + rng.uniform(-amount, amount) * 0.5) % 1.0
        s = float(np.clip(s * (1 + rng.uniform(-2 * amount, 2 * amount)), 0, 1))
        v = float(np.clip(v * (1 + rng.uniform(-amount, amount)), 0, 1))
        return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h, s, v))  # type: ignore[return-value]
    return replace(style, colour=move(style.colour), accent=move(style.accent))


def _surface(style: MaskStyle, fx: np.ndarray, fy: np.ndarray, g: MaskGeometry, d: float,
             rng: np.random.Generator) -> np.ndarray:
    """Base colour and pattern (H, W, 3 float32 0..255) at face-frame coordinates ``fx``, ``fy``."""
    base = np.array(style.colour, np.float32)
    accent = np.array(style.accent, np.float32)
    rgb = cv2.merge([np.full(fx.shape, c, np.float32) for c in base])
    v = (fy - g.top) / max(g.bottom - g.top, 1e-6)
    centre = g.shift_top + (g.shift_bottom - g.shift_top) * np.clip(v, 0, 1)
    if style.pattern == "pleats":  # three folds across, each shaded top to bottom, with a crease line
        z = np.clip((v - 0.2) / 0.6, 0, 1) * 3
        frac = z - np.floor(z)
        inside = (v > 0.2) & (v < 0.8)
        shade = np.where(inside, 1.04 - 0.13 * frac, 1.0)
        crease = inside & (frac > 0.93)
        shade = np.where(crease, 0.8, shade)
        rgb *= _channels(shade.astype(np.float32))
    elif style.pattern in ("seam", "plain"):  # a stitched centre seam
        seam = np.abs(fx - centre) * d < max(0.8, 0.012 * d)
        rgb[seam] *= 0.82 if style.pattern == "seam" else 0.7
    elif style.pattern == "dots":
        k = 4.5  # dots per eye distance
        off = rng.uniform(0, 1, 2)
        gx, gy = fx * k + off[0], fy * k * 0.9 + off[1]
        row = np.floor(gy)
        gx = gx + 0.5 * (row % 2)
        dist = np.hypot(gx - np.floor(gx) - 0.5, gy - row - 0.5)
        a = _channels(np.clip((0.22 - dist) * d / k * 1.2, 0, 1).astype(np.float32))
        rgb = rgb * (1 - a) + cv2.multiply(a, (*(float(c) for c in accent), 0.0))
    elif style.pattern == "gingham":
        k = 3.2
        off = rng.uniform(0, 1, 2)
        bx = ((fx * k + off[0]) % 1.0) < 0.5
        by = ((fy * k * 0.9 + off[1]) % 1.0) < 0.5
        w = (bx.astype(np.float32) + by.astype(np.float32)) / 2  # 0 base, 0.5 mixed, 1 accent
        a = _channels((w * 0.85).astype(np.float32))
        rgb = rgb * (1 - a) + cv2.multiply(a, (*(float(c) for c in accent), 0.0))
    return rgb


def draw_mask(image: np.ndarray, keypoints: np.ndarray, style: MaskStyle, wear: str = "correct",
              rng: np.random.Generator | None = None, loops: bool = True,
              cover: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``style`` worn as ``wear`` onto a copy of ``image`` (RGB uint8) from ``keypoints`` (4, 2).

    Returns (new image, mask body alpha float32 H x W in 0..1). The photo's own light falls on the
    mask (its blurred luminance modulates the shading), the surface curves away at the cheeks, and
    ear loops run towards the ears. ``rng`` jitters position, outline and pattern phase. ``cover``
    (H x W float32, optional) gets the body and the loops added: where the mask covers what was there.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be H x W x 3 uint8, got {img.shape} {img.dtype}")
    H, W = img.shape[:2]
    out = img.copy()
    alpha_full = np.zeros((H, W), np.float32)
    frame = face_frame(keypoints)
    d = frame.eye_dist
    g = mask_geometry(keypoints, wear, rng)
    poly = mask_outline(keypoints, wear, style.shape, rng, geometry=g)
    x0, y0 = np.floor(poly.min(0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if cx1 - cx0 < 2 or cy1 - cy0 < 2:
        return out, alpha_full
    bw, bh = cx1 - cx0, cy1 - cy0
    alpha = _rasterise(poly, cx0, cy0, bw, bh)
    ys, xs = np.mgrid[cy0:cy1, cx0:cx1].astype(np.float64)
    f = frame.to_face(np.stack([xs.ravel(), ys.ravel()], 1)).reshape(bh, bw, 2)
    fx, fy = f[..., 0].astype(np.float32), f[..., 1].astype(np.float32)
    rgb = _surface(style, fx, fy, g, d, rng)

    # shading: the surface turns away at the cheeks and under the chin; the photo's light falls on it
    u = (fx - g.shift_top) / g.width
    v = (fy - g.top) / max(g.bottom - g.top, 1e-6)
    shade = 1.0 - 0.28 * np.clip(np.abs(u), 0, 1) ** 3 - 0.16 * np.clip((v - 0.7) / 0.3, 0, 1) ** 2
    shade += 0.05 * np.clip(1 - np.abs(u) * 2, 0, 1) * np.clip(1 - np.abs(v - 0.45) * 3, 0, 1)  # sheen on the nose
    region = img[cy0:cy1, cx0:cx1].astype(np.float32)
    lum = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY)  # 0.299 R + 0.587 G + 0.114 B
    sigma = max(1.0, 0.35 * d)
    if sigma > 8 and min(bw, bh) >= 16:  # a wide blur of a smooth field: at a quarter of the size, 10x cheaper
        small = cv2.resize(lum, (bw // 4, bh // 4), interpolation=cv2.INTER_AREA)
        lum = cv2.resize(cv2.GaussianBlur(small, (0, 0), sigma / 4), (bw, bh), interpolation=cv2.INTER_LINEAR)
    else:
        lum = cv2.GaussianBlur(lum, (0, 0), sigma)
    ref = float(np.median(lum[alpha > 0.5])) if (alpha > 0.5).any() else float(lum.mean())
    light = np.clip(lum / max(ref, 1.0), 0.55, 1.35) ** 0.5
    rgb *= _channels((shade * light).astype(np.float32))
    # edge: a thin darker rim gives the cloth some thickness; surgical masks have a bound edge
    inside = (alpha > 0.5).astype(np.uint8)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    if style.shape == "surgical":
        band = (dist > 0) & (dist < max(1.5, 0.07 * d)) & ((v < 0.25) | (v > 0.8))
        rgb[band] = rgb[band] * 0.55 + np.array(style.accent, np.float32) * 0.45 * shade[band][:, None]
    rim = (dist > 0) & (dist < max(1.0, 0.025 * d))
    rgb[rim] *= 0.78
    rgb += rng.standard_normal(rgb.shape, dtype=np.float32) * np.float32(style.grain)
    a = _channels(alpha)
    out[cy0:cy1, cx0:cx1] = np.clip(region + (rgb - region) * a, 0, 255).astype(np.uint8)
    alpha_full[cy0:cy1, cx0:cx1] = alpha
    if loops:
        _draw_loops(out, frame, g, style, d, rng, cover)
    if cover is not None:
        region = cover[cy0:cy1, cx0:cx1]
        region += alpha * (1 - region)
    return out, alpha_full


def _draw_loops(out: np.ndarray, frame: FaceFrame, g: MaskGeometry, style: MaskStyle, d: float,
                rng: np.random.Generator, cover: np.ndarray | None = None) -> None:
    """Ear loops: from the mask's side corners towards the ears, a little beyond the cheeks (also into ``cover``)."""
    thick = max(1, int(round(0.03 * d)))
    colour = tuple(int(c) for c in style.loop)
    curves = []
    for side in (-1.0, 1.0):
        ear = np.array([[side * (g.width + 0.18 + rng.uniform(0, 0.05)), 0.35 + rng.uniform(-0.05, 0.05)]])
        ear_px = frame.to_image(ear)[0]
        for v in (0.16, 0.8):
            start = frame.to_image(_unit_to_face(np.array([[side * 0.99, v]]), g))[0]
            mid = (start + ear_px) / 2 + (ear_px - start)[::-1] * np.array([1, -1]) * 0.08 * side
            curves.append(np.stack([start, mid, ear_px]))
    for c in curves:
        cv2.polylines(out, [np.round(c * 16).astype(np.int32)], False, colour, thick, lineType=cv2.LINE_AA, shift=4)
    if cover is not None:  # the loops' coverage, drawn in their bounding box only
        pts = np.concatenate(curves)
        h, w = cover.shape
        x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int) - thick - 2, 0)
        x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + thick + 3, [w, h])
        if x1 > x0 and y1 > y0:
            lines = np.zeros((y1 - y0, x1 - x0), np.uint8)
            for c in curves:
                cv2.polylines(lines, [np.round((c - [x0, y0]) * 16).astype(np.int32)], False, 255, thick,
                              lineType=cv2.LINE_AA, shift=4)
            region = cover[y0:y1, x0:x1]
            np.maximum(region, lines.astype(np.float32) / 255, out=region)
