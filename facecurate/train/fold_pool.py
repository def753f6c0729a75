"""Folds trained side by side on the CPU (``TrainConfig.fold_workers``): each fold a one-fold run, with its share of
the cores, in ``out/.folds/fold_<i>``, a few worker processes taking the folds in turn; then joined into ``out`` as the
sequential loop writes it.

Why: at the quick model's sizes a CPU training step is bound by per-layer overhead more than by arithmetic, so two
one-thread processes make ~1.5x the steps of one two-thread process on two cores (BENCHMARKS.md, "relabel-report:
time"). Each fold is seeded by its id (``fold.init_fold``), so a fold trained here gives the numbers the loop gives
with the same threads per fold (tested). The processes are ``python -m facecurate.train.fold_worker JOB...`` rather than
multiprocessing's spawn, which would import the caller's main script again in every process.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from ..curate.errors import InputError
from ..curate.progress import Progress
from .config import TrainConfig, folds_to_run
from .run_folder import write_parquet

#: The folder inside a run that holds the folds' own runs while they train (removed once they are joined).
PARTS = ".folds"
#: The module each fold's process runs (``python -m``).
WORKER = "facecurate.train.fold_worker"


def cpu_cores() -> int:
    """The cores this process may use (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def pool_size(cfg: TrainConfig, device_type: str, out: Path | None = None) -> int:
    """How many folds train at once: ``cfg.fold_workers`` (0 = one per core of the thread budget, up to the folds);
    1 off the CPU (a GPU runs one fold at a time), for a single fold, or to ``--resume`` a run in ``out`` whose folds
    were trained one after another (their state is in ``out/fold_<i>``, which the loop resumes)."""
    folds = len(folds_to_run(cfg))
    if device_type != "cpu" or folds < 2:
        return 1
    if cfg.resume and out is not None and not (out / PARTS).is_dir() and any(out.glob("fold_*")):
        return 1
    budget = int(cfg.threads or cpu_cores())
    wanted = cfg.fold_workers or budget
    return max(1, min(int(wanted), folds))


def thread_share(cfg: TrainConfig, side_by_side: int) -> int:
    """Torch threads of a fold that will run beside ``side_by_side - 1`` others: the thread budget (``cfg.threads``,
    else the cores) split evenly, at least 1. The last fold of an uneven split runs alone and gets the whole budget."""
    return max(1, int(cfg.threads or cpu_cores()) // max(1, side_by_side))


def fold_config(cfg: TrainConfig, fold: int, side_by_side: int) -> TrainConfig:
    """The one-fold run one process trains: fold ``fold`` of ``cfg``, its thread share, no plots (the joined run draws them)."""
    return replace(cfg, fold=fold, threads=thread_share(cfg, side_by_side), fold_workers=1, plots=False)


def worker_plan(todo: list[int], workers: int) -> list[list[int]]:
    """The folds each worker process trains, in order: fold ``todo[i]`` goes to worker ``i % workers`` (folds are about
    equal, so a fixed deal keeps the workers as busy as a queue would, and each process starts once)."""
    return [todo[w::workers] for w in range(min(workers, len(todo)))]


def train_side_by_side(cache_path: Path, out: Path, cfg: TrainConfig, workers: int, progress: Progress,
                       on_epoch_end: Callable[[int, int, dict], None] | None = None) -> list[Path]:
    """Train every fold of ``cfg`` as its own run in ``out/.folds/fold_<i>``, ``workers`` processes side by side, each
    taking its folds one after another (``worker_plan``); returns the finished part folders in fold order. ``out`` is
    claimed and locked by the caller; a part that already holds a finished run (``summary.json``) is kept when
    ``cfg.resume``. InputError when a fold's process refuses (its line)."""
    folds = folds_to_run(cfg)
    parts = {f: out / PARTS / f"fold_{f}" for f in folds}
    todo = [f for f in folds if not (cfg.resume and (parts[f] / "summary.json").is_file())]
    plan = worker_plan(todo, workers)
    name = f"run: {len(folds)} fold(s) x {cfg.epochs} epochs, {len(plan) or workers} side by side"
    done_epochs = {f: (0 if f in todo else cfg.epochs) for f in folds}
    progress.update(name, sum(done_epochs.values()), len(folds) * cfg.epochs)
    events: queue.Queue = queue.Queue()
    running: dict[int, subprocess.Popen] = {}
    try:
        for w, mine in enumerate(plan):  # a fold runs beside the workers that still have a fold at its turn
            cfgs = [fold_config(cfg, f, sum(len(p) > r for p in plan)) for r, f in enumerate(mine)]
            running[w] = _start(cache_path, out / PARTS, w, [(parts[f], c) for f, c in zip(mine, cfgs)], events)
        while running:
            kind, w, payload = events.get()
            if kind == "epoch":
                f = int(payload["fold"])
                done_epochs[f] = max(done_epochs[f], int(payload["epoch"]))
                progress.update(name, sum(done_epochs.values()), len(folds) * cfg.epochs)
                if on_epoch_end is not None:
                    on_epoch_end(f, int(payload["epoch"]), payload.get("row", {}))
            elif kind == "done":
                done_epochs[int(payload)] = cfg.epochs
                progress.update(name, sum(done_epochs.values()), len(folds) * cfg.epochs)
            elif kind == "error":
                raise InputError(payload)
            elif kind == "exit":
                code = running.pop(w).wait()
                if code != 0:
                    log = _log(out / PARTS, w).read_text(errors="replace").strip().splitlines()[-5:]
                    raise RuntimeError(f"fold worker {w} (folds {', '.join(map(str, plan[w]))}) failed (exit {code}): "
                                       + " | ".join(log))
    finally:
        for p in running.values():  # one fold failed, or Ctrl-C: the others stop (their state.pt resumes them)
            p.terminate()
        for p in running.values():
            p.wait()
    return [parts[f] for f in folds]


def _log(folder: Path, worker: int) -> Path:
    """Where a worker process writes its stderr."""
    return folder / f"worker_{worker}.stderr.log"


def _start(cache_path: Path, folder: Path, worker: int, jobs: list[tuple[Path, TrainConfig]],
           events: queue.Queue) -> subprocess.Popen:
    """One worker process for ``jobs`` (part folder, one-fold config) in turn; a thread passes its lines on to
    ``events`` as ("epoch" | "done" | "error" | "exit", worker, payload)."""
    folder.mkdir(parents=True, exist_ok=True)  # each part is the child's to claim (it must be new or a run)
    files = []
    for part, cfg in jobs:
        job = folder / f"job_{cfg.fold}.json"
        job.write_text(json.dumps({"cache": str(cache_path), "out": str(part), "config": asdict(cfg), "parent": os.getpid()},
                                  default=list))
        files.append(str(job))
    # the same facecurate as this process, however it was found (an installed package, PYTHONPATH, a sys.path entry)
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join([package_root, *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "OMP_NUM_THREADS": str(jobs[0][1].threads), "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
    with open(_log(folder, worker), "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", WORKER, *files], stdout=subprocess.PIPE, stderr=err,
                                stdin=subprocess.DEVNULL, env=env, text=True)

    def relay() -> None:
        for line in proc.stdout:
            try:
                said = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(said, dict):  # a line some library printed, not the worker's
                continue
            if "error" in said:
                events.put(("error", worker, said["error"]))
            elif "done" in said:
                events.put(("done", worker, said["done"]))
            elif "fold" in said and "epoch" in said:
                events.put(("epoch", worker, said))
        events.put(("exit", worker, None))

    threading.Thread(target=relay, daemon=True).start()
    return proc


def join_parts(out: Path, parts: list[Path]) -> tuple[dict, pd.DataFrame, pd.DataFrame, list[dict], list]:
    """Move each part's fold folder and TensorBoard logs into ``out``; returns (part 0's config, the out-of-fold table,
    the metric history, the per-fold summaries, the extra data's records), every table in fold order."""
    oof, history, summaries = [], [], []
    for part in parts:
        for fold_dir in sorted(part.glob("fold_*")):
            target = out / fold_dir.name
            if target.exists():
                shutil.rmtree(target)
            os.replace(fold_dir, target)
        for logs in sorted((part / "tensorboard").glob("fold_*")) if (part / "tensorboard").is_dir() else []:
            (out / "tensorboard").mkdir(exist_ok=True)
            if (out / "tensorboard" / logs.name).exists():
                shutil.rmtree(out / "tensorboard" / logs.name)
            os.replace(logs, out / "tensorboard" / logs.name)
        oof.append(pd.read_parquet(part / "oof.parquet"))
        if (part / "metrics.csv").is_file():
            history.append(pd.read_csv(part / "metrics.csv"))
        summaries += json.loads((part / "summary.json").read_text())["per_fold"]
    first = json.loads((parts[0] / "config.json").read_text())
    extra = json.loads((parts[0] / "summary.json").read_text()).get("extra", [])
    return first, pd.concat(oof, ignore_index=True), pd.concat(history, ignore_index=True) if history else pd.DataFrame(), summaries, extra


def write_joined(out: Path, oof: pd.DataFrame, history: pd.DataFrame) -> None:
    """The joined run's out-of-fold table and metric history, as the sequential loop leaves them before ``_finish``."""
    from .checkpoint import write_atomic

    write_parquet(out / "oof.parquet", oof)
    if len(history):
        write_atomic(out / "metrics.csv", history.to_csv(index=False).encode())
