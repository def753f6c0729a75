"""The relabel report's files: ``report.html`` (self-contained, offline), ``issues.csv`` and ``overrides.csv``.

The HTML page has one card per flagged person with every photo of theirs from the cache embedded
as a base64 JPEG, sorted by score and filterable by kind with a small inline script; it loads
nothing from anywhere. ``overrides.csv`` is in the format ``curate.overrides`` reads.
"""
from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..labels import (
    DEFAULT_AGE_BINS,
    GENDER_NAMES,
    MASK_NAMES,
    PHOTO_STEMS,
    age_group_names,
)
from ..overrides import OVERRIDE_COLUMNS
from .flags import FLAG_COLUMNS, KINDS

PHOTO_ORDER = {s: i for i, s in enumerate(PHOTO_STEMS)}
KIND_TITLES = {"gender": "gender (person)", "age": "age group (person)", "mask_swap": "incorrect/normal swapped",
               "mask_photo": "mask (photo)", "structure": "structure", "near_duplicate": "near-duplicate"}


def value_name(field: str, value, age_bins: Sequence[int] = DEFAULT_AGE_BINS) -> str:
    """Human name of a label value: 'female', '30-59', 'not worn'; '' when there is none."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or pd.isna(value):
        return ""
    names = {"gender": GENDER_NAMES, "age_group": age_group_names(age_bins), "mask": MASK_NAMES}.get(field)
    return names[int(value)] if names else str(value)


def overrides_from_flags(flags: pd.DataFrame) -> pd.DataFrame:
    """The suggested fixes as overrides rows (scope, key, field, value, reason); flags without a suggestion are left out."""
    rows = []
    for r in flags.to_dict("records"):
        if r["suggested"] is None or pd.isna(r["suggested"]) or not r["field"]:
            continue
        key = r["person"] if r["scope"] == "person" else r["image_id"]
        rows.append({"scope": r["scope"], "key": key, "field": r["field"], "value": int(r["suggested"]),
                     "reason": f"relabel-report {r['kind']} (score {r['score']:.2f}): {r['reason']}"})
    out = pd.DataFrame(rows, columns=OVERRIDE_COLUMNS)
    return out.drop_duplicates(subset=["scope", "key", "field"], keep="first").reset_index(drop=True)


def _thumb_b64(image: np.ndarray, height: int, quality: int = 80) -> str:
    """RGB uint8 image -> base64 JPEG of the given height."""
    h, w = image.shape[:2]
    small = cv2.resize(np.ascontiguousarray(image), (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f5f7;color:#222}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:10px 18px;z-index:2}
h1{font-size:18px;margin:0 0 6px}
.sum{color:#555;font-size:13px;margin-bottom:8px}
.filters button{border:1px solid #bbb;background:#fafafa;border-radius:14px;padding:3px 11px;margin:2px 4px 2px 0;cursor:pointer;font-size:13px}
.filters button.on{background:#2d6cdf;color:#fff;border-color:#2d6cdf}
.filters input{margin-left:10px;padding:3px 8px;border:1px solid #bbb;border-radius:4px;width:180px}
main{padding:14px 18px}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;margin:0 0 14px;padding:10px 14px}
.card h2{font-size:15px;margin:0 0 4px;display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}
.score{font-weight:600;color:#fff;background:#c0392b;border-radius:10px;padding:0 8px;font-size:12px}
.given{color:#555;font-weight:400;font-size:13px}
.kind{font-size:11px;border-radius:8px;padding:1px 7px;background:#eef;color:#335;font-weight:500;white-space:nowrap}
.k-gender{background:#fde2e4}.k-age{background:#fff1c1}.k-mask_swap{background:#d7f0ff}.k-mask_photo{background:#e0f5e4}.k-structure{background:#eadcf8}.k-near_duplicate{background:#e8e8e8}
.photos{display:flex;gap:8px;flex-wrap:wrap;margin:8px 0}
figure{margin:0;text-align:center;font-size:11px;color:#444;width:100px}
figure img,figure .none{display:block;height:128px;width:96px;object-fit:cover;border:3px solid transparent;border-radius:4px;margin:0 auto;background:#ddd}
figure.hit img,figure.hit .none{border-color:#e67e22}
figure .sug{color:#c0392b;font-weight:600}
table.flags{border-collapse:collapse;width:100%;font-size:13px}
table.flags td,table.flags th{border-top:1px solid #eee;padding:3px 6px;text-align:left;vertical-align:top}
table.flags th{color:#666;font-weight:500;white-space:nowrap}
.arrow{color:#c0392b;font-weight:600;white-space:nowrap}
footer{color:#777;font-size:12px;padding:0 18px 20px}
"""

