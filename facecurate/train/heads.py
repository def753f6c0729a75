"""The model's outputs and how they become probabilities: which slice of the last layer is which head.

``task='multi'``: mask | gender | age outputs in one linear layer (sizes from ``curate.labels.HEAD_CLASSES``);
the 18-class probability is p(mask) * p(gender) * p(age) (``curate.labels.joint_probs``).
``task='single'``: 18 outputs, whose marginals give the per-head probabilities.
``age_loss='ordinal'`` (multi only): the age head has one output fewer than it has groups, the conditional
logits of CORN (Shi, Cao & Raschka 2021): output k is logit P(age group > k | age group >= k), so
P(group > k) is a running product and the group probabilities are its differences: always >= 0, summing
to 1, and ordered by construction (a photo is never "older than 60 but not older than 30").
"""
from __future__ import annotations

from itertools import accumulate

import torch
import torch.nn.functional as F

from ..curate.labels import HEAD_CLASSES, NUM_CLASSES, joint_probs, marginal_probs

AGE_LOSSES = ("ce", "ordinal")


def head_layout(task: str = "multi", age_loss: str = "ce") -> dict[str, int]:
    """{head: number of outputs} in the order of the last layer: the three heads (multi) or 'class' (single)."""
    if task == "single":
        return {"class": NUM_CLASSES}
    if age_loss == "ordinal":
        return {**HEAD_CLASSES, "age": HEAD_CLASSES["age"] - 1}
    return dict(HEAD_CLASSES)


def head_slices(task: str = "multi", age_loss: str = "ce") -> dict[str, slice]:
    """{head: slice of the model's outputs}."""
    layout = head_layout(task, age_loss)
    ends = list(accumulate(layout.values()))
    return {h: slice(end - n, end) for (h, n), end in zip(layout.items(), ends)}


def num_outputs(task: str = "multi", age_loss: str = "ce") -> int:
    return sum(head_layout(task, age_loss).values())


def head_logits(logits: torch.Tensor, task: str, age_loss: str = "ce") -> dict[str, torch.Tensor]:
    """Split the model's outputs into {'mask', 'gender', 'age'} (multi) or {'class'} (single)."""
    if task == "multi":
        return {h: logits[:, s] for h, s in head_slices(task, age_loss).items()}
    return {"class": logits}


def ordinal_probs(logits: torch.Tensor) -> torch.Tensor:
    """B x (K-1) CORN conditional logits -> B x K group probabilities (see module doc)."""
    above = torch.cumprod(torch.sigmoid(logits.float()), dim=1)  # P(group > k), non-increasing in k
    ones = torch.ones_like(above[:, :1])
    zeros = torch.zeros_like(above[:, :1])
    return torch.cat([ones, above], dim=1) - torch.cat([above, zeros], dim=1)


def class_probs_from_heads(p_mask: torch.Tensor, p_gender: torch.Tensor, p_age: torch.Tensor) -> torch.Tensor:
    """B x 18 probabilities p_mask[m] * p_gender[g] * p_age[a] at the class of (m, g, a)."""
    return joint_probs(p_mask, p_gender, p_age)


def probabilities(logits: torch.Tensor, task: str, age_loss: str = "ce") -> dict[str, torch.Tensor]:
    """{'mask', 'gender', 'age', 'class'} probabilities (B x classes) from either task's outputs."""
    logits = logits.float()
    if task == "multi":
        parts = head_logits(logits, task, age_loss)
        p = {h: F.softmax(v, dim=1) for h, v in parts.items()}
        if age_loss == "ordinal":
            p["age"] = ordinal_probs(parts["age"])
        p["class"] = class_probs_from_heads(p["mask"], p["gender"], p["age"])
        return p
    pc = F.softmax(logits, dim=1)
    return {**marginal_probs(pc), "class": pc}
