"""synth's resumable bookkeeping: ``OUT/.partial/`` holds every finished block until the output is assembled.

A run has two passes over blocks of people. The keypoint pass walks the draw order and saves, per
block, one record per source face (``faces_NNNNNN.parquet``: status, keypoints, box and the face's
duplicate signature). The render pass writes the photos of a block of planned people and saves their
truth rows (``truth_NNNNNN.csv``, already formatted, no header). ``progress.json`` (written
atomically after each part) lists the finished blocks with the run's fingerprint: a run with the same
options and inputs resumes after the last finished block; anything else starts over. Like the crop
cache's writer (``curate.cache_writer``); the caller holds the folder's lock.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .keypoints import FaceRecord
from .person_mask import MASKS

PARTIAL, PROGRESS = ".partial", "progress.json"
#: Everything synth writes in OUT: replaced when a run starts over.
OUTPUT_FILES = ("train.csv", "info.csv", "truth.csv", "injected.csv", "skipped.csv", "contact.png", "synth.json")
OUTPUT_FOLDERS = ("images", MASKS)


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def _records_frame(records: list[FaceRecord]) -> pd.DataFrame:
    def flat(a, n):
        return [float(v) for v in np.asarray(a, np.float64).reshape(-1)] if a is not None else [np.nan] * n
    rows = [{"pos": r.pos, "person": r.person, "src": r.src, "status": r.status, "reason": r.reason,
             **dict(zip([f"kp{i}" for i in range(8)], flat(r.keypoints, 8))),
             **dict(zip([f"box{i}" for i in range(4)], flat(r.box, 4))),
             "phash": int(np.array(r.phash, np.uint64).view(np.int64)), "thumb": r.thumb, "key": r.key} for r in records]
    return pd.DataFrame(rows, columns=["pos", "person", "src", "status", "reason", *[f"kp{i}" for i in range(8)],
                                       *[f"box{i}" for i in range(4)], "phash", "thumb", "key"])


def _records_of(frame: pd.DataFrame) -> list[FaceRecord]:
    out = []
    kp_cols, box_cols = [f"kp{i}" for i in range(8)], [f"box{i}" for i in range(4)]
    kps, boxes = frame[kp_cols].to_numpy(np.float64), frame[box_cols].to_numpy(np.float64)
    hashes = frame["phash"].to_numpy(np.int64).view(np.uint64)
    for i, r in enumerate(frame.itertuples(index=False)):
        ok = r.status == "ok"
        out.append(FaceRecord(int(r.pos), str(r.person), int(r.src), str(r.status), str(r.reason),
                              kps[i].reshape(4, 2).astype(np.float32) if ok else None,
                              boxes[i].astype(np.float32) if ok else None, int(hashes[i]), bytes(r.thumb), str(r.key)))
    return out


class SynthStopped(RuntimeError):
    """Raised when ``stop_after_blocks`` blocks are done: the run stops as if interrupted and can be resumed."""


class Stopper:
    """Counts finished blocks and stops the run (``SynthStopped``) after ``n`` of them (None: never); a test hook."""

    def __init__(self, n: int | None) -> None:
        self.left = n

    def tick(self) -> None:
        if self.left is not None:
            self.left -= 1
            if self.left <= 0:
                raise SynthStopped("stopped after the requested number of blocks; run again to resume")


class SynthParts:
    """The ``.partial`` folder of one output; ``state`` says what ``open`` found: "fresh" or "resume"."""

    def __init__(self, out: Path, key: str, progress: dict, state: str, reason: str = "") -> None:
        self.out, self.key, self.progress, self.state, self.reason = out, key, progress, state, reason
        self.dir = out / PARTIAL

    @classmethod
    def open(cls, out: str | Path, key: str, block: int) -> "SynthParts":
        """Resume ``out`` when its ``.partial`` was left by a run with fingerprint ``key``, else start it over.

        Starting over deletes synth's own files in ``out`` (``OUTPUT_FILES``, ``images/``, ``masks/``,
        ``.partial/``); ``out`` must already be claimed as a synth folder.
        """
        out = Path(out)
        prog_p = out / PARTIAL / PROGRESS
        reason = ""
        if prog_p.is_file():
            try:
                prog = json.loads(prog_p.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                prog = {}
            if isinstance(prog, dict) and prog.get("fingerprint") == key:
                return cls(out, key, prog, "resume")
            reason = "the interrupted run there had other options or inputs; starting over"
        for name in OUTPUT_FILES:
            (out / name).unlink(missing_ok=True)
        for name in (*OUTPUT_FOLDERS, PARTIAL):
            shutil.rmtree(out / name, ignore_errors=True)
        (out / PARTIAL).mkdir(parents=True)
        parts = cls(out, key, {"fingerprint": key, "block": int(block), "detector": "", "scan_blocks": 0,
                               "scan_complete": False, "render_done": []}, "fresh", reason)
        parts._save()
        return parts

    def _save(self) -> None:
        _write_json_atomic(self.dir / PROGRESS, self.progress)

    @property
    def block(self) -> int:
        return int(self.progress["block"])

    @property
    def scan_blocks(self) -> int:
        """Keypoint-pass blocks finished (they are finished in order)."""
        return int(self.progress["scan_blocks"])

    @property
    def scan_complete(self) -> bool:
        return bool(self.progress["scan_complete"])

    @property
    def render_done(self) -> set[int]:
        return {int(b) for b in self.progress["render_done"]}

    @property
    def detector(self) -> str:
        return str(self.progress.get("detector", ""))

    def save_scan(self, b: int, records: list[FaceRecord], complete: bool, detector: str) -> None:
        """Record keypoint-pass block ``b`` (its face records) as finished; ``complete`` when the pass is over."""
        part = self.dir / f"faces_{b:06d}.parquet"
        _records_frame(records).to_parquet(part.with_suffix(".tmp"), index=False)
        os.replace(part.with_suffix(".tmp"), part)
        self.progress.update(scan_blocks=b + 1, scan_complete=bool(complete), detector=detector or self.detector)
        self._save()

    def scan_records(self) -> list[FaceRecord]:
        """The face records of every finished keypoint-pass block, in order."""
        out: list[FaceRecord] = []
        for b in range(self.scan_blocks):
            out.extend(_records_of(pd.read_parquet(self.dir / f"faces_{b:06d}.parquet")))
        return out

    def save_truth(self, b: int, rows: pd.DataFrame) -> None:
        """Record render-pass block ``b`` as finished with its truth rows (formatted as truth.csv's body)."""
        part = self.dir / f"truth_{b:06d}.csv"
        rows.to_csv(part.with_suffix(".tmp"), index=False, header=False, float_format="%.2f")
        os.replace(part.with_suffix(".tmp"), part)
        self.progress["render_done"] = sorted(self.render_done | {b})
        self._save()

    def truth_part(self, b: int) -> Path:
        return self.dir / f"truth_{b:06d}.csv"

    def clear(self) -> None:
        """Drop ``.partial`` once the output is assembled."""
        shutil.rmtree(self.dir, ignore_errors=True)
