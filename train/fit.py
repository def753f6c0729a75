"""The training loop: person-grouped folds over the cache, a timm model per fold, a run folder on disk.

``train(cache, out, cfg)`` writes ``out/``: ``config.json``, ``fold_<i>/{best,last}.safetensors`` (+
``state.pt`` to resume), ``metrics.csv``, ``tensorboard/``, ``oof.parquet``, ``confusion.png``,
``curves.png`` and ``summary.json``. AdamW + cosine schedule with warm-up, EMA, gradient clipping,
early stopping on validation 18-class macro F1; AMP and channels_last on CUDA only.
"""
from __future__ import annotations

import copy
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from curate.cache import Cache, load_cache
from curate.errors import InputError
from curate.overrides import apply_overrides, read_overrides
from train.augment import AugmentParams, mix_batch
from train.data import HEAD_CLASSES, CacheImages, iter_eval, iter_train, label_array, sampler_weights
from train.losses import LOSSES, inverse_frequency, make_loss
from train.metrics import HEAD_COLUMN, confusion, head_metrics, macro_f1
from train.model import build_model, head_logits, probabilities
from train.splits import holdout_persons, kfold_persons, split_indices

DEFAULT_MODEL = "mobilenetv3_small_100"
PROB_COLUMNS = {"mask": 3, "gender": 2, "age": 3, "class": 18}


@dataclass
class TrainConfig:
    """Every training option; ``config.json`` holds it resolved, so a run can be repeated or resumed."""

    model: str = DEFAULT_MODEL            # any timm model name
    task: str = "multi"                   # multi: mask/gender/age heads; single: one 18-way head
    img_size: tuple[int, int] | None = None  # (height, width) fed to the model; None = the cache's size
    epochs: int = 15
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01            # cosine ends at lr * min_lr_ratio
    loss: str = "smooth"                  # ce | smooth | focal | f1
    smoothing: float = 0.1                # label smoothing of 'smooth'
    focal_gamma: float = 2.0
    class_weights: bool = False           # sqrt inverse-frequency class weights per head, from the training fold
    head_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # loss weights of mask, gender, age (multi)
    sampler: str = "none"                 # none | class | age: draw photos balanced by 18-class or by age group
    folds: int = 5
    fold: int | str = "all"               # one fold id or 'all'
    val_ratio: float | None = None        # one person-grouped split instead of K-fold
    patience: int = 5                     # early stopping after this many epochs without a better val F1; 0 = off
    ema: float = 0.998                    # EMA decay of the weights evaluated and saved; 0 = off
    clip_grad: float = 1.0                # max gradient norm; 0 = off
    drop_rate: float = 0.2
    seed: int = 0
    amp: str = "auto"                     # auto | bf16 | fp16 | off (CUDA only; the CPU runs fp32)
    channels_last: bool = True            # CUDA only
    device: str | None = None             # None = cuda when present, else cpu
    threads: int | None = None            # torch CPU threads; None = torch's default
    pretrained: bool = False              # timm weights from the local Hugging Face cache only
    weights: str | None = None            # a local weights file for the backbone
    overrides: str | None = None          # overrides.csv applied to the labels (the user's data is unchanged)
    resume: bool = False
    eval_batch_size: int = 128
    plots: bool = True                    # confusion.png and curves.png at the end
    augment: AugmentParams = field(default_factory=AugmentParams)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Rebuild from ``config.json`` (unknown keys are ignored)."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if isinstance(kw.get("augment"), dict):
            aug = {k: tuple(v) if isinstance(v, list) else v for k, v in kw["augment"].items()}
            kw["augment"] = AugmentParams(**aug)
        for k in ("img_size", "head_weights"):
            if isinstance(kw.get(k), list):
                kw[k] = tuple(kw[k])
        return cls(**kw)


