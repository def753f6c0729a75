"""How the CLI shows what the stages report: one summary per stage (the progress bars: ``progress_bars``).

The stages never print; everything a user sees on the terminal is rendered here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from ..curate.labels import class_names, head_names
from .progress_bars import RichProgress  # noqa: F401  (re-exported: stage() and the tests import it from here)

if TYPE_CHECKING:  # the stages' modules load with their commands, not with every `facecurate --help`
    from ..curate.audit import RelabelResult
    from ..curate.crop import CropResult
    from ..curate.embed import EmbedResult
    from ..curate.inspect import InspectResult
    from ..curate.synth import SynthResult
    from ..train.toolkit.ensemble import EnsembleResult
    from ..train.toolkit.explain import ExplainResult
    from ..train.toolkit.pseudo import PseudoResult
    from ..train.toolkit.tune import TuneResult


def print_paths(console: Console, label: str, *paths: Path) -> None:
    """One line naming files, never wrapped mid-path."""
    console.print(f"{label} " + ", ".join(str(p) for p in paths), markup=False, soft_wrap=True)


def inspect_summary(console: Console, r: InspectResult, show: int = 20, quiet: bool = False) -> None:
    """The data set's counts per class and per head, and its first ``show`` problems (``quiet``: the counts line only)."""
    ds, m = r.dataset, r.dataset.manifest
    if quiet:
        errors = sum(p.level == "error" for p in ds.problems)
        console.print(f"{ds.root}: {m['person'].nunique()} people, {len(m)} photos, {errors} errors, "
                      f"{len(ds.problems) - errors} warnings; {r.files.get('problems', '')}", markup=False, soft_wrap=True)
        return
    console.print(f"{ds.root}  layout: {ds.layout}  people: {m['person'].nunique()}  photos: {len(m)}", markup=False,
                  soft_wrap=True)
    if len(r.classes):
        t = Table(title="per class")
        for c in ("class", "name", "people", "photos"):
            t.add_column(c, justify="right" if c != "name" else "left")
        for i, n in enumerate(class_names(r.age_bins)):
            t.add_row(str(i), n, str(r.classes.at[i, "people"]), str(r.classes.at[i, "photos"]))
        console.print(t)
        if len(r.people_grid):
            grid = Table(title="people per gender x age group")
            grid.add_column("")
            for c in r.people_grid.columns:
                grid.add_column(str(c), justify="right")
            for g, row in r.people_grid.iterrows():
                grid.add_row(str(g), *[f"[bold red]{v}[/]" if v == 0 else str(v) for v in row])
            console.print(grid)
        for head, counts in r.heads.items():
            ht = Table(title=f"per {'age group' if head == 'age' else head}")
            ht.add_column("value")
            ht.add_column("photos", justify="right")
            for name in head_names(head, r.age_bins):
                ht.add_row(name, str(int(counts.get(name, 0))))
            console.print(ht)
    errors = [p for p in ds.problems if p.level == "error"]
    console.print(f"problems: {len(errors)} errors (skipped), {len(ds.problems) - len(errors)} warnings")
    for p in ds.problems[:show]:
        console.print(f"  {p}", markup=False, highlight=False, soft_wrap=True)
    if len(ds.problems) > show:
        console.print(f"  ... and {len(ds.problems) - show} more (see problems.csv)")
    if r.quality is not None:
        quality_summary(console, r.quality)
    print_paths(console, "wrote", *r.files.values())


def quality_summary(console: Console, q) -> None:
    """Photos flagged per photo-quality defect (with the rules that fired), and the rules held back as too common."""
    d, n = q.defects, len(q.measures)
    t = Table(title=f"photo quality: {d['row'].nunique()} of {n} cropped photos flagged ({n / max(q.seconds, 1e-9):.0f} photos/s)")
    for c in ("defect", "photos", "absolute", "relative"):
        t.add_column(c, justify="left" if c == "defect" else "right")
    for kind, count in q.counts().items():
        rules = d.loc[d["kind"] == kind, "rules"]
        t.add_row(kind, str(int(count)), str(int(rules.str.contains("absolute").sum())), str(int(rules.str.contains("relative").sum())))
    console.print(t)
    for note in q.notes:
        console.print(f"  {note}", markup=False, highlight=False, soft_wrap=True)


