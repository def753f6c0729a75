"""Start a model from earlier weights: a local file, or a run folder (a face-aware backbone trained on external faces).

``--weights RUN`` takes the run's ``fold_0/best.safetensors`` (the lowest fold that has one when fold 0 has
none). Not an average of the folds: each fold starts from its own seed, so their weights are different
solutions and a plain average of them is not a model; and not the best-scoring fold, which would choose
on validation noise. fold 0 is also what ``--fold 0`` or ``--val-ratio`` train, so a run made only to be
started from needs one fold. Another fold is ``--weights RUN/fold_3/best.safetensors``.

Every tensor whose name and shape match is loaded; the head is adapted: when the layouts differ (multi vs
ordinal age, say) the rows of the heads both share (mask, gender) are copied and the rest start fresh.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn

from ..curate.errors import InputError
from .checkpoint import read_weights
from .heads import head_layout, num_outputs

BEST_FILE = "best.safetensors"
KNOWN_LAYOUTS = {num_outputs(t, a): head_layout(t, a) for t, a in (("multi", "ce"), ("multi", "ordinal"), ("single", "ce"))}


def _run_config(folder: Path) -> dict | None:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return config if isinstance(config, dict) and "model" in config else None


def resolve_weights(path: str | Path) -> tuple[Path, dict | None]:
    """(the weights file, the config.json of the run it belongs to or None) for a file or a run folder."""
    path = Path(path)
    if path.is_dir():
        config = _run_config(path)
        if config is None:
            raise InputError(f"{path}: --weights is a folder but not a run folder (no readable config.json); give a run "
                             f"folder written by `train` or a .safetensors/.pth file")
        best = sorted(path.glob(f"fold_*/{BEST_FILE}"), key=lambda p: int(p.parent.name.split("_")[1]))
        if not best:
            raise InputError(f"{path}: no fold_*/{BEST_FILE}; the run has not finished an epoch")
        first = path / "fold_0" / BEST_FILE
        return (first if first.is_file() else best[0]), config
    if not path.is_file():
        raise InputError(f"{path}: weights file not found (give a local .safetensors/.pth file or a run folder)")
    in_run = path.parent.name.startswith("fold_") and _run_config(path.parent.parent)
    return path, (in_run or None)


def source_layout(config: dict | None, outputs: int | None) -> dict[str, int] | None:
    """The head layout the weights were trained with: from the run's config, else guessed from the output count."""
    if config is not None:
        return head_layout(config.get("task", "multi"), config.get("age_loss", "ce"))
    return KNOWN_LAYOUTS.get(outputs) if outputs is not None else None


def shared_heads(src: dict[str, int] | None, dst: dict[str, int] | None) -> list[str]:
    """Heads present in both layouts with the same size: their rows of the last layer carry over."""
    if not src or not dst:
        return []
    return [h for h, n in dst.items() if src.get(h) == n]


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":  # a run's own weights are checked against their xxh3; others taken as they are
        return read_weights(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a cut, flipped or foreign file
        raise InputError(f"{path}: not a readable weights file ({type(e).__name__}); give a .safetensors/.pth "
                         f"state dict or a run folder") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def classifier_prefix(model: nn.Module) -> str:
    """The state-dict prefix of timm's classifier ('fc', 'classifier', 'head.fc', ...)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return str(cfg.get("classifier", "fc") if isinstance(cfg, dict) else getattr(cfg, "classifier", "fc"))


def _offsets(layout: dict[str, int]) -> dict[str, tuple[int, int]]:
    out, start = {}, 0
    for h, n in layout.items():
        out[h] = (start, start + n)
        start += n
    return out


def adapt_head(own: dict, state: dict, prefix: str, src: dict[str, int] | None, dst: dict[str, int] | None) -> dict:
    """Last-layer tensors of ``own`` with the rows of the heads shared with ``src`` taken from ``state``."""
    heads = shared_heads(src, dst)
    out = {}
    for key in (f"{prefix}.weight", f"{prefix}.bias"):
        if key not in own or key not in state or own[key].shape == state[key].shape or not heads:
            continue
        if own[key].shape[1:] != state[key].shape[1:] or state[key].shape[0] != sum(src.values()):
            continue
        t = own[key].detach().clone()
        so, do = _offsets(src), _offsets(dst)
        for h in heads:
            t[do[h][0]:do[h][1]] = state[key][so[h][0]:so[h][1]].to(t.dtype)
        out[key] = t
    return out


def load_backbone_weights(model: nn.Module, path: str | Path, layout: dict[str, int] | None = None) -> tuple[int, int]:
    """Load a weights file or run folder into ``model`` where names and shapes match, adapting the head; (loaded, total).

    ``layout`` is ``model``'s head layout (``heads.head_layout``); without it the head is loaded only when its shape matches.
    """
    file, config = resolve_weights(path)
    try:
        state = _read_state(file)
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"{file}: cannot read weights ({type(e).__name__}: {e})") from None
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    own = model.state_dict()
    prefix = classifier_prefix(model)
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    body = [k for k in own if not k.startswith(prefix)]
    matched = sum(k in usable for k in body)
    if matched < 0.5 * len(body):
        trained = f" (it was trained with --model {config['model']})" if config else ""
        raise InputError(f"{file}: only {matched} of {len(body)} backbone tensors match {type(model).__name__}{trained}; "
                         f"wrong --model for these weights?")
    w = state.get(f"{prefix}.weight")
    usable.update(adapt_head(own, state, prefix, source_layout(config, None if w is None else int(w.shape[0])), layout))
    model.load_state_dict(usable, strict=False)
    return matched, len(body)
