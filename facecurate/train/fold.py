"""One fold of training: model, optimizer and EMA from timm, the epoch loop, validation, checkpoints, resume.

timm supplies the parts (``create_optimizer_v2``: AdamW with no weight decay on biases, norms and the
model's ``no_weight_decay()`` names; ``ModelEmaV3``: the weight average that is validated and saved);
this module only wires them to the cache-fed batches and the run folder. What a fold trains on is one
record, ``FoldInputs``. Under torchrun (``dist``, see ``distributed``) the same loop runs on every rank: the
model in DistributedDataParallel, each rank on its share of every global batch, validation gathered, rank 0
alone writing; one process runs it with ``distributed.OneProcess``, where each of those steps is the identity.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..curate.progress import QUIET, Progress
from .augment import Norm, mix_batch
from .checkpoint import (
    BEST,
    LAST,
    STATE,
    load_state,
    save_state,
    save_weights,
    write_atomic,
)
from . import distributed
from .config import TrainConfig
from .data import LABEL_COLUMN, OUTPUT_CLASSES, CacheImages, SourceImages, iter_train, sampler_weights, steps_per_epoch
from .infer import infer_probs
from .losses import inverse_frequency, make_loss, masked_loss
from .metrics import head_metrics, macro_f1
from .model import build_model, head_logits, probabilities
from .runtime import amp_dtype, seed_everything

#: The EMA's decay warm-up (timm's ``ModelEmaV3``: decay = 1 - (1 + step / gamma) ** -power, capped at ``--ema``):
#: gamma 9, power 1 is the rule of the hand-written EMA this trainer had before timm's (decay (1 + n) / (10 + n)
#: at update n, within two updates), so the average reaches back ~n / 9 steps: after 420 steps (8 epochs of 200
#: people) decay 0.979, where timm's short-run advice (gamma 1, power 0.75) gives 0.989 and still carries the early
#: weights. Measured: held-out mask macro F1 of the default 8-epoch train, BENCHMARKS.md "train: the EMA warm-up".
EMA_WARMUP_GAMMA = 9.0
EMA_WARMUP_POWER = 1.0


@dataclass(frozen=True)
class FoldInputs:
    """What one fold trains and validates on: the run's photos and labels, and this fold's positions in them."""

    images: CacheImages | SourceImages  # the main cache's training rows, then the --extra caches' rows
    labels: np.ndarray                  # (photos, 4) mask, gender, age, class per position; -1 = no label
    labels_t: torch.Tensor              # ``labels`` on the device, what the batches carry
    train_pos: np.ndarray               # the fold's training positions (main cache)
    val_pos: np.ndarray                 # its validation positions (main cache)
    extra_pos: np.ndarray               # positions of the --extra photos: every fold's training, never validation
    size: tuple[int, int]               # (height, width) fed to the model
    norm: Norm                          # the model's input normalisation
    device: torch.device


def new_model(cfg: TrainConfig, device: torch.device) -> torch.nn.Module:
    """The run's timm model on ``device`` (channels-last on CUDA), from ``cfg.weights`` / ``cfg.pretrained`` if set."""
    model = build_model(cfg.model, cfg.task, pretrained=cfg.pretrained, weights=cfg.weights, drop_rate=cfg.drop_rate,
                        age_loss=cfg.age_loss)
    model = model.to(device)
    if device.type == "cuda" and cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def cosine_with_warmup(total_steps: int, warmup_steps: int, min_ratio: float) -> Callable[[int], float]:
    """lr multiplier per step: linear warm-up from ~0 to 1, then cosine down to ``min_ratio``."""
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    return f


