"""What ``tune`` searches and how one trial's suggestions become a ``TrainConfig`` and, for the best trial, a
YAML file of ``train`` options (``train --config best.yaml`` repeats it).

A dimension given one value (a range LOW,LOW or a list of one) is fixed: it is not suggested, so Optuna's
importance plot only shows what was really searched. Learning rate and weight decay are drawn log-uniformly.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ...curate.errors import InputError
from ..config import SAMPLERS, TrainConfig, validate_config
from ..losses import LOSSES

DEFAULT_MODELS = ("mobilenetv3_small_100", "resnet10t")


@dataclass(frozen=True)
class SearchSpace:
    """The ranges and choices of one tune; ``parse`` reads them from the command line's text."""

    lr: tuple[float, float] = (3e-4, 1e-2)
    weight_decay: tuple[float, float] = (1e-3, 0.1)
    losses: tuple[str, ...] = ("ce", "smooth", "focal", "f1")
    samplers: tuple[str, ...] = ("none", "class", "age")
    img_sizes: tuple[int, ...] = (96, 128)  # input heights; the width keeps the cache's aspect
    models: tuple[str, ...] = DEFAULT_MODELS
    epochs: tuple[int, int] = (4, 8)

    def searched(self) -> list[str]:
        """Names of the dimensions with more than one value."""
        out = [k for k in ("lr", "weight_decay", "epochs") if getattr(self, k)[0] != getattr(self, k)[1]]
        out += [k for k, v in (("loss", self.losses), ("sampler", self.samplers), ("img_size", self.img_sizes),
                               ("model", self.models)) if len(v) > 1]
        return out


def _floats(text: str, option: str) -> tuple[float, float]:
    try:
        v = [float(x) for x in str(text).split(",")]
    except ValueError:
        v = []
    if len(v) == 1:
        v = v * 2
    if len(v) != 2 or v[0] <= 0 or v[1] < v[0]:
        raise InputError(f"{option} {text!r}: expected LOW,HIGH (0 < LOW <= HIGH) or one value to fix it")
    return v[0], v[1]


def _names(text: str, option: str, allowed=None) -> tuple[str, ...]:
    v = tuple(dict.fromkeys(x.strip() for x in str(text).split(",") if x.strip()))
    if not v:
        raise InputError(f"{option} {text!r}: expected one or more comma-separated values")
    bad = [x for x in v if allowed is not None and x not in allowed]
    if bad:
        raise InputError(f"{option}: {bad[0]!r} is not one of {', '.join(allowed)}")
    return v


def parse_space(lr: str, weight_decay: str, losses: str, samplers: str, img_sizes: str, models: str,
                epochs: str) -> SearchSpace:
    """The command line's text -> a checked ``SearchSpace`` (InputError naming the option otherwise)."""
    import timm

    try:
        sizes = tuple(dict.fromkeys(int(x) for x in str(img_sizes).split(",") if x.strip()))
        ep = [int(x) for x in str(epochs).split(",")]
    except ValueError:
        raise InputError(f"--img-sizes {img_sizes!r} / --epochs {epochs!r}: expected whole numbers") from None
    if not sizes or min(sizes) < 8:
        raise InputError(f"--img-sizes {img_sizes!r}: expected input heights of at least 8 pixels, e.g. 96,128")
    ep = ep * 2 if len(ep) == 1 else ep
    if len(ep) != 2 or ep[0] < 1 or ep[1] < ep[0]:
        raise InputError(f"--epochs {epochs!r}: expected LOW,HIGH epochs per fold (1 <= LOW <= HIGH) or one number")
    names = _names(models, "--models")
    for m in names:
        if not timm.is_model(m):
            raise InputError(f"--models: {m!r} is not a timm model name (see timm.list_models())")
    space = SearchSpace(lr=_floats(lr, "--lr"), weight_decay=_floats(weight_decay, "--weight-decay"),
                        losses=_names(losses, "--losses", LOSSES), samplers=_names(samplers, "--samplers", SAMPLERS),
                        img_sizes=sizes, models=names, epochs=(ep[0], ep[1]))
    if space.lr[1] > 10 or space.weight_decay[1] > 10:
        raise InputError("--lr / --weight-decay: out of range (at most 10)")
    return space


