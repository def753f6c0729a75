"""The registry of flag kinds: ``KINDS`` holds one ``FlagKind`` per kind, the built-in ones registered below in report order.

A new kind is one ``register(FlagKind(...))`` at the end of this module: a model-based one names its
head, field, units builder (``scores``) and explainer (``explain``); any other names a
``detect(context) -> flags frame`` function (the context holds the oof frame, the manifest, the cache
and the options), like ``structure`` and ``near_duplicate``. Kinds run, sort and show in this order.
"""
from __future__ import annotations

import pandas as pd

from .explain import person_rows, photo_rows, swap_rows
from .flag_kind import AuditContext, FlagKind
from .flags import empty_flags
from .near_duplicates import near_duplicate_flags
from .scores import Units, person_units, photo_units, swap_units
from .structure import structure_flags

#: Every kind by name, in registration order (the order of the report, issues.csv and the terminal table).
KINDS: dict[str, FlagKind] = {}


def register(kind: FlagKind) -> FlagKind:
    """Add ``kind`` to ``KINDS`` (checked; a name is registered once). Returns it."""
    if kind.name in KINDS:
        raise ValueError(f"flag kind {kind.name!r} is already registered")
    KINDS[kind.name] = kind.check()
    return kind


def model_kinds() -> list[FlagKind]:
    """The model-based kinds, in order."""
    return [k for k in KINDS.values() if k.model_based]


def title_of(name: str) -> str:
    """A kind's title; the name itself for a kind not registered (an issues.csv from another version)."""
    return KINDS[name].title if name in KINDS else name


def rank_of(name: str, missing: int = 99) -> int:
    """A kind's place in ``KINDS``; ``missing`` for one not registered."""
    return list(KINDS).index(name) if name in KINDS else missing


def make_units(oof: pd.DataFrame, kind: str, pool: str = "mean") -> Units:
    """The units of model-based ``kind`` from a validated out-of-fold frame."""
    k = KINDS[kind]
    return k.units(oof, k, pool)


def sort_flags(flags: pd.DataFrame) -> pd.DataFrame:
    """Highest score first, then kind order, person and photo; stable and deterministic."""
    if flags.empty:
        return flags.reset_index(drop=True)
    order = {k: i for i, k in enumerate(KINDS)}
    return (flags.assign(_k=flags["kind"].map(order).fillna(len(KINDS)))
            .sort_values(["score", "_k", "person", "image_id"], ascending=[False, True, True, True], kind="mergesort")
            .drop(columns="_k").reset_index(drop=True))


def structure_detect(ctx: AuditContext) -> pd.DataFrame:
    """``structure``: the labelled manifest's photo sets, disagreeing labels and shared ids."""
    return structure_flags(ctx.manifest)


def near_duplicate_detect(ctx: AuditContext) -> pd.DataFrame:
    """``near_duplicate``: the cache's photos hashed and compared (none without a cache or with --no-near-duplicates)."""
    if ctx.cache is None or not ctx.options.near_duplicates:
        return empty_flags()
    manifest = ctx.cache.manifest.reset_index(drop=True)
    ctx.progress.note(f"near-duplicates: hashing {len(manifest)} cached photos")
    return near_duplicate_flags(ctx.cache.images, manifest, max_hash_distance=ctx.options.max_hash_distance,
                                min_corr=ctx.options.min_corr, age_bins=ctx.age_bins)


register(FlagKind("gender", "gender (person)", "person", "a person whose photos look like the other gender",
                  head="gender", field="gender", units=person_units, explain=person_rows))
register(FlagKind("age", "age group (person)", "person", "a person whose photos look like another age group",
                  head="age", field="age_group", units=person_units, explain=person_rows))
register(FlagKind("mask_swap", "incorrect/normal swapped", "photo",
                  "a person's normal and incorrect_mask photos filed under each other's name",
                  head="mask", field="mask", units=swap_units, explain=swap_rows))
register(FlagKind("mask_photo", "mask (photo)", "photo", "one photo whose mask label disagrees with what it shows",
                  head="mask", field="mask", units=photo_units, explain=photo_rows))
register(FlagKind("structure", "structure", "person",
                  "a person without one normal and one incorrect_mask photo, photos that disagree, an id in two folders",
                  detect=structure_detect))
register(FlagKind("near_duplicate", "near-duplicate", "person",
                  "near-identical photos filed under two people with different labels (one person filed twice)",
                  detect=near_duplicate_detect))


def _faces_detect(name: str):
    """The detect function of identity kind ``name``: its flags as ``faces.read_faces`` found them (none without embeddings)."""
    def detect(ctx: AuditContext) -> pd.DataFrame:
        return ctx.faces.flags_of(name) if ctx.faces is not None else empty_flags()
    return detect


def photo_quality_detect(ctx: AuditContext) -> pd.DataFrame:
    """Photos too dark, soft, small or grey to train on (``photo_quality``); needs the cache's images."""
    from ..photo_quality import photo_quality_flags
    from .faces import has_face_boxes

    if ctx.cache is None or not ctx.options.photo_quality or not has_face_boxes(ctx.cache):
        return empty_flags()
    return photo_quality_flags(ctx.cache, progress=ctx.progress)


register(FlagKind("stranger", "stranger (photo)", "photo",
                  "a photo whose face is far from its person's other photos (face embeddings): another person's photo?",
                  detect=_faces_detect("stranger")))
register(FlagKind("duplicate_id", "one person, two ids", "person",
                  "two ids whose unmasked faces match (face embeddings): one person filed twice",
                  detect=_faces_detect("duplicate_id")))
register(FlagKind("identity_leak", "identity leak", "person",
                  "a person of this cache whose face is in an --against cache (extra data, pseudo-labels, eval set)",
                  detect=_faces_detect("identity_leak")))
register(FlagKind("photo_quality", "photo quality", "photo", "a photo too dark, soft, small or grey to train on",
                  detect=photo_quality_detect))
