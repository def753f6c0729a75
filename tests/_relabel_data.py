"""Generated out-of-fold tables for the relabel-report tests: probabilities drawn around the TRUE labels, given labels
carrying injected errors; a matching manifest and distinct photos. ``strength`` per head sets how good the "model" is."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ["mask1", "mask2", "mask3", "mask4", "mask5", "incorrect_mask", "normal"]
MASK_OF = {"mask1": 0, "mask2": 0, "mask3": 0, "mask4": 0, "mask5": 0, "incorrect_mask": 1, "normal": 2}


def _probs(rng: np.random.Generator, true: int, k: int, strength: float) -> np.ndarray:
    """A plausible softmax output around the true class: Dirichlet(1 + strength * onehot)."""
    alpha = np.ones(k)
    alpha[true] += strength
    return rng.dirichlet(alpha)


def make_oof(n_people: int = 80, seed: int = 0, gender_flip=(), age_shift=(), swap=(), photo_wrong=(),
             strength=(10.0, 5.0, 4.0)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(oof, truth): out-of-fold probabilities drawn around the TRUE labels, with the GIVEN labels carrying the
    injected errors (person indices in gender_flip / age_shift / swap; photo_wrong: (person, photo) shown unmasked)."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for p in range(n_people):
        person = f"{p:06d}_{'female' if p % 2 else 'male'}_Asian_{20 + p % 50}"
        g_true, a_true = p % 2, int(rng.integers(0, 3))
        g_given = 1 - g_true if p in gender_flip else g_true
        a_given = (a_true + 1 if a_true < 2 else 1) if p in age_shift else a_true  # shifted to a neighbouring group
        for photo in PHOTOS:
            m_given = MASK_OF[photo]
            m_true = {1: 2, 2: 1}[m_given] if p in swap and m_given else m_given
            if (p, photo) in photo_wrong:
                m_true = 2
            pm, pg, pa = _probs(rng, m_true, 3, strength[0]), _probs(rng, g_true, 2, strength[1]), _probs(rng, a_true, 3, strength[2])
            pc = (pm[:, None, None] * pg[None, :, None] * pa[None, None, :]).reshape(-1)
            iid = f"{person}/{photo}"
            rows.append({"image_id": iid, "person": person, "photo": photo, "fold": p % 3,
                         "label": m_given * 6 + g_given * 3 + a_given, "mask": m_given, "gender": g_given,
                         "age_group": a_given, **{f"p_mask_{i}": v for i, v in enumerate(pm)},
                         **{f"p_gender_{i}": v for i, v in enumerate(pg)}, **{f"p_age_{i}": v for i, v in enumerate(pa)},
                         **{f"p_class_{i}": v for i, v in enumerate(pc)}})
            truth.append({"image_id": iid, "person": person, "photo": photo, "mask": m_true, "gender": g_true,
                          "age_group": a_true})
    return pd.DataFrame(rows), pd.DataFrame(truth)


def manifest_of(oof: pd.DataFrame) -> pd.DataFrame:
    """The manifest a cache of this oof would hold (given labels, an age consistent with the age group)."""
    m = oof[["image_id", "person", "photo", "mask", "gender", "age_group", "label"]].copy()
    m["age"] = m["age_group"].map({0: 22, 1: 45, 2: 70})
    m["path"] = "/nonexistent/" + m["image_id"]
    m["label"] = m["label"].astype("Int64")
    m["error"] = ""
    return m


def faces(n_people: int, seed: int = 0, h: int = 64, w: int = 48) -> np.ndarray:
    """Distinct smooth random images, 7 per person (every photo its own pattern)."""
    import cv2

    rng = np.random.default_rng(seed)
    out = np.empty((n_people * 7, h, w, 3), np.uint8)
    for i in range(len(out)):
        base = cv2.resize(rng.uniform(0, 255, (6, 5, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        out[i] = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    return out


