"""MTCNN's networks and the two box operators it needs without torchvision or facenet's package: torch and OpenCV.

Why our own: on the CPU, ``crop`` needs MTCNN only for the few photos its quick look leaves in doubt, and importing
torchvision (its ``ops`` pull in ``torch._dynamo``) and facenet-pytorch's package (its ``__init__`` imports
torchvision and its other models) cost ~2 s of CPU here, as much as the photos' second look itself, in the middle of
pass 1 (BENCHMARKS.md, "Crowded backdrops: the second look without torchvision"). The networks are facenet-pytorch's
PNet / RNet / ONet, rebuilt from a layer table whose names match its weight files, which are read from the installed
package (``facenet_pytorch/data``) without importing it. ``roi_align`` (torch's ``grid_sample``) and ``batched_nms``
(OpenCV's ``NMSBoxes``) give torchvision's results
(``tests/test_mtcnn_ops.py`` compares them); on CUDA the detector uses torchvision's own kernels (``ops_for``).
"""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

#: Per network: its trunk (``("conv", n, in, out, k)`` and ``("dense", n, in, out)``, each followed by PReLU ``n``;
#: ``("pool", k, stride)``, max-pooling with ceil mode) and its heads (name, outputs, softmax?), in facenet's
#: output order. Names and shapes are those of facenet-pytorch's ``pnet.pt`` / ``rnet.pt`` / ``onet.pt``.
NETS: dict[str, tuple[list[tuple], list[tuple[str, int, bool]]]] = {
    "pnet": ([("conv", 1, 3, 10, 3), ("pool", 2, 2), ("conv", 2, 10, 16, 3), ("conv", 3, 16, 32, 3)],
             [("conv4_2", 4, False), ("conv4_1", 2, True)]),
    "rnet": ([("conv", 1, 3, 28, 3), ("pool", 3, 2), ("conv", 2, 28, 48, 3), ("pool", 3, 2), ("conv", 3, 48, 64, 2),
              ("dense", 4, 576, 128)],
             [("dense5_2", 4, False), ("dense5_1", 2, True)]),
    "onet": ([("conv", 1, 3, 32, 3), ("pool", 3, 2), ("conv", 2, 32, 64, 3), ("pool", 3, 2), ("conv", 3, 64, 64, 3),
              ("pool", 2, 2), ("conv", 4, 64, 128, 2), ("dense", 5, 1152, 256)],
             [("dense6_2", 4, False), ("dense6_3", 10, False), ("dense6_1", 2, True)]),
}


class StageNet(nn.Module):
    """One MTCNN stage from its ``NETS`` row: convolutions over the map (PNet's heads are 1x1 convolutions), then,
    for RNet / ONet, linear layers on the map flattened in Caffe's order (x before y, as the weights were trained).
    ``forward`` returns the heads in facenet's order: (box offsets, probabilities) or (offsets, landmarks, probs)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        trunk, heads = NETS[name]
        self.steps: list[tuple[str, str]] = []  # (kind, module name) in order
        for layer in trunk:
            if layer[0] == "pool":
                self.add_module(f"pool{len(self.steps)}", nn.MaxPool2d(layer[1], layer[2], ceil_mode=True))
                self.steps.append(("pool", f"pool{len(self.steps)}"))
                continue
            kind, n, cin, cout = layer[:4]
            self.add_module(f"{kind}{n}", nn.Conv2d(cin, cout, layer[4]) if kind == "conv" else nn.Linear(cin, cout))
            self.add_module(f"prelu{n}", nn.PReLU(cout))
            self.steps += [(kind, f"{kind}{n}"), ("prelu", f"prelu{n}")]
        width = trunk[-1][3]
        self.heads = [(h, softmax) for h, _, softmax in heads]
        for h, out, _ in heads:
            self.add_module(h, nn.Conv2d(width, out, 1) if name == "pnet" else nn.Linear(width, out))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        for kind, name in self.steps:
            if kind == "dense" and x.ndim == 4:
                x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
            x = getattr(self, name)(x)
        return tuple(torch.softmax(getattr(self, h)(x), dim=1) if softmax else getattr(self, h)(x)
                     for h, softmax in self.heads)


def weights_file(name: str) -> Path:
    """facenet-pytorch's weight file for network ``name``, found without importing the package."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("facenet-pytorch is not installed: MTCNN's weights ship in it (pip install facenet-pytorch)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / f"{name}.pt"