def quick_config(**changes) -> TrainConfig:
    """A short K-fold preset for out-of-fold probabilities (``relabel-report``): small input, few epochs, no early stop.

    About 1.5 ms per photo-epoch on a 2-core CPU at 128 x 96; e.g. ``train(cache, out, quick_config(epochs=4))``.
    """
    base = dict(epochs=6, img_size=(128, 96), folds=5, patience=0, ema=0.0, lr=3e-3, batch_size=64)
    base.update(changes)
    return TrainConfig(**base)


def parse_img_size(text: str | None, cache: str | Path | None = None) -> tuple[int, int] | None:
    """``"H,W"`` -> (H, W); ``"H"`` -> (H, W) with W keeping the cache's aspect; None/"" -> None (the cache's size)."""
    if not text:
        return None
    try:
        hw = [int(v) for v in str(text).split(",")]
    except ValueError:
        raise InputError(f"--img-size {text!r}: expected HEIGHT or HEIGHT,WIDTH in pixels") from None
    if len(hw) not in (1, 2) or min(hw) < 8:
        raise InputError(f"--img-size {text!r}: expected HEIGHT or HEIGHT,WIDTH, each at least 8 pixels")
    if len(hw) == 1:
        if cache is None:
            return hw[0], hw[0]
        h, w = load_cache(cache).images.shape[1:3]
        return hw[0], max(8, round(hw[0] * w / h))
    return hw[0], hw[1]


def parse_head_weights(text: str) -> tuple[float, float, float]:
    """``"1,1,1"`` -> the loss weights of the mask, gender and age heads."""
    try:
        w = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        w = ()
    if len(w) != 3 or min(w) < 0:
        raise InputError(f"--head-weights {text!r}: expected three non-negative numbers like 1,1,1")
    return w  # type: ignore[return-value]


def default_run_dir(cache: str | Path, model: str, name: str | None = None, resume: bool = False,
                    root: str | Path = "artifacts/runs") -> Path:
    """``root/<name or cache-model>``; a taken name gets -2, -3 ... unless resuming (then the name itself)."""
    base = Path(root) / (name or f"{Path(cache).resolve().name}-{model}")
    out, k = base, 2
    while not resume and (out / "config.json").exists():
        out, k = base.with_name(f"{base.name}-{k}"), k + 1
    return out


class ModelEma:
    """Exponential moving average of a model's weights (buffers copied), with timm's warm-up of the decay."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.updates = decay, 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for e, m in zip(self.module.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.mul_(d).add_(m.detach(), alpha=1 - d)
            else:
                e.copy_(m)


def pick_device(device: str | None) -> torch.device:
    """``device`` or CUDA when present, else the CPU; InputError when CUDA is asked for and absent."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: CUDA is not available on this machine")
    return dev


