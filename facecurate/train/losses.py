"""Classification losses with defaults that follow each head's own class count (3, 2, 3 or 18).

``ce`` cross-entropy; ``smooth`` label smoothing (0.1 spread over the head's classes); ``focal``
(gamma 2, no alpha); ``f1`` a soft macro-F1 loss over the head's classes, mixed with CE so it trains
from scratch. Every loss takes optional per-class weights. ``OrdinalLoss`` is the age head's loss with
``--age-loss ordinal`` (CORN: conditional binary tasks, see ``heads``). ``masked_loss`` leaves the photos
without a head's label (label -1: external faces with no mask label, say) out of that head's loss.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LOSSES = ("ce", "smooth", "focal", "f1")


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): CE scaled by (1 - p_true)^gamma; ``weight`` per class like CE."""

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1)
        logp_t = logp.gather(1, target[:, None]).squeeze(1)
        loss = -((1 - logp_t.exp()) ** self.gamma) * logp_t
        if self.weight is not None:
            w = self.weight[target]
            return (loss * w).sum() / w.sum()
        return loss.mean()


class F1Loss(nn.Module):
    """1 - soft macro F1 over ``num_classes`` (the head's own count), plus ``ce_weight`` x CE for a usable gradient early on."""

    def __init__(self, num_classes: int, eps: float = 1e-7, ce_weight: float = 1.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.num_classes, self.eps, self.ce_weight = num_classes, eps, ce_weight
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = F.softmax(logits.float(), dim=1)
        y = F.one_hot(target, self.num_classes).float()
        tp = (p * y).sum(0)
        fp = (p * (1 - y)).sum(0)
        fn = ((1 - p) * y).sum(0)
        f1 = 2 * tp / (2 * tp + fp + fn + self.eps)
        # classes in the batch's labels or given at least half a photo of probability; the rest would add a constant 0
        present = (y.sum(0) > 0) | (p.sum(0) > 0.5)
        w = self.weight if self.weight is not None else torch.ones_like(f1)
        soft = 1 - (f1 * w)[present].sum() / w[present].sum()
        if self.ce_weight:
            soft = soft + self.ce_weight * F.cross_entropy(logits.float(), target, weight=self.weight)
        return soft


class OrdinalLoss(nn.Module):
    """CORN (Shi, Cao & Raschka 2021) over ``num_classes`` ordered groups, from ``num_classes - 1`` logits.

    Task k learns P(group > k | group >= k) by binary cross-entropy on the photos with group >= k, so the
    group probabilities built from it (``heads.ordinal_probs``) stay ordered; ``weight`` per group weighs photos.
    Ours because neither torch nor timm has an ordinal loss (coral-pytorch would be a dependency for 15 lines).
    """

    def __init__(self, num_classes: int, weight: torch.Tensor | None = None):
        super().__init__()
        self.num_classes = num_classes
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        k = torch.arange(self.num_classes - 1, device=logits.device)
        active = (target[:, None] >= k[None]).float()
        above = (target[:, None] > k[None]).float()
        bce = F.binary_cross_entropy_with_logits(logits.float(), above, reduction="none")
        if self.weight is not None:
            active = active * self.weight[target][:, None]
        return (bce * active).sum() / active.sum().clamp_min(1e-8)


def masked_loss(fn: nn.Module, logits: torch.Tensor, target: torch.Tensor, order: torch.Tensor | None = None,
                lam: float = 1.0) -> torch.Tensor:
    """``fn`` over the photos that carry this head's label (target >= 0; with mixup, the partner's too), times their
    share of the batch: a photo without the label adds nothing to the loss or its gradient, and each labelled photo
    weighs what it weighs in a fully labelled batch. A batch with no labelled photo gives a zero that still backpropagates."""
    keep = target >= 0
    if order is not None:
        keep = keep & (target[order] >= 0)
    if bool(keep.all()):
        loss = fn(logits, target)
        return loss if order is None else lam * loss + (1 - lam) * fn(logits, target[order])
    if not bool(keep.any()):
        return logits.sum() * 0.0
    lg, t = logits[keep], target[keep]
    loss = fn(lg, t)
    if order is not None:
        loss = lam * loss + (1 - lam) * fn(lg, target[order][keep])
    return loss * keep.float().mean()


def make_loss(name: str, num_classes: int, class_weights: torch.Tensor | None = None, smoothing: float = 0.1,
              gamma: float = 2.0) -> nn.Module:
    """A loss for one head of ``num_classes`` classes; ``class_weights`` (length num_classes) or None."""
    if class_weights is not None and len(class_weights) != num_classes:
        raise ValueError(f"class_weights has {len(class_weights)} entries for a {num_classes}-class head")
    if name == "ce":
        return nn.CrossEntropyLoss(weight=class_weights)
    if name == "smooth":
        return nn.CrossEntropyLoss(weight=class_weights, label_smoothing=smoothing)
    if name == "focal":
        return FocalLoss(gamma=gamma, weight=class_weights)
    if name == "f1":
        return F1Loss(num_classes, weight=class_weights)
    if name == "ordinal":
        return OrdinalLoss(num_classes, weight=class_weights)
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {name!r}")


def inverse_frequency(labels: np.ndarray, num_classes: int, power: float = 0.5) -> torch.Tensor:
    """Class weights (count)^-power normalised to mean 1 over the classes present; absent classes get 1.

    The square root (power 0.5) by default: full inverse frequency overshoots on the rare >=60 groups.
    """
    counts = np.bincount(labels[labels >= 0], minlength=num_classes).astype(float)
    w = np.ones(num_classes)
    seen = counts > 0
    w[seen] = counts[seen] ** -power
    w[seen] /= w[seen].mean()
    return torch.tensor(w, dtype=torch.float32)
