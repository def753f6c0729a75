"""The flags frame every check returns: one row per suspected error, in one schema, sorted one way."""
from __future__ import annotations

import pandas as pd

FLAG_COLUMNS = ["kind", "scope", "person", "image_id", "photo", "field", "given", "suggested", "score",
                "threshold", "reason", "confidence"]
#: ``confidence`` of a flag: high (its kind reached the target precision in the simulation), low (candidates,
#: kept out of overrides.csv by default) or "" (structural checks, which do not read the model).
KINDS = ("gender", "age", "mask_swap", "mask_photo", "structure", "near_duplicate")


def empty_flags() -> pd.DataFrame:
    """A flags frame with no rows and the ``FLAG_COLUMNS`` schema."""
    return pd.DataFrame({c: pd.Series(dtype=float if c in ("score", "threshold") else object) for c in FLAG_COLUMNS})


def sort_flags(flags: pd.DataFrame) -> pd.DataFrame:
    """Highest score first, then kind order, person and photo; stable and deterministic."""
    if flags.empty:
        return flags.reset_index(drop=True)
    order = {k: i for i, k in enumerate(KINDS)}
    return (flags.assign(_k=flags["kind"].map(order).fillna(len(KINDS)))
            .sort_values(["score", "_k", "person", "image_id"], ascending=[False, True, True, True], kind="mergesort")
            .drop(columns="_k").reset_index(drop=True))
