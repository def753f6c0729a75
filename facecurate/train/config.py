"""Every training option in one record (``TrainConfig``, with ``AugmentParams``), its parsers and its checks, and
where a run goes.

``config.json`` holds the resolved config, so a run can be repeated (``TrainConfig.from_dict``) or resumed.
``config_options`` / ``TrainConfig.from_options`` translate between the record and ``train``'s command-line options
(``train --config RUN/config.json``, the processes ``train --ddp N`` starts, the CLI's defaults via
``option_default``). No torch here: the CLI reads the defaults without loading the trainer.
"""
from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from ..curate.errors import InputError

DEFAULT_MODEL = "mobilenetv3_small_100"
DEFAULT_RUNS_ROOT = Path("artifacts/runs")
SAMPLERS = ("none", "class", "age")
#: ``--model`` names that are no timm model: per-head classifiers on the cache's face embeddings (``probe``) -> kind
PROBE_MODELS = {"probe-linear": "linear", "probe-mlp": "mlp"}
TASKS = ("multi", "single")


@dataclass
class AugmentParams:
    """What the training augmentation does (``augment``); ``enabled=False`` leaves only resize + normalise."""

    enabled: bool = True
    hflip: float = 0.5
    scale: tuple[float, float] = (0.75, 1.0)    # area of the crop, fraction of the photo
    ratio: tuple[float, float] = (0.9, 1.1)     # crop aspect change, relative to the photo's
    rotate: float = 10.0                        # degrees, uniform in +-rotate
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    mixup: float = 0.0                          # Beta(alpha, alpha); 0 = off
    cutmix: float = 0.0                         # Beta(alpha, alpha); 0 = off


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
    fold_workers: int = 1                 # folds trained side by side in their own processes (CPU); 0 = one per core
    pretrained: bool = False              # timm's weights: the local Hugging Face cache, else downloaded when online
    weights: str | None = None            # a local weights file or a run folder (its fold 0 best) to start from
    extra: tuple[str, ...] = ()           # external caches: their photos join every training fold, never validation
    extra_weight: float | None = None     # the extra photos' share of each batch (0..1); None = each photo once per epoch
    age_loss: str = "ce"                  # ce: a 3-way age head under --loss; ordinal: CORN over the ordered age groups
    overrides: str | None = None          # overrides.csv applied to the labels (the user's data is unchanged)
    groups: str | None = None             # person,group CSV: ids of one group (one person) always share a fold
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
        for k in ("img_size", "head_weights", "extra"):
            if isinstance(kw.get(k), list):
                kw[k] = tuple(kw[k])
        return cls(**kw)

    @classmethod
    def from_options(cls, options: dict, cache: str | Path | None = None) -> "TrainConfig":
        """``train``'s options ({name: value} as its command line gives them: ``img_size="64"``, ``scale="0.75,1"``,
        paths) -> the config, parsed and not yet validated; names that are no option of the record are ignored (the
        inverse of ``config_options``). ``cache``: whose aspect ``--img-size HEIGHT`` keeps."""
        aug = {a: options[o] for o, a in AUGMENT_OF_OPTION.items() if o in options}
        for k in ("scale", "ratio"):
            if isinstance(aug.get(k), str):
                aug[k] = parse_range(aug[k], f"--{k}")
        names = {f.name for f in fields(cls)} - {"augment"}
        kw = {FIELD_OF_OPTION.get(k, k): v for k, v in options.items() if k not in AUGMENT_OF_OPTION}
        kw = {k: v for k, v in kw.items() if k in names}
        if "img_size" in kw and (kw["img_size"] is None or isinstance(kw["img_size"], str)):
            kw["img_size"] = parse_img_size(kw["img_size"], cache)
        if isinstance(kw.get("head_weights"), str):
            kw["head_weights"] = parse_head_weights(kw["head_weights"])
        if "extra" in kw and (kw["extra"] is None or isinstance(kw["extra"], str)):
            kw["extra"] = parse_extra(kw["extra"])
        for k in ("weights", "overrides", "groups"):  # paths, kept as text
            if k in kw:
                kw[k] = str(kw[k]) if kw[k] else None
        return cls(**kw, augment=AugmentParams(**aug))


