"""Photo quality of a cache: measures per photo, flags per defect, and the files ``inspect --cache`` writes.

The measures are computed from the cache whenever they are asked for (about 0.5 ms of CPU per photo; BENCHMARKS.md)
and written beside the report that asks (``quality.csv``), not into the cache: the cache's manifest is
covered by its checksums and is derived data that `crop` alone writes, and rewriting it would change
what every later stage verifies. Photo size needs no second look at the files: the cache's manifest
already holds each photo's ``width`` and ``height`` as decoded.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..cache import Cache, load_cache
from ..progress import QUIET, Progress
from .measures import MEASURE_COLUMNS, iter_batches, measure_rows
from .rules import DEFECTS, QualityParams, decide

KIND = "photo_quality"       # the kind of these flags in the relabel flags schema (audit.flags.FLAG_COLUMNS)
EXCLUDE_FIELD = "exclude"    # field / given 0 / suggested 1: the overrides.csv row that keeps the photo out of training
CANDIDATE_KINDS = ("grayscale",)  # a grey photo still shows its face: suggested as a low-confidence candidate only
ID_COLUMNS = ["row", "image_id", "person", "photo"]


@dataclass
class QualityResult:
    """``measures``: one row per usable cache row (ids, ``MEASURE_COLUMNS``, ``defects``); ``defects``: one row per
    photo x defect flagged (``kind``, ``rules``, ``score``, ``reason``); ``notes``: rules held back (too common)."""

    measures: pd.DataFrame
    defects: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    params: QualityParams = QualityParams()
    seconds: float = 0.0

    def counts(self) -> pd.Series:
        """Photos flagged per defect kind, every kind listed."""
        return self.defects["kind"].value_counts().reindex(list(DEFECTS), fill_value=0)


def measure_cache(cache: Cache, batch: int = 256, threads: int = 2, progress: Progress | None = None) -> pd.DataFrame:
    """Ids + ``MEASURE_COLUMNS`` for every usable row of ``cache`` (rows with a crop error are left out), batches
    measured in ``threads`` threads (OpenCV releases the GIL)."""
    progress = progress or QUIET
    rows = cache.usable()
    progress.update("photo quality", 0, len(rows))  # the bar starts with the work: its rate counts the first batch too
    with ThreadPoolExecutor(max(1, threads)) as pool:
        jobs = [(s, pool.submit(measure_rows, cache.images, cache.manifest, rows[s])) for s in iter_batches(len(rows), batch)]
        parts = []
        for s, job in jobs:
            parts.append(job.result())
            progress.update("photo quality", s.stop, len(rows))
    m = cache.manifest.iloc[rows]
    ids = pd.DataFrame({"row": rows, "image_id": m["image_id"].astype(str).to_numpy(),
                        "person": m["person"].astype(str).to_numpy(),
                        "photo": m["photo"].astype(str).to_numpy() if "photo" in m else ""})
    values = pd.concat(parts).reset_index(drop=True) if parts else pd.DataFrame(columns=MEASURE_COLUMNS)
    return pd.concat([ids, values], axis=1)


def _ratio(m: pd.DataFrame, col: str) -> np.ndarray:
    """The photo's value over its person's median value of ``col``."""
    return (m[col] / m.groupby("person")[col].transform("median")).to_numpy(np.float64)


def describe(kind: str, r: dict) -> str:
    """The measured values behind a ``kind`` flag, in words."""
    if kind in ("dark", "light"):
        return f"brightness {r['brightness']:.2f} (p5 {r['bright_p5']:.2f}, p99 {r['bright_p99']:.2f}), {r['_bright']:.2f}x the person's median"
    if kind == "blurry":
        return f"sharpness {r['sharpness']:.2f}, {r['_sharp']:.2f}x the person's median; edge strength {r['edges']:.1f}"
    if kind == "low_information":
        return f"entropy {r['entropy']:.2f} bits"
    if kind == "grayscale":
        return f"colour saturation {r['saturation']:.3f}"
    if kind == "small_face":
        return f"face {r['face_px']:.0f} px wide, {r['_face']:.2f}x the person's median"
    if kind == "odd_size":
        return f"photo {r['photo_w']:.0f} x {r['photo_h']:.0f}, {r['_side']:.2f}x the person's median size"
    return f"aspect w/h {r['aspect']:.2f}, {r['_aspect']:.2f}x the person's median"


def photo_quality(cache: str | Path | Cache, params: QualityParams = QualityParams(), batch: int = 256,
                  threads: int = 2, progress: Progress | None = None) -> QualityResult:
    """Measure every usable photo of ``cache`` and flag its defects (see ``rules``); notes go to ``progress`` too."""
    progress = progress or QUIET
    cache = cache if isinstance(cache, Cache) else load_cache(cache)
    t0 = time.perf_counter()
    m = measure_cache(cache, batch, threads, progress)
    found, held = decide(m, params)
    notes = [f"photo quality: {h['kind']} ({h['rule']} rule: {h['cut']}) fits {h['photos']} of {h['of']} photos "
             f"({h['share']:.0%}, over {params.max_share:.0%}): not flagged; it describes this data set, not a few photos "
             "- look at the measures in quality.csv and set your own cut" for h in held]
    for line in notes:
        progress.note(line)
    aux = m.assign(_bright=_ratio(m, "brightness"), _sharp=_ratio(m, "sharpness"), _face=_ratio(m, "face_px"),
                   _side=_ratio(m, "photo_side"), _aspect=_ratio(m, "aspect"))
    recs = aux.to_dict("records")
    found["score"] = 0.5 + 0.5 * (1 - np.exp(-2 * found["excess"].to_numpy(np.float64)))
    found["reason"] = [f"{k}: {describe(k, recs[i])}; cut: {c}" for i, k, c in zip(found["row"], found["kind"], found["cuts"])]
    for c in ("image_id", "person", "photo"):
        found[c] = m[c].to_numpy()[found["row"].to_numpy(int)] if len(found) else pd.Series(dtype=object)
    found["row"] = m["row"].to_numpy()[found["row"].to_numpy(int)] if len(found) else found["row"]
    per = found.groupby("row")["kind"].agg(" ".join) if len(found) else pd.Series(dtype=object)
    m["defects"] = m["row"].map(per).astype(object).fillna("")
    found = found.sort_values(["score", "row"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
    return QualityResult(m, found[[*ID_COLUMNS, "kind", "rules", "score", "reason"]], notes, params, time.perf_counter() - t0)


def to_flags(result: QualityResult) -> pd.DataFrame:
    """The defects as a relabel flags frame (``audit.flags.FLAG_COLUMNS``): kind ``photo_quality``, scope ``photo``,
    field ``exclude`` from 0 to 1 (overrides.csv's "leave this photo out of training"); grey photos as candidates."""
    d = result.defects
    return pd.DataFrame({"kind": KIND, "scope": "photo", "person": d["person"].astype(str), "image_id": d["image_id"].astype(str),
                         "photo": d["photo"].astype(str), "field": EXCLUDE_FIELD, "given": 0, "suggested": 1,
                         "score": d["score"].astype(float), "threshold": 0.5, "reason": d["reason"].astype(str),
                         "confidence": np.where(d["kind"].isin(CANDIDATE_KINDS), "low", "high")})


def photo_quality_flags(cache: str | Path | Cache, params: QualityParams = QualityParams(),
                        progress: Progress | None = None) -> pd.DataFrame:
    """One call for relabel-report: the photo-quality flags of ``cache`` in the flags schema (notes go to ``progress``).
    A photo with several defects gets one flag per defect; overrides.csv keeps one exclude row per photo."""
    return to_flags(photo_quality(cache, params, progress=progress))


def worst_sheet(result: QualityResult, cache: Cache, out_png: str | Path, n: int = 32, cols: int = 8) -> Path | None:
    """A contact sheet of up to ``n`` flagged photos: the highest-scoring ones of every defect kind in turn (scores
    of different kinds do not compare), each photo once, its defect and measured value in the caption."""
    from ..crop.contact import contact_sheet

    d = result.defects
    if d.empty:
        return None
    kinds = [k for k in DEFECTS if (d["kind"] == k).any()]
    per = max(1, n // len(kinds))
    picked = pd.concat([d[d["kind"] == k].head(per) for k in kinds]).drop_duplicates("row").head(n)
    images = [np.asarray(cache.images[r]) for r in picked["row"]]
    captions = [f"{r.reason.split(';')[0]}\n{r.person}/{r.photo}" for r in picked.itertuples()]
    title = (f"photo quality: the worst {per} per defect of {d['row'].nunique()} flagged photos "
             f"({', '.join(f'{k} {v}' for k, v in result.counts().items() if v)})")
    return contact_sheet(images, captions, out_png, cols=cols, thumb_h=160, title=title)


def write_quality(result: QualityResult, cache: Cache, out: str | Path, worst: int = 32) -> dict[str, Path]:
    """Write ``quality.csv`` (every photo's measures and defects), ``quality_flags.csv`` and ``quality.png`` into ``out``."""
    out = Path(out)
    files = {"quality": out / "quality.csv", "quality_flags": out / "quality_flags.csv"}
    result.measures.to_csv(files["quality"], index=False, float_format="%.4g")
    result.defects.to_csv(files["quality_flags"], index=False, float_format="%.4g")
    sheet = worst_sheet(result, cache, out / "quality.png", worst)
    if sheet is not None:
        files["quality_sheet"] = sheet
    return files
