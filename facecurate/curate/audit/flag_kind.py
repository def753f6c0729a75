"""The record of one kind of flag (``FlagKind``) and what its check reads (``AuditContext``, ``Hit``).

Like cleanlab Datalab's issue managers: a kind is one record (name, scope, title, description) plus
either the model-based parts (``head`` whose quality gate switches it on, label ``field`` it fixes,
``units`` builder and ``explain`` for one flagged unit; scored and thresholded by ``scores`` and
``simulate``) or a ``detect`` function from an ``AuditContext`` (the oof frame, the manifest, the cache,
the options) to a flags frame. The registry of kinds is ``kinds.KINDS``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from ..cache import Cache
from ..progress import QUIET, Progress
from .options import ReportOptions
from .scores import Units

if TYPE_CHECKING:
    from .faces import FaceEvidence

SCOPES = ("person", "photo")


@dataclass(frozen=True)
class AuditContext:
    """What a check may read: the validated oof frame, the labelled manifest, the options and the age bins.

    ``cache`` is None for a frame-only audit (``audit_labels`` on an oof frame): checks that read images
    return no flags then; so is ``faces`` when the cache has no face embeddings (identity kinds raise none). ``ages``: a person's age in years where the manifest has it (for the reasons).
    """

    oof: pd.DataFrame
    manifest: pd.DataFrame
    options: ReportOptions
    age_bins: tuple[int, ...]
    cache: Cache | None = None
    ages: Mapping[str, float] | None = None
    progress: Progress = QUIET
    faces: FaceEvidence | None = None       # what the face embeddings said (``faces.read_faces``); None without them


@dataclass(frozen=True)
class Hit:
    """One unit of a model-based kind at or above its threshold: what ``FlagKind.explain`` turns into flag rows."""

    ctx: AuditContext
    kind: FlagKind
    units: Units
    j: int                  # the unit's index in ``units``
    suggested: int
    score: float
    threshold: float
    confidence: str         # "high" or "low"

    def base(self) -> dict:
        """The columns every flag of this hit shares."""
        return {"kind": self.kind.name, "person": self.units.keys[self.j], "score": float(self.score),
                "threshold": float(self.threshold), "confidence": self.confidence}


@dataclass(frozen=True)
class FlagKind:
    """One kind of flag: how the report names it, and how it is found (model-based parts, or ``detect``)."""

    name: str
    title: str                                   # in the report, the terminal table and the banner
    scope: str                                   # what one flag points at: person or photo
    description: str                             # one line: what the check looks for (the filter button's tooltip)
    head: str | None = None                      # model-based: the oof head read; its quality gate switches the kind
    field: str | None = None                     # model-based: the label field a fix changes
    units: Callable[[pd.DataFrame, FlagKind, str], Units] | None = None   # model-based: (oof, kind, pool) -> units
    explain: Callable[[Hit], list[dict]] | None = None                   # model-based: one hit -> flag rows
    detect: Callable[[AuditContext], pd.DataFrame] | None = None         # any other kind: context -> flags frame

    @property
    def model_based(self) -> bool:
        """Read off the out-of-fold model: gated by its head's quality, thresholded by the simulation."""
        return self.units is not None

    def check(self) -> FlagKind:
        """ValueError when the entry is incomplete (a programming error, not the user's input). Returns self."""
        if self.scope not in SCOPES:
            raise ValueError(f"flag kind {self.name!r}: scope {self.scope!r}, expected one of {SCOPES}")
        parts = (self.head, self.field, self.units, self.explain)
        if self.detect is None and not all(p is not None for p in parts):
            raise ValueError(f"flag kind {self.name!r}: give detect, or head, field, units and explain")
        if self.detect is not None and any(p is not None for p in parts):
            raise ValueError(f"flag kind {self.name!r}: a detected kind has no head, field, units or explain")
        return self
