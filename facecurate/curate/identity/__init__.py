"""Identity checks on face embeddings: strangers in a person's photos, one face under two ids, people leaking into another set.

Pure functions over an (N x D) embedding array (NaN rows: no usable face) and the manifest. ``audit_identity``
runs the checks of one set; ``stranger_flags``, ``duplicate_id_flags``, ``identity_leak_flags`` and
``identity_groups`` are the parts. Flags follow ``audit.flags.FLAG_COLUMNS`` plus ``other_person``,
``other_image_id`` and ``distance`` (``records``). docs/identity.md explains the calibration.
"""
from .audit import IdentityAudit, audit_identity
from .matching import (
           duplicate_id_flags,
           identity_groups,
           identity_leak_flags,
           match_pairs,
)
from .options import IdentityOptions
from .records import IDENTITY_FLAG_COLUMNS, IDENTITY_KINDS, identity_overrides
from .stranger import photo_distances, stranger_flags

__all__ = ["IDENTITY_FLAG_COLUMNS", "IDENTITY_KINDS", "IdentityAudit", "IdentityOptions", "audit_identity",
           "duplicate_id_flags", "identity_groups", "identity_leak_flags", "identity_overrides", "match_pairs",
           "photo_distances", "stranger_flags"]
