"""The classifier: any timm backbone with one linear layer holding the heads, and how heads become 18 classes.

``task='multi'``: one output per class of each head (mask | gender | age, sizes from the label model);
the 18-class probability is p(mask) * p(gender) * p(age) (``curate.labels.joint_probs``).
``task='single'``: 18 outputs, whose marginals give the per-head probabilities. Weights never come
from the network here: ``weights`` is a local file, ``pretrained`` reads timm's local Hugging Face
cache only (looked up without touching the hub; this module changes no environment variable).
"""
from __future__ import annotations

from itertools import accumulate
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..curate.errors import InputError
from ..curate.labels import HEAD_CLASSES, NUM_CLASSES, joint_probs, marginal_probs

TASKS = {"multi": sum(HEAD_CLASSES.values()), "single": NUM_CLASSES}
_ENDS = list(accumulate(HEAD_CLASSES.values()))
SLICES = {h: slice(end - n, end) for (h, n), end in zip(HEAD_CLASSES.items(), _ENDS)}


def local_pretrained_file(name: str) -> str | None:
    """Path of ``name``'s pretrained weights in the local Hugging Face cache, or None; never downloads."""
    import timm
    from huggingface_hub import (
        try_to_load_from_cache,  # reads the local cache only, never the network
    )

    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except Exception:
        cfg = None
    if cfg is None or not cfg.hf_hub_id:
        return None
    files = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"]
    for f in files:
        p = try_to_load_from_cache(cfg.hf_hub_id, f)
        if isinstance(p, str) and Path(p).is_file():
            return p
    return None


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def load_backbone_weights(model: nn.Module, path: str | Path) -> tuple[int, int]:
    """Load a local weights file into ``model`` where names and shapes match (the head may differ); (loaded, total)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: weights file not found (nothing is downloaded; give a local .safetensors/.pth file)")
    try:
        state = _read_state(path)
    except Exception as e:
        raise InputError(f"{path}: cannot read weights ({type(e).__name__}: {e})") from None
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    body = [k for k in own if not k.startswith(_classifier_prefix(model))]
    matched = sum(k in usable for k in body)
    if matched < 0.5 * len(body):
        raise InputError(f"{path}: only {matched} of {len(body)} backbone tensors match {type(model).__name__}; wrong --model for these weights?")
    model.load_state_dict(usable, strict=False)
    return matched, len(body)


def _classifier_prefix(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return str(cfg.get("classifier", "fc") if isinstance(cfg, dict) else getattr(cfg, "classifier", "fc"))


def build_model(name: str, task: str = "multi", pretrained: bool = False, weights: str | Path | None = None,
                drop_rate: float = 0.0, **kwargs) -> nn.Module:
    """A timm model ``name`` with the outputs of ``task``; pretrained weights only from local files (see module doc)."""
    import timm

    if task not in TASKS:
        raise InputError(f"--task must be multi or single, got {task!r}")
    if not timm.is_model(name):
        raise InputError(f"--model {name!r}: not a timm model name (see timm.list_models())")
    overlay = {}
    if pretrained and weights is None:
        local = local_pretrained_file(name)
        if local is None:
            raise InputError(f"--pretrained {name}: weights are not in the local Hugging Face cache and nothing is downloaded "
                             f"here; put them there or pass --weights FILE")
        overlay = {"file": local}
    model = timm.create_model(name, pretrained=bool(overlay), num_classes=TASKS[task], drop_rate=drop_rate,
                              **({"pretrained_cfg_overlay": overlay} if overlay else {}), **kwargs)
    if weights is not None:
        load_backbone_weights(model, weights)
    return model


def head_logits(logits: torch.Tensor, task: str) -> dict[str, torch.Tensor]:
    """Split the model's outputs into {'mask', 'gender', 'age'} (multi) or {'class'} (single)."""
    if task == "multi":
        return {h: logits[:, s] for h, s in SLICES.items()}
    return {"class": logits}


def class_probs_from_heads(p_mask: torch.Tensor, p_gender: torch.Tensor, p_age: torch.Tensor) -> torch.Tensor:
    """B x 18 probabilities p_mask[m] * p_gender[g] * p_age[a] at the class of (m, g, a)."""
    return joint_probs(p_mask, p_gender, p_age)


def probabilities(logits: torch.Tensor, task: str) -> dict[str, torch.Tensor]:
    """{'mask', 'gender', 'age', 'class'} probabilities (B x classes) from either task's outputs."""
    logits = logits.float()
    if task == "multi":
        p = {h: F.softmax(logits[:, s], dim=1) for h, s in SLICES.items()}
        p["class"] = class_probs_from_heads(p["mask"], p["gender"], p["age"])
        return p
    pc = F.softmax(logits, dim=1)
    return {**marginal_probs(pc), "class": pc}
