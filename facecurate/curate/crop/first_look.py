"""Pass 1 of `crop`: decoded photos -> the detector's quick look -> every candidate kept -> a provisional pick, cropped.

The one place pass 1 happens: locally, chunk by chunk (``crop_chunk``, from ``stage``), and on Ray workers
(``ray_pass``). Both passes take the detector the same way, as an object with the ``Detector`` interface:
``OnDemandDetector`` opens the named detector the first time a pass asks it to look (a resumed run whose pass 1 is
done opens none unless pass 2 needs it); a Ray worker passes the detector it opened.
"""
from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pandas as pd

from ..cache_writer import CacheWriter
from ..decode import DEFAULT_MIN_SIDE, BadImage, check_image_file, read_rgb
from ..progress import Steps
from .cues import image_cues
from .fallback import DETECTED
from .geometry import crop_region, cut
from .params import CropParams
from .person_pass import FACE_COLS, REJECTED_COLS, candidates_json
from .segment_cleanup import crop_box
from .subject import Choice, choose, consensus_box, in_doubt, own_evidence, relative

CROP_COLS = ["crop_x1", "crop_y1", "crop_x2", "crop_y2"]
#: Pass-1 bookkeeping, kept in the chunk files (not in the manifest).
PASS1_COLS = ["candidates", "clear"]


class OnDemandDetector:
    """The detector ``params`` name, opened on first use (``detect_quick``, ``detect``, ``is_clear``, ``prepare``,
    ``name``); ``close`` releases it. ``opened`` says whether any pass needed it."""

    def __init__(self, params: CropParams, device: str | None = None) -> None:
        self.params, self.device, self._detector = params, device, None

    def _open(self):
        if self._detector is None:
            from ..detect import default_threads, make_detector  # LiteRT interpreters; torch only for MTCNN

            threads = self.params.detect_threads or default_threads(self.params.detector, self.device)
            self._detector = make_detector(self.params.detector, device=self.device, min_face=self.params.min_face,
                                           threads=threads)
        return self._detector

    @property
    def opened(self) -> bool:
        return self._detector is not None

    @property
    def name(self) -> str:
        return self._open().name

    def detect(self, images):
        return self._open().detect(images)

    def detect_quick(self, images):
        return self._open().detect_quick(images)

    def is_clear(self, faces, height: int, width: int) -> bool:
        return self._open().is_clear(faces, height, width)

    def prepare(self) -> None:
        self._open().prepare()

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()


def read_photo(path: str, min_side: int = DEFAULT_MIN_SIDE) -> tuple[np.ndarray | None, str]:
    """(RGB image, "") or (None, why it cannot be read or used)."""
    why = check_image_file(path, min_side)
    if why is not None:
        return None, why
    try:
        return read_rgb(path), ""
    except BadImage as e:
        return None, str(e)


def decoded(pool: ThreadPoolExecutor, indices: Sequence[int], paths: Sequence[str], ahead: int,
            min_side: int = DEFAULT_MIN_SIDE) -> Iterator[tuple[int, np.ndarray | None, str]]:
    """Yield (row, image, error) in order while up to ``ahead`` photos decode in ``pool`` threads."""
    it = iter(indices)
    queue: deque[tuple[int, Future]] = deque((i, pool.submit(read_photo, paths[i], min_side)) for i in itertools.islice(it, ahead))
    while queue:
        i, fut = queue.popleft()
        nxt = next(it, None)
        if nxt is not None:
            queue.append((nxt, pool.submit(read_photo, paths[nxt], min_side)))
        img, err = fut.result()
        yield i, img, err


def empty_row() -> dict:
    """A photo's pass-1 row before anything is known (no face, no crop, no error)."""
    row = {c: np.nan for c in FACE_COLS + CROP_COLS + REJECTED_COLS}
    row.update(score=np.nan, box_source="", error="", width=0, height=0, n_faces=0, detector="", off_person=False,
               candidates="", clear=False)
    return row


class FullLookForecast:
    """Whether pass 2 will give some photo the detector's full look, told during pass 1, so the slower detectors can
    load in its shadow (``Detector.prepare``; torch and MTCNN take ~3 s here).

    A photo is in doubt as pass 2 decides it (``subject.in_doubt``): no face, a close call, or a winner off the data
    set's framing, here the framing of the confident picks seen so far (``consensus_box``, renewed every ``every``
    photos once ``min_picks`` are in). A plain set in which no photo is in doubt loads nothing; after the first
    photo in doubt the forecast is done."""

    def __init__(self, min_picks: int = 32, every: int = 64) -> None:
        self.min_picks, self.every = min_picks, every
        self.picks: list[np.ndarray] = []
        self.scores: list[float] = []
        self.prior: np.ndarray | None = None
        self.done = False

    def in_doubt(self, pick: Choice, boxes: np.ndarray, scores, width: int, height: int) -> bool:
        """True for the first photo in doubt (then never again)."""
        if self.done:
            return False
        if pick.index is not None:
            self.picks.append(relative(boxes[pick.index], width, height))
            self.scores.append(float(scores[pick.index]))
            if len(self.picks) >= self.min_picks and (self.prior is None or len(self.picks) % self.every == 0):
                self.prior = consensus_box(np.array(self.picks), self.scores)
        self.done = in_doubt(pick, boxes, width, height, self.prior)
        return self.done


