"""The classifier: any timm backbone with one linear layer holding the heads (``heads``), built from scratch or warm.

Where the starting weights come from: ``weights`` is a local file or a run folder (``warmstart``: the
backbone loads wherever names and shapes match, the head is adapted); ``pretrained`` is timm's own weights
(``hub``: the local Hugging Face cache first, a download when online, one clear line when offline).
This module changes no environment variable.
"""
from __future__ import annotations

from pathlib import Path

import torch.nn as nn

from ..curate.errors import InputError
from ..curate.labels import NUM_CLASSES
from .heads import (  # noqa: F401  (re-exported: the model's outputs are part of what this module offers)
    AGE_LOSSES,
    class_probs_from_heads,
    head_layout,
    head_logits,
    head_slices,
    num_outputs,
    probabilities,
)
from .hub import local_pretrained_file, pretrained_file  # noqa: F401
from .warmstart import load_backbone_weights, resolve_weights  # noqa: F401

TASKS = {"multi": num_outputs("multi"), "single": NUM_CLASSES}
SLICES = head_slices("multi")


def build_model(name: str, task: str = "multi", pretrained: bool = False, weights: str | Path | None = None,
                drop_rate: float = 0.0, age_loss: str = "ce", **kwargs) -> nn.Module:
    """A timm model ``name`` with the outputs of ``task`` / ``age_loss``; starting weights as the module doc says."""
    import timm

    if task not in TASKS:
        raise InputError(f"--task must be multi or single, got {task!r}")
    if age_loss not in AGE_LOSSES:
        raise InputError(f"--age-loss must be one of {', '.join(AGE_LOSSES)}, got {age_loss!r}")
    if task == "single" and age_loss != "ce":
        raise InputError("--age-loss ordinal needs --task multi (the single task has no age head)")
    if not timm.is_model(name):
        raise InputError(f"--model {name!r}: not a timm model name (see timm.list_models())")
    overlay = {"file": pretrained_file(name)} if pretrained and weights is None else {}
    model = timm.create_model(name, pretrained=bool(overlay), num_classes=num_outputs(task, age_loss), drop_rate=drop_rate,
                              **({"pretrained_cfg_overlay": overlay} if overlay else {}), **kwargs)
    if weights is not None:
        load_backbone_weights(model, weights, head_layout(task, age_loss))
    return model
