#!/usr/bin/env python3
"""`make gpu-check`: every CUDA path of the pipeline, run once on this machine's GPU and checked against the CPU.

Builds its own data offline (synth over ../shared/data/utkface when present, else the astronaut demo sample),
then runs the real command line, each stage as its own process group with a timeout: crop (batched MTCNN +
BlazeFace), train (AMP, channels_last, the GPU-resident uint8 cache and GPU augmentation), predict, the
embeddings pass when this version has one, `train --ddp N` and a torchrun collective (NCCL). The same stages
then run with --device cpu on a subset and the results are compared: the same crops within a tolerance, the
same fold ids, finite losses, predictions agreeing on >= 95% of photos. Prints one JSON line; exit 0 when all
passed. A stage that hangs is killed with every process it started, and the check stops there.

    python bench/gpu_check.py               # on a GPU machine: ~2,100 portraits, efficientnet_b0 at 224
    python bench/gpu_check.py --dry-run     # the same code paths in miniature (8 people), e.g. on a CPU
"""
from __future__ import annotations

import argparse
import csv
import ctypes
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "utkface"
STAGES = ("env", "data", "crop", "train", "predict", "ddp", "collectives", "embed", "crop_cpu", "train_cpu", "predict_cpu")
NEEDS = {"crop": "data", "train": "crop", "predict": "train", "embed": "crop", "ddp": "crop", "crop_cpu": "data",
         "train_cpu": "crop", "predict_cpu": ("train", "crop_cpu")}


@dataclass
class Sizes:
    """How big the check is: the real run on a GPU, or the miniature of --dry-run."""

    people: int = 300            # x 7 photos = 2,100 portraits
    subset_people: int = 30      # people of the CPU comparison (crop, predict)
    crop_size: int = 256
    model: str = "efficientnet_b0"
    img_size: int = 224
    batch_size: int = 64
    epochs: int = 2
    folds: int = 2
    threads: int | None = None   # torch CPU threads (None: torch's choice)
    timeout_s: float = 420.0     # per stage (a hang), --timeout STAGE=S changes one


DRY = Sizes(people=8, subset_people=8, crop_size=96, model="test_resnet", img_size=64, batch_size=8,
            threads=1, timeout_s=150.0)
PROBE = r"""
import inspect, json, torch
from facecurate.cli import app
cuda = torch.cuda.is_available()
out = {"torch": torch.__version__, "cuda_version": torch.version.cuda, "cuda": cuda,
       "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
       "gpus": torch.cuda.device_count() if cuda else 0,
       "commands": {(c.name or c.callback.__name__).replace("_", "-"): sorted(inspect.signature(c.callback).parameters)
                    for c in app.registered_commands}}
if cuda:
    p = torch.cuda.get_device_properties(0)
    out.update(device=p.name, capability=f"{p.major}.{p.minor}", gpu_memory_gib=round(p.total_memory / 2**30, 1),
               bf16=torch.cuda.is_bf16_supported(), kernel=float(torch.ones(4, device="cuda").sum()))
print(json.dumps(out))
"""
COLLECTIVES = r"""
import json, os, torch, torch.distributed as dist
backend = "nccl" if os.environ["GPU_CHECK_DEVICE"] == "cuda" else "gloo"
dist.init_process_group(backend)
rank, world = dist.get_rank(), dist.get_world_size()
dev = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if backend == "nccl" else torch.device("cpu")
if backend == "nccl":
    torch.cuda.set_device(dev)
t = torch.full((1024,), rank + 1.0, device=dev)
dist.all_reduce(t)
got = [None] * world
dist.all_gather_object(got, rank)
dist.barrier()
assert float(t[0]) == world * (world + 1) / 2 and got == list(range(world)), (float(t[0]), got)
if rank == 0:
    print(json.dumps({"backend": backend, "world_size": world}))
dist.destroy_process_group()
"""


# ---------- processes: start in a group of their own, kill every descendant on a hang or at the end ----------

