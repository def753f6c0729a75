"""What one training step of relabel-report's quick model costs on the CPU, per timm model and per AdamW
implementation: forward + backward + optimiser step, batch 32 at 64 x 48, one torch thread (what each fold process of
``--fold-workers`` gets on 2 cores). Prints one JSON line: ms per step, median of ``--steps`` after 5 warm-up steps.

  OMP_NUM_THREADS=1 .venv/bin/python bench/quick_step.py --models mobilenetv3_small_100,test_resnet,lcnet_050
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import timm
import torch


def step_ms(model_name: str, optimizer: dict, steps: int, size: tuple[int, int] = (64, 48), batch: int = 32) -> float:
    """Median milliseconds of one forward + backward + AdamW step (``optimizer``: AdamW's keyword arguments)."""
    torch.manual_seed(0)
    model = timm.create_model(model_name, num_classes=8)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, **optimizer)
    x, y = torch.randn(batch, 3, *size), torch.randint(0, 8, (batch,))
    times = []
    for i in range(steps + 5):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 5:
            times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mobilenetv3_small_100,mobilenetv3_small_050,lcnet_050,test_resnet,mobilenetv2_050",
                    help="timm model names, comma-separated (the first also gets the AdamW comparison)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per model")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    models = [m for m in a.models.split(",") if m]
    record = {"bench": "quick_step", "threads": a.threads, "batch": 32, "size": "64x48",
              "ms_per_step_fused_adamw": {m: step_ms(m, {"fused": True}, a.steps) for m in models},
              "adamw_on_" + models[0]: {"loop": step_ms(models[0], {"foreach": False}, a.steps),
                                         "fused": step_ms(models[0], {"fused": True}, a.steps)}}
    print(json.dumps(record))


if __name__ == "__main__":
    main()
