"""Probabilities of a model over cached photos (optionally averaged with the mirrored photo), as arrays or a frame.

Used for validation during training, for the out-of-fold table and by ``predict``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .augment import IMAGENET, Norm
from .data import OUTPUT_CLASSES, CacheImages, iter_eval
from .model import probabilities


@torch.no_grad()
def infer_probs(model: torch.nn.Module, images: CacheImages, positions: np.ndarray, size: tuple[int, int], task: str,
                batch_size: int = 128, flip_tta: bool = False, dtype: torch.dtype | None = None,
                channels_last: bool = False, norm: Norm = IMAGENET, age_loss: str = "ce") -> dict[str, np.ndarray]:
    """Probabilities per head and for 18 classes over ``positions``; with ``flip_tta`` averaged with the mirrored photo.

    ``age_loss`` is the run's (``config.json``): it says how the age head's outputs become probabilities."""
    model.eval()
    dev = images.device
    passes = (False, True) if flip_tta else (False,)
    total: dict[str, np.ndarray] = {}
    for flip in passes:
        chunks: dict[str, list[np.ndarray]] = {}
        for x in iter_eval(images, positions, batch_size, size, flip=flip, channels_last=channels_last, norm=norm):
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                logits = model(x.to(dev))
            for k, v in probabilities(logits, task, age_loss).items():
                chunks.setdefault(k, []).append(v.float().cpu().numpy())
        for k, v in chunks.items():
            arr = np.concatenate(v) if v else np.zeros((0, OUTPUT_CLASSES[k]), np.float32)
            total[k] = total.get(k, 0) + arr / len(passes)
    if not total:
        total = {k: np.zeros((0, n), np.float32) for k, n in OUTPUT_CLASSES.items()}
    return total


def probs_frame(probs: dict[str, np.ndarray]) -> pd.DataFrame:
    """p_mask_0..2, p_gender_0..1, p_age_0..2, p_class_0..17 columns from ``infer_probs``'s output."""
    cols = {}
    for head, n in OUTPUT_CLASSES.items():
        for j in range(n):
            cols[f"p_{head}_{j}"] = probs[head][:, j].astype(np.float32)
    return pd.DataFrame(cols)


def probs_from_frame(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Inverse of ``probs_frame``: {head: n x classes} from the p_* columns."""
    return {h: frame[[f"p_{h}_{j}" for j in range(n)]].to_numpy() for h, n in OUTPUT_CLASSES.items()}