def space_record(space: SearchSpace) -> dict:
    """The space as plain JSON (stored in the study, compared when a tune resumes)."""
    return {k: list(v) for k, v in asdict(space).items()}


def suggest(trial, space: SearchSpace) -> dict:
    """One trial's values of every dimension: suggested where searched, the one value where fixed."""
    def num(name, lo_hi, **kw):
        lo, hi = lo_hi
        return trial.suggest_float(name, lo, hi, **kw) if lo != hi else lo

    def pick(name, values):
        return trial.suggest_categorical(name, list(values)) if len(values) > 1 else values[0]

    lo, hi = space.epochs
    return {"model": pick("model", space.models), "img_height": pick("img_size", space.img_sizes),
            "epochs": trial.suggest_int("epochs", lo, hi) if lo != hi else lo,
            "lr": num("lr", space.lr, log=True), "weight_decay": num("weight_decay", space.weight_decay, log=True),
            "loss": pick("loss", space.losses), "sampler": pick("sampler", space.samplers)}


def img_size_for(height: int, cache_shape: tuple[int, ...]) -> tuple[int, int]:
    """An input ``height`` high that keeps the cache's aspect (as ``train --img-size H`` does)."""
    h, w = int(cache_shape[0]), int(cache_shape[1])
    return int(height), max(8, round(height * w / h))


def trial_config(values: dict, cache_shape: tuple[int, ...], folds: int, batch_size: int, seed: int,
                 device: str | None, threads: int | None, groups: str | None = None) -> TrainConfig:
    """The ``TrainConfig`` of one trial: its values on top of the trainer's defaults, no pictures (``groups``: the
    person,group CSV every trial's folds keep together)."""
    return TrainConfig(model=values["model"], img_size=img_size_for(values["img_height"], cache_shape),
                       epochs=int(values["epochs"]), lr=float(values["lr"]), weight_decay=float(values["weight_decay"]),
                       loss=values["loss"], sampler=values["sampler"], folds=folds, batch_size=batch_size, seed=seed,
                       device=device, threads=threads, plots=False, groups=groups)


def check_space(space: SearchSpace, cache_shape: tuple[int, ...], folds: int, batch_size: int, seed: int,
                device: str | None, threads: int | None, groups: str | None = None) -> None:
    """Every corner of the space must be a valid run (InputError before the first trial otherwise)."""
    for model in space.models:
        for loss in space.losses:
            values = {"model": model, "img_height": space.img_sizes[0], "epochs": space.epochs[0], "lr": space.lr[0],
                      "weight_decay": space.weight_decay[0], "loss": loss, "sampler": space.samplers[0]}
            validate_config(trial_config(values, cache_shape, folds, batch_size, seed, device, threads, groups))


def train_options(cfg: TrainConfig) -> dict:
    """The ``train`` options (names as on its command line, ``--config`` keys) that repeat ``cfg``'s trial."""
    return {"model": cfg.model, "img_size": ",".join(str(v) for v in cfg.img_size), "epochs": cfg.epochs,
            "lr": float(cfg.lr), "weight_decay": float(cfg.weight_decay), "loss": cfg.loss,
            "sampler": cfg.sampler, "folds": cfg.folds, "batch_size": cfg.batch_size, "seed": cfg.seed}


def write_best_config(path: Path, cfg: TrainConfig, header: str) -> Path:
    """``best.yaml``: the best trial as ``train`` options, with a comment saying where it came from."""
    import yaml

    text = "".join(f"# {line}\n" for line in header.splitlines()) + yaml.safe_dump(train_options(cfg), sort_keys=False)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
