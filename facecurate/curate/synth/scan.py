"""synth's keypoint pass: walk the draw order in blocks, decode, skip duplicates, detect, save each block's records.

A block is ``parts.block`` people in draw order, detected ``detect_batch`` at a time (whole batches,
so the files do not depend on the block size). The pass ends with the person who makes ``wanted``
people with a usable face; faces of later people in that batch are dropped, not listed.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..progress import Progress, Steps
from .dedup import Deduper
from .keypoints import FaceRecord, scan_people
from .params import SynthParams
from .partial import Stopper, SynthParts
from .sources import FaceSource


def release_freed_memory() -> None:
    """Hand memory the process freed back to the system (glibc's ``malloc_trim``; a no-op elsewhere).

    MTCNN allocates tensors of varying sizes per batch, and glibc keeps what torch frees in its heaps:
    measured on 2,000 UTKFace faces, RSS climbed by 150-350 MB within each block of 128 people when this
    ran once per block (back to the same 890-915 MB after each call). Called after each detector batch.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def accepted_people(records: Sequence[FaceRecord], sources: Sequence[FaceSource]) -> list[tuple[str, list]]:
    """People with at least one usable face, in draw order: (name, [(source, keypoints, box), ...])."""
    got: dict[int, tuple[str, list]] = {}
    for r in records:
        if r.status == "ok":
            got.setdefault(r.pos, (r.person, []))[1].append((sources[r.src], r.keypoints, r.box))
    return [got[p] for p in sorted(got)]


def scan(parts: SynthParts, order: list[int], names: list[str], by_index: Mapping[str, list[int]],
         sources: Sequence[FaceSource], wanted: int, params: SynthParams, pool: ThreadPoolExecutor,
         progress: Progress | None, stop: Stopper) -> None:
    """The keypoint pass, block by block from where ``parts`` stopped, until ``wanted`` people are accepted.

    ``params.detector`` is a name (made here: on the CPU one copy per core with one torch thread each) or an
    open ``Detector``; ``params.dedup`` checks each face against every face kept before it in draw order.
    """
    detector, device = params.detector, params.device
    done_records = parts.scan_records()
    accepted = len({r.pos for r in done_records if r.status == "ok"})
    steps = Steps(progress, "detect keypoints", wanted, done=accepted)
    deduper = Deduper() if params.dedup else None
    if deduper is not None:
        for r in done_records:
            if r.status in ("ok", "no_keypoints"):
                deduper.add(sources[r.src].path, r.key, np.uint64(r.phash), np.frombuffer(r.thumb, np.float32))
    from ..detect import default_threads, make_detector, on_cuda  # torch: imported only when faces need detecting

    cuda = on_cuda(device)
    if isinstance(detector, str):  # on the CPU: one detector copy per core, one torch thread each
        copies = 1 if cuda else min(2, os.cpu_count() or 1) if detector == "mtcnn" else default_threads(detector, device)
        det = make_detector(detector, device=device, threads=copies)
    else:
        det = detector
    try:
        with _torch_threads(None if cuda else 1):
            scan_blocks(parts, order, names, by_index, sources, wanted, det, deduper, params.detect_batch, pool, steps,
                        accepted, stop)
    finally:
        if isinstance(detector, str):
            det.close()


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (None: as they are). MTCNN on 1 thread per copy, copies side by
    side, beats 2 threads per call by 3x on a busy 2-core machine (torch's threads spin waiting for a core)."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def scan_blocks(parts: SynthParts, order: list[int], names: list[str], by_index: Mapping[str, list[int]],
                 sources: Sequence[FaceSource], wanted: int, det, deduper: Deduper | None, detect_batch: int,
                 pool: ThreadPoolExecutor, steps: Steps, accepted: int, stop: Stopper) -> None:
    """Keypoint-pass blocks from the first unfinished one until the pass is complete (see ``_scan``)."""
    b, block = parts.scan_blocks, parts.block
    while True:
        start = b * block
        positions = list(range(start, min(start + block, len(order))))
        records: list[FaceRecord] = []
        complete = not positions or accepted >= wanted
        for s in range(0, len(positions) if not complete else 0, detect_batch):
            batch = [(p, names[order[p]]) for p in positions[s:s + detect_batch]]
            found = scan_people(batch, by_index, sources, det, deduper, pool)
            release_freed_memory()
            ok_pos = sorted({r.pos for r in found if r.status == "ok"})
            if accepted + len(ok_pos) >= wanted:  # the wanted-th person ends the pass; later people are not listed
                cut = ok_pos[wanted - accepted - 1]
                found = [r for r in found if r.pos <= cut]
                ok_pos = ok_pos[:wanted - accepted]
                complete = True
            records.extend(found)
            accepted += len(ok_pos)
            steps.advance(len(ok_pos))
            if complete:
                break
        complete = complete or start + block >= len(order)
        parts.save_scan(b, records, complete, det.name)
        b += 1
        stop.tick()
        if complete:
            return