def _losses(cfg: TrainConfig, labels: np.ndarray, train_pos: np.ndarray, device: torch.device) -> dict[str, tuple[torch.nn.Module, float]]:
    """{output: (loss module, weight)}: the three heads for ``multi`` (age: CORN with --age-loss ordinal), the 18
    classes for ``single``; class weights count only the photos that carry the head's label."""
    heads = dict(zip(("mask", "gender", "age"), cfg.head_weights)) if cfg.task == "multi" else {"class": 1.0}
    out = {}
    for h, w in heads.items():
        n = OUTPUT_CLASSES[h]
        cw = inverse_frequency(labels[train_pos, LABEL_COLUMN[h]], n).to(device) if cfg.class_weights else None
        name = "ordinal" if h == "age" and cfg.age_loss == "ordinal" else cfg.loss
        out[h] = (make_loss(name, n, cw, smoothing=cfg.smoothing, gamma=cfg.focal_gamma).to(device), w)
    return out


@dataclass
class FoldState:
    """Everything one fold's loop carries from epoch to epoch, and what ``state.pt`` saves of it."""

    model: torch.nn.Module
    ema: object | None
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    g: torch.Generator              # order of the photos (CPU)
    gd: torch.Generator             # augmentation draws (on the device)
    progress: dict = field(default_factory=lambda: {"epoch": 0, "best_f1": -2.0, "best": {}, "bad": 0, "stopped": False})
    net: torch.nn.Module | None = None  # what the training forward runs through when it is not ``model``: DDP's wrapper

    def eval_model(self) -> torch.nn.Module:
        """The weights that are validated and saved as best: the EMA when it is on."""
        return self.ema.module if self.ema is not None else self.model

    def state_dict(self, rows: list[dict]) -> dict:
        """Everything a resumed fold needs, in one file: the last weights and the metric rows too, so that
        ``state.pt`` alone says which epoch is done (the other files are derived from it)."""
        s = {"model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
             "opt": self.opt.state_dict(), "sched": self.sched.state_dict(), "scaler": self.scaler.state_dict(),
             "g": self.g.get_state(), "gd": self.gd.get_state(), "torch_rng": torch.get_rng_state(),
             "progress": self.progress, "rows": list(rows)}
        if self.ema is not None:
            s["ema"] = self.ema.state_dict()
        return s

    def load_state_dict(self, s: dict) -> None:
        self.model.load_state_dict(s["model"])
        if self.ema is not None and "ema" in s:
            self.ema.load_state_dict(s["ema"])
        self.opt.load_state_dict(s["opt"])
        self.sched.load_state_dict(s["sched"])
        self.scaler.load_state_dict(s["scaler"])
        self.g.set_state(s["g"])
        if self.gd is not self.g:
            self.gd.set_state(s["gd"])
        torch.set_rng_state(s["torch_rng"])
        self.progress = s["progress"]


def _setup(f: int, cfg: TrainConfig, device: torch.device, n_steps: int,
           dist: distributed.Ranks = distributed.OneProcess()) -> FoldState:
    from timm.optim import create_optimizer_v2
    from timm.utils import ModelEmaV3

    seed_everything(cfg.seed * 1000 + f)
    model = new_model(cfg, device)
    ema = ModelEmaV3(model, decay=cfg.ema, use_warmup=True, warmup_gamma=EMA_WARMUP_GAMMA,
                     warmup_power=EMA_WARMUP_POWER) if cfg.ema else None
    # fused: one kernel over every parameter instead of a loop per tensor (CPU and CUDA): on the CPU it saves 7-14 ms
    # of the quick model's ~130-150 ms step (bench/quick_step.py; BENCHMARKS.md, "relabel-report: time")
    opt = create_optimizer_v2(model, "adamw", lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_with_warmup(
        cfg.epochs * n_steps, max(1, int(cfg.warmup_epochs * n_steps)), cfg.min_lr_ratio))
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype(cfg.amp, device) == torch.float16)
    g = torch.Generator().manual_seed(cfg.seed * 1000 + f)
    gd = g if device.type == "cpu" else torch.Generator(device=device).manual_seed(cfg.seed * 1000 + f + 1)
    # every rank: the same weights and photo order (g); its own augmentation (gd) and dropout (torch's global RNG)
    return FoldState(model, ema, opt, sched, scaler, g, dist.own_draws(cfg.seed, f, gd), net=dist.wrap(model))