#: ``train``'s option name -> TrainConfig's field, where they differ; and the options that fill ``AugmentParams``.
FIELD_OF_OPTION = {"warmup": "warmup_epochs"}
AUGMENT_OF_OPTION = {"augment": "enabled", **{f.name: f.name for f in fields(AugmentParams) if f.name != "enabled"}}
#: What config.json records of a run that is no option (what the run found), and ``resume`` (``--config RUN/config.json``
#: repeats a run; it does not continue it).
RUN_FACTS = frozenset({"crop", "age_bins", "overrides_changed", "overrides_excluded", "overrides_changes", "n_photos",
                       "n_people", "norm", "extra_data", "weights_file", "resume", "groups_xxh3", "groups_linked",
                       "probe"})


def _joined(v) -> str:
    return ",".join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v)


def config_options(config: dict) -> dict:
    """A run's config.json (or any TrainConfig as JSON) -> ``train``'s options, so ``train --config RUN/config.json``
    repeats it; what the run learned (``RUN_FACTS``) is left out."""
    out = {}
    for k, v in config.items():
        if k in RUN_FACTS:
            continue
        if k == "augment" and isinstance(v, dict):
            for ak, av in v.items():
                out["augment" if ak == "enabled" else ak] = _joined(av) if ak in ("scale", "ratio") else av
        elif k == "warmup_epochs":
            out["warmup"] = v
        elif k == "ddp" and isinstance(v, dict):  # a DDP run is repeated on as many processes
            out["ddp"] = v.get("world_size")
        elif k in ("img_size", "head_weights", "extra"):
            out[k] = _joined(v) if v is not None else None
        else:
            out[k] = v
    return out


def option_args(cfg: TrainConfig) -> list[str]:
    """``cfg`` as ``train``'s command-line options (those that differ from the defaults, ``--resume`` too): what
    ``train --ddp N`` hands each process it starts, so every rank builds the same config."""
    given, base = config_options(asdict(cfg)), config_options(asdict(TrainConfig()))
    args: list[str] = []
    for name, value in given.items():
        if value is None or value == base.get(name):
            continue
        option = name.replace("_", "-")
        if isinstance(value, bool):
            args.append(f"--{option}" if value else f"--no-{option}")
        else:
            args += [f"--{option}", str(value)]
    return [*args, *(["--resume"] if cfg.resume else [])]


def option_default(name: str):
    """The default of ``train``'s option ``name`` as its command line writes it, read from the records' own field
    defaults, so the CLI's defaults cannot drift from ``TrainConfig``'s and ``AugmentParams``'."""
    record, key = (AugmentParams, AUGMENT_OF_OPTION[name]) if name in AUGMENT_OF_OPTION else \
        (TrainConfig, FIELD_OF_OPTION.get(name, name))
    f = {f.name: f for f in fields(record)}[key]
    value = f.default if f.default is not MISSING else f.default_factory()
    return (_joined(value) or None) if isinstance(value, tuple) else value


#: Optimiser steps per fold of the quick K-fold (``quick_plan``); ``QuickModel.steps`` holds the same default (tested).
#: Chosen by measurement (BENCHMARKS.md "relabel-report: the quick CNN's step budget" and "relabel-report: time"): on
#: 300 people the 6 epochs of 64-photo batches at 128 x 96 it first had were 156 steps and read the mask at 56 %
#: balanced accuracy (the gate wants 67 %); 400 steps of 32 at 64 x 48 of mobilenetv3_small_100 read it at 79-86 % and
#: found the planted swaps in 212-230 s; ``QUICK_MODEL`` at 500 steps reads it as well (0.84-0.87) in 148-175 s.
QUICK_STEPS = 500
#: The quick K-fold's model; ``QuickModel.model`` holds the same default (tested). mobilenetv3_small_050: a step costs
#: ~40 % less than the trainer's default mobilenetv3_small_100 at 64 x 48 on one thread (``bench/quick_step.py``), so
#: 500 steps of it take less time than 400 of the default; on three 310-people sets it found 70 of 72 planted swaps
#: over eight runs (seed 2 misses the same one each time; 550-600 steps found 27 of 27 but took 175-192 s on this
#: machine, over the 3 minutes asked; lcnet_050 at 600 steps 5 of 9; BENCHMARKS.md "relabel-report: time").
QUICK_MODEL = "mobilenetv3_small_050"
#: Folds of the quick K-fold; ``QuickModel.folds`` holds the same default (tested). Four, not five: with one fold per
#: core side by side (``fold_pool``) four folds on 2 cores are two rounds where five are three, the last one half
#: idle; on 310 people 4 x 400 steps found the 9 planted swaps as 5 x 400 did, in 230 s instead of 329 s
#: (BENCHMARKS.md, "relabel-report: time").
QUICK_FOLDS = 4


