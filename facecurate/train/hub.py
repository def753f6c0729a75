"""timm's pretrained weights as timm users expect them: the local Hugging Face cache first, else a download, else one clear line.

``pretrained_file(name)`` returns a local file for ``timm.create_model(..., pretrained_cfg_overlay={"file": ...})``.
When the file is not in the cache, the hub is probed once (a plain TCP connect, through the proxy when one is
set) before ``huggingface_hub.hf_hub_download`` is asked: offline, that library retries for ~25 s and then
says only "check your connection"; here an offline machine gets at once an ``InputError`` naming the repo,
the file, the cache folder and the command that places it. ``HF_HUB_OFFLINE=1`` skips the probe.
"""
from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import getproxies

from ..curate.errors import InputError

CANDIDATE_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def hub_files(name: str) -> tuple[str | None, tuple[str, ...]]:
    """(Hugging Face repo id, file names to try in order) of timm model ``name``'s default pretrained tag."""
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except Exception:
        cfg = None
    if cfg is None or not getattr(cfg, "hf_hub_id", None):
        return None, ()
    return cfg.hf_hub_id, (cfg.hf_hub_filename,) if cfg.hf_hub_filename else CANDIDATE_FILES


def _defaults(endpoint: str | None, cache_dir: str | Path | None) -> tuple[str, str]:
    from huggingface_hub import constants

    return str(endpoint or constants.ENDPOINT), str(cache_dir or constants.HF_HUB_CACHE)


def local_pretrained_file(name: str, cache_dir: str | Path | None = None) -> str | None:
    """Path of ``name``'s pretrained weights in the local Hugging Face cache, or None; never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    repo, files = hub_files(name)
    for f in files:
        p = try_to_load_from_cache(repo, f, cache_dir=str(cache_dir) if cache_dir else None)
        if isinstance(p, str) and Path(p).is_file():
            return p
    return None


def unreachable(endpoint: str, timeout: float = 4.0) -> str | None:
    """Why the hub at ``endpoint`` cannot be reached (None when a connection opens); one TCP connect, no retries."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    url = urlparse(endpoint)
    proxy = getproxies().get(url.scheme)
    target = urlparse(proxy if "://" in (proxy or "") else f"http://{proxy}") if proxy else url
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        socket.create_connection((target.hostname or "", port), timeout=timeout).close()
    except OSError as e:
        return f"{type(e).__name__}: {e.strerror or e}"
    return None


def offline_message(name: str, repo: str, file: str, cache: str, endpoint: str, why: str) -> str:
    """The one line an offline machine gets: which file is missing, where it goes, and how to put it there."""
    folder = Path(cache) / f"models--{repo.replace('/', '--')}"
    return (f"--pretrained {name}: {repo}/{file} is not in the local Hugging Face cache ({cache}) and the hub "
            f"({endpoint}) cannot be reached ({why}), so nothing is downloaded; on a machine that is online run "
            f"`hf download {repo} {file}` and copy its {folder.name} folder into {cache} (or point HF_HUB_CACHE at a copy), "
            f"or pass --weights FILE")


def pretrained_file(name: str, endpoint: str | None = None, cache_dir: str | Path | None = None) -> str:
    """A local file with ``name``'s timm weights: from the cache, else downloaded; InputError offline (see module doc)."""
    repo, files = hub_files(name)
    if repo is None:
        raise InputError(f"--pretrained {name}: timm has no pretrained weights on the Hugging Face hub for this model; "
                         f"train from scratch or pass --weights FILE")
    local = local_pretrained_file(name, cache_dir)
    if local is not None:
        return local
    endpoint, cache = _defaults(endpoint, cache_dir)
    why = unreachable(endpoint)
    if why is not None:
        raise InputError(offline_message(name, repo, files[0], cache, endpoint, why))
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError

    last = None
    for f in files:
        try:
            return hf_hub_download(repo, f, cache_dir=cache, endpoint=endpoint)
        except RemoteEntryNotFoundError as e:  # this repo stores the weights under another name: try the next
            last = e
        except Exception as e:  # the connection dropped, a proxy refused, the disk is full ...
            raise InputError(offline_message(name, repo, f, cache, endpoint, f"{type(e).__name__}: {str(e)[:120]}")) from None
    raise InputError(f"--pretrained {name}: the hub repo {repo} holds none of {', '.join(files)} ({last}); pass --weights FILE")
