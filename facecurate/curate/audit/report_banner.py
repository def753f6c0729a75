"""The top of report.html: how well the model reads each head (with reliability plots) and how sure each kind of flag is.

Plots are small inline SVGs written here (a few lines each, no image files, nothing to load).
"""
from __future__ import annotations

import html
from collections.abc import Mapping

import numpy as np

from .kinds import title_of
from .quality import HeadQuality
from .simulate import KindEstimate



def reliability_svg(curve: list[tuple[float, float, int]], size: int = 116, title: str = "") -> str:
    """Confidence (x) vs accuracy (y) per bin as dots sized by photos, over the diagonal of perfect calibration."""
    pad, w = 14, size - 18
    pts = []
    total = max(sum(n for _, _, n in curve), 1)
    for conf, acc, n in curve:
        x, y = pad + conf * w, 4 + (1 - acc) * w
        pts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{1.5 + 4 * np.sqrt(n / total):.1f}" fill="#0969da" fill-opacity=".75"/>')
    line = " ".join(f"{pad + c * w:.1f},{4 + (1 - a) * w:.1f}" for c, a, _ in curve)
    return (f'<svg width="{size}" height="{size}" viewBox="0 0 {size} {size}" role="img" aria-label="{html.escape(title)}">'
            f'<rect x="{pad}" y="4" width="{w}" height="{w}" fill="#f6f8fa" stroke="#d0d7de"/>'
            f'<line x1="{pad}" y1="{4 + w}" x2="{pad + w}" y2="4" stroke="#8c959f" stroke-dasharray="3 3"/>'
            f'<polyline points="{line}" fill="none" stroke="#0969da" stroke-width="1.2"/>{"".join(pts)}'
            f'<text x="{pad + w / 2}" y="{size - 1}" font-size="9" text-anchor="middle" fill="#57606a">confidence</text>'
            f'<text x="8" y="{4 + w / 2}" font-size="9" text-anchor="middle" fill="#57606a" '
            f'transform="rotate(-90 8 {4 + w / 2})">accuracy</text></svg>')


def _pct(x: float) -> str:
    return f"{x:.0%}" if np.isfinite(x) else "n/a"


def quality_panel(quality: Mapping[str, HeadQuality]) -> str:
    """The per-head table: balanced accuracy and its interval vs what the gate needs, macro F1, calibration, plots."""
    e = html.escape
    rows, plots = [], []
    for q in quality.values():
        lo, hi = q.interval
        pill = '<span class="pill on">flags on</span>' if q.on else '<span class="pill off">flags off</span>'
        rows.append(f"<tr><td><b>{e(q.head)}</b></td><td>{_pct(q.balanced_accuracy)}</td><td>{_pct(lo)}–{_pct(hi)}</td>"
                    f"<td>{_pct(q.chance)}</td><td>{_pct(q.needed)}</td><td>{q.macro_f1:.2f}</td><td>{q.ece:.3f}</td><td>{pill}</td></tr>")
        plots.append(f"<figure>{reliability_svg(q.reliability, title=f'reliability of {q.head}')}<br>{e(q.head)}: ECE {q.ece:.3f}</figure>")
    return ('<div class="panel"><h2>How well the out-of-fold model reads each head</h2><table class="q"><tr><th>head</th>'
            "<th>balanced acc.</th><th>95% interval (people)</th><th>chance</th><th>needed</th><th>macro F1</th>"
            f"<th>calib. error</th><th></th></tr>{''.join(rows)}</table>"
            f'<div class="rel">{"".join(plots)}</div></div>')


def estimates_panel(estimates: Mapping[str, KindEstimate], counts: Mapping[str, int]) -> str:
    """The per-kind table: status, threshold, expected precision and recall from the simulation, flags raised."""
    e = html.escape
    rows = []
    for k, est in estimates.items():
        if est.off:
            status, thr, pr, rc, sim = '<span class="pill off">off</span>', "–", "–", "–", "head below the gate"
        else:
            pill = "high" if est.confident else "low"
            status = f'<span class="pill {pill}">{"confident" if est.confident else "candidates, low confidence"}</span>'
            thr = f"{est.threshold:.3g}"
            pr, rc = (f"~{est.precision:.2f}" if np.isfinite(est.precision) else "–"), (f"~{est.recall:.2f}" if np.isfinite(est.recall) else "–")
            sim = f"{est.rate:.0%} of {est.units} units, {est.draws} draws; ~{est.real_errors:.0f} real errors estimated"
        rows.append(f"<tr><td><b>{e(title_of(k))}</b></td><td>{status}</td><td>{thr}</td><td>{pr}</td><td>{rc}</td>"
                    f"<td>{counts.get(k, 0)}</td><td>{e(sim)}</td></tr>")
    return ('<div class="panel"><h2>How sure each kind of flag is (simulated: known errors injected, same checks run)</h2>'
            '<table class="q"><tr><th>kind</th><th>status</th><th>threshold</th><th>expected precision</th>'
            f"<th>expected recall</th><th>flags</th><th>simulation</th></tr>{''.join(rows)}</table>"
            '<p class="why">Only confident kinds go into overrides.csv by default. Candidates are shown for a person to '
            "judge. Structural, near-duplicate, identity and photo-quality checks do not read the model: they run whenever "
            "their inputs exist (identity needs face embeddings that tell people apart).</p></div>")


def off_lines(quality: Mapping[str, HeadQuality], estimates: Mapping[str, KindEstimate]) -> str:
    """The warning lines in words: heads whose flags are off, and kinds that stay candidates."""
    e = html.escape
    lines = [q.describe() for q in quality.values() if not q.on]
    lines += [f"{title_of(k)}: {est.describe()}" for k, est in estimates.items() if not est.off and not est.confident]
    return f'<div class="off">{"".join(f"<p>{e(x)}</p>" for x in lines)}</div>' if lines else ""
