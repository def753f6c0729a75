"""What the face embeddings tell the report: a probe's out-of-fold table, the identity audit, leaks into other caches.

Read once per report (``read_faces``), before the kinds run. The probe's table is combined with the CNN's
(``probe.combine_oof``: per head, a weighted geometric mean whose weight minimises the out-of-fold log-loss) so
the quality gate and the simulated precision work unchanged on the combined probabilities. The identity kinds
(``stranger``, ``duplicate_id``, ``identity_leak``) read their flags from ``FaceEvidence``.
A cache without embeddings gets them first (``ensure_embeddings``) unless ``--no-embed``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..cache import Cache, load_cache
from ..embed.head_features import attribute_columns, head_features
from ..errors import InputError
from ..identity import IdentityAudit, IdentityOptions, audit_identity, identity_leak_flags
from ..identity.records import empty_identity_flags
from ..progress import QUIET, Progress
from .options import ReportOptions
from .probe import ProbeOptions, combine_oof, probe_oof

PROBE_OOF = "probe_oof.parquet"    # the probe's out-of-fold table, in the report folder
GROUPS = "identity_groups.csv"     # person -> identity group (ids of one face share one), for train --groups
FACE_BOX = ["face_x1", "face_y1", "face_x2", "face_y2"]  # a cache written by `crop` has them; one written otherwise may not


def has_face_boxes(cache: Cache) -> bool:
    """Whether ``cache``'s manifest says where each face is (what the embedding pass and photo quality read)."""
    return all(c in cache.manifest for c in FACE_BOX)


@dataclass
class FaceEvidence:
    """The embeddings' part of a report: counts, the identity audit, leak flags, the probe's table and weights."""

    embedded: int                               # labelled photos with a face embedding
    missing: int                                # labelled photos without one (no usable face)
    identity: IdentityAudit | None = None       # strangers and duplicate ids (None: --no-identity)
    leaks: pd.DataFrame = field(default_factory=empty_identity_flags)
    probe: pd.DataFrame | None = None           # the probe's out-of-fold table (None: --no-probe)
    weights: pd.DataFrame | None = None         # per head: the probe's weight in the combination and each log-loss
    notes: list[str] = field(default_factory=list)

    def flags_of(self, kind: str) -> pd.DataFrame:
        """The identity flags of ``kind`` (``stranger``, ``duplicate_id``, ``identity_leak``)."""
        src = self.leaks if kind == "identity_leak" else (self.identity.flags if self.identity is not None else None)
        if src is None or not len(src):
            return empty_identity_flags()
        f = src[src["kind"] == kind].reset_index(drop=True)
        for c in ("given", "suggested"):  # the identity frames write "" for no value; the report's schema wants None
            f[c] = [None if v is None or (isinstance(v, str) and not v.strip()) or pd.isna(v) else int(float(v))
                    for v in f[c]]
        return f


def _predates_attributes(cache: Cache) -> bool:
    """Embeddings from the default backend written before it read age and gender (no attribute columns)."""
    e = (cache.meta or {}).get("embeddings") or {}
    return cache.embeddings is not None and cache.face_attributes is None and e.get("backend") in ("dlib", "dlib-native")


def ensure_embeddings(cache: Cache, options: ReportOptions, progress: Progress | None = None) -> Cache:
    """``cache`` with its face embeddings: computed now (``facecurate embed``'s pass, written into the cache) when it
    has none, or dlib's from before the age/gender columns, ``options.embed`` and face boxes (a cache from ``crop``);
    else as it is."""
    old = _predates_attributes(cache)
    if (cache.embeddings is not None and not old) or not options.embed or not has_face_boxes(cache):
        return cache
    from ..embed import EmbedParams, check_ready, embed_cache

    params = EmbedParams(device=options.quick.device, threads=options.quick.threads or 0, verify=options.verify)
    check_ready(params.backend)  # a missing dlib is one line saying what to install, before anything runs
    why = ("has face embeddings from before the age/gender columns; computing them again" if old else
           "has no face embeddings; computing them")
    (progress or QUIET).note(f"relabel-report: {cache.path} {why} "
                             "(once: they stay in the cache; --no-embed skips this and every check that reads faces)")
    # the pass checked the cache (``verify``) under its lock and returns it with the embeddings' meta.json entry:
    # no second checksum pass over images.npy
    return embed_cache(cache.path, params, progress=progress).cache


def _labelled_embeddings(cache: Cache, manifest: pd.DataFrame) -> np.ndarray:
    """The embeddings of ``manifest``'s rows (a subset of the cache's manifest, its index the cache's row numbers)."""
    return np.asarray(cache.embeddings)[manifest.index.to_numpy()]


def _labelled_attributes(cache: Cache, manifest: pd.DataFrame) -> pd.DataFrame | None:
    """The face attributes (age, male_logit) of ``manifest``'s rows, or None when the embeddings hold none."""
    a = cache.face_attributes
    return None if a is None else a.iloc[manifest.index.to_numpy()].reset_index(drop=True)


