"""Batch augmentations on uint8 image tensors, the same code on CUDA and on the CPU.

Flip, random resized crop and small rotation are one affine warp per photo (``grid_sample``);
colour jitter works on the float batch; mixup / cutmix mix whole batches (off by default).
Normalisation uses the model's own mean/std (``timm.data.resolve_model_data_config``; ImageNet's by default).

Why not albumentations or torchvision.transforms: both work photo by photo on the CPU; these draw one
set of matrices per batch and apply them with ``grid_sample`` on CUDA or OpenCV's uint8 kernels on
the CPU, so the two devices give the same augmentation and the GPU path never leaves the GPU.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from .config import AugmentParams  # noqa: F401  (what the augmentation does: an option record, kept with TrainConfig)

Norm = tuple[tuple[float, float, float], tuple[float, float, float]]  # (mean, std) per channel, 0..1 scale
IMAGENET: Norm = (tuple(IMAGENET_DEFAULT_MEAN), tuple(IMAGENET_DEFAULT_STD))


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float N x 3 x H x W in 0..1."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def normalize(x: torch.Tensor, norm: Norm = IMAGENET) -> torch.Tensor:
    """Mean/std normalisation of a float 0..1 batch (``norm`` = (mean, std), the model's data config)."""
    mean = torch.tensor(norm[0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(norm[1], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def eval_batch(images: torch.Tensor, size: tuple[int, int], flip: bool = False, norm: Norm = IMAGENET) -> torch.Tensor:
    """uint8 N x H x W x 3 -> normalised float N x 3 x h x w, resized to ``size`` and optionally mirrored."""
    if tuple(images.shape[1:3]) == tuple(size):
        x = normalize_uint8(images, norm)
        return x.flip(-1) if flip else x
    x = F.interpolate(to_float(images), size=size, mode="bilinear", align_corners=False, antialias=True)
    if flip:
        x = x.flip(-1)
    return normalize(x, norm)


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


def color_params(n: int, p: AugmentParams, g: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-photo colour jitter as a linear map: (A: n x 3 x 3, k: n) with x' = A x + k * mean(x).

    Brightness b, contrast c (around the photo's mean) and saturation s (around its grey) compose to
    A = c * b * (s I + (1 - s) 1 w^T) and k = (1 - c) * b, w the luma weights; the result is clamped.
    """
    b = _uniform(n, 1 - p.brightness, 1 + p.brightness, g, device) if p.brightness else torch.ones(n, device=device)
    c = _uniform(n, 1 - p.contrast, 1 + p.contrast, g, device) if p.contrast else torch.ones(n, device=device)
    s = _uniform(n, 1 - p.saturation, 1 + p.saturation, g, device) if p.saturation else torch.ones(n, device=device)
    w = torch.tensor([0.299, 0.587, 0.114], device=device)
    eye = torch.eye(3, device=device)
    sat = s.view(n, 1, 1) * eye + (1 - s).view(n, 1, 1) * w.view(1, 1, 3).expand(n, 3, 3)
    return (c * b).view(n, 1, 1) * sat, (1 - c) * b


def color_jitter(x: torch.Tensor, p: AugmentParams, g: torch.Generator) -> torch.Tensor:
    """Per-photo brightness, contrast and saturation changes on a float 0..1 batch N x 3 x H x W."""
    a, k = color_params(x.shape[0], p, g, x.device)
    mean = x.mean(dim=(1, 2, 3))
    y = torch.einsum("nij,njhw->nihw", a, x) + (k * mean).view(-1, 1, 1, 1)
    return y.clamp_(0, 1)


def pixel_matrix(theta: np.ndarray, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """A normalised output->input affine (``affine_grid``, align_corners=False) as OpenCV's pixel map dst -> src."""
    (H, W), (h, w) = in_hw, out_hw
    m = np.empty((2, 3), np.float64)
    for r, (size_in, t) in enumerate(((W, theta[0]), (H, theta[1]))):
        m[r, 0] = size_in * t[0] / w
        m[r, 1] = size_in * t[1] / h
        m[r, 2] = size_in / 2 * (t[0] * (1 / w - 1) + t[1] * (1 / h - 1) + t[2] + 1) - 0.5
    return m


def _warp_cpu(images: np.ndarray, theta: np.ndarray, a: np.ndarray, k: np.ndarray, size: tuple[int, int],
              norm: Norm = IMAGENET) -> np.ndarray:
    """OpenCV uint8 kernels for the same warp and colour map as the torch path (bilinear, reflected border, clamped),
    then the mean/std normalisation, photo by photo in threads: float32 N x H x W x 3."""
    import cv2

    h, w = size
    out = np.empty((len(images), h, w, 3), np.float32)
    mean, std = norm
    affine = np.concatenate([np.diag([1 / (255 * s) for s in std]), np.array([[-m / s] for m, s in zip(mean, std)])], axis=1)

    def one(i: int) -> None:
        m = pixel_matrix(theta[i], images.shape[1:3], size)
        warped = cv2.warpAffine(images[i], m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REFLECT)
        mean = float(np.mean(cv2.mean(warped)[:3]))
        cm = np.concatenate([a[i], np.full((3, 1), k[i] * mean)], axis=1)
        coloured = cv2.transform(warped, cm)  # uint8: clamped like the torch path
        # normalisation as one more 3 x 4 map, converting to float32 on the way
        out[i] = cv2.transform(coloured.astype(np.float32), affine)

    list(_pool().map(one, range(len(images))))
    return out


_POOL = None


def _pool():
    """Threads for the CPU warp (OpenCV releases the GIL): one per core."""
    global _POOL
    if _POOL is None:
        import os
        from concurrent.futures import ThreadPoolExecutor
        _POOL = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="augment")
    return _POOL


def normalize_uint8(images: torch.Tensor, norm: Norm = IMAGENET) -> torch.Tensor:
    """uint8 N x H x W x 3 -> normalised float N x 3 x H x W (channels_last memory) in one scale-and-shift."""
    mean, std = norm
    scale = torch.tensor([1 / (255 * s) for s in std], device=images.device).view(1, 3, 1, 1)
    shift = torch.tensor([m / s for m, s in zip(mean, std)], device=images.device).view(1, 3, 1, 1)
    return images.permute(0, 3, 1, 2).float().mul_(scale).sub_(shift)


def train_batch(images: torch.Tensor, size: tuple[int, int], p: AugmentParams, g: torch.Generator,
                backend: str = "auto", norm: Norm = IMAGENET) -> torch.Tensor:
    """uint8 N x H x W x 3 -> augmented, normalised float N x 3 x h x w (``g`` lives on the images' device).

    One affine warp per photo (random resized crop, rotation, flip) and one colour map per photo, drawn
    by the same code on every device; CUDA runs them as ``grid_sample`` + einsum, the CPU as OpenCV's
    uint8 kernels on the same matrices (several times faster there than fp32 ``grid_sample``).
    ``backend``: auto, torch or opencv (CPU tensors only).
    """
    if not p.enabled:
        return eval_batch(images, size, norm=norm)
    n, dev = images.shape[0], images.device
    theta = affine_params(n, p, g, dev, aspect=images.shape[2] / images.shape[1])
    a, k = color_params(n, p, g, dev)
    if backend == "opencv" or (backend == "auto" and dev.type == "cpu"):
        warped = _warp_cpu(images.numpy(), theta.numpy(), a.numpy(), k.numpy(), tuple(size), norm)
        return torch.from_numpy(warped).permute(0, 3, 1, 2)  # channels_last memory, N x 3 x h x w
    x = to_float(images)
    grid = F.affine_grid(theta, [n, 3, *size], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    mean = x.mean(dim=(1, 2, 3))
    x = torch.einsum("nij,njhw->nihw", a, x) + (k * mean).view(-1, 1, 1, 1)
    return normalize(x.clamp_(0, 1), norm)


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

