"""relabel-report's options as one typed record, checked once: the CLI builds it and passes it down whole.

``ReportOptions`` holds every report option under the CLI's name (``--gate`` is ``gate``,
``--include-candidates`` is ``include_candidates``); its ``quick`` field holds the quick out-of-fold
model's options (``QuickModel``), which ``facecurate.train.quick_plan`` checks when it plans that run.
The CLI's defaults are read from these records, so each default is written once.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import InputError
from ..labels import parse_age_bins

POOLS = ("mean", "log")


@dataclass(frozen=True)
class QuickModel:
    """The quick K-fold model trained when no ``--oof`` is given (checked by ``facecurate.train.quick_plan``).

    Its length is a budget of optimiser steps per fold (``steps``, whole epochs reaching it), so a small cache
    trains as long as a large one; ``epochs`` (not None) sets epochs per fold instead. ``steps``' default is
    ``facecurate.train.config.QUICK_STEPS``, ``folds``' ``QUICK_FOLDS`` and ``model``'s ``QUICK_MODEL`` (equal by test:
    curate does not import train).
    """

    folds: int = 4                    # facecurate.train.config.QUICK_FOLDS (equal by test)
    steps: int = 500                  # facecurate.train.config.QUICK_STEPS (equal by test)
    epochs: int | None = None         # epochs per fold instead of the step budget
    model: str = "mobilenetv3_small_050"  # timm model name: facecurate.train.config.QUICK_MODEL (equal by test)
    img_size: str = "64"              # input "HEIGHT" (the width keeps the cache's aspect) or "HEIGHT,WIDTH", as train reads it
    batch_size: int = 32
    device: str | None = None         # cpu, cuda, cuda:N; None = cuda when present
    threads: int | None = None        # CPU threads for torch; None = torch's choice
    fold_workers: int = 0             # folds trained side by side on the CPU (train's --fold-workers); 0 = one per core


@dataclass(frozen=True)
class ReportOptions:
    """Every relabel-report option (see ``facecurate relabel-report --help``); valid once constructed.

    ``age_bins`` is parsed here (a "30,60" string or a sequence becomes a tuple); None = the run's bins,
    else the cache's. ``seed`` seeds the quick model and the simulation.
    """

    pool: str = "mean"
    near_duplicates: bool = True
    max_hash_distance: int = 4
    min_corr: float = 0.97
    max_cards: int = 1000
    age_bins: tuple[int, ...] | None = None
    target_precision: float = 0.8
    margin: float = 0.1
    draws: int = 8
    gate: float = 0.5
    include_candidates: bool = False
    seed: int = 0
    verify: str = "quick"             # how the cache is checked before use: quick, full or off
    embed: bool = True                # compute the cache's face embeddings when it has none (``facecurate embed``)
    probe: bool = True                # a linear probe on the embeddings, combined with the CNN's out-of-fold table
    identity: bool = True             # strangers and one person under two ids, from the embeddings
    against: tuple[str, ...] = ()     # other caches (extra data, pseudo-labels, an eval set) checked for identity leaks
    photo_quality: bool = True        # dark, blurry, tiny-face... photos (``photo_quality``)
    quick: QuickModel = field(default_factory=QuickModel)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> ReportOptions:
        """InputError naming the CLI option when a value is out of range; parses ``age_bins``. Returns self.

        ``verify`` is checked where it is used (``cache.load_cache``), the quick model's options by ``quick_plan``.
        """
        if self.age_bins is not None:
            object.__setattr__(self, "age_bins", parse_age_bins(self.age_bins))  # frozen: set once, here
        object.__setattr__(self, "against", tuple(str(a) for a in (self.against or ())))
        checks = [("--pool", self.pool, self.pool in POOLS, " or ".join(POOLS)),
                  ("--max-hash-distance", self.max_hash_distance, 0 <= self.max_hash_distance <= 64, "0..64"),
                  ("--min-corr", self.min_corr, 0 < self.min_corr <= 1, "in (0, 1]"),
                  ("--max-cards", self.max_cards, self.max_cards >= 0, ">= 0"),
                  ("--target-precision", self.target_precision, 0 < self.target_precision < 1, "in (0, 1)"),
                  ("--margin", self.margin, 0 < self.margin < 0.5, "in (0, 0.5)"),
                  ("--draws", self.draws, 1 <= self.draws <= 200, "1..200"),
                  ("--gate", self.gate, 0 <= self.gate < 1, "in [0, 1)")]
        for name, value, ok, want in checks:
            if not ok:
                raise InputError(f"{name} {value}: expected {want}")
        return self

    def replace(self, **changes) -> ReportOptions:
        """A copy with ``changes`` (option names as keywords), checked; TypeError naming an unknown option."""
        return dataclasses.replace(self, **changes) if changes else self
