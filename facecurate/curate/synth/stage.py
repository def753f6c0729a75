"""``synth``: turn labelled face photos into the competition layout, with masks drawn from each face's keypoints.

Each person gets up to 7 photos 384 x 512 (mask1..mask5, incorrect_mask, normal) on their own
backdrop, optionally with known label errors injected (``injected.csv``), a ground-truth file
(``truth.csv``) and each photo's true person mask (``masks/``).

The run streams in blocks of people, so memory stays bounded and an interruption costs at most a
block: a keypoint pass (decode, skip duplicates, detect; per block only keypoints are saved) walks
the draw order until enough people have a usable face; the people are then planned at once (ids,
injected errors: a pure function of the seed and who was accepted, whatever the block size) and a
render pass writes them block by block. Finished blocks live in ``OUT/.partial`` (``partial.py``):
re-running with the same options and inputs resumes after the last finished block and writes the
same bytes as an uninterrupted run; other options start over.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..cache_writer import fingerprint
from ..checksums import hash_bytes
from ..errors import InputError
from ..labels import DEFAULT_AGE_BINS, GENDER_NAMES, age_group, parse_age_bins
from ..locks import folder_lock
from ..outputs import check_separate, claim_folder
from ..progress import Progress, Steps
from ..readers import Problem
from .backdrops import Backdrops, list_backdrops
from .finish import write_contact, write_tables, write_truth
from .partial import OUTPUT_FILES, Stopper, SynthParts, SynthStopped
from .plan import PersonPlan, draw_order, parse_balance, parse_inject, parse_photos, plan_people
from .render import TRUTH_COLUMNS, write_person
from .scan import accepted_people, scan
from .scene import PHOTO_HEIGHT, PHOTO_WIDTH
from .sources import FaceSource, read_faces

__all__ = ["OUTPUT_FILES", "SynthResult", "SynthStopped", "synthesize", "synthesize_sources"]


@dataclass
class SynthResult:
    """What ``synthesize`` wrote: the folder, layout, people and photos written, faces skipped, errors injected."""

    out: Path
    layout: str
    people: int
    photos: int
    skipped: list[Problem]
    injected: pd.DataFrame
    groups: pd.DataFrame  # people per gender x age group, as written
    seconds: float
    detector: str
    contact: Path | None = None
    wanted: int = 0
    age_bins: tuple[int, ...] = DEFAULT_AGE_BINS
    duplicates: int = 0  # source faces skipped as duplicates of an earlier one
    resumed: int = 0  # blocks an earlier, interrupted run had finished

    @property
    def photos_per_s(self) -> float:
        return self.photos / self.seconds if self.seconds > 0 else float("nan")


@dataclass(frozen=True)
class _Options:
    """The parsed options the render pass needs."""

    seed: int
    bins: tuple[int, ...]
    fractions: dict
    eval_layout: bool
    quality: int
    stems: tuple[str, ...]
    backdrops: Backdrops | None
    person_masks: bool


def _key(sources: Sequence[FaceSource], params: dict, backdrops: Backdrops | None) -> str:
    """Fingerprint of the options and inputs (labels, files' sizes and times, in-memory images' bytes, backdrops)."""
    frame = pd.DataFrame({"path": [s.path for s in sources], "person": [s.person for s in sources],
                          "age": [s.age for s in sources], "gender": [s.gender for s in sources],
                          "race": [s.race for s in sources],
                          "image": [hash_bytes(s.image) if s.image is not None else "" for s in sources]})
    if backdrops is not None:
        st = [os.stat(backdrops.root / f) for f in backdrops.files]
        params = {**params, "backdrop_files": [[f, s.st_size, s.st_mtime_ns] for f, s in zip(backdrops.files, st)]}
    return fingerprint(params, frame)


def _render(parts: SynthParts, plans: list[PersonPlan], out: Path, o: _Options, pool: ThreadPoolExecutor,
            progress: Progress | None, stop: Stopper) -> int:
    """The render pass over the blocks not finished yet; returns the number of blocks."""
    block = parts.block
    n_blocks = (len(plans) + block - 1) // block
    pending = [b for b in range(n_blocks) if b not in parts.render_done]
    steps = Steps(progress, "render + write", len(plans), done=len(plans) - sum(len(plans[b * block:(b + 1) * block]) for b in pending))
    for b in pending:
        todo = plans[b * block:(b + 1) * block]
        rows: list[dict] = []
        for r in pool.map(lambda p: write_person(p, out, o.seed, o.eval_layout, o.quality, o.bins, o.stems, o.backdrops,
                                                 o.person_masks), todo):
            rows.extend(r)
            steps.advance()
        parts.save_truth(b, pd.DataFrame(rows, columns=TRUTH_COLUMNS))
        stop.tick()
    return n_blocks


def synthesize_sources(sources: Sequence[FaceSource], out: str | Path, people: int | None = None, seed: int = 0,
                       balance: str | Sequence[str] = (), inject: str | Mapping[str, float] | None = None,
                       eval_layout: bool = False, detector="mtcnn", device: str | None = None,
                       age_bins: str | Sequence[int] = DEFAULT_AGE_BINS, contact: int = 8, workers: int | None = None,
                       quality: int = 92, progress: Progress | None = None, problems: Sequence[Problem] = (),
                       photos: str | Sequence[str] | None = None, backdrops: str | Path | None = None,
                       backdrop_share: float | None = None, dedup: bool = True, person_masks: bool = True,
                       block: int = 256, detect_batch: int = 16, stop_after_blocks: int | None = None) -> SynthResult:
    """Detect keypoints on ``sources``, draw ``people`` people (balanced over ``balance``), render and write them.

    Writes the train layout (``train.csv`` + ``images/<folder>/<stem>.jpg``) or, with ``eval_layout``,
    ``info.csv`` + ``images/<sha1>.jpg``; plus ``truth.csv`` (per photo: true labels, mask style and wear,
    keypoints and face box in the photo, backdrop), ``masks/`` (true person masks, ``person_masks``),
    ``injected.csv``, ``skipped.csv``, ``contact.png``, ``synth.json``. ``photos`` picks which of the 7
    photos each person gets; ``backdrops`` is a folder of photos used behind a ``backdrop_share`` of the
    people (default 1.0); ``dedup`` skips duplicate faces. ``detector`` is a name for ``make_detector``
    or an open ``Detector`` (reused, not closed). ``block`` people per block (``detect_batch`` per
    detector call); ``stop_after_blocks`` stops (``SynthStopped``) after that many blocks, as an
    interruption would.
    """
    t0 = time.perf_counter()
    try:
        bins = parse_age_bins(age_bins)
    except ValueError as e:
        raise InputError(str(e)) from None
    keys = parse_balance(balance)
    fractions = parse_inject(inject)
    stems = parse_photos(photos)
    if eval_layout and fractions:
        raise InputError("--inject applies to the train layout only (the eval layout carries no labels)")
    if fractions.get("swap") and not {"incorrect_mask", "normal"} <= set(stems):
        raise InputError("--inject swap exchanges incorrect_mask and normal: --photos must include both")
    if people is not None and people < 1:
        raise InputError(f"--people must be at least 1, got {people}")
    if not 1 <= quality <= 100:
        raise InputError(f"--quality must be 1..100, got {quality}")
    if block < 1 or detect_batch < 1:
        raise InputError(f"--block must be at least 1, got {block}")
    if backdrops is None and backdrop_share is not None:
        raise InputError("--backdrop-share needs --backdrops (a folder of photos)")
    skipped: list[Problem] = list(problems)
    bd = None
    if backdrops is not None:
        bd, bad = list_backdrops(backdrops, 1.0 if backdrop_share is None else backdrop_share)
        skipped.extend(bad)
    block = -(-block // detect_batch) * detect_batch  # whole detector batches: the same files for any block size
    out = Path(out)
    check_separate(out, {Path(s.path).resolve().parent for s in sources if s.image is None} | ({bd.root} if bd else set()),
                   option="OUT")
    claim_folder(out, "synth", recognise=lambda p: (p / "synth.json").is_file(), option="OUT")
    det_param = detector if isinstance(detector, str) else detector.name
    params = {"people": people, "seed": seed, "balance": list(keys), "inject": fractions, "eval": eval_layout,
              "detector": det_param, "age_bins": list(bins), "quality": quality, "size": [PHOTO_WIDTH, PHOTO_HEIGHT],
              "photos": list(stems), "backdrops": str(bd.root) if bd else None, "backdrop_share": bd.share if bd else None,
              "dedup": dedup, "person_masks": person_masks, "detect_batch": detect_batch}
    o = _Options(seed, bins, fractions, eval_layout, quality, stems, bd, person_masks)
    with folder_lock(out, "synth output"):
        return _run(sources, out, params, o, people, keys, detector, device, dedup, block, detect_batch, contact,
                    workers, skipped, progress, stop_after_blocks, t0)


def _run(sources, out: Path, params: dict, o: _Options, people, keys, detector, device, dedup: bool, block: int,
         detect_batch: int, contact: int, workers, skipped: list[Problem], progress: Progress | None,
         stop_after_blocks: int | None, t0: float) -> SynthResult:
    key = _key(sources, {**params, "versions": _versions()}, o.backdrops)
    parts = SynthParts.open(out, key, block)
    if parts.reason and progress:
        progress.note(f"{out}: {parts.reason}")
    resumed = parts.scan_blocks + len(parts.render_done) if parts.state == "resume" else 0
    if resumed and progress:
        progress.note(f"resuming {out}: {resumed} block(s) already done")
    by_index: dict[str, list[int]] = {}
    for i, s in enumerate(sources):
        by_index.setdefault(s.person, []).append(i)
    names = sorted(by_index)
    cells = [tuple(({"age": age_group(sources[by_index[n][0]].age, o.bins), "gender": sources[by_index[n][0]].gender}[k])
                   for k in keys) for n in names]
    order = draw_order(cells, np.random.default_rng([o.seed, 0]))
    wanted = len(names) if people is None else min(people, len(names))
    stop = Stopper(stop_after_blocks)
    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
        if not parts.scan_complete:
            scan(parts, order, names, by_index, sources, wanted, detector, device, dedup, detect_batch, pool, progress, stop)
        records = parts.scan_records()  # from disk, as a resumed run reads them
        accepted = accepted_people(records, sources)
        by_person = {n: [sources[i] for i in idx] for n, idx in by_index.items()}
        plans, inj_rows = plan_people(accepted, by_person, o.fractions, o.seed, o.bins)
        n_blocks = _render(parts, plans, out, o, pool, progress, stop)
    skipped = skipped + [Problem(sources[r.src].path, r.reason) for r in records if r.status != "ok"]
    ids = write_truth(out, parts, n_blocks)
    injected = write_tables(out, plans, ids, inj_rows, skipped, o.eval_layout, o.seed)
    contact_path = write_contact(out, plans, inj_rows, o.stems, contact, o.eval_layout, o.seed)
    groups = pd.crosstab(pd.Series([GENDER_NAMES[p.gender] for p in plans], name="gender"),
                         pd.Series([age_group(p.age, o.bins) for p in plans], name="age_group")) if plans else pd.DataFrame()
    duplicates = sum(r.status == "duplicate" for r in records)
    if duplicates and progress:
        progress.note(f"{duplicates} duplicate face(s) skipped (the first copy drawn is kept; listed in skipped.csv)")
    seconds = time.perf_counter() - t0
    meta = {"params": params, "detector": parts.detector, "people": len(plans), "photos": len(ids), "skipped": len(skipped),
            "duplicates": duplicates, "injected": len(inj_rows), "blocks": n_blocks, "block": parts.block,
            "seconds": round(seconds, 2), "resumed_blocks": resumed, "fingerprint": parts.key, "versions": _versions()}
    tmp = out / "synth.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, out / "synth.json")
    parts.clear()
    return SynthResult(out, "eval" if o.eval_layout else "train", len(plans), len(ids), skipped, injected, groups,
                       seconds, parts.detector, contact_path, wanted, o.bins, duplicates, resumed)


def _versions() -> dict:
    """Versions of the packages that shape the files (a new detector or JPEG encoder may write other bytes)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"numpy": np.__version__, "opencv": cv2.__version__, "pandas": pd.__version__}
    for name in ("pillow", "torch", "facenet-pytorch", "mediapipe", "facecurate"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def synthesize(faces: str | Path, out: str | Path, **kwargs) -> SynthResult:
    """``synth`` on a folder of UTKFace-named photos or a CSV (see ``read_faces``); options as ``synthesize_sources``."""
    sources, problems = read_faces(faces)
    return synthesize_sources(sources, out, problems=problems, **kwargs)
