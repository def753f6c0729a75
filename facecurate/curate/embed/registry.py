"""The registry of embedding backends by name: make one, list them, check one can run here.

Apart from ``backend.py`` so the backend modules (which register themselves there) and the code that
picks one by name never import each other in a circle.
"""
from __future__ import annotations

from ..errors import InputError
from . import dlib_backend, facenet_backend  # noqa: F401  (each registers itself in backend.BACKENDS)
from .backend import BACKENDS, READY, EmbedBackend


def check_ready(name: str) -> None:
    """InputError naming the backend or what to install when ``name`` cannot run here; nothing is loaded."""
    if name not in backend_names():
        raise InputError(f"--backend {name!r}: expected one of {', '.join(backend_names())}")
    READY[name]()


def make_backend(name: str, device: str = "cpu", threads: int = 0, **options) -> EmbedBackend:
    """The backend ``name`` on ``device`` (a resolved torch device), ``threads`` CPU threads (0: all cores)."""
    if name not in BACKENDS:
        raise InputError(f"--backend {name!r}: expected one of {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name](device=device, threads=threads, **options)


def backend_names() -> list[str]:
    """Every registered backend's name."""
    return sorted(BACKENDS)
