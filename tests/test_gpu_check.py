"""bench/gpu_check.py (`make gpu-check`): its dry run passes end to end, a hung stage is killed with its whole process
tree, and its comparisons catch a difference. The tests marked ``cuda`` run only where a GPU is (docs/scale-out.md)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.py"
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none on this machine")
_spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
gpu_check = sys.modules.setdefault("gpu_check", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(gpu_check)


def check(work: Path, *args: str, timeout: float = 900) -> tuple[int, dict]:
    """Run the script as a user would; returns its exit code and its one JSON line (the last line of stdout)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, str(SCRIPT), "--work", str(work), *args], check=False, cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=timeout)
    assert p.stdout.strip(), p.stderr[-2000:]
    return p.returncode, json.loads(p.stdout.strip().splitlines()[-1])


def left_behind(marker: str) -> list[str]:
    """Command lines of live (not zombie) processes that mention ``marker``."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmd and state != "Z":
            found.append(cmd)
    return found


def test_dry_run_passes_end_to_end_and_prints_the_json(tmp_path):
    """Every stage on the CPU in miniature; the CPU against itself, so every comparison is exact."""
    code, out = check(tmp_path, "--dry-run", "--device", "cpu")
    assert code == 0 and out["ok"] and out["failed"] == [], out
    assert out["cuda"] == torch.cuda.is_available() and out["run_on"] == "cpu"
    assert out["torch"] == torch.__version__ and out["device"]
    for name, stage in out["stages"].items():
        assert stage["status"] == "ok" or (name == "embed" and stage["status"] == "skipped: not in this version"), (name, stage)
    assert out["data"]["photos"] == 7 * out["data"]["people"] == 56
    assert out["stages"]["crop"]["photos"] == 56 and out["photos_per_s"]["crop"] > 0 and out["photos_per_s"]["predict"] > 0
    assert out["stages"]["predict"]["crop_cache_reused"]
    assert len(out["epoch_s"]) == 2 and out["samples_per_s"] > 0
    assert out["stages"]["train"]["amp"] == "fp32" and not out["stages"]["train"]["cache_on_gpu"]
    assert out["stages"]["collectives"] == {**out["stages"]["collectives"], "backend": "gloo", "world_size": 1}
    checks = out["checks"]
    assert all(c["status"] == "ok" for c in checks.values()), checks
    assert checks["crops"]["photos"] == 56 and checks["crops"]["match_share"] == 1.0 and checks["crops"]["max_mean_pixel_diff"] == 0
    assert checks["predictions"]["agree_share"] == 1.0 and checks["predictions"]["max_prob_diff"] == 0
    assert checks["predictions"]["agree_share_clear"] in (1.0, None)
    assert checks["folds_cpu"]["folds_compared"] == [0] and checks["folds_ddp"]["folds_compared"] == [0, 1]
    assert checks["losses"]["finite"] == {"train": True, "ddp": True, "train_cpu": True}
    assert out["peak_gpu_memory_mib"] == "unmeasured: no CUDA device" or isinstance(out["peak_gpu_memory_mib"], int)
    assert not left_behind(str(tmp_path))


def test_a_hung_stage_is_killed_the_rest_skipped_and_the_json_still_printed(tmp_path):
    code, out = check(tmp_path, "--dry-run", "--device", "cpu", "--timeout", "data=1", timeout=300)
    assert code == 1 and not out["ok"]
    assert out["stages"]["env"]["status"] == "ok"
    assert out["stages"]["data"]["status"].startswith("failed: timed out after 1 s")
    assert out["stages"]["crop"]["status"] == "skipped: the check stopped after data hung"
    assert out["failed"][0].startswith("data: timed out") and len(out["failed"]) == 1
    assert out["checks"]["crops"]["status"] == "skipped: needs crop and crop_cpu"
    assert out["work"] == str(tmp_path) and (tmp_path / "logs" / "data.log").is_file()
    assert not left_behind(str(tmp_path))


def test_sigterm_stops_the_running_stage_with_its_tree_and_still_prints_the_json(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, str(SCRIPT), "--work", str(tmp_path), "--dry-run", "--device", "cpu"], cwd=ROOT,
                         env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "logs" / "data.log").exists():
        time.sleep(0.2)
    time.sleep(1)  # the data stage is running: build_demo_sample in a process of its own
    p.terminate()
    out = json.loads(p.communicate(timeout=60)[0].strip().splitlines()[-1])
    assert p.returncode == 1 and out["interrupted"] and not out["ok"]
    assert out["stages"]["data"]["status"].startswith("failed: interrupted")
    assert out["stages"]["crop"]["status"] == "skipped: not reached"
    assert not left_behind(str(tmp_path))


def test_kill_tree_reaches_a_grandchild_in_a_session_of_its_own():
    """torchrun's workers start sessions of their own, so killing the process group alone would miss them."""
    code = ("import subprocess, sys, time; "
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], start_new_session=True); "
            "print(c.pid, flush=True); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    child = int(parent.stdout.readline())
    assert child in gpu_check.descendants(parent.pid)
    gpu_check.kill_tree(parent.pid)
    assert parent.wait(timeout=10) == -9
    deadline = time.time() + 10
    while time.time() < deadline and Path(f"/proc/{child}").exists() \
            and Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists() or Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def _cache(path: Path, images: np.ndarray, boxes: list[tuple]) -> Path:
    path.mkdir(parents=True)
    np.save(path / "images.npy", images)
    m = pd.DataFrame(boxes, columns=["crop_x1", "crop_y1", "crop_x2", "crop_y2"])
    m.insert(0, "image_id", [f"p/{i}.jpg" for i in range(len(m))])
    m["error"], m["box_source"] = "", "detected"
    m.to_parquet(path / "manifest.parquet")
    return path


