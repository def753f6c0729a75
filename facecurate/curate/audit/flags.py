"""The flags frame every check returns: one row per suspected error, in one schema (sorted by ``kinds.sort_flags``)."""
from __future__ import annotations

import pandas as pd

#: Optional columns of a flag that points at a second photo (identity kinds): shown side by side, kept in issues.csv.
MATCH_COLUMNS = ["other_person", "other_image_id", "distance"]
FLAG_COLUMNS = ["kind", "scope", "person", "image_id", "photo", "field", "given", "suggested", "score",
                "threshold", "reason", "confidence"]
#: ``confidence`` of a flag: high (its kind reached the target precision in the simulation), low (candidates,
#: kept out of overrides.csv by default) or "" (kinds that do not read the model). The kinds: ``kinds.KINDS``.


def empty_flags() -> pd.DataFrame:
    """A flags frame with no rows and the ``FLAG_COLUMNS`` schema."""
    return pd.DataFrame({c: pd.Series(dtype=float if c in ("score", "threshold") else object) for c in FLAG_COLUMNS})
