"""An evaluation set for the identity checks: a synth set with planted strangers and duplicate ids, and a truth file.

Steps (each reused when its output exists under --work):
1. ``facecurate synth FACES WORK/base --people N --inject gender=0.05,age=0.03,swap=0.03 --seed S`` (the base set,
   with its injected label errors, untouched).
2. Which source face each base person was drawn from: synth's own draw order (``synth.plan.draw_order`` with the
   seed) minus the faces in skipped.csv, checked against train.csv's labels.
3. ``WORK/donors.csv`` -> ``facecurate synth WORK/donors.csv WORK/donors --seed S+1000``: fresh renderings of the
   duplicates' own faces (other backdrop, shirt, head pose, masks) and of stranger faces that are not in the base
   set (same gender as the person they are planted in).
4. ``WORK/set`` = the base set (hard links) with: per stranger, one photo replaced by the same-named photo of a
   donor person (``normal`` for unmasked strangers, a random mask1..mask5 for masked ones); per duplicate, a donor
   rendering of a base person's face filed under a new id with the same labels. ``WORK/set/identity_truth.csv``
   lists every planted case (kind, person, image_id, photo, condition, other, source); injected.csv is copied.

  .venv/bin/python bench/identity_data.py --seed 1 --work artifacts/bench/identity/s1
Prints one JSON line (counts and seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MASKED_STEMS = ("mask1", "mask2", "mask3", "mask4", "mask5")


def synth(faces: Path, out: Path, seed: int, people: int | None = None, inject: str | None = None) -> None:
    """Run the synth CLI (skipped when ``out`` already holds a finished synth.json)."""
    if (out / "synth.json").is_file():
        return
    cmd = [sys.executable, "-m", "facecurate", "synth", str(faces), str(out), "--seed", str(seed), "--contact", "0",
           "--device", "cpu"]
    cmd += ["--people", str(people)] if people else []
    cmd += ["--inject", inject] if inject else []
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def drawn_sources(faces: Path, out: Path, seed: int) -> pd.DataFrame:
    """train.csv of a synth output with each person's source face (``source``: path, ``name``), from synth's draw order."""
    from facecurate.curate.synth.plan import draw_order
    from facecurate.curate.synth.sources import read_faces

    sources, _ = read_faces(faces)
    by_name: dict[str, list] = {}
    for s in sources:
        by_name.setdefault(s.person, []).append(s)
    names = sorted(by_name)
    order = draw_order([() for _ in names], np.random.default_rng([seed, 0]))
    skipped = set(pd.read_csv(out / "skipped.csv", dtype=str)["path"]) if (out / "skipped.csv").stat().st_size else set()
    accepted = [names[i] for i in order if by_name[names[i]][0].path not in skipped]
    train = pd.read_csv(out / "train.csv", dtype={"id": str})
    train["name"] = accepted[:len(train)]
    train["source"] = [by_name[n][0].path for n in train["name"]]
    inj = pd.read_csv(out / "injected.csv", dtype={"id": str}) if (out / "injected.csv").stat().st_size else pd.DataFrame()
    injected = set(inj.loc[inj["kind"].isin(["gender", "age"]), "id"]) if len(inj) else set()
    src = {n: by_name[n][0] for n in train["name"]}
    agree = [(row.gender == ("male", "female")[src[row.name].gender] and row.age == src[row.name].age)
             for row in train.itertuples() if row.id not in injected]
    if not all(agree):
        raise SystemExit(f"{out}: could not reconstruct the source faces ({agree.count(False)} labels disagree)")
    return train


def build(faces: Path, work: Path, seed: int, people: int, inject: str, unmasked: int, masked: int, duplicates: int) -> dict:
    """Steps 1-4 of the module doc; returns the counts."""
    t0 = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    base = work / "base"
    synth(faces, base, seed, people, inject)
    train = drawn_sources(faces, base, seed)
    rng = np.random.default_rng([seed, 11])
    inj = pd.read_csv(base / "injected.csv", dtype={"id": str})
    clean = train[~train["id"].isin(inj["id"])].reset_index(drop=True)
    pick = rng.permutation(len(clean))
    dups = clean.iloc[pick[:duplicates]]
    strangers = clean.iloc[pick[duplicates:duplicates + unmasked + masked]].assign(
        photo=["normal"] * unmasked + list(rng.choice(MASKED_STEMS, size=masked)))
    from facecurate.curate.synth.sources import read_faces

    pool, _ = read_faces(faces)
    used = set(train["name"])
    pool = [s for s in pool if s.person not in used]
    donor_rows, planted = [], []
    for r in strangers.itertuples():
        g = 0 if r.gender == "male" else 1
        cands = [s for s in pool if s.gender == g]
        s = cands[int(rng.integers(len(cands)))]
        pool.remove(s)
        donor_rows.append({"path": s.path, "age": s.age, "gender": s.gender, "race": s.race, "person": f"str_{r.id}"})
    for r in dups.itertuples():
        donor_rows.append({"path": r.source, "age": int(r.age), "gender": 0 if r.gender == "male" else 1, "race": "",
                           "person": f"dup_{r.id}"})
    donors_csv = work / "donors.csv"
    pd.DataFrame(donor_rows).to_csv(donors_csv, index=False)
    synth(donors_csv, work / "donors", seed + 1000)
    dtrain = drawn_sources_csv(donors_csv, work / "donors", seed + 1000)
    folder_of = dict(zip(dtrain["name"], dtrain["path"]))
    out = work / "set"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(base / "images", out / "images", copy_function=os.link)
    for f in ("injected.csv",):
        shutil.copy(base / f, out / f)
    for r in strangers.itertuples():
        dst = out / "images" / r.path / f"{r.photo}.jpg"
        dst.unlink()
        shutil.copy(work / "donors" / "images" / folder_of[f"str_{r.id}"] / f"{r.photo}.jpg", dst)
        planted.append({"kind": "stranger", "person": r.path, "image_id": f"{r.path}/{r.photo}.jpg", "photo": r.photo,
                        "condition": "unmasked" if r.photo == "normal" else "masked", "other": "",
                        "source": next(d["path"] for d in donor_rows if d["person"] == f"str_{r.id}")})
    rows = [train[["id", "gender", "race", "age", "path"]]]
    for k, r in enumerate(dups.itertuples()):
        new_id = f"{900001 + k:06d}"
        folder = f"{new_id}_{r.gender}_{r.race}_{r.age}"
        shutil.copytree(work / "donors" / "images" / folder_of[f"dup_{r.id}"], out / "images" / folder)
        rows.append(pd.DataFrame([{"id": new_id, "gender": r.gender, "race": r.race, "age": r.age, "path": folder}]))
        planted.append({"kind": "duplicate_id", "person": folder, "image_id": "", "photo": "", "condition": "unmasked",
                        "other": r.path, "source": r.source})
    pd.concat(rows, ignore_index=True).to_csv(out / "train.csv", index=False)
    pd.DataFrame(planted).to_csv(out / "identity_truth.csv", index=False)
    return {"seed": seed, "people": int(len(train) + len(dups)), "strangers_unmasked": unmasked, "strangers_masked": masked,
            "duplicates": duplicates, "injected": len(inj), "set": str(out), "seconds": round(time.perf_counter() - t0, 1)}


def drawn_sources_csv(csv: Path, out: Path, seed: int) -> pd.DataFrame:
    """``drawn_sources`` for a synth run on a CSV of faces (person names are the CSV's ``person``)."""
    from facecurate.curate.synth.plan import draw_order

    table = pd.read_csv(csv, dtype=str)
    names = sorted(table["person"])
    order = draw_order([() for _ in names], np.random.default_rng([seed, 0]))
    skipped = set(pd.read_csv(out / "skipped.csv", dtype=str)["path"]) if (out / "skipped.csv").stat().st_size else set()
    path_of = dict(zip(table["person"], table["path"]))
    accepted = [names[i] for i in order if str((csv.parent / path_of[names[i]]).resolve()) not in skipped and path_of[names[i]] not in skipped]
    train = pd.read_csv(out / "train.csv", dtype={"id": str})
    train["name"] = accepted[:len(train)]
    return train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "data" / "utkface-large")
    ap.add_argument("--work", type=Path, required=True, help="folder for base/, donors/, set/")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--people", type=int, default=300)
    ap.add_argument("--inject", default="gender=0.05,age=0.03,swap=0.03")
    ap.add_argument("--strangers-unmasked", type=int, default=15, help="people whose normal photo is replaced")
    ap.add_argument("--strangers-masked", type=int, default=15, help="people with one mask1..5 photo replaced")
    ap.add_argument("--duplicates", type=int, default=10, help="people filed again under a new id (fresh rendering)")
    a = ap.parse_args()
    print(json.dumps(build(a.faces, a.work.resolve(), a.seed, a.people, a.inject, a.strangers_unmasked,
                           a.strangers_masked, a.duplicates)))


if __name__ == "__main__":
    main()
