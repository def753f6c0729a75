"""The offline demo sample: people made from skimage's public-domain astronaut, through the same synthesis."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..progress import Progress
from .params import SynthParams
from .plan import age_in_group
from .sources import FaceSource
from .stage import SynthResult, synthesize_sources


def astronaut_variants(n: int, seed: int = 0, size: int = 240) -> list[np.ndarray]:
    """``n`` different-looking face photos from skimage's astronaut: rotation, flip, scale, crop, colour."""
    from skimage import data

    base = data.astronaut()
    rng = np.random.default_rng([seed, 7])
    out = []
    for _ in range(n):
        img = base[:, ::-1] if rng.random() < 0.5 else base
        cx = 220.0 if img is base else 511 - 220.0
        cy = 118.0
        side = rng.uniform(230, 330)
        angle = rng.uniform(-12, 12)
        m = cv2.getRotationMatrix2D((cx, cy), angle, size / side)
        m[:, 2] += np.array([size / 2, size / 2]) - np.array([cx, cy]) + rng.uniform(-0.06, 0.06, 2) * size
        crop = cv2.warpAffine(np.ascontiguousarray(img), m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8)) % 180
        hsv[..., 1] *= rng.uniform(0.6, 1.25)
        hsv[..., 2] *= rng.uniform(0.75, 1.15)
        crop = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
        crop = 255.0 * (crop / 255.0) ** rng.uniform(0.8, 1.25)
        if rng.random() < 0.1:
            crop = np.repeat(crop.mean(2, keepdims=True), 3, axis=2)
        out.append(np.clip(crop, 0, 255).astype(np.uint8))
    return out


def build_demo_sample(out: str | Path, people: int = 40, seed: int = 0, eval_layout: bool = False,
                      inject: str | Mapping[str, float] | None = None, detector="mtcnn",
                      device: str | None = None, progress: Progress | None = None) -> SynthResult:
    """A small offline sample in the competition layout from skimage's astronaut, ages and genders over all groups.

    Each person is a different variant of the one public-domain photo; their assigned gender and age
    cycle through the 6 gender x age-group cells. Same synthesis as ``synth`` (keypoints detected),
    without the duplicate check: variants of one photo can be near-identical by construction, and
    the demo keeps each as its own person.
    """
    if people < 1:
        raise InputError(f"people must be at least 1, got {people}")
    rng = np.random.default_rng([seed, 8])
    faces = astronaut_variants(people + people // 4 + 2, seed)  # spares stand in for any variant without keypoints
    sources = []
    for i, img in enumerate(faces):
        gender, grp = i % 2, (i // 2) % 3
        age = age_in_group(grp, rng)
        sources.append(FaceSource(f"astronaut-{seed}-{i:04d}", f"astronaut-{seed}-{i:04d}", age, gender, "Other", image=img))
    params = SynthParams(people=people, seed=seed, balance=("age", "gender"), inject=inject, eval_layout=eval_layout,
                         dedup=False, detector=detector, device=device)
    return synthesize_sources(sources, out, params, progress=progress)
