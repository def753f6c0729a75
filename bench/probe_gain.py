"""What the embedding probe adds to a CNN run: out-of-fold macro F1 (gender, age, mask, 18 classes) of the CNN run
alone, the probe run alone, and ``ensemble CNN PROBE --method stack-lr`` (nested over the runs' shared folds).

Pipeline (each step reused when its output exists under --work): ``synth`` --people N UTKFace faces ->
``crop --embed`` -> ``train`` (the CNN, options in --cnn-args) and ``train --model probe-linear`` (same --folds and
seed, so the same folds) -> ``ensemble CNN PROBE --oof``. Prints one JSON line.

  .venv/bin/python bench/probe_gain.py --faces /work/shared/data/utkface-large --people 300 --folds 3 \
      --cnn-args "--epochs 3 --img-size 128 --threads 2"
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> float:
    """Run ``facecurate ARGS`` (this tree's package); seconds taken."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "facecurate", *args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return round(time.perf_counter() - t0, 1)


def scores(table: pd.DataFrame, row: str) -> dict:
    """Macro F1 per head and for 18 classes from ensemble's out-of-fold table row ``row``."""
    r = table.set_index("method").loc[row]
    return {k: round(float(r[c]), 4) for k, c in (("f1_gender", "f1_gender"), ("f1_age", "f1_age"), ("f1_mask", "f1_mask"),
                                                   ("f1_18", "f1"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", default="/work/shared/data/utkface-large")
    ap.add_argument("--people", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--probe", default="probe-linear", help="probe-linear or probe-mlp")
    ap.add_argument("--cnn-args", default="--epochs 4 --threads 1", help="train's options for the CNN run")
    ap.add_argument("--work", default=str(ROOT / "artifacts" / "bench" / "probe_gain"))
    a = ap.parse_args()
    work = Path(a.work)
    data, cache, cnn, probe, ens = (work / n for n in ("synth", "cache", "cnn", a.probe, f"ensemble-{a.probe}"))
    took = {}
    if not (data / "synth.json").is_file():
        took["synth"] = _cli("synth", a.faces, str(data), "--people", str(a.people), "--seed", str(a.seed))
    if not (cache / "embeddings.npy").is_file():
        took["crop_embed"] = _cli("crop", str(data), "--out", str(cache), "--embed")
    common = ["--folds", str(a.folds), "--seed", str(a.seed), "--no-plots", "--quiet"]
    if not (cnn / "summary.json").is_file():
        took["cnn"] = _cli("train", str(cache), "--out", str(cnn), *common, *shlex.split(a.cnn_args))
    if not (probe / "summary.json").is_file():
        took["probe"] = _cli("train", str(cache), "--out", str(probe), "--model", a.probe, *common)
    took["ensemble"] = _cli("ensemble", str(cnn), str(probe), "--oof", "--method", "stack-lr", "--out", str(ens))
    record = json.loads((ens / "ensemble.json").read_text())
    table = pd.DataFrame(record["oof"]["scores"])
    res = {"cnn": scores(table, "run cnn"), "probe": scores(table, f"run {a.probe}"),
           "stack_lr": scores(table, "stack-lr (nested)"), "mean": scores(table, "mean")}
    res["gain_stack_lr_over_cnn"] = {k: round(res["stack_lr"][k] - res["cnn"][k], 4) for k in res["cnn"]}
    print(json.dumps({"bench": "probe_gain", "people": a.people, "photos": record["oof"]["photos"], "folds": a.folds,
                      "shared_folds": record["oof"]["shared_folds"], "probe_model": a.probe, "cnn_args": a.cnn_args,
                      **res, "seconds": took}))


if __name__ == "__main__":
    main()
