"""Detectors made of detectors: fused (every photo through all), adaptive (the slow ones only where the quick
ones are unsure), threaded (copies side by side, for MediaPipe's GIL-free graphs) and shared (one model for every
copy, for torch's MTCNN)."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from .faces import Detector, Face, fuse_faces


def _fuse_runs(runs: Sequence[list[list[Face]]], n: int, iou: float, min_score: float) -> list[list[Face]]:
    return [[f for f in fuse_faces([r[i] for r in runs], iou) if f.score >= min_score] for i in range(n)]


class FusedDetector(Detector):
    """Runs several detectors on every photo and fuses their faces (``fuse_faces``), keeping fused faces
    scoring ``min_score`` or more: the highest recall, at the sum of the detectors' costs."""

    def __init__(self, detectors: Sequence[Detector], iou: float = 0.4, min_score: float = 0.5, name: str = "fused") -> None:
        self.detectors, self.iou, self.min_score, self.name = list(detectors), iou, min_score, name

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return _fuse_runs([d.detect(images) for d in self.detectors], len(images), self.iou, self.min_score)

    def close(self) -> None:
        for d in self.detectors:
            d.close()


class AdaptiveDetector(Detector):
    """Quick detectors on every photo; the extra (slower) ones only where the quick ones do not agree on
    exactly one face that is confident (fused score >= ``confident``) and large (shorter box side >=
    ``large`` x the photo's shorter side). A portrait with a clear subject costs the quick detectors
    only; a crowd, a small, a hard (masked, turned) or no face gets the full fusion.

    ``extra`` may be a callable that builds the extra detectors on first need: MTCNN then costs its
    torch import only in runs that use it; ``prepare`` builds them in a background thread (torch's import and
    the weights' load, ~3 s here, then overlap the quick look). ``n_photos`` / ``n_extra`` count photos seen /
    sent to the extra detectors."""

    def __init__(self, quick: Sequence[Detector], extra: Sequence[Detector] | Callable[[], Sequence[Detector]],
                 confident: float = 0.8, large: float = 0.2, iou: float = 0.4, min_score: float = 0.5,
                 name: str = "adaptive") -> None:
        self.quick = list(quick)
        self._extra, self._make_extra = (None, extra) if callable(extra) else (list(extra), None)
        self.confident, self.large, self.iou, self.min_score, self.name = confident, large, iou, min_score, name
        self.n_photos = self.n_extra = 0
        self._building = threading.Lock()
        self._preparing: threading.Thread | None = None

    @property
    def extra(self) -> list[Detector]:
        with self._building:
            if self._extra is None:
                self._extra = list(self._make_extra())
        return self._extra

    def prepare(self) -> None:
        if self._preparing is None:
            self._preparing = threading.Thread(target=self._build_quietly, name="prepare-detectors", daemon=True)
            self._preparing.start()

    def _build_quietly(self) -> None:
        try:
            for d in self.extra:
                d.prepare()
        except Exception:  # noqa: BLE001 - the full look builds them again and raises where the user sees it
            pass

    def needs_extra(self, faces: Sequence[Face], height: int, width: int) -> bool:
        """False only for a clear portrait: one face, confident and large."""
        if len(faces) != 1:
            return True
        f = faces[0]
        return f.score < self.confident or min(f.width, f.height) < self.large * min(height, width)

    def is_clear(self, faces: Sequence[Face], height: int, width: int) -> bool:
        return not self.needs_extra(faces, height, width)

    def detect_quick(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """The quick detectors fused, faces scoring ``min_score`` or more (no extra detector runs)."""
        out = _fuse_runs([d.detect(images) for d in self.quick], len(images), self.iou, 0.0)
        self.n_photos += len(images)
        return [[f for f in faces if f.score >= self.min_score] for faces in out]

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        quick_runs = [d.detect(images) for d in self.quick]
        n = len(images)
        out = _fuse_runs(quick_runs, n, self.iou, 0.0)
        redo = [i for i in range(n) if self.needs_extra(out[i], *images[i].shape[:2])]
        extra_runs = [d.detect([images[i] for i in redo]) for d in self.extra] if redo else []
        for k, i in enumerate(redo):
            out[i] = fuse_faces([r[i] for r in quick_runs] + [r[k] for r in extra_runs], self.iou)
        self.n_photos += n
        self.n_extra += len(redo)
        return [[f for f in faces if f.score >= self.min_score] for faces in out]

    def close(self) -> None:
        if self._preparing is not None:
            self._preparing.join()
        for d in self.quick + (self._extra or []):
            d.close()


class ThreadedDetector(Detector):
    """Several copies of one detector, each batch split between them and run in threads.

    LiteRT's interpreters run native code without the GIL, so on a 2-core CPU two copies detect a batch
    about 1.8x faster than one; one copy per thread, since an interpreter is not re-entrant.
    """

    def __init__(self, copies: Sequence[Detector]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.copies = list(copies)
        self.name = self.copies[0].name
        self._pool = ThreadPoolExecutor(max_workers=len(self.copies), thread_name_prefix="detect")

    def _split(self, method: str, images: Sequence[np.ndarray]) -> list[list[Face]]:
        k = len(self.copies)
        if k == 1 or len(images) < 2:
            return getattr(self.copies[0], method)(images)
        step = -(-len(images) // k)
        parts = [list(images[j:j + step]) for j in range(0, len(images), step)]
        results = self._pool.map(lambda cp: getattr(cp[0], method)(cp[1]), zip(self.copies, parts))
        return [faces for part in results for faces in part]

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return self._split("detect", images)

    def detect_quick(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return self._split("detect_quick", images)

    def is_clear(self, faces: Sequence[Face], height: int, width: int) -> bool:
        return self.copies[0].is_clear(faces, height, width)

    def prepare(self) -> None:
        for d in self.copies:
            d.prepare()

    @property
    def n_photos(self) -> int:
        return sum(getattr(d, "n_photos", 0) for d in self.copies)

    @property
    def n_extra(self) -> int:
        return sum(getattr(d, "n_extra", 0) for d in self.copies)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for d in self.copies:
            d.close()


class SharedDetector(Detector):
    """One detector behind several ``ThreadedDetector`` copies: built on first use, one call at a time.

    For MTCNN: torch's operators already use every core, so a second model would cost its load (~1.4 s here) and
    oversubscribe the cores for nothing. Each copy calls it with its own share of the photos, as it would its own.
    """

    def __init__(self, make: Callable[[], Detector], name: str = "shared") -> None:
        self._make, self._detector, self._lock, self._name = make, None, threading.Lock(), name

    def _get(self) -> Detector:
        if self._detector is None:
            self._detector = self._make()
        return self._detector

    @property
    def name(self) -> str:
        return self._detector.name if self._detector is not None else self._name

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        with self._lock:
            return self._get().detect(images)

    def prepare(self) -> None:
        with self._lock:
            self._get()

    def close(self) -> None:
        with self._lock:
            if self._detector is not None:
                self._detector.close()
