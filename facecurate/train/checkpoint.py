"""What a fold leaves on disk: weights (safetensors) and the state that resumes it (optimizer, schedule, EMA, RNG).

Every file is written to a temporary name and moved into place (``os.replace``), so a reader never
sees half a file.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

BEST, LAST, STATE = "best.safetensors", "last.safetensors", "state.pt"


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """The model's state dict as safetensors at ``path``, written atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, path)


def load_weights(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    """Load a checkpoint written by ``train`` (safetensors) into ``model``; returns the model."""
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(path)))
    return model


def save_state(state: dict, path: Path) -> None:
    """``torch.save`` of a resume state, written atomically."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path: Path) -> dict:
    """The resume state written by ``save_state`` (it holds RNG states and a progress dict, hence not weights-only)."""
    return torch.load(path, map_location="cpu", weights_only=False)
