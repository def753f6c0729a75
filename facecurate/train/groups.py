"""Which person ids are one person (``train --groups FILE`` and ``identity`` rows of ``--overrides``), merged into one
person -> group map that the splits deal as units, so no person sits in training and validation under two ids.

``groups.csv`` (what relabel-report writes as ``identity_groups.csv``): columns ``person,group``, group an integer,
one row per person. The two sources are merged with scipy's connected components: ids linked by either share a group.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..curate.checksums import hash_bytes
from ..curate.errors import InputError
from ..curate.overrides import IDENTITY_GROUP as IDENTITY_COLUMN  # the column identity override rows fill


def read_groups(path: str | Path) -> dict[str, int]:
    """``person,group`` CSV -> {person: group}; InputError naming the file when it is unusable."""
    path = Path(path)
    fix = "expected a CSV with columns person,group (an integer), one row per person, as relabel-report's identity_groups.csv"
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; {fix}") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a readable groups CSV ({type(e).__name__}); {fix}") from None
    if not {"person", "group"} <= set(df.columns):
        raise InputError(f"{path}: missing column(s) {', '.join(sorted({'person', 'group'} - set(df.columns)))}; {fix}")
    bad = ~df["group"].str.strip().str.isdigit()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{path}:{i + 2}: group {df['group'].iloc[i]!r} is not a non-negative integer; {fix}")
    twice = df["person"].duplicated()
    if twice.any():
        raise InputError(f"{path}: person {df['person'][twice].iloc[0]!r} is listed more than once; {fix}")
    return dict(zip(df["person"].astype(str), df["group"].str.strip().astype(int)))


def groups_hash(path: str | Path) -> str:
    """xxh3 of the groups file's bytes: what config.json records, so a run says which groups it was split by."""
    return hash_bytes(Path(path).read_bytes())


def person_groups(manifest: pd.DataFrame, groups_file: str | Path | None = None) -> dict[str, int] | None:
    """person -> group id for the manifest's people linked to another id (by ``groups_file`` and/or the manifest's
    ``identity_group`` column); None when nothing links two ids, so the splits stay exactly the people's own."""
    people = sorted(manifest["person"].astype(str).unique())
    links: list[pd.Series] = []  # per source: person -> label; people sharing a label are one
    if groups_file:
        links.append(pd.Series(read_groups(groups_file)).reindex(people).dropna().astype(int).astype(str))
    if IDENTITY_COLUMN in manifest:
        ident = manifest[["person", IDENTITY_COLUMN]].dropna().drop_duplicates("person")
        links.append(pd.Series(ident[IDENTITY_COLUMN].astype(int).astype(str).to_numpy(), index=ident["person"].astype(str)))
    if not any(len(s) for s in links):
        return None
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    index = {p: i for i, p in enumerate(people)}
    rows, cols = [], []
    for s in links:
        first: dict[str, int] = {}
        for person, label in s.items():
            j = first.setdefault(label, index[person])
            rows.append(index[person])
            cols.append(j)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(people), len(people)))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    out = {p: int(comp[i]) for p, i in index.items() if sizes[comp[i]] > 1}
    return out or None


def groups_record(groups_file: str | Path | None, groups: dict | None) -> dict:
    """What config.json records of a run's groups: the groups file's xxh3 and how many ids were linked to another."""
    return {"groups_xxh3": groups_hash(groups_file) if groups_file else None, "groups_linked": len(groups) if groups else 0}