def quick_config(**changes) -> TrainConfig:
    """A short K-fold preset for out-of-fold probabilities (``relabel-report``): a narrow model (``QUICK_MODEL``), small
    input (64 x 48: a step costs less, and the mask still reads), batches of 32 (more steps per photo seen), no EMA, no
    early stop, no plots (the report shows how well it reads each head), and photos drawn
    balanced over the 18 classes (``sampler="class"``): five of a person's seven photos are masked, so a plain draw
    spends most steps on the easy class; balanced, the same 400 steps read the mask at 0.865 balanced accuracy
    instead of 0.755 on 310 people (BENCHMARKS.md, "relabel-report reads faces").

    ``quick_plan`` turns its step budget into ``epochs``; e.g. ``train(cache, out, quick_config(epochs=4))``.
    """
    base = dict(model=QUICK_MODEL, epochs=8, img_size=(64, 48), folds=QUICK_FOLDS, patience=0, ema=0.0, lr=3e-3, batch_size=32,
                sampler="class", plots=False)
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
        from ..curate.cache import load_cache

        h, w = load_cache(cache, verify="off").images.shape[1:3]
        return hw[0], max(8, round(hw[0] * w / h))
    return hw[0], hw[1]


def parse_range(text: str, option: str) -> tuple[float, float]:
    """``"LOW,HIGH"`` -> (LOW, HIGH): the augmentation's ``--scale`` and ``--ratio``."""
    try:
        lo, hi = (float(v) for v in str(text).split(","))
    except ValueError:
        raise InputError(f"{option} {text!r}: expected two numbers LOW,HIGH") from None
    return lo, hi


def parse_head_weights(text: str) -> tuple[float, float, float]:
    """``"1,1,1"`` -> the loss weights of the mask, gender and age heads."""
    try:
        w = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        w = ()
    if len(w) != 3 or min(w) < 0:
        raise InputError(f"--head-weights {text!r}: expected three non-negative numbers like 1,1,1")
    return w  # type: ignore[return-value]


def parse_extra(text: str | None) -> tuple[str, ...]:
    """``"CACHE[,CACHE...]"`` -> the extra cache paths; None/"" -> ()."""
    return tuple(p.strip() for p in str(text or "").split(",") if p.strip())


def default_run_dir(cache: str | Path, model: str, name: str | None = None, resume: bool = False,
                    root: str | Path = DEFAULT_RUNS_ROOT) -> Path:
    """``root/<name or cache-model>``; a taken name gets -2, -3 ... unless resuming (then the name itself)."""
    base = Path(root) / (name or f"{Path(cache).resolve().name}-{model}")
    out, k = base, 2
    while not resume and (out / "config.json").exists():
        out, k = base.with_name(f"{base.name}-{k}"), k + 1
    return out


