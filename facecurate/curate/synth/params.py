"""Every option of `synth` in one record, ``SynthParams``, checked in one place: the CLI builds it, the stage takes it whole.

Like crop's ``CropParams``: text as typed (``balance="age,gender"``, ``inject="gender=0.05"``,
``photos="mask1,normal"``, ``age_bins="30,60"``) or already parsed values are both accepted;
``validate`` parses them once and returns a normalised copy, raising ``InputError`` naming the option
before anything is written.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from ..labels import DEFAULT_AGE_BINS, PHOTO_STEMS, parse_age_bins
from .backdrops import Backdrops
from .plan import parse_balance, parse_inject, parse_photos
from .scene import PHOTO_HEIGHT, PHOTO_WIDTH

if TYPE_CHECKING:
    from ..detect.faces import Detector


@dataclass(frozen=True)
class SynthParams:
    """Every option of `synth`; ``detector``, ``device``, ``contact``, ``workers`` and ``block`` do not change the photos."""

    people: int | None = None                   # people to write (one per source face); None = every usable face
    seed: int = 0                               # the same seed writes the same files
    balance: str | Sequence[str] = ()           # draw evenly over these groups: "age", "gender" or both
    inject: str | Mapping[str, float] | None = None  # person-level errors as fractions: "gender=0.05,age=0.03,swap=0.03"
    photos: str | Sequence[str] | None = PHOTO_STEMS  # which of the 7 photos each person gets
    eval_layout: bool = False                   # info.csv + images/<sha1>.jpg instead of the train layout
    detector: str | Detector = "mtcnn"          # a make_detector name, or an open Detector (reused, not closed)
    device: str | None = None                   # torch device for MTCNN; None = CUDA when present
    age_bins: str | Sequence[int] = DEFAULT_AGE_BINS  # two age cut points for --balance and the summary
    backdrops: str | Path | None = None         # a folder of photos behind the people instead of painted walls
    backdrop_share: float | None = None         # share of people over a --backdrops photo (default 1.0 with backdrops)
    dedup: bool = True                          # skip source faces that duplicate an earlier one
    person_masks: bool = True                   # write each photo's true person mask (masks/<image>.png)
    contact: int = 8                            # people on contact.png (0: no sheet)
    workers: int | None = None                  # render threads; None = min(4, CPU cores)
    quality: int = 92                           # JPEG quality
    block: int = 256                            # people per resumable block (rounded up to whole detector batches)
    detect_batch: int = 16                      # photos per detector call

    @classmethod
    def of(cls, params: "SynthParams | None" = None, **options) -> "SynthParams":
        """``params`` (or the defaults) with ``options`` (field names) replacing its values; TypeError on an unknown name."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"unknown synth option(s): {', '.join(unknown)}")
        return replace(params or cls(), **options)

    def validate(self) -> "SynthParams":
        """Check and parse every value (InputError naming the option otherwise); returns the normalised copy (checking
        that copy again changes nothing)."""
        try:
            bins = parse_age_bins(self.age_bins)
        except ValueError as e:
            raise InputError(str(e)) from None
        keys = parse_balance(self.balance)
        fractions = parse_inject(self.inject)
        stems = parse_photos(self.photos)
        if self.eval_layout and fractions:
            raise InputError("--inject applies to the train layout only (the eval layout carries no labels)")
        if fractions.get("swap") and not {"incorrect_mask", "normal"} <= set(stems):
            raise InputError("--inject swap exchanges incorrect_mask and normal: --photos must include both")
        if self.people is not None and self.people < 1:
            raise InputError(f"--people must be at least 1, got {self.people}")
        if not 1 <= self.quality <= 100:
            raise InputError(f"--quality must be 1..100, got {self.quality}")
        if self.block < 1 or self.detect_batch < 1:
            raise InputError(f"--block must be at least 1, got {self.block}")
        if self.backdrops is None and self.backdrop_share is not None:
            raise InputError("--backdrop-share needs --backdrops (a folder of photos)")
        block = -(-self.block // self.detect_batch) * self.detect_batch  # whole detector batches: the same files for any block
        return replace(self, age_bins=bins, balance=keys, inject=fractions, photos=stems, block=block)

    @property
    def detector_name(self) -> str:
        return self.detector if isinstance(self.detector, str) else self.detector.name

    def shaping(self, backdrops: Backdrops | None) -> dict:
        """The options that shape the files (synth.json's ``params``, part of the resume fingerprint), with the
        ``backdrops`` as listed (their folder and share)."""
        return {"people": self.people, "seed": self.seed, "balance": list(self.balance), "inject": dict(self.inject),
                "eval": self.eval_layout, "detector": self.detector_name, "age_bins": list(self.age_bins),
                "quality": self.quality, "size": [PHOTO_WIDTH, PHOTO_HEIGHT], "photos": list(self.photos),
                "backdrops": str(backdrops.root) if backdrops else None,
                "backdrop_share": backdrops.share if backdrops else None, "dedup": self.dedup,
                "person_masks": self.person_masks, "detect_batch": self.detect_batch}
