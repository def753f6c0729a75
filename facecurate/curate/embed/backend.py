"""The embedding backend interface and the registry of backends by name.

A backend turns cached crops and their face boxes (cache pixels) into one float32 row per photo.
A photo it cannot embed gets a NaN row and a short reason; nothing is raised for one bad photo.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import InputError

WHY_SMALL = "face too small"  # the start of the reason every backend gives for a face under min_face


class EmbedBackend:
    """``name``, ``dim``, ``provenance()`` (model file hashes and package versions for meta.json), ``embed``, ``close``."""

    name = "base"
    dim = 0

    def provenance(self) -> dict:
        """``{"files": {file: sha256}, "versions": {package: version}}``: what makes two runs' vectors comparable."""
        raise NotImplementedError

    def embed(self, images: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """``images`` N x H x W x 3 uint8, ``boxes`` N x 4 (x1, y1, x2, y2 in those images' pixels) ->
        (N x dim float32, NaN rows where a reason is given; N reasons, "" for an embedded photo)."""
        raise NotImplementedError

    def close(self) -> None:
        """Free native resources (models, thread pools)."""


#: name -> factory(device, threads, **options); filled by the backend modules through ``register``.
BACKENDS: dict[str, Callable[..., EmbedBackend]] = {}
#: name -> a cheap check that raises InputError (what to install) when the backend cannot run here.
READY: dict[str, Callable[[], None]] = {}


def register(name: str, ready: Callable[[], None] = lambda: None) -> Callable:
    """Decorator of a backend factory: make it available as ``name`` (``embed --backend name``), with its ``ready`` check."""
    def add(factory):
        BACKENDS[name], READY[name] = factory, ready
        return factory
    return add


def check_ready(name: str) -> None:
    """InputError naming the backend or what to install when ``name`` cannot run here; nothing is loaded."""
    if name not in backend_names():
        raise InputError(f"--backend {name!r}: expected one of {', '.join(backend_names())}")
    READY[name]()


def make_backend(name: str, device: str = "cpu", threads: int = 0, **options) -> EmbedBackend:
    """The backend ``name`` on ``device`` (a resolved torch device), ``threads`` CPU threads (0: all cores)."""
    from . import dlib_backend, facenet_backend  # noqa: F401  (each registers itself)

    if name not in BACKENDS:
        raise InputError(f"--backend {name!r}: expected one of {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name](device=device, threads=threads, **options)


def backend_names() -> list[str]:
    """Every registered backend's name."""
    from . import dlib_backend, facenet_backend  # noqa: F401

    return sorted(BACKENDS)
