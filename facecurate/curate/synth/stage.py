"""``synth``: turn labelled face photos into the competition layout, with masks drawn from each face's keypoints.

Each person gets up to 7 photos 384 x 512 (mask1..mask5, incorrect_mask, normal) on their own
backdrop, optionally with known label errors injected (``injected.csv``), a ground-truth file
(``truth.csv``) and each photo's true person mask (``masks/``).

The run streams in blocks of people, so memory stays bounded and an interruption costs at most a
block: a keypoint pass (decode, skip duplicates, detect; per block only keypoints are saved) walks
the draw order until enough people have a usable face; the people are then planned at once (ids,
injected errors: a pure function of the seed and who was accepted, whatever the block size) and a
render pass writes them block by block. Finished blocks live in ``OUT/.partial`` (``partial.py``):
re-running with the same options and inputs checks the finished blocks' files against their xxh3
(a cut or changed one is done again), resumes after the last finished block and writes the same
bytes as an uninterrupted run; other options start over, deleting only what synth wrote.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..cache_writer import fingerprint
from ..checksums import hash_bytes
from ..labels import DEFAULT_AGE_BINS, GENDER_NAMES, age_group
from ..outputs import claimed_output
from ..progress import Progress, Steps
from ..readers import Problem
from ..versions import package_versions
from .backdrops import Backdrops, list_backdrops
from .finish import write_contact, write_tables, write_truth
from .params import SynthParams
from .partial import OUTPUT_FILES, Stopper, SynthParts, SynthStopped
from .plan import PersonPlan, draw_order, plan_people
from .render import FILES_HASH, TRUTH_COLUMNS, image_ids, write_person
from .scan import accepted_people, scan
from .sources import FaceSource, read_faces

#: The packages whose versions shape the files (a new detector or JPEG encoder may write other bytes).
VERSION_PACKAGES = ("numpy", "opencv-contrib-python-headless", "pandas", "pillow", "torch", "facenet-pytorch", "mediapipe",
                    "facecurate")

__all__ = ["OUTPUT_FILES", "SynthParams", "SynthResult", "SynthStopped", "synthesize", "synthesize_sources"]


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


def _render(parts: SynthParts, plans: list[PersonPlan], out: Path, params: SynthParams, backdrops: Backdrops | None,
            pool: ThreadPoolExecutor, progress: Progress | None, stop: Stopper) -> int:
    """The render pass over the blocks not finished yet; returns the number of blocks."""
    block = parts.block
    n_blocks = (len(plans) + block - 1) // block
    pending = [b for b in range(n_blocks) if b not in parts.render_done]
    steps = Steps(progress, "render + write", len(plans), done=len(plans) - sum(len(plans[b * block:(b + 1) * block]) for b in pending))
    for b in pending:
        todo = plans[b * block:(b + 1) * block]
        parts.begin_render([i for p in todo for i in image_ids(p, params)])
        rows: list[dict] = []
        for r in pool.map(lambda p: write_person(p, out, params, backdrops), todo):
            rows.extend(r)
            steps.advance()
        parts.save_truth(b, pd.DataFrame(rows, columns=TRUTH_COLUMNS), [r[FILES_HASH] for r in rows])
        stop.tick()
    return n_blocks


def synthesize_sources(sources: Sequence[FaceSource], out: str | Path, params: SynthParams | None = None,
                       progress: Progress | None = None, problems: Sequence[Problem] = (),
                       stop_after_blocks: int | None = None, **options) -> SynthResult:
    """Detect keypoints on ``sources``, draw ``params.people`` people (balanced over ``params.balance``), render and
    write them.

    ``params``: every option of `synth` (``SynthParams``); ``options`` (its field names, e.g. ``people=300,
    seed=1``) replace its values. Writes the train layout (``train.csv`` + ``images/<folder>/<stem>.jpg``) or,
    with ``eval_layout``, ``info.csv`` + ``images/<sha1>.jpg``; plus ``truth.csv`` (per photo: true labels, mask
    style and wear, keypoints and face box in the photo, backdrop), ``masks/`` (true person masks),
    ``injected.csv``, ``skipped.csv``, ``contact.png``, ``synth.json``. ``problems``: the sources' reading
    problems, listed in skipped.csv. ``stop_after_blocks`` stops (``SynthStopped``) after that many blocks, as an
    interruption would.
    """
    t0 = time.perf_counter()
    params = SynthParams.of(params, **options).validate()
    skipped: list[Problem] = list(problems)
    bd = None
    if params.backdrops is not None:
        bd, bad = list_backdrops(params.backdrops, 1.0 if params.backdrop_share is None else params.backdrop_share)
        skipped.extend(bad)
    out = Path(out)
    inputs = {Path(s.path).resolve().parent for s in sources if s.image is None} | ({bd.root} if bd else set())
    with claimed_output(out, "synth", inputs, recognise=lambda p: (p / "synth.json").is_file(), option="OUT",
                        what="synth output"):
        return _run(sources, out, params, bd, skipped, progress, stop_after_blocks, t0)


def _run(sources: Sequence[FaceSource], out: Path, params: SynthParams, bd: Backdrops | None, skipped: list[Problem],
         progress: Progress | None, stop_after_blocks: int | None, t0: float) -> SynthResult:
    """The run in its claimed, locked folder: keypoint pass, plan, render pass, the assembled files, synth.json."""
    shaping = params.shaping(bd)
    versions = package_versions(VERSION_PACKAGES)
    key = _key(sources, {**shaping, "versions": versions}, bd)
    parts = SynthParts.open(out, key, params.block)
    if parts.reason and progress:
        progress.note(f"{out}: {parts.reason}")
    redo = parts.check(params.person_masks) if parts.state == "resume" else []
    if redo and progress:
        progress.note(f"{out}: {', '.join(redo)} changed since written (cut or damaged); redoing them")
    resumed = parts.scan_blocks + len(parts.render_done) if parts.state == "resume" else 0
    if resumed and progress:
        progress.note(f"resuming {out}: {resumed} block(s) already done")
    by_index: dict[str, list[int]] = {}
    for i, s in enumerate(sources):
        by_index.setdefault(s.person, []).append(i)
    names = sorted(by_index)
    bins = params.age_bins
    cells = [tuple(({"age": age_group(sources[by_index[n][0]].age, bins), "gender": sources[by_index[n][0]].gender}[k])
                   for k in params.balance) for n in names]
    order = draw_order(cells, np.random.default_rng([params.seed, 0]))
    wanted = len(names) if params.people is None else min(params.people, len(names))
    stop = Stopper(stop_after_blocks)
    with ThreadPoolExecutor(max_workers=params.workers or min(4, os.cpu_count() or 1)) as pool:
        if not parts.scan_complete:
            scan(parts, order, names, by_index, sources, wanted, params, pool, progress, stop)
        records = parts.scan_records()  # from disk, as a resumed run reads them
        accepted = accepted_people(records, sources)
        by_person = {n: [sources[i] for i in idx] for n, idx in by_index.items()}
        plans, inj_rows = plan_people(accepted, by_person, params.inject, params.seed, bins)
        n_blocks = _render(parts, plans, out, params, bd, pool, progress, stop)
    skipped = skipped + [Problem(sources[r.src].path, r.reason) for r in records if r.status != "ok"]
    ids = write_truth(out, parts, n_blocks)
    injected = write_tables(out, plans, ids, inj_rows, skipped, params.eval_layout, params.seed)
    contact_path = write_contact(out, plans, inj_rows, params.photos, params.contact, params.eval_layout, params.seed)
    groups = pd.crosstab(pd.Series([GENDER_NAMES[p.gender] for p in plans], name="gender"),
                         pd.Series([age_group(p.age, bins) for p in plans], name="age_group")) if plans else pd.DataFrame()
    duplicates = sum(r.status == "duplicate" for r in records)
    if duplicates and progress:
        progress.note(f"{duplicates} duplicate face(s) skipped (the first copy drawn is kept; listed in skipped.csv)")
    seconds = time.perf_counter() - t0
    meta = {"params": shaping, "detector": parts.detector, "people": len(plans), "photos": len(ids), "skipped": len(skipped),
            "duplicates": duplicates, "injected": len(inj_rows), "blocks": n_blocks, "block": parts.block,
            "seconds": round(seconds, 2), "resumed_blocks": resumed, "fingerprint": parts.key, "versions": versions}
    tmp = out / "synth.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, out / "synth.json")
    parts.clear()
    return SynthResult(out, "eval" if params.eval_layout else "train", len(plans), len(ids), skipped, injected, groups,
                       seconds, parts.detector, contact_path, wanted, bins, duplicates, resumed)


def synthesize(faces: str | Path, out: str | Path, params: SynthParams | None = None, progress: Progress | None = None,
               **options) -> SynthResult:
    """``synth`` on a folder of UTKFace-named photos or a CSV (see ``read_faces``); ``params`` and ``options`` as
    ``synthesize_sources``. The options are checked before the faces are read."""
    params = SynthParams.of(params, **options).validate()
    sources, problems = read_faces(faces)
    return synthesize_sources(sources, out, params, progress=progress, problems=problems)