def load_net(name: str) -> StageNet:
    """``StageNet(name)`` with facenet-pytorch's trained weights, in eval mode."""
    net = StageNet(name)
    net.load_state_dict(torch.load(weights_file(name), map_location="cpu", weights_only=True))
    return net.eval()


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float) -> torch.Tensor:
    """torchvision's ``nms``: indices of the boxes kept, best first; a box goes when its IoU with a kept,
    higher-scoring box exceeds ``iou``. OpenCV's ``dnn.NMSBoxes`` does the greedy pass in C++ (the same boxes kept,
    ``tests/test_mtcnn_ops.py``; a NumPy loop was 2x slower on thousands of PNet candidates). Scores must be above 0
    (OpenCV drops the others; MTCNN's are above its stage thresholds)."""
    import cv2

    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    b = boxes.detach().cpu().double().numpy()
    xywh = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1)
    kept = cv2.dnn.NMSBoxes(xywh, scores.detach().cpu().float().numpy(), 0.0, float(iou))
    return torch.as_tensor(np.asarray(kept, dtype=np.int64).reshape(-1), device=boxes.device)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou: float) -> torch.Tensor:
    """torchvision's ``batched_nms``: ``nms`` within each ``idxs`` group, the groups shifted apart by the boxes' whole
    span (torchvision shifts by the largest coordinate + 1, which lets groups meet when boxes reach below 0)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    shifted = boxes + (idxs.to(boxes) * (boxes.max() - boxes.min() + 1))[:, None]
    return nms(shifted, scores, iou)


def _samples(start: torch.Tensor, length: torch.Tensor, bins: int, grid: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample positions along one axis for each roi, as torchvision's aligned roi_align places them (``grid`` per bin),
    and whether each falls inside [-1, size] (outside, a sample counts as 0)."""
    k = torch.arange(bins * grid, dtype=start.dtype)
    steps = torch.div(k, grid, rounding_mode="floor") + (k % grid + 0.5) / grid
    pos = start[:, None] + steps[None, :] * (length / bins)[:, None]
    return pos, (pos >= -1.0) & (pos <= size)


def roi_align(images: torch.Tensor, rois: torch.Tensor, output_size: tuple[int, int], sampling_ratio: int) -> torch.Tensor:
    """torchvision's ``roi_align(images, rois, output_size, spatial_scale=1, sampling_ratio, aligned=True)``:
    each roi (batch index, x1, y1, x2, y2) cut into ``output_size`` bins, each bin the mean of ``sampling_ratio``^2
    bilinear samples. The samples come from ``grid_sample`` (its border clamp is roi_align's clamp to the edge
    pixels; samples beyond [-1, size] are zeroed as roi_align does), the bins from ``avg_pool2d``."""
    if sampling_ratio <= 0:
        raise ValueError("roi_align: sampling_ratio must be positive here (the adaptive grid is torchvision's)")
    (ph, pw), g = output_size, sampling_ratio
    _, c, h, w = images.shape
    out = images.new_zeros((len(rois), c, ph, pw))
    if not len(rois):
        return out
    ys, y_in = _samples(rois[:, 2] - 0.5, rois[:, 4] - rois[:, 2], ph, g, h)
    xs, x_in = _samples(rois[:, 1] - 0.5, rois[:, 3] - rois[:, 1], pw, g, w)
    gy = (ys / max(h - 1, 1) * 2 - 1)[:, :, None].expand(-1, -1, pw * g)  # align_corners=True: pixel p -> 2p/(size-1)-1
    gx = (xs / max(w - 1, 1) * 2 - 1)[:, None, :].expand(-1, ph * g, -1)
    grid = torch.stack([gx, gy], -1)  # (rois, ph*g, pw*g, 2), x first
    valid = (y_in[:, :, None] & x_in[:, None, :]).to(images.dtype)
    idx = rois[:, 0].long()
    for b in torch.unique(idx).tolist():
        sel = (idx == b).nonzero()[:, 0]
        k = len(sel)
        sampled = torch.nn.functional.grid_sample(images[b:b + 1], grid[sel].reshape(1, k * ph * g, pw * g, 2),
                                                  mode="bilinear", padding_mode="border", align_corners=True)
        sampled = sampled.reshape(c, k, ph * g, pw * g) * valid[sel]  # (channels, rois, ...): pooled as it lies
        out[sel] = torch.nn.functional.avg_pool2d(sampled, g).permute(1, 0, 2, 3)
    return out


def ops_for(device: torch.device, torchvision: bool | None = None) -> tuple[Callable, Callable]:
    """(batched_nms, roi_align) as the detector calls them: torchvision's kernels when ``torchvision`` (None: on
    CUDA, where its import is small beside CUDA's start), else the ones above (the CPU's default)."""
    if torchvision or (torchvision is None and device.type == "cuda"):
        from torchvision.ops import batched_nms as tv_nms
        from torchvision.ops import roi_align as tv_roi

        return tv_nms, lambda imgs, rois, size, g: tv_roi(imgs, rois, output_size=size, spatial_scale=1.0,
                                                          sampling_ratio=g, aligned=True)
    return batched_nms, roi_align
