"""Training batches straight from the cache's uint8 array: no JPEG decoding, no DataLoader workers.

On CUDA the whole uint8 cache is copied to the GPU once and every batch is indexed and augmented
there; on the CPU the same code gathers rows from the memory-mapped array.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..curate.labels import HEAD_CLASSES, HEAD_FIELDS, HEADS, NUM_CLASSES, encode
from .augment import IMAGENET, AugmentParams, Norm, eval_batch, train_batch

#: Outputs the trainer predicts: the three heads and the 18 classes, with their class counts.
OUTPUT_CLASSES = {**HEAD_CLASSES, "class": NUM_CLASSES}
#: Column of ``label_array`` holding each output's label.
LABEL_COLUMN = {**{h: i for i, h in enumerate(HEADS)}, "class": len(HEADS)}


def label_array(manifest: pd.DataFrame) -> np.ndarray:
    """N x 4 int64 (mask, gender, age_group, class) from the manifest; -1 where a label is missing."""
    cols = [pd.to_numeric(manifest[HEAD_FIELDS[h]], errors="coerce") for h in HEADS]
    out = np.stack([c.fillna(-1).to_numpy(dtype=np.int64) for c in cols], axis=1)
    cls = np.where((out >= 0).all(1), encode(out[:, 0], out[:, 1], out[:, 2]), -1)
    return np.concatenate([out, cls[:, None]], axis=1)


class CacheImages:
    """The cache's images on ``device``: gather rows by index as uint8 N x H x W x 3 tensors."""

    def __init__(self, images: np.ndarray, device: torch.device | str = "cpu", rows: np.ndarray | None = None):
        self.device = torch.device(device)
        # ``rows``: the cache rows to hold (e.g. only the usable ones); batches index into this subset
        self.rows = np.arange(len(images)) if rows is None else np.asarray(rows)
        self.on_device = self.device.type != "cpu"
        if self.on_device:
            # one upload of the uint8 array, in chunks so host memory never holds a second full copy
            h, w = images.shape[1:3]
            self.data = torch.empty((len(self.rows), h, w, 3), dtype=torch.uint8, device=self.device)
            for s in range(0, len(self.rows), 1024):
                chunk = np.ascontiguousarray(images[self.rows[s:s + 1024]])
                self.data[s:s + len(chunk)] = torch.from_numpy(chunk).to(self.device, non_blocking=False)
        else:
            self.data = images
        self.shape = (len(self.rows), *images.shape[1:])

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, idx: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 tensor of the rows ``idx`` (positions in ``self.rows``), on ``self.device``."""
        if self.on_device:
            return self.data[torch.as_tensor(idx, device=self.device)]
        idx = np.asarray(idx)
        order = np.argsort(self.rows[idx], kind="stable")  # sorted reads are kinder to the memmap
        block = np.asarray(self.data[self.rows[idx][order]])
        out = np.empty_like(block)
        out[order] = block
        return torch.from_numpy(out)


def epoch_order(n: int, g: torch.Generator, weights: np.ndarray | None = None) -> np.ndarray:
    """A shuffled pass over ``n`` items, or ``n`` draws with replacement by ``weights`` (balanced sampler)."""
    if weights is None:
        return torch.randperm(n, generator=g).numpy()
    w = torch.as_tensor(weights, dtype=torch.float64)
    return torch.multinomial(w, n, replacement=True, generator=g).numpy()


def sampler_weights(labels: np.ndarray, by: str) -> np.ndarray | None:
    """Per-photo sampling weights equalising classes (``by='class'``) or age groups (``'age'``); None for 'none'."""
    if by in ("none", "", None):
        return None
    col = {"class": LABEL_COLUMN["class"], "age": LABEL_COLUMN["age"]}.get(by)
    if col is None:
        raise ValueError(f"sampler must be none, class or age, got {by!r}")
    keys = labels[:, col]
    counts = np.bincount(keys, minlength=keys.max() + 1).astype(float)
    return 1.0 / counts[keys]


def iter_train(images: CacheImages, positions: np.ndarray, labels: torch.Tensor, batch_size: int, size: tuple[int, int],
               aug: AugmentParams, g: torch.Generator, gd: torch.Generator, weights: np.ndarray | None = None,
               channels_last: bool = False, norm: Norm = IMAGENET):
    """Yield (augmented float batch, labels N x 4) for one epoch over ``positions``; the last short batch is dropped when >1 batch."""
    order = positions[epoch_order(len(positions), g, weights)]
    n_batches = max(1, len(order) // batch_size)
    for b in range(n_batches):
        idx = order[b * batch_size:(b + 1) * batch_size]
        x = train_batch(images.take(idx), size, aug, gd, norm=norm)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, labels[torch.as_tensor(idx, device=labels.device)]


def iter_eval(images: CacheImages, positions: np.ndarray, batch_size: int, size: tuple[int, int], flip: bool = False,
              channels_last: bool = False, norm: Norm = IMAGENET):
    """Yield normalised float batches over ``positions`` in order (optionally mirrored, for flip TTA)."""
    for s in range(0, len(positions), batch_size):
        x = eval_batch(images.take(positions[s:s + batch_size]), size, flip=flip, norm=norm)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x
