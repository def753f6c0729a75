"""The embedding backend interface, the table backends register in, and ``embed_rows`` (one batch through a backend).

A backend turns cached crops and their face boxes (cache pixels) into one float32 row per photo.
A photo it cannot embed gets a NaN row and a short reason; nothing is raised for one bad photo.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

WHY_SMALL = "face too small"  # the start of the reason every backend gives for a face under min_face


class EmbedBackend:
    """``name``, ``dim``, ``provenance()`` (model file hashes and package versions for meta.json), ``embed``, ``close``.

    A row is the identity embedding (its first ``identity_dim`` columns: what the identity checks compare), then
    one column per name in ``attributes`` (read from the same face: ``age``, ``male_logit``), if any."""

    name = "base"
    dim = 0
    attributes: tuple[str, ...] = ()

    @property
    def identity_dim(self) -> int:
        return self.dim - len(self.attributes)

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


def embed_rows(backend, images: np.ndarray, boxes: np.ndarray, skip: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """One batch of consecutive rows (their crops, cache-pixel boxes and ``skip`` reasons) -> vectors and reasons;
    rows with a skip reason are not looked at. The one place a batch is embedded, here and on Ray workers."""
    vec = np.full((len(images), backend.dim), np.nan, np.float32)
    why = [str(w) for w in skip]
    ok = np.flatnonzero(np.asarray(skip) == "")
    if len(ok):
        v, w = backend.embed(np.asarray(images)[ok], boxes[ok])
        vec[ok] = v
        for p, reason in zip(ok, w):
            why[p] = reason
    return vec, why
