"""A person's body behind the head: long hair, neck, shirt and neckline, drawn once per face as a layer.

The body is painted (anti-aliased polygons, shaded) onto a transparent layer the size of the photo
plus a margin, premultiplied RGB + alpha, at the person's resting pose; each photo then places that
layer under its chin, moved by whole pixels (``paste_body``): one blend per photo instead of
repainting five polygons, which were the largest share of a photo's drawing time (a bilinear warp
of the layer with the head's scale and roll cost as much again as the blend, for a difference the
eye does not see: the head turning on its neck). The alpha is also the body's share of the true
person mask.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .look import Look

MARGIN = 48  # layer pixels beyond each side of the photo: the placed layer never shows its edge


def channels(a: np.ndarray) -> np.ndarray:
    """An H x W array as H x W x 3: numpy multiplies (H, W, 1) into (H, W, 3) slowly (an inner loop of 3), this is 10x
    faster."""
    return cv2.merge((a, a, a))


def add_cover(cover: np.ndarray | None, y0: int, x0: int, a: np.ndarray) -> None:
    """Over-composite coverage ``a`` (h x w float32) into ``cover`` at (y0, x0): c = c + a (1 - c)."""
    if cover is not None:
        region = cover[y0:y0 + a.shape[0], x0:x0 + a.shape[1]]
        region += a * (1 - region)


def fill(canvas: np.ndarray, poly: np.ndarray, colour: np.ndarray, shade=None, cover: np.ndarray | None = None) -> None:
    """Anti-aliased fill of a polygon on a float canvas, in the polygon's bounding box only.

    ``shade(xs, ys)`` (optional) gives a per-pixel brightness factor from photo coordinates; the
    polygon's coverage is added to ``cover`` (H x W float32) when given.
    """
    h, w = canvas.shape[:2]
    x0, y0 = np.maximum(np.floor(poly.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(poly.max(0)).astype(int) + 2, [w, h])
    if x1 <= x0 or y1 <= y0:
        return
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(m, [np.round((poly - [x0, y0]) * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    a = m.astype(np.float32) / 255
    weight = a
    if shade is not None:  # evaluated on a row and a column of coordinates, broadcast to the box
        xs = np.arange(x0, x1, dtype=np.float32)[None, :]
        ys = np.arange(y0, y1, dtype=np.float32)[:, None]
        weight = a * np.broadcast_to(np.asarray(shade(xs, ys), np.float32), a.shape)
    region = canvas[y0:y1, x0:x1]
    region *= channels(1 - a)
    region += cv2.multiply(channels(weight), (*(float(c) for c in colour), 0.0))
    add_cover(cover, y0, x0, a)


def torso(canvas: np.ndarray, cx: float, chin_y: float, d: float, look: Look, skin: np.ndarray,
           cover: np.ndarray | None = None) -> None:
    """Shoulders and chest in the shirt colour, a neck in the skin colour, a neckline."""
    h, w = canvas.shape[:2]
    shoulder_y = chin_y + 0.75 * d
    half = 2.1 * d
    right = np.array([
        (0.45 * d, shoulder_y - 0.15 * d), (1.2 * d, shoulder_y), (1.75 * d, shoulder_y + 0.2 * d),
        (half, shoulder_y + 0.8 * d), (half + 0.25 * d, h + 40.0),
    ])
    poly = np.concatenate([right, (right * [-1, 1])[::-1]]) + [cx, 0]
    neck = np.array([(cx - 0.55 * d, chin_y - 0.9 * d), (cx + 0.55 * d, chin_y - 0.9 * d),
                     (cx + 0.62 * d, shoulder_y + 0.1 * d), (cx - 0.62 * d, shoulder_y + 0.1 * d)])
    fill(canvas, neck, skin * 0.92, lambda xs, ys: 1.0 - 0.3 * np.clip(1 - (ys - chin_y) / (0.5 * d), 0, 1),  # shadow under the chin
          cover=cover)
    fill(canvas, poly, np.array(look.shirt, np.float32),
          lambda xs, ys: 1.0 - 0.25 * np.clip(np.abs(xs - cx) / (half * 1.2), 0, 1) ** 2 - 0.1 * np.clip((ys - shoulder_y) / h, 0, 1),
          cover=cover)
    if look.neckline == "v":
        fill(canvas, np.array([(cx - 0.5 * d, shoulder_y - 0.12 * d), (cx + 0.5 * d, shoulder_y - 0.12 * d),
                                (cx, shoulder_y + 0.9 * d)]), skin * 0.9)
    elif look.neckline == "round":
        t = np.linspace(0, np.pi, 24)
        fill(canvas, np.stack([cx + 0.55 * d * np.cos(t), shoulder_y - 0.15 * d + 0.45 * d * np.sin(t)], 1), skin * 0.9)
    else:  # a shirt collar: two pale triangles either side of the neck
        col = np.clip(np.array(look.shirt, np.float32) * 1.25 + 25, 0, 255)
        for s in (-1, 1):
            fill(canvas, np.array([(cx + s * 0.15 * d, shoulder_y + 0.25 * d), (cx + s * 0.62 * d, shoulder_y - 0.2 * d),
                                    (cx + s * 0.8 * d, shoulder_y + 0.25 * d)]), col)


@dataclass(frozen=True)
class BodyLayer:
    """A body painted at rest (float32, photo size + ``MARGIN`` on each side), the box holding its pixels (layer
    coordinates), and the resting chin (photo pixels), eye distance and eye-line angle."""

    rgb: np.ndarray  # premultiplied colour, H' x W' x 3
    inv: np.ndarray  # 1 - alpha, H' x W' x 3
    alpha: np.ndarray  # H' x W'
    box: tuple[int, int, int, int]
    chin: np.ndarray
    d: float
    angle: float


def body_layer(height: int, width: int, look: Look, eyes: np.ndarray, chin: np.ndarray, d: float, angle: float,
               skin: np.ndarray) -> BodyLayer:
    """Paint long hair (``look.long_hair``), neck, shirt and neckline for a head whose eye centre and chin are at
    ``eyes`` and ``chin`` (photo pixels), ``d`` eye distance apart, eye line at ``angle`` degrees."""
    m = MARGIN
    rgb = np.zeros((height + 2 * m, width + 2 * m, 3), np.float32)
    alpha = np.zeros(rgb.shape[:2], np.float32)
    cx, cy = float(eyes[0]) + m, float(eyes[1]) + m
    chin_m = np.asarray(chin, np.float64) + m
    if look.long_hair:  # hair falling behind the neck to the shoulders
        fill(rgb, np.array([(cx - 1.25 * d, cy), (cx + 1.25 * d, cy), (cx + 1.35 * d, chin_m[1] + 1.1 * d),
                            (cx - 1.35 * d, chin_m[1] + 1.1 * d)]), np.array(look.hair, np.float32) * 0.9, cover=alpha)
    torso(rgb, float(chin_m[0]), float(chin_m[1]), d, look, skin, alpha)
    ys, xs = np.nonzero(alpha > 0)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else (0, 0, 0, 0)
    return BodyLayer(rgb, channels(1 - alpha), alpha, box, np.asarray(chin, np.float64), float(d), float(angle))


def paste_body(canvas: np.ndarray, cover: np.ndarray, body: BodyLayer, chin: np.ndarray) -> None:
    """Place ``body`` under a head whose chin is at ``chin`` (moved by whole pixels: the head's small turns and
    size changes move it on the neck, as a head moves on a body): over-composite it onto ``canvas`` (float32
    RGB) and add its alpha to ``cover``, inside its box only."""
    h, w = canvas.shape[:2]
    dx, dy = (int(v) for v in np.round(np.asarray(chin, np.float64) - body.chin))
    bx0, by0, bx1, by1 = body.box
    x0, y0 = max(bx0 - MARGIN + dx, 0), max(by0 - MARGIN + dy, 0)
    x1, y1 = min(bx1 - MARGIN + dx, w), min(by1 - MARGIN + dy, h)
    if x1 <= x0 or y1 <= y0:
        return
    ly, lx = slice(y0 + MARGIN - dy, y1 + MARGIN - dy), slice(x0 + MARGIN - dx, x1 + MARGIN - dx)
    region = canvas[y0:y1, x0:x1]
    region *= body.inv[ly, lx]
    region += body.rgb[ly, lx]
    add_cover(cover, y0, x0, body.alpha[ly, lx])