def test_the_comparisons_catch_a_moved_crop_and_a_changed_prediction(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 16, 12, 3), dtype=np.uint8)
    boxes = [(10.0, 10.0, 70.0, 90.0)] * 20
    dev = _cache(tmp_path / "dev", images, boxes)
    assert gpu_check.compare_crops(dev, _cache(tmp_path / "same", images.copy(), boxes))["match_share"] == 1.0
    moved = images.copy()
    moved[:2] = 255 - moved[:2]
    verdict = gpu_check.compare_crops(dev, _cache(tmp_path / "moved", moved, [(40.0, 40.0, 100.0, 120.0)] * 2 + boxes[2:]))
    assert verdict["match_share"] == 0.9 and verdict["status"].startswith("failed: 0.900 of crops match")

    probs = pd.DataFrame(rng.dirichlet(np.ones(18), 40), columns=[f"p_class_{k}" for k in range(18)])
    probs["image_id"], probs["pred"] = [f"p/{i}.jpg" for i in range(40)], probs.to_numpy().argmax(1)
    probs.to_parquet(tmp_path / "dev.parquet")
    probs.to_parquet(tmp_path / "cpu.parquet")
    assert gpu_check.compare_predictions(tmp_path / "dev.parquet", tmp_path / "cpu.parquet")["agree_share"] == 1.0
    probs.loc[:2, "pred"] = (probs.loc[:2, "pred"] + 1) % 18
    probs.to_parquet(tmp_path / "cpu.parquet")
    verdict = gpu_check.compare_predictions(tmp_path / "dev.parquet", tmp_path / "cpu.parquet")
    assert verdict["agree_share"] == 0.925 and verdict["status"].startswith("failed: predictions agree on 0.925")


@pytest.mark.cuda
@CUDA
def test_dry_run_on_cuda_takes_every_gpu_path(tmp_path):
    """The miniature on the GPU: AMP, channels_last, the GPU-resident cache, NCCL; compared with the CPU."""
    code, out = check(tmp_path, "--dry-run", "--device", "cuda")
    assert code == 0 and out["ok"], out["failed"]
    assert out["cuda"] and out["run_on"] == "cuda" and out["cuda_version"] == torch.version.cuda
    train = out["stages"]["train"]
    assert train["amp"] in ("bf16", "fp16") and train["channels_last"] and train["cache_on_gpu"]
    assert out["stages"]["collectives"]["backend"] == "nccl"
    assert isinstance(out["peak_gpu_memory_mib"], int) and out["peak_gpu_memory_mib"] > 0
    assert not left_behind(str(tmp_path))


@pytest.mark.cuda
@CUDA
def test_mtcnn_finds_the_same_face_on_cuda_and_on_the_cpu():
    from skimage import data

    from facecurate.curate.detect import box_iou, make_detector

    canvas = np.full((512, 384, 3), 128, np.uint8)
    canvas[100:356, 64:320] = data.astronaut()[::2, ::2]
    found = {}
    for device in ("cpu", "cuda"):
        with make_detector("mtcnn", device=device) as det:
            found[device] = det.detect([canvas])[0][0]
    assert box_iou(found["cpu"].box, found["cuda"].box)[0, 0] >= 0.95
    assert abs(found["cpu"].score - found["cuda"].score) < 0.02