def descendants(root: int) -> list[int]:
    """Every live descendant of ``root`` (read from /proc: torchrun's workers start sessions of their own)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def kill_tree(pid: int) -> None:
    """Stop ``pid`` and all its descendants (SIGSTOP until no new one appears, so none can spawn more), then SIGKILL."""
    seen: set[int] = set()
    for _ in range(10):
        new = [p for p in [pid, *descendants(pid)] if p not in seen]
        if not new:
            break
        for p in new:
            try:
                os.kill(p, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        seen.update(new)
    for p in seen:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def become_subreaper() -> None:
    """Orphans of our stages are re-parented to this process (Linux prctl), so the final sweep still finds them."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


class GpuMemory:
    """Peak ``memory.used`` (MiB, whole GPU 0, CUDA contexts included) from nvidia-smi every 0.5 s while a stage runs."""

    def __init__(self, on: bool):
        self.on, self.peak, self.error = on and shutil.which("nvidia-smi") is not None, None, None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        if self.on:
            self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                                     capture_output=True, text=True, timeout=10, check=True).stdout
                self.peak = max(self.peak or 0, int(out.split()[0]))
            except Exception as e:  # noqa: BLE001 - reported, never fatal
                self.error = f"{type(e).__name__}: {e}"
                return
            self.stop.wait(0.5)

    def done(self) -> int | None:
        self.stop.set()
        if self.on:
            self.thread.join(timeout=15)
        return self.peak


def reason(log: Path) -> str:
    """The one line that says why a command failed: its last 'error' line, else its last line."""
    lines = [x.strip() for x in log.read_text(errors="replace").splitlines() if x.strip()] if log.is_file() else []
    errors = [x for x in lines if x.lower().startswith(("error", "traceback")) or "Error:" in x]
    return ((errors or lines or ["no output"])[-1])[:300]