def synth_summary(console: Console, r: SynthResult, show: int = 10, quiet: bool = False) -> None:
    """What ``synth`` wrote (people per group, photos, skipped, injected) and the first skipped faces (``quiet``: the
    folder line only)."""
    if quiet:
        console.print(f"synth: {r.out}", markup=False, soft_wrap=True)
        return
    t = Table(title=f"synth -> {r.out} ({r.layout} layout)", show_header=False)
    t.add_row("people", f"{r.people} written" + (f" of {r.wanted} wanted" if r.wanted != r.people else ""))
    t.add_row("photos", f"{r.photos} (384 x 512)")
    names = head_names("age", r.age_bins)
    for g, row in r.groups.iterrows():
        t.add_row(f"  {g}", ", ".join(f"{names[int(a)]}: {n}" for a, n in row.items()))
    t.add_row("skipped faces", f"{len(r.skipped)} (skipped.csv)" + (f", {r.duplicates} as duplicates" if r.duplicates else ""))
    if r.resumed:
        t.add_row("resumed", f"{r.resumed} block(s) from the interrupted run")
    kinds = r.injected["kind"].value_counts().to_dict() if len(r.injected) else {}
    t.add_row("injected errors", (", ".join(f"{k}: {v}" for k, v in kinds.items()) or "none") + " (injected.csv)")
    t.add_row("detector", r.detector)
    t.add_row("contact sheet", str(r.contact) if r.contact else "-")
    t.add_row("time", f"{r.seconds:.1f} s")
    console.print(t)
    for p in r.skipped[:show]:
        console.print(f"skipped: {p.path}: {p.what}", markup=False, soft_wrap=True)
    if len(r.skipped) > show:
        console.print(f"... and {len(r.skipped) - show} more in skipped.csv")


def crop_summary(console: Console, r: CropResult, quiet: bool = False) -> None:
    """Photos per box source, speed, and where the cache and its contact sheet are (``quiet``: the cache line only)."""
    out = r.cache.path
    if quiet:
        console.print(f"cache: {out}", markup=False, soft_wrap=True)
        return
    if r.state != "complete":
        t = Table(title=f"crop -> {out}")
        for col in ("photos", "detected", "person", "prior", "failed", "seconds (both passes)", "photos/s"):
            t.add_column(col, justify="right")
        c = r.counts
        t.add_row(str(len(r.cache.manifest)), str(c.get("detected", 0)), str(c.get("person", 0)), str(c.get("prior", 0)),
                  str(c.get("failed", 0)), f"{r.seconds:.1f}", f"{r.photos_per_s:.1f}")
        console.print(t)
    if r.state != "complete" and (r.rejected or r.off_person):
        console.print(f"{r.rejected} photo(s) showed only faces that disagree with their person's other photos and got the "
                      f"person box (the rejected box is kept in the manifest); {r.off_person} crop(s) still differ from "
                      f"their person's: review them on the contact sheet", markup=False, soft_wrap=True)
    if r.contact is not None:
        console.print(f"contact sheet: {r.contact}" + (f" ({r.left_out} crops to review not shown)" if r.left_out else ""),
                      markup=False, soft_wrap=True)
    usable = len(r.cache.usable())
    console.print(f"cache: {out} ({len(r.cache.manifest)} photos, {usable} usable, images {tuple(r.cache.images.shape)})",
                  markup=False, soft_wrap=True)


def embed_summary(console: Console, r: EmbedResult, quiet: bool = False) -> None:
    """Photos embedded and why the others were not, speed, and where the vectors are (``quiet``: that line only)."""
    e = (r.cache.meta or {}).get("embeddings") or {}
    names = list(e.get("attributes") or [])
    cols = f"{e.get('identity_dim', r.dim)} identity + {', '.join(names)}" if names else f"{r.dim}"
    where = f"embeddings: {r.cache.path / 'embeddings.npy'} ({r.embedded} x {cols}, {r.backend})"
    if not quiet and r.state != "complete":
        t = Table(title=f"embed -> {r.cache.path}")
        for col in ("photos", "embedded", "no embedding", "seconds", "photos/s", "device"):
            t.add_column(col, justify="right")
        t.add_row(str(r.embedded + r.failed), str(r.embedded), str(r.failed), f"{r.seconds:.1f}", f"{r.photos_per_s:.1f}", r.device)
        console.print(t)
    if not quiet and r.reasons:
        console.print("no embedding: " + ", ".join(f"{k} {v}" for k, v in sorted(r.reasons.items(), key=lambda kv: -kv[1]))
                      + " (embeddings.parquet's embed_error says which photos)", markup=False, soft_wrap=True)
    console.print(where, markup=False, soft_wrap=True)


