"""``inspect``: what a dataset holds (people, photos, classes, ages) and what is wrong with it, at a glance.

``inspect_dataset`` reads the data, writes ``manifest.parquet``, ``problems.csv`` and ``distributions.png``
and returns an ``InspectResult``; the CLI prints it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .decode import DEFAULT_MIN_SIDE
from .labels import (
    DEFAULT_AGE_BINS,
    HEAD_FIELDS,
    N_AGE,
    NUM_CLASSES,
    age_group_names,
    class_names,
    decode,
    head_names,
    parse_age_bins,
)
from .outputs import OWN_NAMES, check_separate, claim_folder
from .readers import Dataset, dataset_name, read_dataset

INSPECT_FILES = ("manifest.parquet", "problems.csv", "distributions.png")


@dataclass
class InspectResult:
    """The data set read (``dataset``), its counts per class and per head, and the files written."""

    dataset: Dataset
    age_bins: tuple[int, ...]
    classes: pd.DataFrame                      # photos and people per class 0..17 (empty frame when unlabelled)
    heads: dict[str, pd.Series] = field(default_factory=dict)  # head -> photos per value, indexed by value name
    files: dict[str, Path] = field(default_factory=dict)


def class_counts(manifest: pd.DataFrame) -> pd.DataFrame:
    """Photos and people per class 0..17 (people counted once per class they have photos in)."""
    lab = manifest.dropna(subset=["label"])
    photos = lab["label"].astype(int).value_counts().reindex(range(NUM_CLASSES), fill_value=0)
    people = lab.groupby("label")["person"].nunique().reindex(range(NUM_CLASSES), fill_value=0)
    return pd.DataFrame({"photos": photos.values, "people": people.values}, index=pd.RangeIndex(NUM_CLASSES, name="class"))


def plot_distributions(manifest: pd.DataFrame, out_png: Path, age_bins=DEFAULT_AGE_BINS, title: str = "") -> Path:
    """Write a PNG: photos per class (bars coloured by mask) and the people's age histogram with the bins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    counts = class_counts(manifest)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 5.5), gridspec_kw={"width_ratios": [2.2, 1]})
    colors = np.array(["#4c72b0", "#dd8452", "#55a868"])[decode(np.arange(NUM_CLASSES))[0]]
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
        groups = people["age_group"].astype(int).value_counts().reindex(range(N_AGE), fill_value=0)
        names = age_group_names(age_bins)
        ax2.set_title("people by age: " + ", ".join(f"{names[g]}: {groups[g]}" for g in range(N_AGE)), fontsize=9)
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


def head_counts(manifest: pd.DataFrame, age_bins=DEFAULT_AGE_BINS) -> dict[str, pd.Series]:
    """Photos per value of each head (mask, gender, age group), indexed by the value's name."""
    out = {}
    for head, col in HEAD_FIELDS.items():
        names = head_names(head, age_bins)
        counts = manifest[col].dropna().astype(int).value_counts().reindex(range(len(names)), fill_value=0)
        out[head] = pd.Series(counts.to_numpy(), index=list(names), name="photos")
    return out


def default_inspect_dir(data: str | Path, root: str | Path = "artifacts/inspect") -> Path:
    """``root/<data name>`` (``readers.dataset_name``, as `crop` names its cache): where inspect writes by default."""
    return Path(root) / dataset_name(data)


def inspect_dataset(data: str | Path, out: str | Path | None = None, age_bins=DEFAULT_AGE_BINS,
                    check_files: bool = True, min_photo_size: int = DEFAULT_MIN_SIDE) -> InspectResult:
    """Read ``data``, count it and write ``manifest.parquet``, ``problems.csv`` and ``distributions.png`` into ``out``."""
    bins = parse_age_bins(age_bins)
    out = Path(out) if out else default_inspect_dir(data)
    check_separate(out, [data])
    ds = read_dataset(data, age_bins=bins, check_files=check_files, min_side=min_photo_size)
    check_separate(out, [ds.root])
    claim_folder(out, "inspect", recognise=lambda p: {e.name for e in p.iterdir()} <= {*INSPECT_FILES, *OWN_NAMES})
    files = {"manifest": out / "manifest.parquet", "problems": out / "problems.csv"}
    ds.manifest.to_parquet(files["manifest"], index=False)
    pd.DataFrame([vars(p) for p in ds.problems], columns=["path", "what", "level"]).to_csv(files["problems"], index=False)
    title = f"{Path(data).name}: {ds.manifest['person'].nunique()} people, {len(ds.manifest)} photos"
    files["distributions"] = plot_distributions(ds.manifest, out / "distributions.png", bins, title=title)
    labelled = ds.labelled
    return InspectResult(ds, bins, class_counts(ds.manifest) if labelled else pd.DataFrame(),
                         head_counts(ds.manifest, bins) if labelled else {}, files)
