"""`make demo`: build a small sample offline (or take DATA), then run every pipeline command on it, end to end.

Each stage runs through the real CLI, as a user would type it, and the end lists where to look.
Usage: python demo.py [--data PATH] [--eval PATH] [--out artifacts/demo] [--people 40]
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def run(step: str, *args: object) -> float:
    """Run ``facecurate ARGS`` (as ``python -m facecurate``) and stop the demo with its exit code if it fails; returns seconds taken."""
    cmd = [sys.executable, "-m", "facecurate", *map(str, args)]
    print(f"\n=== {step}: {shlex.join(['facecurate', *map(str, args)])}", flush=True)
    t0 = time.perf_counter()
    code = subprocess.call(cmd, cwd=ROOT)
    if code != 0:
        print(f"demo: step '{step}' failed with exit code {code}", file=sys.stderr)
        sys.exit(code)
    return time.perf_counter() - t0


def build_sample(out: Path, people: int, eval_people: int) -> tuple[Path, Path]:
    """The offline sample: a train layout and an eval layout of astronaut variants with drawn masks."""
    from facecurate.curate.synth import build_demo_sample

    train_dir, eval_dir = out / "sample" / "train", out / "sample" / "eval"
    print(f"=== sample: {people} people (train layout) + {eval_people} people (eval layout) from skimage's astronaut", flush=True)
    t0 = time.perf_counter()
    if not (train_dir / "train.csv").is_file():
        build_demo_sample(train_dir, people=people, seed=0, inject="gender=0.05,swap=0.05")
    if not (eval_dir / "info.csv").is_file():
        build_demo_sample(eval_dir, people=eval_people, seed=1, eval_layout=True)
    print(f"sample ready in {time.perf_counter() - t0:.0f} s: {train_dir}, {eval_dir}")
    return train_dir, eval_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="your own train data (any layout `crop` reads); default: a built sample")
    ap.add_argument("--eval", type=Path, help="photos to predict (default: the sample's eval layout, or --data itself)")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "demo", help="where everything is written")
    ap.add_argument("--people", type=int, default=40, help="people in the built sample (7 photos each)")
    ap.add_argument("--epochs", type=int, default=10, help="training epochs per fold")
    ap.add_argument("--img-size", type=int, default=128, help="model input height (width keeps the cache's aspect)")
    ap.add_argument("--folds", type=int, default=3, help="K of the person-grouped K-fold")
    a = ap.parse_args()
    out = a.out.resolve()
    t0 = time.perf_counter()
    if a.data:
        data, eval_data = a.data.resolve(), (a.eval or a.data).resolve()
    else:
        data, eval_data = build_sample(out, a.people, eval_people=max(4, a.people // 5))
        if a.eval:
            eval_data = a.eval.resolve()
    cache, run_dir = out / "cache", out / "run"
    report, submission = out / "report", out / "predict" / "submission.csv"
    run("inspect", "inspect", data, "--out", out / "inspect")
    run("crop", "crop", data, "--out", cache)
    again = ["--resume"] if (run_dir / "config.json").is_file() else []  # a second `make demo`: the run is reused
    run("train", "train", cache, "--out", run_dir, "--epochs", a.epochs, "--folds", a.folds, "--patience", 0,
        "--img-size", a.img_size, "--class-weights", *again)
    run("relabel-report", "relabel-report", cache, "--oof", run_dir / "oof.parquet", "--out", report)
    run("predict", "predict", run_dir, eval_data, "--out", submission.parent, "--cache-root", out / "cache-predict")
    print(f"\n=== demo done in {time.perf_counter() - t0:.0f} s. Where to look:")
    if not a.data:
        print("  (the built sample is 40 variants of one public-domain face, trained from scratch for seconds:\n"
              "   its scores and flags show the outputs, not accuracy; see BENCHMARKS.md for learning figures)")
    for what, path in [
        ("class and age distributions", out / "inspect" / "distributions.png"),
        ("crops (random + every fallback)", cache / "contact.png"),
        ("training curves", run_dir / "curves.png"),
        ("confusion matrices", run_dir / "confusion.png"),
        ("mislabel report (open in a browser)", report / "report.html"),
        ("proposed label fixes", report / "overrides.csv"),
        ("submission", submission),
    ]:
        print(f"  {what:38s} {path}{'' if path.exists() else '  (missing!)'}")


if __name__ == "__main__":
    main()