def amp_dtype(cfg_amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (CUDA only): bf16 where supported for 'auto', else fp16; None = fp32."""
    if device.type != "cuda" or cfg_amp == "off":
        return None
    if cfg_amp == "fp16":
        return torch.float16
    if cfg_amp in ("bf16", "auto"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    raise InputError(f"--amp must be auto, bf16, fp16 or off, got {cfg_amp!r}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cosine_with_warmup(total_steps: int, warmup_steps: int, min_ratio: float) -> Callable[[int], float]:
    """lr multiplier per step: linear warm-up from ~0 to 1, then cosine down to ``min_ratio``."""
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    return f


def _save_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp))
    tmp.replace(path)


def load_weights(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    """Load a checkpoint written by ``train`` (safetensors) into ``model``."""
    from safetensors.torch import load_file
    model.load_state_dict(load_file(str(path)))
    return model


@torch.no_grad()
def infer_probs(model: torch.nn.Module, images: CacheImages, positions: np.ndarray, size: tuple[int, int], task: str,
                batch_size: int = 128, flip_tta: bool = False, dtype: torch.dtype | None = None,
                channels_last: bool = False) -> dict[str, np.ndarray]:
    """Probabilities per head and for 18 classes over ``positions``; with ``flip_tta`` averaged with the mirrored photo."""
    model.eval()
    dev = images.device
    passes = (False, True) if flip_tta else (False,)
    total: dict[str, np.ndarray] = {}
    for flip in passes:
        chunks: dict[str, list[np.ndarray]] = {}
        for x in iter_eval(images, positions, batch_size, size, flip=flip, channels_last=channels_last):
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                logits = model(x.to(dev))
            for k, v in probabilities(logits, task).items():
                chunks.setdefault(k, []).append(v.float().cpu().numpy())
        for k, v in chunks.items():
            arr = np.concatenate(v) if v else np.zeros((0, PROB_COLUMNS[k]), np.float32)
            total[k] = total.get(k, 0) + arr / len(passes)
    if not total:
        total = {k: np.zeros((0, n), np.float32) for k, n in PROB_COLUMNS.items()}
    return total


def probs_frame(probs: dict[str, np.ndarray]) -> pd.DataFrame:
    """p_mask_0..2, p_gender_0..1, p_age_0..2, p_class_0..17 columns from ``infer_probs``'s output."""
    cols = {}
    for head, n in PROB_COLUMNS.items():
        for j in range(n):
            cols[f"p_{head}_{j}"] = probs[head][:, j].astype(np.float32)
    return pd.DataFrame(cols)


def _check(cfg: TrainConfig) -> None:
    if cfg.loss not in LOSSES:
        raise InputError(f"--loss must be one of {', '.join(LOSSES)}, got {cfg.loss!r}")
    if cfg.sampler not in ("none", "class", "age"):
        raise InputError(f"--sampler must be none, class or age, got {cfg.sampler!r}")
    if cfg.task not in ("multi", "single"):
        raise InputError(f"--task must be multi or single, got {cfg.task!r}")
    if cfg.val_ratio is None and cfg.folds < 2:
        raise InputError(f"--folds must be >= 2 (or use --val-ratio), got {cfg.folds}")
    if cfg.val_ratio is not None and not 0 < cfg.val_ratio < 1:
        raise InputError(f"--val-ratio must be between 0 and 1, got {cfg.val_ratio}")
    if cfg.epochs < 1 or cfg.batch_size < 2:
        raise InputError("--epochs must be >= 1 and --batch-size >= 2")
    _folds_to_run(cfg)
    import timm

    from train.model import local_pretrained_file
    if not timm.is_model(cfg.model):
        raise InputError(f"--model {cfg.model!r}: not a timm model name (see timm.list_models())")
    if cfg.weights and not Path(cfg.weights).is_file():
        raise InputError(f"{cfg.weights}: weights file not found (nothing is downloaded; give a local .safetensors/.pth file)")
    if cfg.pretrained and not cfg.weights and local_pretrained_file(cfg.model) is None:
        raise InputError(f"--pretrained {cfg.model}: weights are not in the local Hugging Face cache and nothing is downloaded "
                         f"(HF_HUB_OFFLINE=1); put them there or pass --weights FILE")


def _folds_to_run(cfg: TrainConfig) -> list[int]:
    if cfg.val_ratio is not None:
        return [0]
    if str(cfg.fold) == "all":
        return list(range(cfg.folds))
    try:
        f = int(cfg.fold)
    except ValueError:
        raise InputError(f"--fold must be 'all' or a fold id 0..{cfg.folds - 1}, got {cfg.fold!r}") from None
    if not 0 <= f < cfg.folds:
        raise InputError(f"--fold {f}: out of range 0..{cfg.folds - 1}")
    return [f]


# the config keys that must not change when a run is resumed
_RESUME_KEYS = ("model", "task", "img_size", "folds", "val_ratio", "seed", "loss", "batch_size", "overrides")


def _training_labels(cache: Cache, cfg: TrainConfig, age_bins) -> tuple[pd.DataFrame, np.ndarray, int]:
    """(labelled usable manifest rows after overrides, their cache row numbers, photos changed by overrides)."""
    manifest = cache.manifest
    changed = 0
    if cfg.overrides:
        manifest, changed = apply_overrides(manifest, read_overrides(cfg.overrides), age_bins)
    rows = cache.usable()
    labelled = label_array(manifest.iloc[rows])[:, 3] >= 0
    rows = rows[labelled]
    if len(rows) < 4:
        raise InputError(f"{cache.path}: only {len(rows)} labelled photos without errors; training needs a labelled cache")
    return manifest.iloc[rows].reset_index(drop=True), rows, changed


def train(cache: str | Path | Cache, out: str | Path, cfg: TrainConfig = TrainConfig(), progress: bool = True,
          on_epoch_end: Callable[[int, int, dict], None] | None = None) -> Path:
    """Train ``cfg`` on the cache and write the run folder ``out`` (see module doc); returns ``out``.

    ``on_epoch_end(fold, epoch, metrics_row)`` is called after each epoch's checkpoint is saved.
    """
    cache = cache if isinstance(cache, Cache) else load_cache(cache)
    _check(cfg)
    out = Path(out)
    device = pick_device(cfg.device)
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(cache, out, cfg, device, progress, on_epoch_end)
    finally:
        torch.set_num_threads(threads_before)


def _train(cache: Cache, out: Path, cfg: TrainConfig, device: torch.device, progress: bool, on_epoch_end) -> Path:
    # CPU kernels used here are deterministic (the tests check it); on CUDA speed wins over bit-exact repeats
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    age_bins = cache.age_bins
    manifest, rows, changed = _training_labels(cache, cfg, age_bins)
    labels = label_array(manifest)
    fold_ids = (holdout_persons(manifest, cfg.val_ratio, cfg.seed) if cfg.val_ratio is not None
                else kfold_persons(manifest, cfg.folds, cfg.seed))
    size = tuple(cfg.img_size) if cfg.img_size else tuple(int(s) for s in cache.images.shape[1:3])
    config = {**asdict(cfg), "img_size": list(size), "cache": str(Path(cache.path).resolve()),
              "crop": (cache.meta or {}).get("params", {}), "age_bins": list(age_bins),
              "overrides_changed": changed, "n_photos": int(len(rows)), "n_people": int(manifest["person"].nunique()),
              "device": str(device)}
    cfg_path = out / "config.json"
    if cfg.resume and cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        diff = [k for k in _RESUME_KEYS if json.dumps(old.get(k)) != json.dumps(config.get(k))]
        if diff:
            raise InputError(f"{cfg_path}: --resume with different {', '.join(diff)} than the run it continues")
    out.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(json.dumps(config, indent=2))

    images = CacheImages(cache.images, device, rows)
    labels_t = torch.as_tensor(labels, device=device)
    history = pd.read_csv(out / "metrics.csv") if cfg.resume and (out / "metrics.csv").is_file() else pd.DataFrame()
    oof_old = pd.read_parquet(out / "oof.parquet") if cfg.resume and (out / "oof.parquet").is_file() else pd.DataFrame()
    from torch.utils.tensorboard import SummaryWriter

    summaries, oof_parts = [], []
    for f in _folds_to_run(cfg):
        train_pos, val_pos = split_indices(fold_ids, f)
        if len(val_pos) == 0 or len(train_pos) < 2:
            raise InputError(f"fold {f}: {len(train_pos)} training and {len(val_pos)} validation photos; too few people for {cfg.folds} folds")
        with SummaryWriter(str(out / "tensorboard" / f"fold_{f}")) as tb:
            fold_rows, best = _fit_fold(f, cfg, out, images, labels, labels_t, train_pos, val_pos, size, device,
                                        history, tb, progress, on_epoch_end)
        history = pd.concat([history[history["fold"] != f] if len(history) else history, pd.DataFrame(fold_rows)],
                            ignore_index=True)
        history.to_csv(out / "metrics.csv", index=False)
        # out-of-fold probabilities of the best checkpoint, with the flipped photo averaged in (as predict does)
        model = _new_model(cfg, device)
        load_weights(model, out / f"fold_{f}" / "best.safetensors")
        probs = infer_probs(model, images, val_pos, size, cfg.task, cfg.eval_batch_size, flip_tta=True,
                            dtype=amp_dtype(cfg.amp, device), channels_last=device.type == "cuda" and cfg.channels_last)
        meta = manifest.iloc[val_pos]
        part = pd.DataFrame({"image_id": meta["image_id"].astype(str).to_numpy(), "person": meta["person"].astype(str).to_numpy(),
                             "photo": meta["photo"].astype(str).to_numpy(), "fold": f,
                             "label": labels[val_pos, 3], "mask": labels[val_pos, 0], "gender": labels[val_pos, 1],
                             "age_group": labels[val_pos, 2]})
        part = pd.concat([part, probs_frame(probs)], axis=1)
        part["pred"] = probs["class"].argmax(1)
        oof_parts.append(part)
        done = list(oof_parts)
        if len(oof_old):
            done.insert(0, oof_old[~oof_old["fold"].isin([q["fold"].iloc[0] for q in oof_parts])])
        pd.concat(done, ignore_index=True).to_parquet(out / "oof.parquet", index=False)
        summaries.append({"fold": f, **best, **{f"tta_{k}": v for k, v in head_metrics(probs, labels[val_pos]).items()}})

    oof = pd.read_parquet(out / "oof.parquet")
    summary = _finish(out, oof, history, summaries, age_bins, cfg)
    if progress:
        _print_table(out, summaries, summary)
    return out


def _new_model(cfg: TrainConfig, device: torch.device) -> torch.nn.Module:
    model = build_model(cfg.model, cfg.task, pretrained=cfg.pretrained, weights=cfg.weights, drop_rate=cfg.drop_rate)
    model = model.to(device)
    if device.type == "cuda" and cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _losses(cfg: TrainConfig, labels: np.ndarray, train_pos: np.ndarray, device: torch.device) -> dict[str, tuple[torch.nn.Module, float]]:
    heads = {"mask": cfg.head_weights[0], "gender": cfg.head_weights[1], "age": cfg.head_weights[2]} if cfg.task == "multi" else {"class": 1.0}
    out = {}
    for h, w in heads.items():
        n = HEAD_CLASSES[h]
        cw = inverse_frequency(labels[train_pos, HEAD_COLUMN[h]], n).to(device) if cfg.class_weights else None
        out[h] = (make_loss(cfg.loss, n, cw, smoothing=cfg.smoothing, gamma=cfg.focal_gamma).to(device), w)
    return out


def _fit_fold(f: int, cfg: TrainConfig, out: Path, images: CacheImages, labels: np.ndarray, labels_t: torch.Tensor,
              train_pos: np.ndarray, val_pos: np.ndarray, size: tuple[int, int], device: torch.device,
              history: pd.DataFrame, tb, progress: bool, on_epoch_end) -> tuple[list[dict], dict]:
    """Train one fold (or continue it from ``state.pt``); returns its metric rows and its best epoch's metrics."""
    fold_dir = out / f"fold_{f}"
    fold_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed * 1000 + f)
    model = _new_model(cfg, device)
    ema = ModelEma(model, cfg.ema) if cfg.ema else None
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr)
    steps_per_epoch = max(1, len(train_pos) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_with_warmup(
        cfg.epochs * steps_per_epoch, max(1, int(cfg.warmup_epochs * steps_per_epoch)), cfg.min_lr_ratio))
    dtype = amp_dtype(cfg.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    g = torch.Generator().manual_seed(cfg.seed * 1000 + f)
    gd = g if device.type == "cpu" else torch.Generator(device=device).manual_seed(cfg.seed * 1000 + f + 1)
    losses = _losses(cfg, labels, train_pos, device)
    weights = sampler_weights(labels[train_pos], cfg.sampler)
    chl = device.type == "cuda" and cfg.channels_last
    st = {"epoch": 0, "best_f1": -1.0, "best": {}, "bad": 0, "stopped": False}
    rows: list[dict] = []
    state_path = fold_dir / "state.pt"
    if cfg.resume and state_path.is_file():
        s = torch.load(state_path, map_location="cpu", weights_only=False)
        load_weights(model, fold_dir / "last.safetensors")
        if ema is not None and "ema" in s:
            ema.module.load_state_dict(s["ema"])
            ema.updates = s["ema_updates"]
        opt.load_state_dict(s["opt"])
        sched.load_state_dict(s["sched"])
        scaler.load_state_dict(s["scaler"])
        g.set_state(s["g"])
        if gd is not g:
            gd.set_state(s["gd"])
        torch.set_rng_state(s["torch_rng"])
        st = s["progress"]
        rows = [r for r in history.to_dict("records") if r["fold"] == f and r["epoch"] <= st["epoch"]] if len(history) else []
    eval_model = (lambda: ema.module) if ema is not None else (lambda: model)

    for epoch in range(st["epoch"] + 1, cfg.epochs + 1):
        if st["stopped"]:
            break
        model.train()
        t0 = time.perf_counter()
        seen, loss_sum, preds, trues = 0, 0.0, [], []
        bar = _EpochBar(f"f{f} ep {epoch}/{cfg.epochs}", steps_per_epoch) if progress else None
        for x, y in iter_train(images, train_pos, labels_t, cfg.batch_size, size, cfg.augment, g, gd, weights,
                               channels_last=chl):
            x, order, lam = mix_batch(x, cfg.augment, gd)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                logits = model(x)
            parts = head_logits(logits.float(), cfg.task)
            loss = 0.0
            for h, (fn, w) in losses.items():
                yh = y[:, HEAD_COLUMN[h]]
                lh = fn(parts[h], yh)
                if order is not None:
                    lh = lam * lh + (1 - lam) * fn(parts[h], yh[order])
                loss = loss + w * lh
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.clip_grad:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            scaler.step(opt)
            scaler.update()
            sched.step()
            if ema is not None:
                ema.update(model)
            n = x.shape[0]
            seen += n
            loss_sum += float(loss.detach()) * n
            if order is None:
                preds.append(probabilities(logits.detach(), cfg.task)["class"].argmax(1).cpu().numpy())
                trues.append(y[:, 3].cpu().numpy())
            if bar:
                bar.advance(loss_sum / seen, seen / (time.perf_counter() - t0))
        train_time = time.perf_counter() - t0
        probs = infer_probs(eval_model(), images, val_pos, size, cfg.task, cfg.eval_batch_size, dtype=dtype, channels_last=chl)
        vm = head_metrics(probs, labels[val_pos], prefix="val_")
        y_val = labels[val_pos, 3]
        val_loss = float(-np.log(probs["class"][np.arange(len(y_val)), y_val] + 1e-8).mean())
        row = {"fold": f, "epoch": epoch, "train_loss": loss_sum / max(seen, 1),
               "train_f1": macro_f1(np.concatenate(trues), np.concatenate(preds)) if preds else float("nan"),
               "val_loss": val_loss, **vm, "lr": opt.param_groups[0]["lr"],
               "images_per_s": seen / train_time, "epoch_s": time.perf_counter() - t0}
        rows.append(row)
        if bar:
            bar.close(row)
        score = row["val_f1"]
        if score > st["best_f1"]:
            st.update(best_f1=score, bad=0, best={"best_epoch": epoch, **{k: row[k] for k in row if k.startswith("val_")}})
            _save_weights(eval_model(), fold_dir / "best.safetensors")
        else:
            st["bad"] += 1
        st["epoch"] = epoch
        if cfg.patience and st["bad"] >= cfg.patience:
            st["stopped"] = True
        _save_weights(model, fold_dir / "last.safetensors")
        state = {"opt": opt.state_dict(), "sched": sched.state_dict(), "scaler": scaler.state_dict(), "g": g.get_state(),
                 "gd": gd.get_state(), "torch_rng": torch.get_rng_state(), "progress": st}
        if ema is not None:
            state.update(ema=ema.module.state_dict(), ema_updates=ema.updates)
        torch.save(state, fold_dir / "state.tmp")
        (fold_dir / "state.tmp").replace(state_path)
        pd.concat([history[history["fold"] != f] if len(history) else history, pd.DataFrame(rows)],
                  ignore_index=True).to_csv(out / "metrics.csv", index=False)
        for k, v in row.items():
            if k not in ("fold", "epoch") and isinstance(v, float) and math.isfinite(v):
                tb.add_scalar(k, v, epoch)
        if on_epoch_end is not None:
            on_epoch_end(f, epoch, row)
    return rows, {"epochs_run": st["epoch"], **st["best"]}


class _EpochBar:
    """A rich progress line per epoch: loss, images/s, then the epoch's validation F1 when it closes."""

    def __init__(self, title: str, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        self.p = Progress(TextColumn("{task.description}"), BarColumn(bar_width=12), MofNCompleteColumn(),
                          TimeElapsedColumn(), TextColumn("{task.fields[info]}"))
        self.p.start()
        self.t = self.p.add_task(title, total=total, info="")

    def advance(self, loss: float, ips: float) -> None:
        self.p.update(self.t, advance=1, info=f"loss {loss:.3f} {ips:.0f} img/s")

    def close(self, row: dict) -> None:
        nan = float("nan")
        self.p.update(self.t, info=f"loss {row['train_loss']:.3f} F1 {row['val_f1']:.3f} "
                                   f"m/g/a {row.get('val_f1_mask', nan):.2f}/{row.get('val_f1_gender', nan):.2f}/"
                                   f"{row.get('val_f1_age', nan):.2f} {row['images_per_s']:.0f} img/s")
        self.p.stop()


def _finish(out: Path, oof: pd.DataFrame, history: pd.DataFrame, summaries: list[dict], age_bins, cfg: TrainConfig) -> dict:
    """Plots and summary.json from the out-of-fold table and the metric history."""
    from train.plots import plot_confusion, plot_curves

    probs = {h: oof[[f"p_{h}_{j}" for j in range(n)]].to_numpy() for h, n in PROB_COLUMNS.items()}
    labels = oof[["mask", "gender", "age_group", "label"]].to_numpy()
    m = head_metrics(probs, labels, prefix="oof_")
    if cfg.plots:
        mats = {h: confusion(labels[:, HEAD_COLUMN[h]], probs[h].argmax(1), h) for h in PROB_COLUMNS}
        plot_confusion(out / "confusion.png", mats, {h: m[f"oof_f1{'' if h == 'class' else '_' + h}"] for h in PROB_COLUMNS}, age_bins)
        if len(history):
            plot_curves(out / "curves.png", history)
    summary = {**m, "n_oof": int(len(oof)), "folds": sorted(int(x) for x in oof["fold"].unique()), "per_fold": summaries}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    return summary


def _print_table(out: Path, summaries: list[dict], summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"run {out}")
    for c in ("fold", "best epoch", "epochs", "F1 (18)", "F1 mask", "F1 gender", "F1 age", "acc (18)"):
        t.add_column(c, justify="right")
    for s in summaries:
        t.add_row(str(s["fold"]), str(s.get("best_epoch", "")), str(s["epochs_run"]), f"{s['tta_f1']:.3f}",
                  f"{s.get('tta_f1_mask', float('nan')):.3f}", f"{s.get('tta_f1_gender', float('nan')):.3f}",
                  f"{s.get('tta_f1_age', float('nan')):.3f}", f"{s['tta_acc']:.3f}")
    t.add_row("OOF", "", "", f"{summary['oof_f1']:.3f}", f"{summary['oof_f1_mask']:.3f}", f"{summary['oof_f1_gender']:.3f}",
              f"{summary['oof_f1_age']:.3f}", f"{summary['oof_acc']:.3f}", style="bold")
    Console().print(t)
