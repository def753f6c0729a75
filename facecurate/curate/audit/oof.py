"""The out-of-fold table a `train` run writes (``oof.parquet``): reading it, checking its contract, each head's probabilities."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..labels import HEAD_CLASSES, HEAD_FIELDS, HEADS, NUM_CLASSES, marginal_probs

OOF_COLUMNS = ["image_id", "person", "photo", "label", *HEAD_FIELDS.values()]


def head_probs(oof: pd.DataFrame, head: str) -> np.ndarray:
    """The (n, k) probabilities of one head (mask | gender | age): its ``p_<head>_i`` columns, else marginals of ``p_class_*``."""
    k = HEAD_CLASSES[head]
    cols = [f"p_{head}_{i}" for i in range(k)]
    if all(c in oof for c in cols):
        p = oof[cols].to_numpy(dtype=np.float64)
    elif all(f"p_class_{i}" in oof for i in range(NUM_CLASSES)):
        p = marginal_probs(oof[[f"p_class_{i}" for i in range(NUM_CLASSES)]].to_numpy(dtype=np.float64))[head]
    else:
        raise InputError(f"oof: no {', '.join(cols)} columns and no p_class_0..17 to derive them from")
    p = np.clip(np.nan_to_num(p, nan=0.0), 0.0, None)
    s = p.sum(axis=1, keepdims=True)
    return np.where(s > 0, p / np.where(s > 0, s, 1), 1.0 / k)


def validate_oof(oof: pd.DataFrame, name: str = "oof.parquet") -> pd.DataFrame:
    """Check the oof.parquet contract (ids, person, photo, labels and probabilities); InputError naming what is missing."""
    missing = [c for c in OOF_COLUMNS if c not in oof]
    if missing:
        raise InputError(f"{name}: missing column(s) {', '.join(missing)}")
    for head in HEADS:
        head_probs(oof.head(1), head)  # raises with the head's columns named
    out = oof.dropna(subset=["mask", "gender", "age_group"]).copy()
    if out.empty:
        raise InputError(f"{name}: no labelled rows")
    for c in ("mask", "gender", "age_group"):
        out[c] = out[c].astype(int)
    out["person"] = out["person"].astype(str)
    out["image_id"] = out["image_id"].astype(str)
    out["photo"] = out["photo"].fillna("").astype(str)
    return out.reset_index(drop=True)


def read_oof(path: str | Path) -> pd.DataFrame:
    """Read ``oof.parquet`` and check its contract; InputError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found (expected RUN/oof.parquet from `train`)")
    try:
        oof = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a file that is not parquet
        raise InputError(f"{path}: not a readable parquet file ({type(e).__name__})") from None
    return validate_oof(oof, name=str(path))
