"""``inspect``: what a dataset holds (people, photos, classes, ages) and what is wrong with it, at a glance."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from curate.labels import GENDER_NAMES, MASK_NAMES, NUM_CLASSES, age_group_names, class_names, parse_age_bins
from curate.readers import Dataset, read_dataset


def class_counts(manifest: pd.DataFrame) -> pd.DataFrame:
    """Photos and people per class 0..17 (people counted once per class they have photos in)."""
    lab = manifest.dropna(subset=["label"])
    photos = lab["label"].astype(int).value_counts().reindex(range(NUM_CLASSES), fill_value=0)
    people = lab.groupby("label")["person"].nunique().reindex(range(NUM_CLASSES), fill_value=0)
    return pd.DataFrame({"photos": photos.values, "people": people.values}, index=pd.RangeIndex(NUM_CLASSES, name="class"))


def plot_distributions(manifest: pd.DataFrame, out_png: Path, age_bins=(30, 60), title: str = "") -> Path:
    """Write a PNG: photos per class (bars coloured by mask) and the people's age histogram with the bins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    counts = class_counts(manifest)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 5.5), gridspec_kw={"width_ratios": [2.2, 1]})
    colors = np.array(["#4c72b0", "#dd8452", "#55a868"])[np.arange(NUM_CLASSES) // 6]
    ax1.bar(range(NUM_CLASSES), counts["photos"], color=colors)
    ax1.set_xticks(range(NUM_CLASSES), [f"{i}  {n}" for i, n in enumerate(class_names(age_bins))], rotation=75, ha="right", fontsize=8)
    ax1.set_ylabel("photos")
    ax1.set_title("photos per class (blue: mask worn, orange: incorrect, green: not worn)")
    for i, v in enumerate(counts["photos"]):
        ax1.text(i, v, str(v), ha="center", va="bottom", fontsize=7)
    people = manifest.dropna(subset=["age"]).drop_duplicates("person")
    if len(people):
        ages = people["age"].astype(int)
        ax2.hist(ages, bins=range(0, int(ages.max()) + 3, 2), color="#8172b2")
        for b in age_bins:
            ax2.axvline(b, color="k", ls="--", lw=1)
        groups = people["age_group"].astype(int).value_counts().reindex(range(3), fill_value=0)
        names = age_group_names(age_bins)
        ax2.set_title("people by age: " + ", ".join(f"{names[g]}: {groups[g]}" for g in range(3)), fontsize=9)
    else:
        ax2.text(0.5, 0.5, "no ages (unlabelled data)", ha="center", va="center", transform=ax2.transAxes)
    ax2.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax2.set_xlabel("age (years)")
    ax2.set_ylabel("people")
    fig.suptitle(title or "class and age distributions")
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def _count_table(title: str, series: pd.Series, names) -> Table:
    t = Table(title=title)
    t.add_column("value")
    t.add_column("photos", justify="right")
    for i, n in enumerate(names):
        t.add_row(n, str(int(series.get(i, 0))))
    return t


def print_summary(ds: Dataset, age_bins, console: Console, show: int = 20) -> None:
    """Print the counts and the first ``show`` problems of ``ds``."""
    m = ds.manifest
    console.print(f"[bold]{ds.root}[/bold]  layout: {ds.layout}  people: {m['person'].nunique()}  photos: {len(m)}")
    if ds.labelled:
        counts = class_counts(m)
        t = Table(title="per class")
        for c in ("class", "name", "people", "photos"):
            t.add_column(c, justify="right" if c != "name" else "left")
        for i, n in enumerate(class_names(age_bins)):
            t.add_row(str(i), n, str(counts.at[i, "people"]), str(counts.at[i, "photos"]))
        console.print(t)
        for col, names in (("mask", MASK_NAMES), ("gender", GENDER_NAMES), ("age_group", age_group_names(age_bins))):
            console.print(_count_table(f"per {col}", m[col].astype(int).value_counts(), names))
    errors = [p for p in ds.problems if p.level == "error"]
    warnings = [p for p in ds.problems if p.level != "error"]
    console.print(f"problems: {len(errors)} errors (skipped), {len(warnings)} warnings")
    for p in ds.problems[:show]:
        console.print(f"  {p}", markup=False, highlight=False)
    if len(ds.problems) > show:
        console.print(f"  ... and {len(ds.problems) - show} more (see problems.csv)")


def inspect_dataset(data: str | Path, out: str | Path | None = None, age_bins="30,60", check_files: bool = True,
                    show: int = 20, console: Console | None = None) -> Dataset:
    """Read ``data``, print its counts and problems, write ``manifest.parquet``, ``problems.csv`` and ``distributions.png``."""
    console = console or Console()
    bins = parse_age_bins(age_bins)
    ds = read_dataset(data, age_bins=bins, check_files=check_files)
    out = Path(out) if out else Path("artifacts") / "inspect" / (Path(data).resolve().name or "data")
    out.mkdir(parents=True, exist_ok=True)
    ds.manifest.to_parquet(out / "manifest.parquet", index=False)
    pd.DataFrame([vars(p) for p in ds.problems], columns=["path", "what", "level"]).to_csv(out / "problems.csv", index=False)
    print_summary(ds, bins, console, show)
    png = plot_distributions(ds.manifest, out / "distributions.png", bins, title=f"{Path(data).name}: {ds.manifest['person'].nunique()} people, {len(ds.manifest)} photos")
    console.print(f"wrote {out / 'manifest.parquet'}, {out / 'problems.csv'}, {png}")
    return ds
