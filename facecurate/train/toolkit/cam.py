"""Grad-CAM maps of a run's models (pytorch-grad-cam's ``GradCAM``): where a model looked to give one head's class.

The model's outputs hold every head (``heads.head_slices``), so a target must pick one: ``HeadTarget(head, k)``
is the log-probability of class ``k`` of that head, computed from the outputs as the trainer does
(``heads.probabilities``: a softmax over the head's slice, CORN's ordered groups for an ordinal age head, the
marginal of the 18 classes for a single-task run). The layer is a timm feature stage (``model.feature_info``):
``auto`` takes the deepest stage whose map is at least ``MIN_CELLS`` cells on its short side at the run's input
size, so a 128 x 96 input is explained at 8 x 6 rather than 4 x 3. Token layers (ViTs) are reshaped to their
patch grid. pytorch-grad-cam is an optional dependency (``pip install 'facecurate[explain]'``).
"""
from __future__ import annotations

import numpy as np
import torch

from ...curate.errors import InputError
from ..augment import Norm, eval_batch
from ..heads import probabilities

MIN_CELLS = 6


class HeadTarget:
    """A Grad-CAM target: the log-probability of class ``k`` of ``head`` in one photo's outputs."""

    def __init__(self, head: str, k: int, task: str, age_loss: str = "ce") -> None:
        self.head, self.k, self.task, self.age_loss = head, int(k), task, age_loss

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        p = probabilities(output.reshape(1, -1), self.task, self.age_loss)[self.head]
        return torch.log(p[0, self.k].clamp_min(1e-8))


def _stages(model: torch.nn.Module) -> list[dict]:
    info = getattr(model, "feature_info", None)
    stages = [dict(i) for i in info] if isinstance(info, (list, tuple)) else []
    return [s for s in stages if s.get("module") and s.get("reduction")]


def pick_layer(model: torch.nn.Module, name: str, size: tuple[int, int]) -> tuple[str, torch.nn.Module]:
    """(name, module) of the layer to explain: ``auto`` (see the module doc) or a module name of the model."""
    stages = _stages(model)
    if name != "auto":
        try:
            return name, model.get_submodule(name)
        except AttributeError:
            known = ", ".join(s["module"] for s in stages) or "see model.named_modules()"
            raise InputError(f"--layer {name!r}: the model has no such module (its feature stages: {known})") from None
    if not stages:
        raise InputError("--layer auto: this model lists no feature stages (timm's feature_info); give --layer NAME")
    fits = [s for s in stages if min(size) / s["reduction"] >= MIN_CELLS]
    chosen = max(fits, key=lambda s: s["reduction"]) if fits else min(stages, key=lambda s: s["reduction"])
    return chosen["module"], model.get_submodule(chosen["module"])


def _token_grid(model: torch.nn.Module):
    """A reshape for token outputs (B x N x C -> B x C x h x w), or None for a model without a patch grid."""
    grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    if grid is None:
        return None
    prefix = int(getattr(model, "num_prefix_tokens", 1))

    def reshape(t: torch.Tensor) -> torch.Tensor:
        if t.ndim != 3:
            return t
        t = t[:, prefix:, :]
        return t.reshape(t.shape[0], int(grid[0]), int(grid[1]), t.shape[2]).permute(0, 3, 1, 2)
    return reshape


def grad_cams(model: torch.nn.Module, layer: torch.nn.Module, images: torch.Tensor, targets: list[HeadTarget],
              size: tuple[int, int], norm: Norm, batch_size: int = 32) -> np.ndarray:
    """N x h x w maps in 0..1 (h x w = ``size``) for uint8 photos N x H x W x 3 and one target each."""
    try:
        from pytorch_grad_cam import GradCAM
    except ImportError:
        raise InputError("explain needs pytorch-grad-cam: pip install 'facecurate[explain]' (see docs/toolkit.md for "
                         "keeping a single OpenCV)") from None
    dev = next(model.parameters()).device
    model.eval()
    out = []
    with GradCAM(model=model, target_layers=[layer], reshape_transform=_token_grid(model)) as cam:
        for s in range(0, len(images), batch_size):
            x = eval_batch(images[s:s + batch_size].to(dev), size, norm=norm)
            out.append(np.asarray(cam(input_tensor=x, targets=targets[s:s + batch_size]), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, *size), np.float32)
