"""`embed`: one face embedding per cached photo (dlib's face-recognition ResNet by default), beside images.npy.

``embed_cache(cache, EmbedParams(...))`` is the stage. Inside: ``backend`` (the interface and the
registry by name), ``dlib_backend`` (landmarks + aligned chip + descriptor), ``dlib_resnet`` (dlib's
ResNet as a PyTorch module, weights read from its .dat), ``dlib_models`` (where dlib's model files
are, checked), ``facenet_backend`` (InceptionResnetV1), ``store`` (the resumable pass and its files),
``stage`` (the whole pass), ``distributed`` (``--ray``: chunks on Ray actors).
"""
from .backend import BACKENDS, EmbedBackend
from .registry import backend_names, check_ready, make_backend
from .stage import EmbedParams, EmbedResult, cache_boxes, embed_cache

__all__ = ["BACKENDS", "EmbedBackend", "EmbedParams", "EmbedResult", "backend_names", "cache_boxes", "check_ready", "embed_cache",
           "make_backend"]