def relabel_summary(console: Console, r: RelabelResult, quiet: bool = False) -> None:
    """The quality gate in words, flags per kind with their threshold and expected precision, and the files written."""
    from ..curate.audit import KINDS

    if quiet:
        console.print(f"report: {r.paths['html']}", markup=False, soft_wrap=True)
        return
    for q in r.quality.values():
        console.print(("" if q.on else "warning: ") + q.describe(), markup=False, soft_wrap=True)
    t = Table(title=f"relabel-report: {r.coverage}")
    for c in ("kind", "flags", "people", "status", "threshold", "exp. precision", "exp. recall"):
        t.add_column(c, justify="left" if c in ("kind", "status") else "right")
    for k in KINDS:
        n, p = r.counts.get(k, (0, 0))
        est = r.estimates.get(k)
        if est is None:
            row = (r.detector_status(k), "", "", "")
        elif est.off:
            row = ("off (model too weak)", "", "", "")
        else:
            row = (est.status, f"{est.threshold:.3g}", f"~{est.precision:.2f}" if est.precision == est.precision else "-",
                   f"~{est.recall:.2f}" if est.recall == est.recall else "-")
        t.add_row(KINDS[k].title, str(n), str(p), *row)
    t.add_row("all", str(len(r.flags)), str(r.flags["person"].nunique() if len(r.flags) else 0), end_section=True)
    console.print(t)
    for k, est in r.estimates.items():
        if not est.off and not est.confident:
            console.print(f"{KINDS[k].title}: {est.describe()}", markup=False, soft_wrap=True)
    console.print(f"{r.fixes} suggested fix(es) in {r.paths['overrides']}"
                  + (f" ({r.candidates} low-confidence candidate fix(es) left out: review them in report.html, or "
                     f"--include-candidates)" if r.candidates else ""), markup=False, soft_wrap=True)
    console.print(f"every flag in {r.paths['issues']}; the gate and the estimates in {r.paths['quality']}",
                  markup=False, soft_wrap=True)
    console.print(f"open {r.paths['html']} to accept or reject each flag and download overrides.csv", markup=False,
                  soft_wrap=True)


def train_summary(console: Console, run: Path, quiet: bool = False) -> None:
    """Per-fold best epoch and F1 (with flip TTA), the out-of-fold line, the pictures written and the next commands."""
    s = json.loads((run / "summary.json").read_text())
    config = json.loads((run / "config.json").read_text())

    def f1(key: str) -> str:
        v = s.get(key, float("nan"))
        return "n/a" if v != v else f"{v:.3f}"

    line = (f"run: {run}  out-of-fold macro F1 {f1('oof_f1')} (mask {f1('oof_f1_mask')}, gender {f1('oof_f1_gender')}, "
            f"age {f1('oof_f1_age')}) on {s['n_oof']} photos")
    if quiet:
        console.print(line, markup=False, soft_wrap=True)
        return
    t = Table(title=f"run {run}")
    for c in ("fold", "best epoch", "epochs", "F1 (18)", "F1 mask", "F1 gender", "F1 age", "acc (18)"):
        t.add_column(c, justify="right")
    for f in s["per_fold"]:
        cell = lambda k: "n/a" if f.get(k, float("nan")) != f.get(k, float("nan")) else f"{f[k]:.3f}"  # noqa: E731
        t.add_row(str(f["fold"]), str(f.get("best_epoch", "")), str(f["epochs_run"]), cell("tta_f1"), cell("tta_f1_mask"),
                  cell("tta_f1_gender"), cell("tta_f1_age"), cell("tta_acc"))
    t.add_row("OOF", "", "", f1("oof_f1"), f1("oof_f1_mask"), f1("oof_f1_gender"), f1("oof_f1_age"), f1("oof_acc"), style="bold")
    console.print(t)
    console.print(line, markup=False, soft_wrap=True)
    if "oof_orig_f1" in s:
        console.print(f"against the original labels (before --overrides): macro F1 {f1('oof_orig_f1')} (mask "
                      f"{f1('oof_orig_f1_mask')}, gender {f1('oof_orig_f1_gender')}, age {f1('oof_orig_f1_age')})",
                      markup=False, soft_wrap=True)
    pictures = [run / n for n in ("confusion.png", "curves.png", "per_class.csv") if (run / n).is_file()]
    if pictures:
        print_paths(console, "wrote", *pictures)
    cache = config.get("cache", "CACHE")
    console.print(f"next: facecurate relabel-report {cache} --oof {run / 'oof.parquet'}", markup=False, soft_wrap=True)
    console.print(f"      facecurate predict {run} DATA", markup=False, soft_wrap=True)