def labelled_rows(cache: Cache) -> pd.DataFrame:
    """The cache's labelled manifest rows, indexed by cache row (what the report checks)."""
    manifest = cache.manifest.reset_index(drop=True)
    return manifest[manifest["label"].notna()] if "label" in manifest else manifest.iloc[:0]


def check_identity(cache: Cache, manifest: pd.DataFrame, options: ReportOptions,
                   progress: Progress | None = None) -> IdentityAudit | None:
    """Strangers and one person under two ids among ``manifest``'s rows (labelled rows, index = cache row), or None
    without embeddings or with ``--no-identity``. Run once per report: the CLI runs it before the quick model so
    one person's ids share a fold there too (``write_groups``), and hands it to ``read_faces``."""
    if cache.embeddings is None or not options.identity or not len(manifest):
        return None
    (progress or QUIET).note("relabel-report: identity checks on the face embeddings (strangers, one person under two ids)")
    return audit_identity(_labelled_embeddings(cache, manifest), manifest,
                          IdentityOptions(target_precision=options.target_precision, seed=options.seed))


def write_groups(folder: Path, identity: IdentityAudit | None) -> Path | None:
    """``folder``/identity_groups.csv (person -> group, ids of one face share a group; ``train --groups`` reads it),
    or None when identity checks are off or did not run."""
    if identity is None or identity.off:
        return None
    groups = identity.groups
    path = folder / GROUPS
    pd.DataFrame({"person": list(groups), "group": list(groups.values())}).to_csv(path, index=False)
    return path


def shared_groups(identity: IdentityAudit | None) -> int:
    """How many identity groups hold more than one person id (0 without an identity audit)."""
    if identity is None or identity.off:
        return 0
    sizes = pd.Series(list(identity.groups.values())).value_counts()
    return int((sizes > 1).sum())


def read_faces(cache: Cache, oof: pd.DataFrame, manifest: pd.DataFrame, options: ReportOptions, folder: Path | None = None,
               progress: Progress | None = None, identity: IdentityAudit | None = None) -> tuple[FaceEvidence | None, pd.DataFrame]:
    """(what the faces say, the out-of-fold table to audit: ``oof`` combined with the probe's when there is one).

    ``manifest``: the labelled rows of the cache's manifest (index = cache row). ``identity``: the audit
    ``check_identity`` already made (else it runs here). Writes the probe's table and the identity groups into
    ``folder`` when given. None and ``oof`` unchanged when the cache has no embeddings.
    """
    progress = progress or QUIET
    if cache.embeddings is None:
        return None, oof
    emb = _labelled_embeddings(cache, manifest)
    ok = np.all(np.isfinite(emb), axis=1)
    ev = FaceEvidence(embedded=int(ok.sum()), missing=int((~ok).sum()))
    if ev.missing:
        ev.notes.append(f"{ev.missing} of {len(ok)} labelled photos have no face embedding (no usable face: see the "
                        "cache's embeddings.parquet); the checks that read faces skip them")
    people = manifest["person"].astype(str)
    groups = None
    if options.identity:
        ev.identity = identity if identity is not None else check_identity(cache, manifest, options, progress)
        if ev.identity.off:
            ev.notes.append(ev.identity.off)
        else:
            groups = ev.identity.groups
            if folder is not None:
                write_groups(folder, ev.identity)
        ev.leaks = _leaks(emb, manifest, options, progress)
    if options.probe and ok.sum() >= 2 * options.quick.folds:
        units = people.map(groups).nunique() if groups else people.nunique()
        folds = max(2, min(options.quick.folds, int(units)))
        attributes = _labelled_attributes(cache, manifest)
        reads = "identity and age/gender" if attributes is not None else "identity"
        progress.note(f"relabel-report: a linear probe on the face embeddings ({reads}; {folds} person-grouped folds)")
        ev.probe = probe_oof(head_features(emb, attributes), manifest, ProbeOptions(folds=folds, seed=options.seed),
                             groups=groups, person_features=None if attributes is None else attribute_columns(attributes))
        if folder is not None:
            ev.probe.to_parquet(folder / PROBE_OOF, index=False)
        oof, ev.weights = combine_oof(ev.probe, oof)
        w = ", ".join(f"{r.head} {r.w_probe:.2f}" for r in ev.weights.itertuples())
        ev.notes.append(f"face-embedding probe combined with the CNN's out-of-fold table (the probe's weight per head: {w})")
    return ev, oof


def _leaks(emb: np.ndarray, manifest: pd.DataFrame, options: ReportOptions, progress: Progress) -> pd.DataFrame:
    """identity_leak flags: people of this cache found in each ``options.against`` cache."""
    parts = []
    for path in options.against:
        other = load_cache(path, verify=options.verify)
        other = ensure_embeddings(other, options, progress)
        if other.embeddings is None:
            raise InputError(f"{path}: --against needs that cache's face embeddings; run `facecurate embed {path}` "
                             "(or drop --no-embed)")
        flags, _ = identity_leak_flags(emb, manifest, np.asarray(other.embeddings), other.manifest,
                                       IdentityOptions(target_precision=options.target_precision, seed=options.seed))
        parts.append(flags.assign(reason=flags["reason"] + f" (in {Path(path).name})"))
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else empty_identity_flags()