def _train_epoch(fs: FoldState, cfg: TrainConfig, data: FoldInputs, losses: dict, weights, task: str,
                 progress: Progress, n_steps: int, dist: distributed.Ranks) -> dict:
    """One pass over the training photos; returns train_loss, train_f1 and the number of photos seen (all ranks')."""
    device = data.device
    model, dtype = fs.model if fs.net is None else fs.net, amp_dtype(cfg.amp, device)
    chl = device.type == "cuda" and cfg.channels_last
    model.train()
    t0 = time.perf_counter()
    seen, loss_sum, preds, trues = 0, 0.0, [], []
    progress.update(task, 0, n_steps)
    for step, (x, y) in enumerate(iter_train(data.images, data.train_pos, data.labels_t, cfg.batch_size, data.size,
                                              cfg.augment, fs.g, fs.gd, weights, channels_last=chl, norm=data.norm,
                                              extra=data.extra_pos, extra_share=cfg.extra_weight,
                                              shard=(dist.rank, dist.world)), start=1):
        x, order, lam = mix_batch(x, cfg.augment, fs.gd)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(x)
        parts = head_logits(logits.float(), cfg.task, cfg.age_loss)
        loss = 0.0
        for h, (fn, w) in losses.items():  # photos without this head's label (-1) are left out of its loss
            loss = loss + w * masked_loss(fn, parts[h], y[:, LABEL_COLUMN[h]], order, lam)
        fs.opt.zero_grad(set_to_none=True)
        fs.scaler.scale(loss).backward()
        if cfg.clip_grad:
            fs.scaler.unscale_(fs.opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        fs.scaler.step(fs.opt)
        fs.scaler.update()
        fs.sched.step()
        if fs.ema is not None:
            fs.ema.update(fs.model, step=fs.sched.last_epoch)
        n = x.shape[0]
        seen += n
        loss_sum += float(loss.detach()) * n
        if order is None:  # the training F1 counts the photos with all three labels
            yc = y[:, LABEL_COLUMN["class"]].cpu().numpy()
            pc = probabilities(logits.detach(), cfg.task, cfg.age_loss)["class"].argmax(1).cpu().numpy()
            preds.append(pc[yc >= 0])
            trues.append(yc[yc >= 0])
        progress.update(task, step, n_steps, f"loss {loss_sum / seen:.3f} {seen * dist.world / (time.perf_counter() - t0):.0f} img/s")
    train_time = time.perf_counter() - t0
    # every rank's photos: the loss, F1 and speed of the whole global batch
    loss_sum, seen = dist.gather_sum(loss_sum, seen)
    parts = dist.gather((preds, trues))
    preds, trues = [a for p, _ in parts for a in p], [a for _, t in parts for a in t]
    return {"train_loss": loss_sum / max(seen, 1),
            "train_f1": macro_f1(np.concatenate(trues), np.concatenate(preds)) if preds else float("nan"),
            "images_per_s": seen / train_time}


def _validate(fs: FoldState, cfg: TrainConfig, data: FoldInputs, dist: distributed.Ranks) -> dict:
    """Validation metrics of the evaluated weights: 18-class NLL, macro F1 and accuracy per head (DDP: each rank
    infers its shard of the photos, every rank gets all probabilities, so every rank computes the same metrics)."""
    device = data.device
    probs = infer_probs(fs.eval_model(), data.images, dist.shard(data.val_pos), data.size, cfg.task, cfg.eval_batch_size,
                        dtype=amp_dtype(cfg.amp, device), channels_last=device.type == "cuda" and cfg.channels_last,
                        norm=data.norm, age_loss=cfg.age_loss)
    probs = dist.gather_probs(probs)
    y_val = data.labels[data.val_pos, LABEL_COLUMN["class"]]
    val_loss = float(-np.log(probs["class"][np.arange(len(y_val)), y_val] + 1e-8).mean())
    return {"val_loss": val_loss, **head_metrics(probs, data.labels[data.val_pos], prefix="val_")}


def epoch_info(row: dict) -> str:
    """The status text of a finished epoch: loss, validation F1 (18 classes and per head), speed."""
    nan = float("nan")
    return (f"loss {row['train_loss']:.3f} F1 {row['val_f1']:.3f} m/g/a {row.get('val_f1_mask', nan):.2f}/"
            f"{row.get('val_f1_gender', nan):.2f}/{row.get('val_f1_age', nan):.2f} {row['images_per_s']:.0f} img/s")


def _save_epoch(fs: FoldState, out: Path, f: int, epoch: int, rows: list[dict], history: pd.DataFrame, improved: bool,
                on_save: Callable[[str, int, int], None] | None, dist: distributed.Ranks) -> None:
    """Write one epoch's files as one step: best (if better), last, metrics.csv, then ``state.pt`` last.

    Each file goes to a temporary name and is moved into place; ``state.pt`` is the commit: a run killed
    anywhere in between resumes from the previous state and writes the same files again, bit for bit.
    DDP: every rank hands rank 0 its own random states, and rank 0 alone writes.
    """
    ranks = dist.rank_rng(fs.gd)  # DDP: world_size and every rank's random states; one process: none
    if not dist.main:
        return
    fold_dir = out / f"fold_{f}"
    hook = on_save or (lambda what, fold, ep: None)
    if improved:
        save_weights(fs.eval_model(), fold_dir / BEST)
        hook("best", f, epoch)
    save_weights(fs.model, fold_dir / LAST)
    hook("last", f, epoch)
    write_metrics(out, history, f, rows)
    hook("metrics", f, epoch)
    save_state({**fs.state_dict(rows), **ranks}, fold_dir / STATE)
    hook("state", f, epoch)


def write_metrics(out: Path, history: pd.DataFrame, f: int, rows: list[dict]) -> None:
    """metrics.csv = the other folds' rows from ``history`` + fold ``f``'s ``rows``, written atomically."""
    frame = pd.concat([history[history["fold"] != f] if len(history) else history, pd.DataFrame(rows)], ignore_index=True)
    write_atomic(out / "metrics.csv", frame.to_csv(index=False).encode())


def fit_fold(f: int, cfg: TrainConfig, data: FoldInputs, out: Path, history: pd.DataFrame, tb,
             progress: Progress | None = None, on_epoch_end: Callable[[int, int, dict], None] | None = None,
             on_save: Callable[[str, int, int], None] | None = None,
             dist: distributed.Ranks = distributed.OneProcess()) -> tuple[list[dict], dict]:
    """Train fold ``f`` on ``data`` (or continue it from ``state.pt``) into ``out``; returns its metric rows and its
    best epoch's metrics.

    ``history``: the run's metric rows so far (metrics.csv keeps the other folds'); ``tb``: its event writer.
    ``dist``: this rank of a DDP run, or ``OneProcess``; ``on_epoch_end`` runs on every rank, ``on_save`` on rank 0.

    ``on_save(what, fold, epoch)`` is called after each file of an epoch is in place (what: best, last,
    metrics, state): the save points where a kill must leave a resumable run.
    """
    progress = progress or QUIET
    fold_dir = out / f"fold_{f}"
    if dist.main:
        fold_dir.mkdir(parents=True, exist_ok=True)
    train_pos, extra_pos = data.train_pos, data.extra_pos
    n_steps = steps_per_epoch(len(train_pos), cfg.batch_size, len(extra_pos), cfg.extra_weight)
    left = len(train_pos) + (len(extra_pos) if cfg.extra_weight is None else 0) - n_steps * cfg.batch_size
    if left > 0 and cfg.extra_weight is None:
        progress.note(f"fold {f}: {n_steps} batch(es) of {cfg.batch_size} per epoch; the last {left} shuffled photos of "
                      f"each epoch wait for the next one (a different {left} each time)")
    elif left < 0:
        progress.note(f"fold {f}: {len(train_pos)} training photos, fewer than --batch-size {cfg.batch_size}: one batch "
                      f"of all of them per epoch")
    fs = _setup(f, cfg, data.device, n_steps, dist)
    losses = _losses(cfg, data.labels, np.concatenate([train_pos, extra_pos]), data.device)
    weights = sampler_weights(data.labels[train_pos], cfg.sampler)
    rows: list[dict] = []
    if cfg.resume and (fold_dir / STATE).is_file():
        state = load_state(fold_dir / STATE)
        distributed.check_resume_world(state, dist, fold_dir / STATE)
        fs.load_state_dict(state)
        dist.set_rank_rng(fs.gd, state)
        rows = list(state.get("rows", []))
        if dist.main:
            write_metrics(out, history, f, rows)  # a row written after the last commit is dropped and recomputed
    st = fs.progress
    for epoch in range(st["epoch"] + 1, cfg.epochs + 1):
        if st["stopped"]:
            break
        t0 = time.perf_counter()
        task = f"f{f} ep {epoch}/{cfg.epochs}"
        trained = _train_epoch(fs, cfg, data, losses, weights, task, progress, n_steps, dist)
        dist.sync_buffers(fs.eval_model())  # the weights validated and saved: rank 0's, statistics included
        row = {"fold": f, "epoch": epoch, "train_loss": trained["train_loss"], "train_f1": trained["train_f1"],
               **_validate(fs, cfg, data, dist), "lr": fs.opt.param_groups[0]["lr"], "steps": fs.sched.last_epoch,
               "images_per_s": trained["images_per_s"], "epoch_s": time.perf_counter() - t0}
        rows.append(row)
        progress.update(task, n_steps, n_steps, epoch_info(row))
        score = row["val_f1"] if math.isfinite(row["val_f1"]) else -1.0  # undefined F1 (one class) never wins over a real one
        improved = score > st["best_f1"]
        if improved:
            st.update(best_f1=score, bad=0, best={"best_epoch": epoch, **{k: v for k, v in row.items() if k.startswith("val_")}})
        else:
            st["bad"] += 1
        st["epoch"] = epoch
        if cfg.patience and st["bad"] >= cfg.patience:
            st["stopped"] = True
        _save_epoch(fs, out, f, epoch, rows, history, improved, on_save, dist)
        for k, v in row.items():
            if k not in ("fold", "epoch") and isinstance(v, float) and math.isfinite(v):
                tb.add_scalar(k, v, epoch)
        if on_epoch_end is not None:
            on_epoch_end(f, epoch, row)
    return rows, {"epochs_run": st["epoch"], **st["best"]}


class RunTask:
    """The whole run as one progress task of folds x epochs, so the bar's ETA is the run's; a fold that stopped early
    counts as all its epochs once it is done. ``epoch_end`` passes each epoch on to ``on_epoch_end``."""

    def __init__(self, progress: Progress, folds: list[int], epochs: int,
                 on_epoch_end: Callable[[int, int, dict], None] | None = None) -> None:
        self.progress, self.folds, self.epochs, self.then = progress, list(folds), int(epochs), on_epoch_end
        self.name, self.total = f"run: {len(self.folds)} fold(s) x {self.epochs} epochs", len(self.folds) * self.epochs
        progress.update(self.name, 0, self.total)

    def epoch_end(self, fold: int, epoch: int, row: dict) -> None:
        self.progress.update(self.name, self.folds.index(fold) * self.epochs + epoch, self.total)
        if self.then is not None:
            self.then(fold, epoch, row)

    def fold_done(self, fold: int) -> None:
        self.progress.update(self.name, (self.folds.index(fold) + 1) * self.epochs, self.total)