def tune_summary(console: Console, r: TuneResult, out: Path, cache: Path, quiet: bool = False) -> None:
    """Trials finished, pruned and failed, the best trial's score and settings, the files and the `train` that repeats it."""
    c = r.counts
    line = (f"tune: {out}  {c.get('complete', 0)} finished, {c.get('pruned', 0)} pruned, {c.get('fail', 0)} failed; "
            + (f"best trial {r.best_trial}: out-of-fold macro F1 {r.best_value:.4f}" if r.best_config
               else "no finished trial yet"))
    console.print(line, markup=False, soft_wrap=True)
    if r.best_config and not quiet:
        console.print("best: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                           for k, v in r.best_params.items()), markup=False, soft_wrap=True)
        print_paths(console, "wrote", *r.files)
        console.print(f"next: facecurate train {cache} --config {r.best_config}", markup=False, soft_wrap=True)


def explain_summary(console: Console, r: ExplainResult, quiet: bool = False) -> None:
    """How many photos were explained and how, the grids written and the page to open."""
    console.print(f"explain: {r.shown} photo(s), {r.mode}, layer {r.layer}"
                  + ("" if r.labelled else "; no labels: most vs least confident"), markup=False, soft_wrap=True)
    if not quiet:
        print_paths(console, "wrote", *r.grids.values(), r.out / "explained.csv")
    print_paths(console, "open", r.html)


def pseudo_summary(console: Console, r: PseudoResult, quiet: bool = False) -> None:
    """Photos kept at the confidence asked, per class, classes left without one, and the `train --extra` to use them."""
    console.print(f"pseudo-label: {r.kept} of {r.photos} photo(s) at confidence >= {r.min_confidence:g} -> {r.cache.path}",
                  markup=False, soft_wrap=True)
    if not quiet:
        names = class_names(r.cache.age_bins)
        console.print("per class: " + ", ".join(f"{names[c]} {n}" for c, n in sorted(r.per_class.items())),
                      markup=False, soft_wrap=True)
        if r.missing_classes:
            console.print(f"warning: {len(r.missing_classes)} class(es) have no confident photo; the extra data is "
                          f"not balanced", markup=False, soft_wrap=True)
        console.print(f"next: facecurate train CACHE --extra {r.cache.path} (training folds only, never validation)",
                      markup=False, soft_wrap=True)


def _f1(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.3f}"


def ensemble_summary(console: Console, r: EnsembleResult) -> None:
    """The out-of-fold table of every method (the best in bold) with --oof, and the submission written with --data."""
    if r.table is not None:
        t = Table(title=f"out-of-fold scores of {len(r.names)} runs")
        for c in ("method", "F1 (18)", "F1 mask", "F1 gender", "F1 age", "acc (18)"):
            t.add_column(c, justify="left" if c == "method" else "right")
        best = r.table["f1"].idxmax()
        for i, row in r.table.iterrows():
            t.add_row(row["method"], _f1(row["f1"]), _f1(row["f1_mask"]), _f1(row["f1_gender"]), _f1(row["f1_age"]),
                      _f1(row["acc"]), style="bold" if i == best else None)
        console.print(t)
        if r.folds_note:
            console.print(r.folds_note, markup=False, soft_wrap=True)
        print_paths(console, "wrote", r.out / "oof_scores.csv", r.out / "oof.parquet")
    if r.submission is not None:
        console.print(f"submission: {r.submission} ({r.rows} rows, {len(r.names)} runs by {r.method})", markup=False,
                      soft_wrap=True)
