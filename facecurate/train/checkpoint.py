"""What a fold leaves on disk: weights (safetensors) and the state that resumes it (optimizer, schedule, EMA, RNG).

Every file is written to a temporary name and moved into place (``os.replace``), so a reader never
sees half a file; a failed write (a full disk) removes its temporary file and is one line naming the file.
Each file carries an xxh3 of its own content, written with it (the weights' safetensors metadata ``xxh3``,
the state's ``xxh3`` entry) and checked whenever it is loaded: damage is one line, never different numbers.
The hash is taken over the loaded tensors and values (``content_hash``), not the file's bytes, so it lives
inside the file it checks and a kill can never leave a file and its checksum out of step.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from ..curate.checksums import hash_bytes
from ..curate.errors import InputError

BEST, LAST, STATE = "best.safetensors", "last.safetensors", "state.pt"
HASH_KEY = "xxh3"  # where each file keeps the checksum of its content


def content_hash(obj) -> str:
    """xxh3-64 of a state's content: every tensor's name, dtype, shape and bytes, and the repr of other values, in order."""
    import xxhash

    h = xxhash.xxh3_64()

    def walk(o) -> None:
        if isinstance(o, torch.Tensor):
            t = o.detach().to("cpu").contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
        elif isinstance(o, np.ndarray):
            h.update(f"A{o.dtype}{o.shape}".encode())
            h.update(hash_bytes(o).encode())
        elif isinstance(o, dict):
            h.update(b"{")
            for k, v in o.items():
                if k != HASH_KEY:
                    h.update(repr(k).encode())
                    walk(v)
            h.update(b"}")
        elif isinstance(o, (list, tuple)):
            h.update(b"[" if isinstance(o, list) else b"(")
            for v in o:
                walk(v)
            h.update(b"]")
        else:
            h.update(repr(o).encode())

    walk(obj)
    return h.hexdigest()


def _write_file(path: Path, data: bytes) -> None:
    """The bytes of ``path`` (one write call: what the disk-full test makes fail)."""
    with open(path, "wb") as f:
        f.write(data)


def write_atomic(path: Path, data: bytes) -> None:
    """``data`` into ``path`` through ``path.tmp`` and ``os.replace``; on failure the temporary file is removed and
    an OSError (a full disk) is one line naming the file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        _write_file(tmp, data)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write it ({e.strerror or e}); free some space, then `train --resume` "
                         f"continues from the last epoch saved") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """The model's state dict as safetensors at ``path`` with its content hash in the metadata, written atomically."""
    from safetensors.torch import save

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    write_atomic(path, save(state, metadata={"format": "pt", HASH_KEY: content_hash(dict(sorted(state.items())))}))


def read_weights(path: Path, verify: bool = True) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; InputError naming the file when it is unreadable or fails its checksum.

    A file without an ``xxh3`` in its metadata (written elsewhere, or before checksums) is taken as it is."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise InputError(f"{path}: weights file not found; the run is incomplete: train it again (or `train --resume`)") from None
    except Exception as e:  # safetensors raises its own SafetensorError, plus OSError / ValueError on a cut file
        raise InputError(f"{path}: not a readable weights file ({type(e).__name__}); the file is damaged: train the run "
                         f"again (or `train --resume` while its state.pt is intact)") from None
    if verify and HASH_KEY in meta and content_hash(dict(sorted(state.items()))) != meta[HASH_KEY]:
        raise InputError(f"{path}: checksum mismatch (the weights changed after they were written); the file is "
                         f"damaged: train the run again")
    return state


def load_weights(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    """Load a checkpoint written by ``train`` (safetensors, checksum checked) into ``model``; returns the model.

    Weights that do not fit ``model`` (a config.json that names another model than the weights') are one line."""
    state = read_weights(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        detail = next((ln.strip() for ln in first if "size mismatch" in ln or "Missing key" in ln or "Unexpected key" in ln),
                      first[0] if first else "")
        raise InputError(f"{path}: these weights do not fit the model the run's config.json describes ({detail[:160]}); "
                         f"config.json was edited or comes from another run") from None
    return model


def save_state(state: dict, path: Path) -> None:
    """``torch.save`` of a resume state with its content hash (``state['xxh3']``), written atomically."""
    buf = io.BytesIO()
    torch.save({**state, HASH_KEY: content_hash(state)}, buf)
    write_atomic(path, buf.getvalue())


def load_state(path: Path) -> dict:
    """The resume state written by ``save_state``, its checksum checked; InputError naming the file when damaged.

    It holds RNG states and a progress dict, hence not weights-only; a state without ``xxh3`` (older runs) is taken as it is."""
    path = Path(path)
    fix = "delete it to train this fold again from its first epoch, or train the run again without --resume"
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a cut or flipped file: zip, pickle or storage errors of any kind
        raise InputError(f"{path}: not a readable resume state ({type(e).__name__}); the file is damaged: {fix}") from None
    if not isinstance(state, dict):
        raise InputError(f"{path}: not a resume state written by `train`; {fix}")
    if HASH_KEY in state and content_hash(state) != state[HASH_KEY]:
        raise InputError(f"{path}: checksum mismatch (the resume state changed after it was written); {fix}")
    state.pop(HASH_KEY, None)
    return state
