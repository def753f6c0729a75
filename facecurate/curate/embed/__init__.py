"""`embed`: one face embedding per cached photo (dlib's face-recognition ResNet by default), beside images.npy.

``embed_cache(cache, EmbedParams(...))`` is the stage. Inside: ``params`` (``EmbedParams``, every option),
``backend`` (the interface and the registry by name), ``dlib_backend`` (landmarks + aligned chip + descriptor),
``dlib_resnet`` (dlib's ResNet as a PyTorch module, weights read from its .dat), ``dlib_models`` (where dlib's
model files are, checked), ``facenet_backend`` (InceptionResnetV1), ``store`` (the resumable pass and its files),
``stage`` (the whole pass), ``ray_pass`` (``--ray``: chunks on Ray actors).
"""
from __future__ import annotations

from .params import EmbedParams

__all__ = ["BACKENDS", "EmbedBackend", "EmbedParams", "EmbedResult", "backend_names", "cache_boxes", "check_ready", "embed_cache",
           "make_backend"]


def __getattr__(name: str):
    """The backends and the stage load on first use: the CLI reads ``EmbedParams``' defaults without pandas, OpenCV
    or a backend (start-up stays fast)."""
    if name in ("BACKENDS", "EmbedBackend"):
        from . import backend
        return getattr(backend, name)
    if name in ("backend_names", "check_ready", "make_backend"):
        from . import registry
        return getattr(registry, name)
    if name in ("EmbedResult", "cache_boxes", "embed_cache"):
        from . import stage
        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