def validate_config(cfg: TrainConfig) -> None:
    """InputError naming the option when ``cfg`` cannot run; checks the model name and weights files too."""
    from .losses import LOSSES

    if cfg.loss not in LOSSES:
        raise InputError(f"--loss must be one of {', '.join(LOSSES)}, got {cfg.loss!r}")
    if cfg.sampler not in SAMPLERS:
        raise InputError(f"--sampler must be none, class or age, got {cfg.sampler!r}")
    if cfg.task not in TASKS:
        raise InputError(f"--task must be multi or single, got {cfg.task!r}")
    if cfg.val_ratio is None and cfg.folds < 2:
        raise InputError(f"--folds must be >= 2 (or use --val-ratio), got {cfg.folds}")
    if cfg.val_ratio is not None and not 0 < cfg.val_ratio < 1:
        raise InputError(f"--val-ratio must be between 0 and 1, got {cfg.val_ratio}")
    if cfg.epochs < 1 or cfg.batch_size < 2:
        raise InputError("--epochs must be >= 1 and --batch-size >= 2")
    aug = cfg.augment
    checks = [  # (option, value, ok)
        ("--lr", cfg.lr, 0 < cfg.lr <= 10), ("--weight-decay", cfg.weight_decay, 0 <= cfg.weight_decay <= 10),
        ("--warmup", cfg.warmup_epochs, 0 <= cfg.warmup_epochs <= cfg.epochs),
        ("--smoothing", cfg.smoothing, 0 <= cfg.smoothing < 1), ("--drop-rate", cfg.drop_rate, 0 <= cfg.drop_rate < 1),
        ("--ema", cfg.ema, 0 <= cfg.ema < 1), ("--clip-grad", cfg.clip_grad, cfg.clip_grad >= 0),
        ("--patience", cfg.patience, cfg.patience >= 0), ("--threads", cfg.threads, cfg.threads is None or cfg.threads >= 1),
        ("--head-weights", cfg.head_weights, len(cfg.head_weights) == 3 and min(cfg.head_weights) >= 0 and sum(cfg.head_weights) > 0),
        ("--img-size", cfg.img_size, cfg.img_size is None or (len(cfg.img_size) == 2 and min(cfg.img_size) >= 8)),
        ("--rotate", aug.rotate, 0 <= aug.rotate <= 180), ("--mixup", aug.mixup, aug.mixup >= 0),
        ("--cutmix", aug.cutmix, aug.cutmix >= 0), ("--eval-batch-size", cfg.eval_batch_size, cfg.eval_batch_size >= 1),
        ("--min-lr-ratio", cfg.min_lr_ratio, 0 <= cfg.min_lr_ratio <= 1),
    ]
    for option, value, ok in checks:
        if not ok:
            raise InputError(f"{option} {value}: out of range (see `facecurate train --help`)")
    if cfg.amp not in ("auto", "bf16", "fp16", "off"):
        raise InputError(f"--amp must be auto, bf16, fp16 or off, got {cfg.amp!r}")
    if cfg.extra_weight is not None and not 0 < cfg.extra_weight < 1:
        raise InputError(f"--extra-weight {cfg.extra_weight}: the extra photos' share of a batch, between 0 and 1 "
                         f"(leave it out for every extra photo once per epoch)")
    if cfg.extra_weight is not None and not cfg.extra:
        raise InputError("--extra-weight needs --extra CACHE")
    from .heads import AGE_LOSSES
    if cfg.age_loss not in AGE_LOSSES:
        raise InputError(f"--age-loss must be one of {', '.join(AGE_LOSSES)}, got {cfg.age_loss!r}")
    if cfg.age_loss != "ce" and cfg.task != "multi":
        raise InputError("--age-loss ordinal needs --task multi (the single task has no age head)")
    folds_to_run(cfg)
    if cfg.fold_workers < 0:
        raise InputError(f"--fold-workers {cfg.fold_workers}: expected 0 (one per core) or more")
    if cfg.model in PROBE_MODELS:  # no timm model: the probe's own checks (train.probe.check_probe)
        return
    import timm

    from .hub import pretrained_file
    from .warmstart import resolve_weights
    if not timm.is_model(cfg.model):
        raise InputError(f"--model {cfg.model!r}: not a timm model name (see timm.list_models())")
    if cfg.weights:
        _, run = resolve_weights(cfg.weights)
        if run is not None and run.get("model") != cfg.model:
            raise InputError(f"--weights {cfg.weights}: that run trained --model {run.get('model')}; pass --model "
                             f"{run.get('model')} to start from it")
    if cfg.pretrained and not cfg.weights:
        pretrained_file(cfg.model)  # the local cache, else a download; offline: one line naming the missing file


def folds_to_run(cfg: TrainConfig) -> list[int]:
    """The fold ids this config trains: [0] for a hold-out split, every fold for 'all', else the one asked for."""
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
RESUME_KEYS = ("model", "task", "img_size", "folds", "val_ratio", "seed", "loss", "batch_size", "overrides", "extra",
               "extra_weight", "age_loss", "groups")
