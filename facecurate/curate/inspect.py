"""``inspect``: what a dataset holds (people, photos, classes, ages) and what is wrong with it, at a glance.

``inspect_dataset`` reads the data, writes ``manifest.parquet``, ``problems.csv`` and ``distributions.png``
and returns an ``InspectResult``; the CLI prints it. Given the data's crop cache (``cache=``), it also
measures every cached photo's quality (``photo_quality``) and writes ``quality.csv``, ``quality_flags.csv``
and ``quality.png`` (the worst photos).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .decode import DEFAULT_MIN_SIDE
from .labels import (
    DEFAULT_AGE_BINS,
    GENDER_NAMES,
    HEAD_FIELDS,
    N_AGE,
    N_GENDER,
    NUM_CLASSES,
    age_group_names,
    class_names,
    decode,
    head_names,
    parse_age_bins,
)
from .locks import folder_lock
from .outputs import OWN_NAMES, check_separate, claimed_output
from .photo_quality import QualityParams, QualityResult, photo_quality, write_quality
from .progress import Progress
from .readers import Dataset, Problem, dataset_name, read_dataset

INSPECT_FILES = ("manifest.parquet", "problems.csv", "distributions.png", "quality.csv", "quality_flags.csv", "quality.png")


@dataclass
class InspectResult:
    """The data set read (``dataset``), its counts per class and per head, and the files written."""

    dataset: Dataset
    age_bins: tuple[int, ...]
    classes: pd.DataFrame                      # photos and people per class 0..17 (empty frame when unlabelled)
    heads: dict[str, pd.Series] = field(default_factory=dict)  # head -> photos per value, indexed by value name
    files: dict[str, Path] = field(default_factory=dict)
    people_grid: pd.DataFrame = field(default_factory=pd.DataFrame)  # people per gender (rows) x age group (columns)
    quality: QualityResult | None = None       # photo quality of the cache given (``cache=``), else None


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
    top = max(int(counts["photos"].max()), 1)
    for i, v in enumerate(counts["photos"]):
        if v == 0:  # an empty class is a problem, not a missing bar
            ax1.axvspan(i - 0.45, i + 0.45, color="#f4c7c3", zorder=0)
            ax1.text(i, top * 0.02, "empty", ha="center", va="bottom", fontsize=8, color="#b3261e", rotation=90)
        else:
            ax1.text(i, v, str(v), ha="center", va="bottom", fontsize=7)
    ax1.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
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


def people_grid(manifest: pd.DataFrame, age_bins=DEFAULT_AGE_BINS) -> pd.DataFrame:
    """People per gender (rows) x age group (columns), named; a person counts in the cell of their first photo."""
    people = manifest.dropna(subset=["gender", "age_group"]).drop_duplicates("person")
    grid = pd.crosstab(people["gender"].astype(int), people["age_group"].astype(int))
    grid = grid.reindex(index=range(N_GENDER), columns=range(N_AGE), fill_value=0)
    grid.index = list(GENDER_NAMES)
    grid.columns = list(age_group_names(age_bins))
    return grid


def class_problems(classes: pd.DataFrame, age_bins=DEFAULT_AGE_BINS, tiny: int | None = None) -> list[Problem]:
    """Warnings for empty classes and tiny ones (fewer than ``tiny`` people: default 5, or 1% of the largest class)."""
    names = class_names(age_bins)
    tiny = tiny if tiny is not None else max(5, int(0.01 * classes["people"].max()))
    out = []
    for c, row in classes.iterrows():
        if row["photos"] == 0:
            out.append(Problem(f"class {c} ({names[c]})", "no photos: a model cannot learn it and its F1 will be 0", "warning"))
        elif row["people"] < tiny:
            n_people, n_photos = int(row["people"]), int(row["photos"])
            who = f"{n_people} {'person' if n_people == 1 else 'people'}, {n_photos} photo{'' if n_photos == 1 else 's'}"
            out.append(Problem(f"class {c} ({names[c]})", f"only {who}: too few to learn or score it reliably", "warning"))
    return out


def default_inspect_dir(data: str | Path, root: str | Path = "artifacts/inspect") -> Path:
    """``root/<data name>`` (``readers.dataset_name``, as `crop` names its cache): where inspect writes by default."""
    return Path(root) / dataset_name(data)


def _holds_only_inspect_files(path: Path) -> bool:
    """An inspect folder written before markers existed: nothing but inspect's own files."""
    return {e.name for e in path.iterdir()} <= {*INSPECT_FILES, *OWN_NAMES}


def cache_problems(cache, root: Path) -> list[Problem]:
    """A warning when ``cache`` was cropped from another folder than the data inspected (its photos may differ)."""
    source = (cache.meta or {}).get("source")
    if source and Path(source).resolve() != Path(root).resolve():
        return [Problem(str(cache.path), f"this cache was cropped from {source}, not {root}: its quality measures are of those photos", "warning")]
    return []


def inspect_dataset(data: str | Path, out: str | Path | None = None, age_bins=DEFAULT_AGE_BINS,
                    check_files: bool = True, min_photo_size: int = DEFAULT_MIN_SIDE, cache: str | Path | None = None,
                    quality: QualityParams = QualityParams(), progress: Progress | None = None) -> InspectResult:
    """Read ``data``, count it and write ``manifest.parquet``, ``problems.csv`` and ``distributions.png`` into ``out``;
    with ``cache`` (the data's crop cache), also its photo quality (``quality.csv``, ``quality_flags.csv``, ``quality.png``)."""
    from .cache import load_cache

    bins = parse_age_bins(age_bins)
    out = Path(out) if out else default_inspect_dir(data)
    check_separate(out, [data, cache])  # before the read, which can take a while: a wrong --out fails first
    crops = load_cache(cache) if cache else None
    ds = read_dataset(data, age_bins=bins, check_files=check_files, min_side=min_photo_size)
    with claimed_output(out, "inspect", [data, ds.root, cache], recognise=_holds_only_inspect_files, what="inspect folder"):
        labelled = ds.labelled
        classes = class_counts(ds.manifest) if labelled else pd.DataFrame()
        if labelled:
            ds.problems.extend(class_problems(classes, bins))
        files = {"manifest": out / "manifest.parquet", "problems": out / "problems.csv"}
        ds.manifest.to_parquet(files["manifest"], index=False)
        for name in INSPECT_FILES[3:]:  # an earlier run's quality files would no longer describe this one
            (out / name).unlink(missing_ok=True)
        title = f"{Path(data).name}: {ds.manifest['person'].nunique()} people, {len(ds.manifest)} photos"
        files["distributions"] = plot_distributions(ds.manifest, out / "distributions.png", bins, title=title)
        result = None
        if crops is not None:
            ds.problems.extend(cache_problems(crops, ds.root))
            with folder_lock(crops.path, "cache", shared=True):  # no crop rewrites it while it is read
                result = photo_quality(crops, quality, progress=progress)
            files.update(write_quality(result, crops, out))
        pd.DataFrame([vars(p) for p in ds.problems], columns=["path", "what", "level"]).to_csv(files["problems"], index=False)
        return InspectResult(ds, bins, classes, head_counts(ds.manifest, bins) if labelled else {}, files,
                             people_grid(ds.manifest, bins) if labelled else pd.DataFrame(), result)