def run_stage(name: str, cmd: list[str], timeout: float, logs: Path, cuda: bool, env: dict | None = None) -> dict:
    """Run ``cmd`` in its own session with a timeout; kill its whole tree on a hang. Returns status, seconds, stdout."""
    log = logs / f"{name}.log"
    memory = GpuMemory(cuda)
    t0, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "w") as f:
        p = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, stdout=subprocess.PIPE, stderr=f, text=True, start_new_session=True,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                                  **(env or {})})
        try:
            out, _ = p.communicate(timeout=timeout)
            status = "ok" if p.returncode == 0 else f"failed: exit {p.returncode}: {reason(log)}"
        except subprocess.TimeoutExpired:
            kill_tree(p.pid)
            out, _ = p.communicate()
            status = f"failed: timed out after {timeout:.0f} s (hung?), killed with every process it started; last line: {reason(log)}"
        except BaseException:
            kill_tree(p.pid)
            p.wait()
            raise
        finally:
            peak = memory.done()
            for orphan in descendants(os.getpid()):  # a stage's leftovers (e.g. a worker whose agent died)
                kill_tree(orphan)
    f_out = out or ""
    with open(log, "a") as f:
        f.write(f_out)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = {"status": status, "seconds": round(time.perf_counter() - t0, 2),
           "cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1)}  # its processes' CPU time
    if peak is not None:
        res["peak_gpu_memory_mib"] = peak
    res["stdout"] = f_out
    return res


def facecurate(*args: object) -> list[str]:
    return [sys.executable, "-m", "facecurate", *map(str, args)]


# ---------- comparisons (pure: folders in, a verdict out) ----------

def read_cache(path: Path) -> tuple[np.ndarray, pd.DataFrame]:
    return np.load(path / "images.npy", mmap_mode="r"), pd.read_parquet(path / "manifest.parquet")


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of row-aligned (n, 4) x1, y1, x2, y2 boxes."""
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    area_a, area_b = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return w * h / np.maximum(area_a + area_b - w * h, 1e-9)


def compare_crops(device_cache: Path, cpu_cache: Path, min_iou: float = 0.9, max_pixel: float = 12.0,
                  min_share: float = 0.95) -> dict:
    """The CPU's crops of the subset against the device's crops of the same photos: a photo matches when its crop
    box has IoU >= min_iou, the same error, and a mean absolute pixel difference <= max_pixel (0..255)."""
    (di, dm), (ci, cm) = read_cache(device_cache), read_cache(cpu_cache)
    pos = pd.Series(np.arange(len(dm)), index=dm["image_id"].astype(str))
    common = cm["image_id"].astype(str).isin(pos.index).to_numpy()
    if not common.any():
        return {"status": "failed: no photo of the CPU subset is in the device's cache"}
    cpos, dpos = np.flatnonzero(common), pos[cm["image_id"].astype(str)[common]].to_numpy()
    cols = ["crop_x1", "crop_y1", "crop_x2", "crop_y2"]
    iou = box_iou(dm[cols].to_numpy(float)[dpos], cm[cols].to_numpy(float)[cpos])
    pixel = np.array([np.abs(di[d].astype(np.int16) - ci[c].astype(np.int16)).mean() for d, c in zip(dpos, cpos)])
    same_error = dm["error"].astype(str).to_numpy()[dpos] == cm["error"].astype(str).to_numpy()[cpos]
    match = (iou >= min_iou) & (pixel <= max_pixel) & same_error
    share = float(match.mean())
    return {"status": "ok" if share >= min_share else f"failed: {share:.3f} of crops match (need {min_share})",
            "photos": int(common.sum()), "match_share": round(share, 4), "min_iou": round(float(iou.min()), 4),
            "median_iou": round(float(np.median(iou)), 4), "max_mean_pixel_diff": round(float(pixel.max()), 2),
            "same_box_source": round(float((dm["box_source"].astype(str).to_numpy()[dpos]
                                            == cm["box_source"].astype(str).to_numpy()[cpos]).mean()), 4)}


def compare_folds(ref_oof: Path, other_oof: Path) -> dict:
    """Every fold the other run trained holds the same photos as the reference run's fold of that id."""
    ref, other = pd.read_parquet(ref_oof), pd.read_parquet(other_oof)
    bad = [int(f) for f in sorted(other["fold"].unique())
           if set(ref.loc[ref["fold"] == f, "image_id"]) != set(other.loc[other["fold"] == f, "image_id"])]
    return {"status": "ok" if not bad else f"failed: fold(s) {bad} hold other photos",
            "folds_compared": sorted(int(f) for f in other["fold"].unique()), "photos": len(other)}


def losses(run: Path) -> dict:
    """Finite training and validation losses in every epoch; the epoch times and training samples/s of the run."""
    m = pd.read_csv(run / "metrics.csv")
    finite = bool(np.isfinite(m[["train_loss", "val_loss"]].to_numpy(float)).all())
    timed = m[m["epoch"] > 1] if (m["epoch"] > 1).any() else m  # epoch 1 warms up (cuDNN autotuning, first calls)
    return {"losses_finite": finite, "epoch_s": [round(float(s), 2) for s in m.groupby("epoch")["epoch_s"].median()],
            "samples_per_s": round(float(timed["images_per_s"].median()), 1),
            "last_train_loss": round(float(m["train_loss"].iloc[-1]), 4)}


def compare_predictions(device_probs: Path, cpu_probs: Path, min_share: float = 0.95) -> dict:
    """The same run's predicted class on the device and on the CPU, photo by photo."""
    d, c = pd.read_parquet(device_probs), pd.read_parquet(cpu_probs)
    j = c.merge(d, on="image_id", suffixes=("_cpu", "_dev"))
    if j.empty:
        return {"status": "failed: no photo predicted on both"}
    same = (j["pred_cpu"] == j["pred_dev"]).to_numpy()
    share = float(same.mean())
    cls = [f"p_class_{k}" for k in range(18)]
    cpu = j[[f"{k}_cpu" for k in cls]].to_numpy(float)
    diff = np.abs(cpu - j[[f"{k}_dev" for k in cls]].to_numpy(float)).max()
    top2 = np.sort(cpu, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] >= 0.05  # photos the model does not call a near-tie: AMP rounding cannot flip them
    return {"status": "ok" if share >= min_share else f"failed: predictions agree on {share:.3f} (need {min_share})",
            "photos": len(j), "agree_share": round(share, 4), "max_prob_diff": round(float(diff), 5),
            "clear_photos": int(clear.sum()), "agree_share_clear": round(float(same[clear].mean()), 4) if clear.any() else None}


# ---------- data ----------

def subset(full: Path, out: Path, people: int) -> int:
    """The first ``people`` people of a train layout as a train layout of their own (images/ are symlinks)."""
    with open(full / "train.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:people]
    shutil.rmtree(out, ignore_errors=True)  # no person of an earlier subset stays behind
    (out / "images").mkdir(parents=True)
    with open(out / "train.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        link = out / "images" / r["path"]
        if not link.exists():
            link.symlink_to((full / "images" / r["path"]).resolve(), target_is_directory=True)
    return sum(1 for r in rows for _ in (full / "images" / r["path"]).glob("*.jpg"))


# ---------- the run ----------

class Check:
    """The stages run so far, in order: each is skipped when an earlier one hung or one it needs did not pass."""

    def __init__(self, logs: Path, timeouts: dict[str, float], default_timeout: float):
        self.logs, self.timeouts, self.default_timeout = logs, timeouts, default_timeout
        self.stages: dict[str, dict] = {}
        self.stdout: dict[str, str] = {}
        self.cuda, self.hung = False, None

    def passed(self, *names: str) -> bool:
        return all(self.stages.get(n, {}).get("status") == "ok" for n in names)

    def blocked(self, name: str) -> str | None:
        """Why ``name`` cannot run now, or None."""
        if self.hung:
            return f"skipped: the check stopped after {self.hung} hung"
        needs = NEEDS.get(name, ())
        missing = [n for n in ((needs,) if isinstance(needs, str) else needs) if not self.passed(n)]
        return f"skipped: needs {' and '.join(missing)}" if missing else None

    def skip(self, name: str, why: str) -> None:
        self.stages[name] = {"status": why}

    def run(self, name: str, cmd: list[str], env: dict | None = None) -> bool:
        """Run one stage (unless blocked) and record it; True when it passed."""
        why = self.blocked(name)
        if why:
            self.skip(name, why)
            return False
        try:
            res = run_stage(name, cmd, self.timeouts.get(name, self.default_timeout), self.logs, self.cuda, env)
        except KeyboardInterrupt:
            self.stages[name] = {"status": "failed: interrupted (Ctrl-C or SIGTERM), killed with every process it started"}
            raise
        self.stdout[name] = res.pop("stdout")
        self.stages[name] = res
        if "timed out" in res["status"]:
            self.hung = name
        return res["status"] == "ok"

    def add(self, name: str, figures) -> None:
        """A passed stage's figures, read from what it wrote; one that cannot be read is said, never fatal."""
        try:
            self.stages[name].update(figures())
        except Exception as e:  # noqa: BLE001 - the JSON line says what broke
            self.stages[name]["figures"] = f"unreadable: {type(e).__name__}: {e}"[:300]

    def verdict(self, name: str, needs: tuple[str, ...], fn, *args) -> dict:
        """A comparison, once the stages it reads passed; an exception in it is its failure, in one line."""
        if not self.passed(*needs):
            return {"status": f"skipped: needs {' and '.join(n for n in needs if not self.passed(n))}"}
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 - the JSON line says what broke
            return {"status": f"failed: {type(e).__name__}: {e}"[:300]}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return f"cpu: {line.split(':', 1)[1].strip()} ({os.cpu_count()} logical cores)"
    return f"cpu ({os.cpu_count()} logical cores)"


def run_all(a: argparse.Namespace, work: Path, check: Check, report: dict) -> None:
    """Every stage and comparison in turn, filling ``check`` and ``report``."""
    py = sys.executable
    check.run("env", [py, "-c", PROBE])
    info = json.loads(check.stdout["env"].strip().splitlines()[-1]) if check.passed("env") else {}
    check.cuda = bool(info.get("cuda"))
    device = ("cuda" if check.cuda else "cpu") if a.device == "auto" else a.device
    sizes = DRY if a.dry_run or not device.startswith("cuda") else Sizes()
    if a.people:
        sizes = Sizes(**{**asdict(sizes), "people": a.people, "subset_people": min(a.people, sizes.subset_people)})
    if not a.dry_run and sizes is DRY:
        report["notes"].append("no CUDA device: the dry-run sizes, on the CPU")
    check.default_timeout = sizes.timeout_s
    report.update(cuda=check.cuda, device=info.get("device") or cpu_name(), torch=info.get("torch"),
                  cuda_version=info.get("cuda_version"), cudnn=info.get("cudnn"), gpus=info.get("gpus", 0),
                  bf16=info.get("bf16"), run_on=device, sizes=asdict(sizes))
    if check.cuda and shutil.which("nvidia-smi"):
        q = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader", "-i", "0"],
                           capture_output=True, text=True, timeout=30, check=False)
        report["driver"] = q.stdout.strip() or None

    full, sub = work / "data" / "full" / "sample", work / "data" / "subset" / "sample"
    faces = a.faces or (FACES if FACES.is_dir() and not a.dry_run else None)
    if (full / "synth.json").is_file() and len(pd.read_csv(full / "train.csv")) == sizes.people:
        check.stages["data"] = {"status": "ok", "reused": str(full)}
    elif faces:
        check.run("data", [*facecurate("synth", faces, full, "--people", sizes.people, "--seed", 0, "--balance", "age,gender",
                                       "--inject", "gender=0.05,age=0.03,swap=0.03", "--device", device, "--contact", 0,
                                       "--no-person-masks", "--render-threads", min(16, os.cpu_count() or 1))])
    else:
        demo = (f"from facecurate.curate.synth import build_demo_sample; build_demo_sample({str(full)!r}, "
                f"people={sizes.people}, seed=0, inject='gender=0.05,swap=0.05', device={device!r})")
        check.run("data", [py, "-c", demo])
    if check.passed("data"):
        try:
            report["data"] = {"source": f"synth over {faces}" if faces else "astronaut demo sample (facecurate.curate.synth)",
                              "people": sum(1 for _ in (full / "images").iterdir()),
                              "photos": sum(1 for _ in (full / "images").glob("*/*.jpg")),
                              "subset_people": sizes.subset_people, "subset_photos": subset(full, sub, sizes.subset_people)}
        except Exception as e:  # noqa: BLE001 - then nothing can run on it
            check.stages["data"]["status"] = f"failed: the built data cannot be read: {type(e).__name__}: {e}"[:300]

    cache, cache_cpu, runs = work / "cache" / "sample", work / "cache-cpu" / "sample", work / "runs"
    threads = min(8, max(2, (os.cpu_count() or 2) // 2))
    crop = ("--detector", "mtcnn-first", "--size", sizes.crop_size, "--decode-threads", threads)
    def crop_figures(path: Path, name: str) -> dict:
        meta = json.loads((path / "meta.json").read_text())
        return {"photos": meta["n"], "photos_per_s": round(meta["n"] / meta["seconds"], 1),
                "wall_photos_per_s": round(meta["n"] / check.stages[name]["seconds"], 1), "detector": meta.get("detector"),
                "boxes": meta.get("counts")}

    if check.run("crop", facecurate("crop", full, "--out", cache, *crop, "--device", device)):
        check.add("crop", lambda: crop_figures(cache, "crop"))

    def train_args(epochs: int) -> tuple:
        return (cache, "--model", sizes.model, "--img-size", sizes.img_size, "--epochs", epochs, "--folds", sizes.folds,
                "--batch-size", sizes.batch_size, "--patience", 0, "--no-plots", "--seed", 0,
                *(("--threads", sizes.threads) if sizes.threads else ()))

    def run_figures(run: Path) -> dict:
        cfg = json.loads((run / "config.json").read_text())
        on_cuda = cfg["device"].startswith("cuda")
        amp = "fp16" if cfg["amp"] == "fp16" or not info.get("bf16") else "bf16"  # as facecurate.train.runtime.amp_dtype
        return {**losses(run), "photos": cfg["n_photos"], "amp": amp if on_cuda and cfg["amp"] != "off" else "fp32",
                "channels_last": bool(on_cuda and cfg["channels_last"]), "cache_on_gpu": on_cuda,
                "ddp": cfg.get("ddp") or "single process"}

    def predict_figures(out: Path, name: str, cache_root: Path) -> dict:
        p = json.loads((out.parent / "predict.json").read_text())
        return {"photos": p["rows"], "photos_per_s": round(p["rows"] / check.stages[name]["seconds"], 1), "folds": p["folds"],
                "tta": p["tta"], "crop_cache_reused": Path(p["cache"]).parent == cache_root}

    if check.run("train", facecurate("train", *train_args(sizes.epochs), "--out", runs / "train", "--device", device)):
        check.add("train", lambda: run_figures(runs / "train"))
    sub_out = work / "predict" / "device" / "submission.csv"
    if check.run("predict", facecurate("predict", runs / "train", full, "--out", sub_out, "--cache-root", cache.parent,
                                       "--device", device)):
        check.add("predict", lambda: predict_figures(sub_out, "predict", cache.parent))
    world = 2 if device.startswith("cuda") and info.get("gpus", 0) >= 2 else 1
    if check.run("ddp", facecurate("train", *train_args(sizes.epochs), "--ddp", world, "--out", runs / "ddp", "--device", device)):
        check.add("ddp", lambda: run_figures(runs / "ddp"))
    script = work / "collectives.py"
    script.write_text(COLLECTIVES)
    if check.run("collectives", [py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                                 max(1, info.get("gpus", 0)) if device.startswith("cuda") else 1, script],
                 env={"GPU_CHECK_DEVICE": "cuda" if device.startswith("cuda") else "cpu"}):
        check.add("collectives", lambda: json.loads(check.stdout["collectives"].strip().splitlines()[-1]))

    commands = info.get("commands", {})
    if check.blocked("embed") or "embed" not in commands:
        check.skip("embed", check.blocked("embed") or ("skipped: not in this version" if commands else "skipped: needs env"))
    else:
        params = commands["embed"]
        extra = [*(("--device", device) if "device" in params else ()), *(("--out", work / "embed") if "out" in params else ())]
        def embed_figures() -> dict:
            meta = json.loads((cache / "meta.json").read_text())
            own, n = meta.get("embeddings") or {}, meta["n"]
            seconds = own.get("seconds") or check.stages["embed"]["seconds"]  # the pass's own seconds when it records them
            return {"photos": n, "photos_per_s": round(n / seconds, 1), "embedded": own.get("embedded"),
                    "wall_photos_per_s": round(n / check.stages["embed"]["seconds"], 1)}

        if check.run("embed", facecurate("embed", cache, *extra)):
            check.add("embed", embed_figures)
    if check.run("crop_cpu", facecurate("crop", sub, "--out", cache_cpu, *crop, "--device", "cpu")):
        check.add("crop_cpu", lambda: crop_figures(cache_cpu, "crop_cpu"))
    if check.run("train_cpu", facecurate("train", *train_args(1), "--fold", 0, "--out", runs / "train_cpu", "--device", "cpu")):
        check.add("train_cpu", lambda: run_figures(runs / "train_cpu"))
    cpu_out = work / "predict" / "cpu" / "submission.csv"
    if check.run("predict_cpu", facecurate("predict", runs / "train", sub, "--out", cpu_out, "--cache-root", cache_cpu.parent,
                                           "--device", "cpu")):
        check.add("predict_cpu", lambda: predict_figures(cpu_out, "predict_cpu", cache_cpu.parent))

    finite = {n: check.stages[n]["losses_finite"] for n in ("train", "ddp", "train_cpu") if "losses_finite" in check.stages.get(n, {})}
    report["checks"] = {
        "crops": check.verdict("crops", ("crop", "crop_cpu"), compare_crops, cache, cache_cpu),
        "folds_cpu": check.verdict("folds_cpu", ("train", "train_cpu"), compare_folds, runs / "train" / "oof.parquet",
                                   runs / "train_cpu" / "oof.parquet"),
        "folds_ddp": check.verdict("folds_ddp", ("train", "ddp"), compare_folds, runs / "train" / "oof.parquet",
                                   runs / "ddp" / "oof.parquet"),
        "losses": {"status": ("ok" if all(finite.values()) else f"failed: a loss is not finite in {[n for n, v in finite.items() if not v]}")
                   if finite else "skipped: needs train", "finite": finite},
        "predictions": check.verdict("predictions", ("predict", "predict_cpu"), compare_predictions,
                                     sub_out.parent / "probs.parquet", cpu_out.parent / "probs.parquet"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="the same code paths in miniature (8 people, a tiny model), e.g. on a CPU in CI")
    ap.add_argument("--device", default="auto", help="where the device stages run: auto (cuda when present), cuda or cpu")
    ap.add_argument("--faces", type=Path, default=None,
                    help=f"UTKFace-named faces to synthesise people from (default: {FACES} when present, without --dry-run; "
                         "else the offline astronaut demo sample)")
    ap.add_argument("--people", type=int, default=None, help="people (x 7 photos) of the built data (default 300; 8 with --dry-run)")
    ap.add_argument("--work", type=Path, default=None,
                    help="keep every file here (the built data is reused when present); default: a temporary folder, "
                         "removed when every check passed and kept (its path in the JSON) otherwise")
    ap.add_argument("--timeout", action="append", default=[], metavar="STAGE=S",
                    help=f"one stage's timeout in seconds, repeatable; stages: {', '.join(STAGES)} "
                         f"(default {Sizes.timeout_s:.0f} s each, {DRY.timeout_s:.0f} s with --dry-run)")
    a = ap.parse_args(argv)
    timeouts = {}
    for t in a.timeout:
        name, _, s = t.partition("=")
        if name not in STAGES or not s.replace(".", "", 1).isdigit():
            ap.error(f"--timeout {t!r}: expected STAGE=SECONDS with STAGE one of {', '.join(STAGES)}")
        timeouts[name] = float(s)

    def stop(signum, frame):  # SIGTERM: as Ctrl-C, the running stage's tree is killed and the JSON still printed
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    become_subreaper()
    t0 = time.perf_counter()
    work = (a.work or Path(tempfile.mkdtemp(prefix="gpu_check_"))).resolve()
    for old in ("cache", "cache-cpu", "runs", "predict", "embed", "logs"):  # only the built data is ever reused
        shutil.rmtree(work / old, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    check = Check(work / "logs", timeouts, DRY.timeout_s if a.dry_run else Sizes.timeout_s)
    report: dict = {"bench": "gpu_check", "ok": False, "dry_run": a.dry_run, "cuda": False, "notes": []}
    try:
        run_all(a, work, check, report)
    except KeyboardInterrupt:
        report["interrupted"] = True
    except Exception as e:  # noqa: BLE001 - the line is still printed, with what broke
        report["error"] = f"{type(e).__name__}: {e}"[:300]
    finally:
        for p in descendants(os.getpid()):
            kill_tree(p)
    for name in STAGES:
        check.stages.setdefault(name, {"status": "skipped: not reached"})
    report["stages"] = {n: check.stages[n] for n in STAGES}
    report["photos_per_s"] = {n: s["photos_per_s"] for n, s in check.stages.items() if "photos_per_s" in s}
    train = check.stages["train"]
    report.update(epoch_s=train.get("epoch_s"), samples_per_s=train.get("samples_per_s"),
                  peak_gpu_memory_mib=max((s["peak_gpu_memory_mib"] for s in check.stages.values() if "peak_gpu_memory_mib" in s),
                                          default="unmeasured: nvidia-smi not found" if check.cuda else "unmeasured: no CUDA device"))
    report["failed"] = [f"{n}: {v['status'][len('failed: '):]}" for n, v in [*check.stages.items(), *report.get("checks", {}).items()]
                        if v["status"].startswith("failed")]
    report["ok"] = not report["failed"] and "error" not in report and not report.get("interrupted") and "checks" in report
    report["seconds"] = round(time.perf_counter() - t0, 1)
    keep = a.work is not None or not report["ok"]
    report["work"] = str(work) if keep else None
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report), flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