def quick_look(batch: Sequence[tuple[int, np.ndarray | None, str]], detector) -> list[list]:
    """The detector's quick look at the readable photos of ``batch`` (row, image or None, error): their faces, in order."""
    images = [img for _, img, _ in batch if img is not None]
    return detector.detect_quick(images) if images else []


def first_look(batch: Sequence[tuple[int, np.ndarray | None, str]], detector, background, params: CropParams,
               out_hw: tuple[int, int], faces: list[list] | None = None,
               forecast: FullLookForecast | None = None) -> list[tuple[dict, np.ndarray | None]]:
    """Pass 1 on decoded photos (row, image or None, error): the detector's quick look (``faces``, when the caller
    looked already: ``quick_look``), every candidate kept, the provisional pick (the subject rule on its own photo's
    cues) cropped. Returns (pass-1 row, crop or None) per photo, in order.
    The one place pass 1 happens, locally (``crop_chunk``) and on Ray workers (``ray_pass``). With a ``forecast``, the
    first photo it finds in doubt has the detector ``prepare`` its full look, which pass 2 will need (a Ray worker,
    which does not run pass 2, passes none)."""
    out = [(empty_row(), None) for _ in batch]
    good = []
    for k, (_, img, err) in enumerate(batch):
        if img is None:
            out[k][0]["error"] = err
        else:
            out[k][0]["width"], out[k][0]["height"] = int(img.shape[1]), int(img.shape[0])
            good.append((k, img))
    if faces is None:
        faces = quick_look(batch, detector)
    for (k, img), found in zip(good, faces):
        rec = out[k][0]
        h, w = img.shape[:2]
        boxes = np.array([f.box for f in found], dtype=np.float64).reshape(-1, 4)
        focus, below = image_cues(img, boxes)
        rec.update(n_faces=len(found), candidates=candidates_json(found, focus, below),
                   clear=bool(detector.is_clear(found, h, w)))
        scores = [f.score for f in found]
        pick = choose(own_evidence(boxes, scores, w, h, focus, below), boxes)
        if forecast is not None and forecast.in_doubt(pick, boxes, scores, w, h):
            detector.prepare()
        j = pick.index
        if j is None:
            continue
        face = found[j]
        region = crop_region(face.box, w, h, params.margins, params.aspect, params.edge)
        rec.update(zip(FACE_COLS, (float(v) for v in face.box)))
        rec.update(zip(CROP_COLS, region))
        rec.update(score=float(face.score), box_source=DETECTED, detector=face.source or detector.name)
        out[k] = (rec, render_crop(img, region, out_hw, params.pad, background, face.box))
    return out


def crop_chunk(writer: CacheWriter, c: int, stream: Iterator, detector, background, params: CropParams,
               out_hw: tuple[int, int], steps: Steps, forecast: FullLookForecast | None = None) -> pd.DataFrame:
    """Pass 1 of chunk ``c`` here: decoded photos from ``stream`` through ``first_look``, crops into the cache.

    The quick look at the next batch runs in a thread while this one's candidates are scored and cropped: the
    detector's copies run native code without the GIL, so the Python work here no longer leaves them idle."""
    idx = list(writer.chunk_range(c))
    starts = list(range(0, len(idx), params.batch))
    recs = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="quick-look") as ahead:
        def submit(b: int):
            batch = [next(stream) for _ in idx[b:b + params.batch]]
            return batch, ahead.submit(quick_look, batch, detector)

        nxt = submit(starts[0]) if starts else None
        for k in range(len(starts)):
            batch, looking = nxt
            faces = looking.result()
            nxt = submit(starts[k + 1]) if k + 1 < len(starts) else None
            for (i, _, _), (rec, crop) in zip(batch, first_look(batch, detector, background, params, out_hw, faces,
                                                                  forecast)):
                writer.images[i] = 0 if crop is None else crop
                recs.append(rec)
            steps.advance(len(batch))
    return pd.DataFrame(recs)


def render_crop(img: np.ndarray, region, out_hw: tuple[int, int], pad: str, background, face=None) -> np.ndarray:
    """The crop of ``region`` at ``out_hw``, its background removed (the ``face`` box, photo pixels, kept) when asked."""
    crop = cut(img, region, out_hw, pad)
    if background is None:
        return crop
    return background.apply(crop, crop_box(face, region, out_hw) if face is not None else None)
