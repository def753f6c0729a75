"""The flag rules: absolute cuts (CleanVision's defaults where it has one) and cuts relative to the person's other photos.

Each defect kind has an absolute rule and a person-relative rule (a robust z-score within the person:
(x - median) / (1.4826 x MAD), with the MAD floored so that a tight group does not turn a trivial
difference into a flag). A photo gets a kind when either rule fires. When one cause explains another
(a squashed photo is smaller; a smaller photo or a smaller face looks softer; a dark photo holds less
information), only the cause is flagged. A rule that fires on more than ``max_share`` of the photos
flags nothing and becomes a note naming its cut, as cleanlab's Datalab drops issue types found in
more than 10% of a data set (IMAGELAB_ISSUES_MAX_PREVALENCE) - said here instead of hidden.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: The defect kinds, in the order they are reported; CleanVision's names where it has the check.
DEFECTS = ("dark", "light", "blurry", "low_information", "grayscale", "small_face", "odd_size", "odd_aspect_ratio")
#: A flagged cause drops the kinds it explains on the same photo.
EXPLAINS = {"odd_aspect_ratio": ("odd_size", "small_face", "blurry"), "odd_size": ("small_face", "blurry"),
            "small_face": ("blurry",), "dark": ("low_information", "blurry"), "light": ("low_information", "blurry")}
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class QualityParams:
    """Every cut of the photo-quality flags; the absolute ones start from CleanVision's defaults (cleanvision
    ``ImagePropertyIssueManager.get_default_params``: dark 0.32, light 0.05, low_information 0.3 x 10 bits,
    odd_aspect_ratio 0.35, odd_size IQR factor 3.0, blurry 0.29; the blurry cut is lowered, see ``blurry_edges``);
    grayscale and small_face have no CleanVision number; the relative ones are ours (BENCHMARKS.md measures them)."""

    dark_p99: float = 0.32          # dark: the 99th percentile of brightness (0..1) under this (CleanVision dark)
    light_p5: float = 0.95          # light: the 5th percentile over this (CleanVision light: 1 - p5 < 0.05)
    low_entropy: float = 3.0        # low_information: grey-level entropy under this many bits (CleanVision 0.3 / 0.1)
    blurry_edges: float = 20.0      # blurry: CleanVision's edge std under this; its own cut, 34.2 (score 1 - exp(-0.01 x
    #                                 std) < 0.29), takes 2.1-2.4% of clean head-and-shoulders crops (plain walls, smooth skin)
    grayscale_saturation: float = 0.02  # grayscale: sum(max - min) / sum(max) of the channels under this (CleanVision: mode L)
    small_face_px: float = 48.0     # small_face: a detected face narrower than this in the photo (ours; the crop's face is ~96 px)
    odd_aspect: float = 0.35        # odd_aspect_ratio: min(w/h, h/w) under this (CleanVision)
    odd_size_iqr: float = 3.0       # odd_size: sqrt(w x h) outside [q1 - k IQR, q3 + k IQR] of the data set (CleanVision)
    z: float = 3.5                  # person-relative: |robust z| over this (Iglewicz & Hoaglin's outlier cut)
    min_photos: int = 4             # person-relative rules need this many usable photos of the person
    darker: float = 1.6             # ... and at least this brightness ratio to the person's median (darker or lighter)
    softer: float = 1.5             # ... this sharpness ratio (softer)
    smaller_face: float = 1.6       # ... this face-width ratio (smaller)
    smaller_photo: float = 1.4      # ... this photo-side ratio (smaller)
    other_aspect: float = 1.2       # ... this aspect ratio (either way)
    max_share: float = 0.10         # a rule firing on more photos than this becomes a note, not flags

    @classmethod
    def parse(cls, text: str) -> "QualityParams":
        """``"dark_p99=0.3,softer=1.8"`` -> params with those cuts changed (ValueError naming a bad one)."""
        known = {f: type(v) for f, v in cls().__dict__.items()}
        kw: dict = {}
        for part in filter(None, (t.strip() for t in text.split(","))):
            name, _, value = part.partition("=")
            name = name.strip().replace("-", "_")
            if name not in known or not value.strip():
                raise ValueError(f"unknown cut {part!r}; expected NAME=VALUE with NAME one of {', '.join(known)}")
            try:
                kw[name] = known[name](value.strip())
            except ValueError:
                raise ValueError(f"{part!r}: {value.strip()!r} is not a {known[name].__name__}") from None
        return cls(**kw).validate()

    def validate(self) -> "QualityParams":
        """Raise ValueError naming the first cut out of range."""
        for name in ("darker", "softer", "smaller_face", "smaller_photo", "other_aspect"):
            if not getattr(self, name) > 1.0:
                raise ValueError(f"{name} must be a ratio above 1, got {getattr(self, name)}")
        if not 0 < self.max_share <= 1 or not self.z > 0 or self.min_photos < 2:
            raise ValueError("max_share must be in (0, 1], z above 0 and min_photos at least 2")
        return self


def robust_z(values: np.ndarray, groups: np.ndarray, floor: float) -> np.ndarray:
    """(x - group median) / max(1.4826 MAD, floor) per group; NaN where x is NaN."""
    s = pd.Series(values)
    g = s.groupby(groups)
    med = g.transform("median")
    mad = (s - med).abs().groupby(groups).transform("median") * MAD_TO_SIGMA
    return ((s - med) / np.maximum(mad.fillna(0.0), floor)).to_numpy()


def _log(x: pd.Series) -> np.ndarray:
    v = x.to_numpy(np.float64)
    return np.log(np.where(v > 0, v, np.nan))


def rule_table(m: pd.DataFrame, p: QualityParams = QualityParams()) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, str]]:
    """(kind, "absolute" | "relative") -> (fires, excess >= 0, the cut in words) for every photo of ``m`` (the measures
    with ``person``). ``excess`` says how far past the cut a photo is (0 where it does not fire)."""
    people = m["person"].astype(str).to_numpy()
    size = pd.Series(people).map(pd.Series(people).value_counts()).to_numpy()
    rel_ok = size >= p.min_photos
    out: dict = {}

    def absolute(kind, value, cut, below, words):
        v = np.asarray(value, np.float64)
        fires = (v < cut) if below else (v > cut)
        fires &= np.isfinite(v)
        excess = np.where(fires, np.abs(v - cut) / max(abs(cut), 1e-9), 0.0)
        out[(kind, "absolute")] = (fires, excess, words)

    def relative(kind, logv, ratio, sign, words):
        z = robust_z(logv, people, np.log(ratio) / p.z) * sign
        fires = rel_ok & np.isfinite(z) & (z > p.z)
        out[(kind, "relative")] = (fires, np.where(fires, (z - p.z) / p.z, 0.0), words)

    zc = f"|z| > {p.z:g} within the person"
    absolute("dark", m["bright_p99"], p.dark_p99, True, f"99th-percentile brightness < {p.dark_p99:g} (CleanVision dark)")
    relative("dark", _log(m["brightness"]), p.darker, -1, f">= {p.darker:g}x darker than the person's median photo, {zc}")
    absolute("light", m["bright_p5"], p.light_p5, False, f"5th-percentile brightness > {p.light_p5:g} (CleanVision light)")
    relative("light", _log(m["brightness"]), p.darker, 1, f">= {p.darker:g}x lighter than the person's median photo, {zc}")
    absolute("blurry", m["edges"], p.blurry_edges, True, f"edge strength < {p.blurry_edges:g} (CleanVision blurry)")
    relative("blurry", _log(m["sharpness"]), p.softer, -1, f">= {p.softer:g}x softer than the person's median photo, {zc}")
    absolute("low_information", m["entropy"], p.low_entropy, True, f"entropy < {p.low_entropy:g} bits (CleanVision low_information)")
    absolute("grayscale", m["saturation"], p.grayscale_saturation, True, f"colour saturation < {p.grayscale_saturation:g} (grey photo)")
    absolute("small_face", m["face_px"], p.small_face_px, True, f"face < {p.small_face_px:g} px wide in the photo")
    relative("small_face", _log(m["face_px"]), p.smaller_face, -1, f"face >= {p.smaller_face:g}x narrower than in the person's median photo, {zc}")
    side = m["photo_side"].to_numpy(np.float64)
    q1, q3 = np.nanpercentile(side, [25, 75]) if np.isfinite(side).any() else (np.nan, np.nan)
    lo, hi = q1 - p.odd_size_iqr * (q3 - q1), q3 + p.odd_size_iqr * (q3 - q1)
    odd = np.isfinite(side) & ((side < lo) | (side > hi))
    out[("odd_size", "absolute")] = (odd, np.where(odd, np.abs(np.log(np.maximum(side, 1) / max(np.nanmedian(side), 1))), 0.0),
                                     f"sqrt(w x h) outside [{lo:.0f}, {hi:.0f}] px (q1/q3 -/+ {p.odd_size_iqr:g} IQR; CleanVision odd_size)")
    relative("odd_size", _log(m["photo_side"]), p.smaller_photo, -1, f"photo >= {p.smaller_photo:g}x smaller (sqrt(w x h)) than the person's median, {zc}")
    aspect = m["aspect"].to_numpy(np.float64)
    absolute("odd_aspect_ratio", np.minimum(aspect, 1 / aspect), p.odd_aspect, True, f"min(w/h, h/w) < {p.odd_aspect:g} (CleanVision odd_aspect_ratio)")
    za = np.abs(robust_z(_log(m["aspect"]), people, np.log(p.other_aspect) / p.z))
    fires = rel_ok & np.isfinite(za) & (za > p.z)
    out[("odd_aspect_ratio", "relative")] = (fires, np.where(fires, (za - p.z) / p.z, 0.0),
                                             f"aspect (w/h) >= {p.other_aspect:g}x off the person's median, {zc}")
    return out


def decide(m: pd.DataFrame, p: QualityParams = QualityParams()) -> tuple[pd.DataFrame, list[dict]]:
    """(one row per photo x defect flagged: ``row`` (position in ``m``), ``kind``, ``rules``, ``excess``, ``cuts``; and the
    notes: one dict per rule held back because it fired on more than ``max_share`` of the photos)."""
    table = rule_table(m, p.validate())
    n = len(m)
    notes, fired = [], {}
    for (kind, rule), (fires, excess, words) in table.items():
        share = fires.sum() / n if n else 0.0
        if share > p.max_share:
            notes.append({"kind": kind, "rule": rule, "photos": int(fires.sum()), "of": n, "share": float(share), "cut": words})
            continue
        fired.setdefault(kind, []).append((rule, fires, excess, words))
    flags = {}
    for kind, rules in fired.items():
        any_fire = np.logical_or.reduce([r[1] for r in rules])
        flags[kind] = any_fire
    for cause, explained in EXPLAINS.items():
        if cause in flags:
            for k in explained:
                if k in flags:
                    flags[k] = flags[k] & ~flags[cause]
    rows = []
    for kind in DEFECTS:
        if kind not in flags:
            continue
        for i in np.flatnonzero(flags[kind]):
            hit = [(r, e[i], w) for r, f, e, w in fired[kind] if f[i]]
            rows.append({"row": int(i), "kind": kind, "rules": "+".join(r for r, _, _ in hit),
                         "excess": float(max(e for _, e, _ in hit)), "cuts": "; ".join(w for _, _, w in hit)})
    return pd.DataFrame(rows, columns=["row", "kind", "rules", "excess", "cuts"]), notes
