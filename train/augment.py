"""Batch augmentations on uint8 image tensors, the same code on CUDA and on the CPU.

Flip, random resized crop and small rotation are one affine warp per photo (``grid_sample``);
colour jitter works on the float batch; mixup / cutmix mix whole batches (off by default).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@dataclass
class AugmentParams:
    """What the training augmentation does; ``enabled=False`` leaves only resize + normalise."""

    enabled: bool = True
    hflip: float = 0.5
    scale: tuple[float, float] = (0.75, 1.0)    # area of the crop, fraction of the photo
    ratio: tuple[float, float] = (0.9, 1.1)     # crop aspect change, relative to the photo's
    rotate: float = 10.0                        # degrees, uniform in +-rotate
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    mixup: float = 0.0                          # Beta(alpha, alpha); 0 = off
    cutmix: float = 0.0                         # Beta(alpha, alpha); 0 = off


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float N x 3 x H x W in 0..1."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of a float 0..1 batch."""
    mean = torch.tensor(MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def eval_batch(images: torch.Tensor, size: tuple[int, int], flip: bool = False) -> torch.Tensor:
    """uint8 N x H x W x 3 -> normalised float N x 3 x h x w, resized to ``size`` and optionally mirrored."""
    x = to_float(images)
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    if flip:
        x = x.flip(-1)
    return normalize(x)


def affine_params(n: int, p: AugmentParams, g: torch.Generator, device, aspect: float = 1.0) -> torch.Tensor:
    """N x 2 x 3 affine matrices (output -> input, normalised coordinates): crop scale/aspect/offset, rotation, flip.

    ``aspect`` is the photo's width / height, so a rotation stays a rotation in pixels.
    """
    area = _uniform(n, p.scale[0], p.scale[1], g, device)
    log_r = _uniform(n, math.log(p.ratio[0]), math.log(p.ratio[1]), g, device)
    r = torch.exp(log_r)
    sx = torch.sqrt(area * r).clamp(max=1.0)  # half-widths in normalised coords, relative to the photo
    sy = torch.sqrt(area / r).clamp(max=1.0)
    tx = (_uniform(n, -1, 1, g, device)) * (1 - sx)
    ty = (_uniform(n, -1, 1, g, device)) * (1 - sy)
    ang = _uniform(n, -p.rotate, p.rotate, g, device) * math.pi / 180
    flip = torch.where(torch.rand(n, generator=g, device=device) < p.hflip, -1.0, 1.0)
    cos, sin = torch.cos(ang), torch.sin(ang)
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0] = sx * cos * flip
    theta[:, 0, 1] = -sin * sy / aspect
    theta[:, 1, 0] = sin * sx * flip * aspect
    theta[:, 1, 1] = cos * sy
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    return theta


def color_jitter(x: torch.Tensor, p: AugmentParams, g: torch.Generator) -> torch.Tensor:
    """Per-photo brightness, contrast and saturation changes on a float 0..1 batch."""
    n, dev = x.shape[0], x.device
    if p.brightness:
        x = x * _uniform(n, 1 - p.brightness, 1 + p.brightness, g, dev).view(n, 1, 1, 1)
    if p.contrast:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        c = _uniform(n, 1 - p.contrast, 1 + p.contrast, g, dev).view(n, 1, 1, 1)
        x = (x - mean) * c + mean
    if p.saturation:
        gray = (x * torch.tensor([0.299, 0.587, 0.114], device=dev).view(1, 3, 1, 1)).sum(1, keepdim=True)
        s = _uniform(n, 1 - p.saturation, 1 + p.saturation, g, dev).view(n, 1, 1, 1)
        x = (x - gray) * s + gray
    return x.clamp_(0, 1)


def train_batch(images: torch.Tensor, size: tuple[int, int], p: AugmentParams, g: torch.Generator) -> torch.Tensor:
    """uint8 N x H x W x 3 -> augmented, normalised float N x 3 x h x w (``g`` lives on the images' device)."""
    if not p.enabled:
        return eval_batch(images, size)
    x = to_float(images)
    theta = affine_params(x.shape[0], p, g, x.device, aspect=x.shape[-1] / x.shape[-2])
    grid = F.affine_grid(theta, [x.shape[0], 3, *size], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return normalize(color_jitter(x, p, g))


def mix_batch(x: torch.Tensor, p: AugmentParams, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """Mixup or cutmix (each chosen with equal odds when both are on): (mixed x, partner order, lambda of x's own labels)."""
    modes = [m for m, a in (("mixup", p.mixup), ("cutmix", p.cutmix)) if a > 0]
    if not modes or x.shape[0] < 2:
        return x, None, 1.0
    mode = modes[int(torch.randint(len(modes), (1,), generator=g, device=g.device).item())]
    alpha = p.mixup if mode == "mixup" else p.cutmix
    rng = np.random.default_rng(int(torch.randint(2**31 - 1, (1,), generator=g, device=g.device).item()))
    lam = float(rng.beta(alpha, alpha))
    order = torch.randperm(x.shape[0], generator=g, device=g.device).to(x.device)
    if mode == "mixup":
        return x * lam + x[order] * (1 - lam), order, lam
    h, w = x.shape[-2:]
    ch, cw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y1, y2 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x1, x2 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    x = x.clone()
    x[:, :, y1:y2, x1:x2] = x[order][:, :, y1:y2, x1:x2]
    return x, order, 1.0 - (y2 - y1) * (x2 - x1) / (h * w)

