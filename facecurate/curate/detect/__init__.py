"""Face detectors behind one interface, built by name: ``make_detector("auto")``.

Every detector takes RGB uint8 photos and returns, per photo, ``Face`` records sorted by score.
Names: ``mtcnn`` (batched MTCNN), ``mp-full`` / ``mp-short`` (BlazeFace), ``mediapipe`` (both
BlazeFace models fused), ``fused`` (all three), ``adaptive`` (BlazeFace first, MTCNN where unsure:
``auto`` on the CPU), ``mtcnn-first`` (``auto`` on CUDA). Measured trade-offs: docs/crop.md.
"""
from __future__ import annotations

import os

from ..devices import resolve_device
from ..errors import InputError
from .combine import AdaptiveDetector, FusedDetector, SharedDetector, ThreadedDetector
from .faces import (
    BOX_CALIBRATION,
    Detector,
    Face,
    box_iou,
    calibrate_box,
    default_min_face,
    fuse_faces,
    make_face,
    nms_faces,
)

DETECTOR_NAMES = ("auto", "mtcnn", "mediapipe", "mp-full", "mp-short", "fused", "adaptive", "mtcnn-first")
RECALL_THRESHOLDS = (0.5, 0.5, 0.5)  # MTCNN stage thresholds inside the combinations (facenet: 0.6, 0.7, 0.7)

__all__ = ["DETECTOR_NAMES", "RECALL_THRESHOLDS", "AdaptiveDetector", "BOX_CALIBRATION", "Detector", "Face", "FusedDetector",
           "SharedDetector", "ThreadedDetector", "box_iou", "calibrate_box", "default_min_face", "default_threads", "fuse_faces",
           "make_detector", "make_face", "nms_faces", "on_cuda", "MediaPipeDetector", "MTCNNDetector"]


def __getattr__(name: str):
    """The two detector classes load on first use: MTCNN pulls in torch, MediaPipe its native graphs."""
    if name == "MTCNNDetector":
        from .mtcnn import MTCNNDetector
        return MTCNNDetector
    if name == "MediaPipeDetector":
        from .blazeface import MediaPipeDetector
        return MediaPipeDetector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def on_cuda(device: str | None = None) -> bool:
    """True when ``device`` (None: the default, CUDA when present) is a CUDA device."""
    return resolve_device(device).startswith("cuda")


def default_threads(name: str, device: str | None = None) -> int:
    """Detector copies run side by side: one per core (at most 4) for the CPU detectors, one on CUDA or for MTCNN,
    whose torch ops already use every core."""
    if name == "mtcnn" or on_cuda(device):
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _mtcnn(device: str | None, min_face: int | None, thresholds: tuple[float, float, float] | None = None,
           threads: int | None = None) -> Detector:
    """MTCNN; torch and facenet's weights load here, only for the detectors that use it. ``threads``: torch's CPU
    threads while it detects (None: torch's default)."""
    from .mtcnn import MTCNNDetector

    return MTCNNDetector(device=device, min_face=min_face, threads=threads,
                         **({"thresholds": thresholds} if thresholds else {}))


def make_detector(name: str = "auto", device: str | None = None, min_face: int | None = None,
                  threads: int = 1, shared_mtcnn: Detector | None = None) -> Detector:
    """Build a detector by name (see DETECTOR_NAMES and the module doc): "auto" is "adaptive" on the CPU
    and "mtcnn-first" on CUDA; ``min_face`` (px, None = 10% of the shorter side) bounds MTCNN's pyramid;
    ``threads`` > 1 runs that many copies side by side (``ThreadedDetector``; see ``default_threads``), the
    combinations' MTCNN one model for all of them (``shared_mtcnn``, a ``SharedDetector``)."""
    if threads > 1:
        # beside the other copies' LiteRT work, one torch thread: a second one mostly spins (BENCHMARKS.md)
        shared = SharedDetector(lambda: _mtcnn(device, min_face, RECALL_THRESHOLDS, threads=1), name="mtcnn")
        return ThreadedDetector([make_detector(name, device, min_face, shared_mtcnn=shared) for _ in range(threads)])
    if name not in DETECTOR_NAMES:
        raise InputError(f"detector {name!r}: expected one of {', '.join(DETECTOR_NAMES)}")
    if name == "auto":
        name = "mtcnn-first" if on_cuda(device) else "adaptive"
    from .blazeface import MediaPipeDetector

    def mtcnn(thresholds=None):
        if shared_mtcnn is not None and thresholds == RECALL_THRESHOLDS:
            return shared_mtcnn
        return _mtcnn(device, min_face, thresholds)

    if name == "mtcnn":
        return mtcnn()
    if name == "mp-full":
        return MediaPipeDetector("full")
    if name == "mp-short":
        return MediaPipeDetector("short")
    if name == "mediapipe":
        return FusedDetector([MediaPipeDetector("full"), MediaPipeDetector("short", tile=True)], name="mediapipe")
    if name == "fused":
        return FusedDetector([MediaPipeDetector("full"), MediaPipeDetector("short", tile=True), mtcnn(RECALL_THRESHOLDS)],
                             name="fused")
    if name == "mtcnn-first":
        return AdaptiveDetector([mtcnn(RECALL_THRESHOLDS)], [MediaPipeDetector("full"), MediaPipeDetector("short", tile=True)],
                                name="mtcnn-first")
    return AdaptiveDetector([MediaPipeDetector("full"), MediaPipeDetector("short")],
                            lambda: [MediaPipeDetector("short", tile=True), mtcnn(RECALL_THRESHOLDS)], name="adaptive")
