"""What a probe reads per head from a photo's embedding row: identity columns, face-attribute columns, or both.

One definition for relabel-report's probe (``audit.probe``) and ``train --model probe-*`` (``train.probe``), so a
probe run predicts new photos from the same columns it was fitted on (its config.json records the layout).

- ``mask``: the identity embedding (the attributes say nothing about a mask).
- ``gender``: the attributes alone. The age/gender network was trained for gender on many faces; a few hundred
  people's identity columns beside it only add variance: person-level gender flips in the top 15 fell from
  0.67-0.8 to 0.47-0.6 with them (3 planted sets, docs/embeddings.md).
- ``age``: both (the attributes' age estimate and what identity carries of age).

The attribute columns are the network's male logit and age, plus the logit times ``child`` (a smooth step below 16
years of estimated age) and ``child`` itself: children's faces are where the network's gender is wrong most often
(20-33% of unmasked children's photos against 0-7% of adults' on the planted sets), and a linear model can only
trust the logit less there when it sees that product.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

#: head -> the parts its probe reads, when the cache has attributes
HEAD_PARTS = {"mask": ("identity",), "gender": ("attributes",), "age": ("identity", "attributes")}
IDENTITY_ONLY = {head: ("identity",) for head in HEAD_PARTS}
CHILD_AGE, CHILD_WIDTH = 16.0, 2.0  # years: the step's middle and its softness


def attribute_columns(attributes: pd.DataFrame) -> np.ndarray:
    """N x 4: male logit, age, male logit x child, child (child = sigmoid((16 - age) / 2)); NaN rows stay NaN."""
    z = attributes["male_logit"].to_numpy(np.float64)
    age = attributes["age"].to_numpy(np.float64)
    child = 1.0 / (1.0 + np.exp(-(CHILD_AGE - age) / CHILD_WIDTH))
    return np.stack([z, age, z * child, child], axis=1)


def head_layout(attributes: pd.DataFrame | None) -> dict[str, tuple[str, ...]]:
    """``HEAD_PARTS`` when there are attributes (age and male_logit), else identity for every head."""
    if attributes is None or not {"age", "male_logit"} <= set(attributes.columns):
        return dict(IDENTITY_ONLY)
    return dict(HEAD_PARTS)


def head_features(embeddings: np.ndarray, attributes: pd.DataFrame | None,
                  layout: dict[str, tuple[str, ...]] | None = None) -> dict[str, np.ndarray]:
    """Per head, the N x d float64 matrix its probe reads (``layout``: ``head_layout(attributes)`` by default)."""
    layout = layout or head_layout(attributes)
    parts = {"identity": np.asarray(embeddings, np.float64)}
    if any("attributes" in p for p in layout.values()):
        if attributes is None:
            raise ValueError("the layout reads face attributes; the embeddings hold none")
        parts["attributes"] = attribute_columns(attributes)
    return {head: np.hstack([parts[p] for p in layout[head]]) for head in layout}
