"""The relabel report's files: ``report.html`` (self-contained, offline), ``issues.csv`` and ``overrides.csv``.

The HTML page has one card per flagged person with every photo of theirs from the cache embedded
as a base64 JPEG, sorted by score and filterable by kind with a small inline script; it loads
nothing from anywhere. ``overrides.csv`` is in the format ``curate.overrides`` reads.
"""
from __future__ import annotations

import base64
import html
import hashlib
import json
from dataclasses import asdict
from collections.abc import Mapping, Sequence
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
from .flags import FLAG_COLUMNS, MATCH_COLUMNS
from .kinds import KINDS, rank_of, title_of
from .report_banner import estimates_panel, off_lines, quality_panel
from .report_page import CSS, SCRIPT

PHOTO_ORDER = {s: i for i, s in enumerate(PHOTO_STEMS)}


def value_name(field: str, value, age_bins: Sequence[int] = DEFAULT_AGE_BINS) -> str:
    """Human name of a label value: 'female', '30-59', 'not worn'; '' when there is none."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or pd.isna(value):
        return ""
    if field == "exclude":
        return "excluded" if int(value) else "kept"
    if field == "identity":
        return f"identity group {int(value)}"
    names = {"gender": GENDER_NAMES, "age_group": age_group_names(age_bins), "mask": MASK_NAMES}.get(field)
    return names[int(value)] if names else str(value)


def override_reason(flag: Mapping) -> str:
    """The ``reason`` an overrides.csv row of this flag carries (the page's script writes the same text)."""
    return f"relabel-report {flag['kind']} (score {flag['score']:.2f}): {flag['reason']}"


def overrides_from_flags(flags: pd.DataFrame, include_candidates: bool = False) -> pd.DataFrame:
    """The suggested fixes as overrides rows (scope, key, field, value, reason); flags without a suggestion are left out,
    and so are low-confidence candidates unless ``include_candidates``."""
    rows = []
    for r in flags.to_dict("records"):
        if r["suggested"] is None or pd.isna(r["suggested"]) or not r["field"]:
            continue
        if r.get("confidence") == "low" and not include_candidates:
            continue
        key = r["person"] if r["scope"] == "person" else r["image_id"]
        rows.append({"scope": r["scope"], "key": str(key), "field": r["field"], "value": int(r["suggested"]),
                     "reason": override_reason(r)})
    out = pd.DataFrame(rows, columns=OVERRIDE_COLUMNS)
    return out.drop_duplicates(subset=["scope", "key", "field"], keep="first").reset_index(drop=True)


def _thumb_b64(image: np.ndarray, height: int, quality: int = 80) -> str:
    """RGB uint8 image -> base64 JPEG of the given height."""
    h, w = image.shape[:2]
    small = cv2.resize(np.ascontiguousarray(image), (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


def _flag_data(flags: pd.DataFrame) -> list[dict]:
    """One record per flag for the page's script: what a row of overrides.csv would be, exactly as written here."""
    out = []
    for i, r in enumerate(flags.to_dict("records")):
        has_fix = bool(r["field"]) and r["suggested"] is not None and not pd.isna(r["suggested"])
        out.append({"id": str(r.get("_id", i)), "kind": r["kind"], "person": str(r["person"]), "confidence": r.get("confidence") or "",
                    "scope": r["scope"], "key": str(r["person"] if r["scope"] == "person" else r["image_id"]),
                    "field": r["field"] if has_fix else "", "value": int(r["suggested"]) if has_fix else None,
                    "reason": override_reason(r)})
    return out


def _no_flags(quality: Mapping | None) -> str:
    """The page body when nothing was flagged: says so, and that some checks were off when they were."""
    off = [h for h, q in (quality or {}).items() if not q.on]
    if off:
        return (f"<p>No flags raised. The checks that read the {', '.join(off)} head(s) were off (see the lines above): "
                "a weak model proves nothing either way.</p>")
    return "<p>No flags: every check passed.</p>"


def _matched(f: pd.DataFrame, errors: np.ndarray, images: np.ndarray, photo_height: int, row_of: Mapping) -> list[str]:
    """Figures of the photos an identity flag matched (``other_image_id``: another id's face, or the person's own
    typical photo a stranger was compared with), to see beside the person's photos."""
    e, out = html.escape, []
    if "other_image_id" not in f:
        return out
    for r in f.to_dict("records"):
        iid = r.get("other_image_id")
        if not isinstance(iid, str) or not iid or iid not in row_of or errors[row_of[iid]]:
            continue
        who = r.get("other_person") or ""
        owner = str(who) if who and who != r["person"] else str(r["person"])
        name = iid[len(owner) + 1:] if iid.startswith(f"{owner}/") else iid  # the photo's name; the person is said once
        cap = f"{e(owner)}<br>{e(name)}" if owner != r["person"] else f"own reference<br>{e(name)}"
        out.append(f'<figure class="ph match"><img alt="{e(iid)}" title="matched photo {e(iid)}" '
                   f'src="data:image/jpeg;base64,{_thumb_b64(images[row_of[iid]], photo_height)}">'
                   f'<figcaption>&#8596; {cap}</figcaption></figure>')
    return out


def _card(person: str, f: pd.DataFrame, g: pd.DataFrame | None, errors: np.ndarray, images: np.ndarray,
          age_bins: Sequence[int], photo_height: int, row_of: Mapping | None = None) -> str:
    """One person's card: the photos (flagged ones framed), the photos an identity flag matched, the given labels,
    and each flag with accept / reject."""
    e = html.escape
    kinds = sorted(set(f["kind"]), key=rank_of)
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
            label, mask = e(str(r.get("photo") or iid)), value_name("mask", r.get("mask"))
            if errors[r["_row"]]:
                img = f'<div class="none" title="{e(errors[r["_row"]])}"></div>'
            else:
                img = (f'<img alt="{e(iid)}" title="{e(iid)} (labelled {e(mask)})" '
                       f'src="data:image/jpeg;base64,{_thumb_b64(images[r["_row"]], photo_height)}">')
            sug = f'<div class="sug">{hits[iid]}</div>' if iid in hits else ""
            figs.append(f'<figure class="ph{" hit" if iid in hits else ""}">{img}<figcaption>{label}<br>{e(mask)}</figcaption>{sug}</figure>')
    figs += _matched(f, errors, images, photo_height, row_of or {})
    rows = []
    for r in f.to_dict("records"):
        gv, sv = value_name(r["field"], r["given"], age_bins), value_name(r["field"], r["suggested"], age_bins)
        change = (f'<span class="fix">{e(r["field"])}: {e(gv)} <span class="arrow">&rarr; {e(sv)}</span></span>' if sv
                  else '<span class="nofix">check by eye (no fix)</span>')
        conf = r.get("confidence") or ""
        pill = f'<span class="pill {e(conf)}">{"confident" if conf == "high" else "low confidence"}</span>' if conf else ""
        where = e(r["photo"] or r["image_id"] or "person")
        rows.append(f'<tr class="flag" data-flag="{r["_id"]}"><td><span class="kind k-{e(r["kind"])}">'
                    f'{e(title_of(r["kind"]))}</span></td><td>{where}</td><td>{change}</td>'
                    f'<td>{r["score"]:.3f}</td><td>{pill}</td><td class="why">{e(r["reason"])}</td>'
                    '<td class="dec"><button class="acc" title="accept (a)">&#10003;</button>'
                    '<button class="rej" title="reject (r)">&#10007;</button></td></tr>')
    badges = " ".join(f'<span class="kind k-{e(k)}">{e(title_of(k))}</span>' for k in kinds)
    confs = " ".join(sorted({c for c in f["confidence"].fillna("") if c})) if "confidence" in f else ""
    return (f'<section class="card" data-kinds="{e(" ".join(kinds))}" data-person="{e(person)}" '
            f'data-score="{f["score"].max():.6f}" data-kindorder="{rank_of(kinds[0])}" '
            f'data-conf="{e(confs)}">'
            f'<h3><span class="score">{f["score"].max():.2f}</span><span class="who">{e(person)}</span>'
            f'<span class="given">{e(given)}</span>{badges}<span class="acts">'
            '<button class="plain pacc" title="accept every flag of this person (A)">accept person</button>'
            '<button class="plain prej" title="reject every flag of this person (R)">reject person</button></span></h3>'
            f'<div class="body"><div class="photos">{"".join(figs)}</div>'
            '<table class="flags"><tr><th>kind</th><th>where</th><th>suggested fix</th><th>score</th><th>confidence</th>'
            f'<th>why</th><th>decision</th></tr>{"".join(rows)}</table></div></section>')


HELP = ("<b>Keyboard</b><br><kbd>j</kbd>/<kbd>k</kbd> or arrows: next / previous flag &nbsp; <kbd>n</kbd>/<kbd>p</kbd>: next / "
        "previous person<br><kbd>a</kbd> accept, <kbd>r</kbd> reject, <kbd>u</kbd> undecided (the flag in focus)<br>"
        "<kbd>A</kbd> / <kbd>R</kbd>: accept / reject the whole person<br><kbd>o</kbd> or <kbd>Enter</kbd>: enlarge the photo "
        "&nbsp; <kbd>Esc</kbd>: close<br><kbd>/</kbd>: filter by person &nbsp; <kbd>d</kbd>: download overrides.csv &nbsp; "
        "<kbd>?</kbd>: this help")


def render_html(flags: pd.DataFrame, manifest: pd.DataFrame, images: np.ndarray, title: str = "relabel report",
                age_bins: Sequence[int] = DEFAULT_AGE_BINS, photo_height: int = 192, max_cards: int = 1000,
                note: str = "", quality: Mapping | None = None, estimates: Mapping | None = None,
                notes: Sequence[str] = ()) -> str:
    """The report page as one HTML string: the quality banner, then one card per flagged person (highest score first).

    ``images`` rows match ``manifest`` rows (a cache's images and manifest); only flagged people's photos are read,
    embedded ``photo_height`` pixels high (shown smaller, enlarged on click). ``notes``: lines shown above the cards
    (identity checks off, photos without a face embedding, the probe's weights).
    """
    e = html.escape
    man = manifest.reset_index(drop=True).assign(_row=np.arange(len(manifest)))
    man["person"] = man["person"].astype(str)
    by_person = {p: g for p, g in man.groupby("person", sort=False)}
    errors = man["error"].fillna("").astype(str).to_numpy() if "error" in man else np.full(len(man), "")
    flags = flags.reset_index(drop=True).assign(_id=lambda d: np.arange(len(d)).astype(str))
    if "confidence" not in flags:
        flags["confidence"] = ""
    counts = flags["kind"].value_counts().to_dict() if len(flags) else {}
    people = (flags.groupby("person", sort=False)["score"].max().sort_values(ascending=False, kind="mergesort")
              if len(flags) else pd.Series(dtype=float))
    n_people = len(people)
    people = people.iloc[:max_cards]
    shown = flags[flags["person"].isin(people.index)]
    row_of = dict(zip(man["image_id"].astype(str), man["_row"]))
    cards = [_card(p, shown[shown["person"] == p], by_person.get(p), errors, images, age_bins, photo_height, row_of)
             for p in people.index]
    buttons = [f'<button class="kindbtn on" data-kind="all">all ({n_people})</button>']
    for k in KINDS:
        if counts.get(k):
            buttons.append(f'<button class="kindbtn" data-kind="{k}" title="{e(KINDS[k].description)}">{e(KINDS[k].title)} '
                           f'({flags.loc[flags["kind"] == k, "person"].nunique()})</button>')
    summary = (f"{len(flags)} flag(s) on {n_people} of {man['person'].nunique()} people ({len(man)} photos); "
               f'showing <span id="shown">{len(people)}</span> card(s)')
    if n_people > len(people):
        summary += f"; the {n_people - len(people)} lowest-scored people are only in issues.csv"
    data = json.dumps(_flag_data(shown)).replace("</", "<\\/")
    banner = ('<div class="off">' + "".join(f"<p>{e(x)}</p>" for x in notes) + "</div>") if notes else ""
    if quality:
        banner += off_lines(quality, estimates or {}) + '<div class="quality">' + quality_panel(quality)
        banner += (estimates_panel(estimates, counts) if estimates else "") + "</div>"
    report_id = hashlib.sha1((title + str(len(flags)) + data[:4096]).encode()).hexdigest()[:12]
    toolbar = (f'<div class="bar"><div class="grp">{"".join(buttons)}</div>'
               '<div class="grp"><label for="conf">confidence</label><select id="conf"><option value="all">all</option>'
               '<option value="high">confident</option><option value="low">low confidence</option></select>'
               '<label for="state">decision</label><select id="state"><option value="all">all</option>'
               '<option value="undecided">undecided</option><option value="accepted">accepted</option>'
               '<option value="rejected">rejected</option></select>'
               '<label for="sort">sort by</label><select id="sort"><option value="score">score</option>'
               '<option value="person">person</option><option value="kind">kind</option></select>'
               '<input id="search" type="search" placeholder="person contains… (/)"></div>'
               '<div class="grp tally"><b id="n-acc">0</b> accepted · <b id="n-rej">0</b> rejected · '
               '<b id="n-und">0</b> undecided</div><div class="grp">'
               '<button id="accept-high" class="plain" title="accept every undecided confident flag">accept all confident</button>'
               '<button id="clear" class="plain">clear</button>'
               '<button id="download" class="primary" title="d">download overrides.csv (<span id="n-fix">0</span>)</button>'
               '<button id="helpbtn" class="plain" title="?">keys</button></div></div>')
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{e(title)}</title>"
            f'<style>{CSS}</style></head><body data-report="{report_id}"><header><h1>{e(title)}</h1>'
            f'<div class="sum">{summary}</div>{toolbar}</header><div id="help">{HELP}</div>{banner}'
            f'<main>{"".join(cards) or _no_flags(quality)}</main>'
            f"<footer>{e(note)} Orange frame: the photo a flag is about; dashed blue: the photo an identity flag matched it with. Accept or reject each flag, then download "
            "overrides.csv and train with <code>--overrides overrides.csv</code>; the data itself is never changed. "
            "Decisions are remembered by this browser.</footer>"
            '<div id="lightbox"><img alt=""><div></div></div>'
            f'<script type="application/json" id="flag-data">{data}</script><script>{SCRIPT}</script></body></html>')


def write_report(out: str | Path, flags: pd.DataFrame, manifest: pd.DataFrame, images: np.ndarray,
                 title: str = "relabel report", age_bins: Sequence[int] = DEFAULT_AGE_BINS, max_cards: int = 1000,
                 note: str = "", quality: Mapping | None = None, estimates: Mapping | None = None,
                 include_candidates: bool = False, notes: Sequence[str] = ()) -> dict[str, Path]:
    """Write report.html, issues.csv (every flag), overrides.csv (the suggested fixes of confident kinds, plus the
    low-confidence candidates when ``include_candidates``) and quality.json (the gate and the estimates) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "report.html", "issues": out / "issues.csv", "overrides": out / "overrides.csv",
             "quality": out / "quality.json"}
    issues = flags.reindex(columns=FLAG_COLUMNS + [c for c in MATCH_COLUMNS if c in flags]).copy()
    for c in ("given", "suggested"):
        issues[c] = pd.array([None if v is None or pd.isna(v) else int(v) for v in issues[c]], dtype="Int64")
    issues.to_csv(paths["issues"], index=False, float_format="%.4f")
    overrides_from_flags(flags, include_candidates=include_candidates).to_csv(paths["overrides"], index=False)
    paths["quality"].write_text(json.dumps(quality_record(quality or {}, estimates or {}), indent=2, default=float))
    paths["html"].write_text(render_html(flags, manifest, images, title=title, age_bins=age_bins, max_cards=max_cards,
                                         note=note, quality=quality, estimates=estimates, notes=notes), encoding="utf-8")
    return paths


def quality_record(quality: Mapping, estimates: Mapping) -> dict:
    """quality.json: every head's measures and every kind's threshold, estimates and status, as plain numbers."""
    def clean(x):
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return None if isinstance(x, float) and not np.isfinite(x) else x

    heads = {h: {k: clean(v) for k, v in asdict(q).items()} | {"text": q.describe()} for h, q in quality.items()}
    kinds = {k: {f: clean(v) for f, v in asdict(est).items() if f != "curve"} | {"status": est.status, "text": est.describe()}
             for k, est in estimates.items()}
    return {"heads": heads, "kinds": kinds}
