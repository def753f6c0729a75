"""synth's resumable bookkeeping: ``OUT/.partial/`` holds every finished block until the output is assembled.

A run has two passes over blocks of people. The keypoint pass walks the draw order and saves, per
block, one record per source face (``faces_NNNNNN.parquet``: status, keypoints, box and the face's
duplicate signature). The render pass writes the photos of a block of planned people and saves their
truth rows (``truth_NNNNNN.csv``, already formatted, no header). ``progress.json`` (written
atomically after each part) lists the finished blocks with the run's fingerprint and the xxh3 of each
part and of each render block's photos and person masks: a run with the same options and inputs
checks them (``check``), redoes a block whose files were cut or changed, and resumes after the last
finished block; anything else starts over. Before a render block writes a photo its image ids go to
``files.txt``, so starting over deletes only what synth wrote (``owned_files``) and refuses when
``images/`` or ``masks/`` hold anything else. Like the crop cache's writer (``curate.cache_writer``);
the caller holds the folder's lock.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..checksums import file_hash, hash_bytes
from ..chunks import write_progress
from ..errors import InputError, printable
from .keypoints import FaceRecord
from .person_mask import MASKS

PARTIAL, PROGRESS, FILES = ".partial", "progress.json", "files.txt"
#: Everything synth writes in OUT: replaced when a run starts over.
OUTPUT_FILES = ("train.csv", "info.csv", "truth.csv", "injected.csv", "skipped.csv", "contact.png", "synth.json")
OUTPUT_FOLDERS = ("images", MASKS)



def _read_ids(path: Path, csv: bool) -> list[str]:
    """The image ids a truth table (``csv``: its first column) or ``files.txt`` (one a line) lists; [] when unreadable."""
    try:
        if csv:
            return list(pd.read_csv(path, usecols=[0], dtype=str, keep_default_na=False).iloc[:, 0])
        return [line for line in path.read_text().splitlines() if line]
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return []


def owned_files(out: Path) -> set[Path]:
    """Every file under ``out/images`` and ``out/masks`` that synth wrote there: the photos (and their person masks)
    truth.csv, the finished truth parts and ``files.txt`` (the blocks begun) list."""
    ids: list[str] = _read_ids(out / "truth.csv", csv=True) + _read_ids(out / PARTIAL / FILES, csv=False)
    for part in sorted((out / PARTIAL).glob("truth_*.csv")):
        try:
            if os.path.getsize(part):
                ids += list(pd.read_csv(part, header=None, usecols=[0], dtype=str, keep_default_na=False)[0])
        except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
            pass
    return {p for i in ids for p in (out / "images" / i, out / MASKS / Path(i).with_suffix(".png"))}


def _foreign_files(out: Path) -> list[Path]:
    """Files under ``out/images`` and ``out/masks`` that synth did not write (the user's), sorted."""
    owned = owned_files(out)
    found = []
    for folder in OUTPUT_FOLDERS:
        for dirpath, _, filenames in os.walk(out / folder):
            found += [p for p in (Path(dirpath) / n for n in filenames) if p not in owned]
    return sorted(found)


def _remove_output(out: Path) -> None:
    """Delete what synth wrote in ``out`` (refused, before anything is deleted, when images/ or masks/ hold other files)."""
    foreign = _foreign_files(out)
    if foreign:
        more = f" (and {len(foreign) - 1} more file(s) synth did not write)" if len(foreign) > 1 else ""
        raise InputError(f"{printable(foreign[0])}: not written by synth{more}; this run starts {out} over, which "
                         f"replaces images/ and masks/: move your files out of {out} (or choose another OUT) and run "
                         f"again; nothing was changed")
    for name in OUTPUT_FILES:
        (out / name).unlink(missing_ok=True)
    for name in (*OUTPUT_FOLDERS, PARTIAL):
        shutil.rmtree(out / name, ignore_errors=True)


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


def photos_hash(row_hashes: list[str]) -> str:
    """One render block's checksum from its rows' file hashes, in truth order."""
    return hash_bytes("\n".join(row_hashes).encode())


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
        ``.partial/``), and raises InputError instead, naming the file, when ``images/`` or ``masks/`` hold a file
        synth did not write; ``out`` must already be claimed as a synth folder.
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
        _remove_output(out)
        (out / PARTIAL).mkdir(parents=True)
        parts = cls(out, key, {"fingerprint": key, "block": int(block), "detector": "", "scan_blocks": 0,
                               "scan_complete": False, "render_done": [], "hashes": {}}, "fresh", reason)
        parts._save()
        return parts

    def _save(self) -> None:
        write_progress(self.dir / PROGRESS, self.progress)

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

    @property
    def hashes(self) -> dict[str, str]:
        """xxh3 of each finished part (by file name) and of each render block's photos (``photos_NNNNNN``)."""
        return self.progress.setdefault("hashes", {})

    def check(self, person_masks: bool) -> list[str]:
        """Drop the finished blocks whose files were cut or changed since they were written, so they are done again:
        a keypoint part (the pass resumes from the first bad one), a truth part, or a photo / person mask of a
        render block (``person_masks``: the run writes them). Returns what was dropped, in words; empty when sound.
        Parts an older run recorded without a checksum must exist."""
        bad: list[str] = []
        for b in range(self.scan_blocks):
            if not self._sound(self.dir / f"faces_{b:06d}.parquet"):
                bad.append(f"keypoint block {b}")
                self.progress.update(scan_blocks=b, scan_complete=False)
                break
        done = set(self.render_done)
        for b in sorted(done):
            part = self.truth_part(b)
            if not self._sound(part):
                bad.append(f"render block {b} (its truth rows)")
            elif self.hashes.get(f"photos_{b:06d}") and self.hashes[f"photos_{b:06d}"] != self._photos_hash(part, person_masks):
                bad.append(f"render block {b} (its photos)")
            else:
                continue
            done.discard(b)
        if bad:
            self.progress["render_done"] = sorted(done)
            self._save()
        return bad

    def _sound(self, part: Path) -> bool:
        want = self.hashes.get(part.name)
        try:
            return file_hash(part) == want if want else part.is_file()
        except OSError:
            return False

    def _photos_hash(self, part: Path, person_masks: bool) -> str:
        """The xxh3 of a render block's written files, as ``save_truth`` records it from the render pass."""
        ids = list(pd.read_csv(part, header=None, usecols=[0], dtype=str, keep_default_na=False)[0]) if os.path.getsize(part) else []
        rows = []
        try:
            for i in ids:
                h = file_hash(self.out / "images" / i)
                if person_masks:
                    h += file_hash(self.out / MASKS / Path(i).with_suffix(".png"))
                rows.append(h)
        except OSError:
            return ""
        return photos_hash(rows)

    def begin_render(self, ids: list[str]) -> None:
        """Note the image ids a render block is about to write (``files.txt``), so a start-over knows them as synth's."""
        with open(self.dir / FILES, "a") as f:
            f.write("".join(f"{i}\n" for i in ids))

    def save_scan(self, b: int, records: list[FaceRecord], complete: bool, detector: str) -> None:
        """Record keypoint-pass block ``b`` (its face records) as finished; ``complete`` when the pass is over."""
        part = self.dir / f"faces_{b:06d}.parquet"
        _records_frame(records).to_parquet(part.with_suffix(".tmp"), index=False)
        os.replace(part.with_suffix(".tmp"), part)
        self.hashes[part.name] = file_hash(part)
        self.progress.update(scan_blocks=b + 1, scan_complete=bool(complete), detector=detector or self.detector)
        self._save()

    def scan_records(self) -> list[FaceRecord]:
        """The face records of every finished keypoint-pass block, in order."""
        out: list[FaceRecord] = []
        for b in range(self.scan_blocks):
            out.extend(_records_of(pd.read_parquet(self.dir / f"faces_{b:06d}.parquet")))
        return out

    def save_truth(self, b: int, rows: pd.DataFrame, files: list[str]) -> None:
        """Record render-pass block ``b`` as finished with its truth rows (formatted as truth.csv's body) and its
        written files' xxh3 (one per row: the photo's, then its person mask's)."""
        part = self.dir / f"truth_{b:06d}.csv"
        rows.to_csv(part.with_suffix(".tmp"), index=False, header=False, float_format="%.2f")
        os.replace(part.with_suffix(".tmp"), part)
        self.hashes[part.name] = file_hash(part)
        self.hashes[f"photos_{b:06d}"] = photos_hash(files)
        self.progress["render_done"] = sorted(self.render_done | {b})
        self._save()

    def truth_part(self, b: int) -> Path:
        return self.dir / f"truth_{b:06d}.csv"

    def clear(self) -> None:
        """Drop ``.partial`` once the output is assembled."""
        shutil.rmtree(self.dir, ignore_errors=True)
