"""Training batches straight from the cache's uint8 array: no JPEG decoding, no DataLoader workers.

On CUDA the whole uint8 cache is copied to the GPU once and every batch is indexed and augmented
there; on the CPU the same code gathers rows from the memory-mapped array. With ``--extra`` caches,
``SourceImages`` puts them behind the main cache in one position space (main rows first); a batch
mixing caches of different crop sizes is augmented per size and resized to the run's input on the way.
``extra_share`` sets the extra photos' share of each batch (None: every photo once per epoch).
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


class SourceImages:
    """Several ``CacheImages`` behind one position space: part 0 (the main cache) first, then each extra cache."""

    def __init__(self, parts: list[CacheImages]):
        self.parts = list(parts)
        self.starts = np.cumsum([0] + [len(p) for p in self.parts])
        self.device = self.parts[0].device
        self.shape = self.parts[0].shape

    def __len__(self) -> int:
        return int(self.starts[-1])

    def groups(self, idx: np.ndarray) -> list[tuple[np.ndarray, torch.Tensor]]:
        """[(slots in ``idx``, uint8 images)] with one entry per image size; one cache gives one entry, slots in order."""
        idx = np.asarray(idx)
        part = np.searchsorted(self.starts, idx, side="right") - 1
        by_size: dict[tuple, list[tuple[np.ndarray, torch.Tensor]]] = {}
        for j in np.unique(part):
            slots = np.flatnonzero(part == j)
            by_size.setdefault(tuple(self.parts[j].shape[1:3]), []).append(
                (slots, self.parts[j].take(idx[slots] - self.starts[j])))
        out = []
        for pieces in by_size.values():
            if len(pieces) == 1:
                out.append(pieces[0])
            else:
                out.append((np.concatenate([s for s, _ in pieces]), torch.cat([t for _, t in pieces])))
        return out

    def take(self, idx: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 images of rows ``idx`` in order; they must share one image size (e.g. main rows only)."""
        idx = np.asarray(idx.cpu() if isinstance(idx, torch.Tensor) else idx)
        groups = self.groups(idx)
        if len(groups) != 1:
            raise ValueError("rows of caches with different image sizes cannot be stacked; use groups()")
        slots, images = groups[0]
        if np.array_equal(slots, np.arange(len(idx))):
            return images
        out = torch.empty_like(images)
        out[torch.as_tensor(slots, device=images.device)] = images
        return out


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


def extra_per_batch(batch_size: int, share: float | None) -> int:
    """Extra photos in each batch for ``share`` (0 < share < 1), at least one and at most batch_size - 1; 0 for None."""
    if share is None:
        return 0
    return int(min(batch_size - 1, max(1, round(share * batch_size))))


def steps_per_epoch(n_train: int, batch_size: int, n_extra: int = 0, share: float | None = None) -> int:
    """Optimizer steps per epoch: full batches only, and one (smaller) batch when the fold holds less than one.

    An epoch is one pass over the fold's training photos; with extra photos at a fixed ``share`` the main
    photos fill batch_size - extra_per_batch slots of each batch, without it the extra photos join the pass.
    """
    if n_extra and share is not None:
        return max(1, n_train // (batch_size - extra_per_batch(batch_size, share)))
    return max(1, (n_train + n_extra) // batch_size)


def train_order(positions: np.ndarray, extra: np.ndarray, batch_size: int, share: float | None, g: torch.Generator,
                weights: np.ndarray | None = None) -> np.ndarray:
    """The positions of one epoch's batches, back to back (``steps_per_epoch`` batches of ``batch_size``, or fewer photos).

    ``weights`` (the balanced sampler) apply to the main photos. With ``share`` every batch holds the same
    number of extra photos, drawn without replacement from reshuffled passes over ``extra``.
    """
    main = positions[epoch_order(len(positions), g, weights)]
    if not len(extra):
        return main
    if share is None:
        pool = np.concatenate([main, extra])
        return pool[epoch_order(len(pool), g)]
    k = extra_per_batch(batch_size, share)
    steps = steps_per_epoch(len(positions), batch_size, len(extra), share)
    m = batch_size - k
    need = steps * k
    stream = np.concatenate([extra[epoch_order(len(extra), g)] for _ in range(-(-need // len(extra)))])[:need]
    return np.concatenate([np.concatenate([main[b * m:(b + 1) * m], stream[b * k:(b + 1) * k]]) for b in range(steps)])


def _augment(images, idx: np.ndarray, size: tuple[int, int], aug: AugmentParams, gd: torch.Generator, norm: Norm) -> torch.Tensor:
    """One augmented batch; rows of caches with other image sizes are warped per size, straight to ``size``."""
    if not isinstance(images, SourceImages):
        return train_batch(images.take(idx), size, aug, gd, norm=norm)
    groups = images.groups(idx)
    if len(groups) == 1 and np.array_equal(groups[0][0], np.arange(len(idx))):
        return train_batch(groups[0][1], size, aug, gd, norm=norm)
    x = None
    for slots, part in groups:
        xp = train_batch(part, size, aug, gd, norm=norm)
        if x is None:
            x = torch.empty((len(idx), *xp.shape[1:]), dtype=xp.dtype, device=xp.device)
        x[torch.as_tensor(slots, device=xp.device)] = xp
    return x


def iter_train(images: CacheImages | SourceImages, positions: np.ndarray, labels: torch.Tensor, batch_size: int,
               size: tuple[int, int], aug: AugmentParams, g: torch.Generator, gd: torch.Generator,
               weights: np.ndarray | None = None, channels_last: bool = False, norm: Norm = IMAGENET,
               extra: np.ndarray | None = None, extra_share: float | None = None, shard: tuple[int, int] | None = None):
    """Yield (augmented float batch, labels N x 4) for one epoch over ``positions`` (+ ``extra``, see ``train_order``);
    the last short batch is dropped when there is more than one.

    ``shard=(rank, world)`` (DDP): every rank draws the same epoch order from ``g`` and keeps photos rank, rank +
    world, ... of each global batch of ``batch_size``, a disjoint share of batch_size / world photos."""
    extra = np.zeros(0, np.int64) if extra is None else np.asarray(extra)
    order = train_order(positions, extra, batch_size, extra_share, g, weights)
    n_batches = steps_per_epoch(len(positions), batch_size, len(extra), extra_share)
    for b in range(n_batches):
        idx = order[b * batch_size:(b + 1) * batch_size]
        if shard is not None:
            if len(idx) % shard[1]:
                raise ValueError(f"a batch of {len(idx)} photos does not split over {shard[1]} processes")
            idx = idx[shard[0]::shard[1]]
        x = _augment(images, idx, size, aug, gd, norm)
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