_SCRIPT = """
(function(){
  var active='all', q='';
  function apply(){
    var shown=0;
    document.querySelectorAll('.card').forEach(function(c){
      var ok=(active==='all'||c.dataset.kinds.split(' ').indexOf(active)>=0)&&(!q||c.dataset.person.toLowerCase().indexOf(q)>=0);
      c.style.display=ok?'':'none'; if(ok) shown++;
    });
    document.getElementById('shown').textContent=shown;
  }
  document.querySelectorAll('.filters button').forEach(function(b){
    b.addEventListener('click',function(){
      document.querySelectorAll('.filters button').forEach(function(x){x.classList.remove('on');});
      b.classList.add('on'); active=b.dataset.kind; apply();
    });
  });
  document.getElementById('search').addEventListener('input',function(e){q=e.target.value.toLowerCase(); apply();});
  apply();
})();
"""


def render_html(flags: pd.DataFrame, manifest: pd.DataFrame, images: np.ndarray, title: str = "relabel report",
                age_bins: Sequence[int] = DEFAULT_AGE_BINS, thumb_height: int = 128, max_cards: int = 1000,
                note: str = "") -> str:
    """The report page as one HTML string: cards per flagged person (highest score first), images inlined.

    ``images`` rows match ``manifest`` rows (a cache's images and manifest); only flagged people's photos are read.
    """
    e = html.escape
    man = manifest.reset_index(drop=True).assign(_row=np.arange(len(manifest)))
    man["person"] = man["person"].astype(str)
    by_person = {p: g for p, g in man.groupby("person", sort=False)}
    errors = man["error"].fillna("").astype(str).to_numpy() if "error" in man else np.full(len(man), "")
    counts = flags["kind"].value_counts().to_dict() if len(flags) else {}
    people = (flags.groupby("person", sort=False)["score"].max().sort_values(ascending=False, kind="mergesort")
              if len(flags) else pd.Series(dtype=float))
    n_people = len(people)
    people = people.iloc[:max_cards]
    cards = []
    for person, top in people.items():
        f = flags[flags["person"] == person]
        g = by_person.get(person)
        kinds = sorted(set(f["kind"]), key=lambda k: KINDS.index(k) if k in KINDS else 99)
        given = ""
        if g is not None and len(g):
            r0 = g.iloc[0]
            bits = [value_name("gender", r0.get("gender")), value_name("age_group", r0.get("age_group"), age_bins)]
            if "age" in g and pd.notna(r0.get("age")):
                bits.append(f"age {int(r0['age'])}")
            given = ", ".join(b for b in bits if b)
        hits = {}
        for r in f.to_dict("records"):
            if r["image_id"]:
                s = value_name(r["field"], r["suggested"], age_bins)
                hits[r["image_id"]] = f"&rarr; {e(s)}" if s else "&#9888;"
        figs = []
        if g is not None:
            g = g.assign(_o=g["photo"].map(PHOTO_ORDER).fillna(99) if "photo" in g else 0).sort_values(["_o", "image_id"])
            for r in g.to_dict("records"):
                iid = str(r["image_id"])
                label = e(str(r.get("photo") or iid))
                mask = value_name("mask", r.get("mask"))
                if errors[r["_row"]]:
                    img = f'<div class="none" title="{e(errors[r["_row"]])}"></div>'
                else:
                    img = f'<img alt="{e(iid)}" title="{e(iid)}" src="data:image/jpeg;base64,{_thumb_b64(images[r["_row"]], thumb_height)}">'
                sug = f'<div class="sug">{hits[iid]}</div>' if iid in hits else ""
                figs.append(f'<figure class="{"hit" if iid in hits else ""}">{img}<figcaption>{label}<br>{e(mask)}</figcaption>{sug}</figure>')
        rows = []
        for r in f.to_dict("records"):
            gv, sv = value_name(r["field"], r["given"], age_bins), value_name(r["field"], r["suggested"], age_bins)
            change = f'{e(r["field"])}: {e(gv)} <span class="arrow">&rarr; {e(sv)}</span>' if sv else "check by eye"
            where = e(r["photo"] or r["image_id"] or "person")
            rows.append(f'<tr><td><span class="kind k-{e(r["kind"])}">{e(KIND_TITLES.get(r["kind"], r["kind"]))}</span></td><td>{where}</td>'
                        f'<td>{change}</td><td>{r["score"]:.2f}</td><td>{e(r["reason"])}</td></tr>')
        badges = " ".join(f'<span class="kind k-{e(k)}">{e(KIND_TITLES.get(k, k))}</span>' for k in kinds)
        cards.append(
            f'<section class="card" data-kinds="{e(" ".join(kinds))}" data-person="{e(person)}">'
            f'<h2><span class="score">{top:.2f}</span><span>{e(person)}</span><span class="given">{e(given)}</span>{badges}</h2>'
            f'<div class="photos">{"".join(figs)}</div>'
            f'<table class="flags"><tr><th>kind</th><th>where</th><th>suggested fix</th><th>score</th><th>why</th></tr>{"".join(rows)}</table>'
            "</section>")
    buttons = [f'<button class="on" data-kind="all">all ({n_people})</button>']
    for k in KINDS:
        if counts.get(k):
            np_k = flags.loc[flags["kind"] == k, "person"].nunique()
            buttons.append(f'<button data-kind="{k}">{e(KIND_TITLES[k])} ({np_k})</button>')
    summary = (f"{len(flags)} flag(s) on {n_people} people out of {man['person'].nunique()} "
               f"({len(man)} photos); showing <span id=\"shown\">{len(people)}</span> card(s)")
    if n_people > len(people):
        summary += f"; the {n_people - len(people)} lowest-scored people are only in issues.csv"
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{e(title)}</title>"
            f"<style>{_CSS}</style></head><body><header><h1>{e(title)}</h1><div class=\"sum\">{summary}</div>"
            f'<div class="filters">{"".join(buttons)}<input id="search" type="search" placeholder="person contains…"></div></header>'
            f'<main>{"".join(cards) or "<p>No flags: every check passed.</p>"}</main>'
            f"<footer>{e(note)} Orange frame: the photo a flag is about. Fixes are only suggestions: edit overrides.csv, "
            f"then train with <code>--overrides overrides.csv</code>; the data itself is never changed.</footer>"
            f"<script>{_SCRIPT}</script></body></html>")


def write_report(out: str | Path, flags: pd.DataFrame, manifest: pd.DataFrame, images: np.ndarray,
                 title: str = "relabel report", age_bins: Sequence[int] = DEFAULT_AGE_BINS, max_cards: int = 1000,
                 note: str = "") -> dict[str, Path]:
    """Write report.html, issues.csv (every flag) and overrides.csv (every suggested fix) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "report.html", "issues": out / "issues.csv", "overrides": out / "overrides.csv"}
    issues = flags.reindex(columns=FLAG_COLUMNS).copy()
    for c in ("given", "suggested"):
        issues[c] = pd.array([None if v is None or pd.isna(v) else int(v) for v in issues[c]], dtype="Int64")
    issues.to_csv(paths["issues"], index=False, float_format="%.4f")
    overrides_from_flags(flags).to_csv(paths["overrides"], index=False)
    paths["html"].write_text(render_html(flags, manifest, images, title=title, age_bins=age_bins, max_cards=max_cards,
                                         note=note), encoding="utf-8")
    return paths
