"""`train` and `predict`: a person-grouped K-fold run from the cache, and its fold ensemble on new photos.

`train --ddp N` checks the run, then starts N processes of the same `train` command with torchrun's launcher (the
options given, `--out` resolved once); under torchrun only rank 0 renders, the other ranks stay quiet.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer

from .app import CONFIG_TRANSLATORS, DATA_HELP, command, config_option, fail, flag, quiet_option, stage, verbose_option
from .summaries import print_paths, train_summary


def _range(text: str, option: str) -> tuple[float, float]:
    from ..curate.errors import InputError

    try:
        lo, hi = (float(v) for v in str(text).split(","))
    except ValueError:
        raise InputError(f"{option} {text!r}: expected two numbers LOW,HIGH") from None
    return lo, hi


def _joined(v) -> str:
    return ",".join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v)


def config_json_options(config: dict) -> dict:
    """A run's config.json (or any TrainConfig as JSON) -> `train`'s options, so `train --config RUN/config.json` repeats it.

    What the run learned (n_photos, norm, the crop settings ...) is not an option and is left out; so is ``resume``.
    """
    facts = {"crop", "age_bins", "overrides_changed", "overrides_changes", "n_photos", "n_people", "norm", "extra_data",
             "weights_file", "resume"}
    out = {}
    for k, v in config.items():
        if k in facts:
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


CONFIG_TRANSLATORS["train"] = config_json_options


def _rank_args(ctx: typer.Context, out: Path) -> list[str]:
    """The `train` command every torchrun process runs: the options given on this command line, not their defaults,
    with `--out` fixed to the folder picked here, `--verify off` (checked here already) and without `--ddp`; values read
    from `--config` are passed as options, `--quiet`/`--verbose` as given."""
    args = ["train"]
    for p in ctx.command.params:
        value = ctx.params[p.name]
        if p.name in ("ddp", "out", "name", "verify", "config", "quiet", "verbose"):
            continue
        if p.param_type_name == "argument":
            args.insert(1, str(value))
        elif getattr(ctx.get_parameter_source(p.name), "name", "DEFAULT") != "DEFAULT":  # typer's own click: by name
            if getattr(p, "is_flag", False):
                args += (p.opts if value else p.secondary_opts)[:1]
            else:
                args += [p.opts[0], str(value)]
    if ctx.params.get("quiet"):
        args.append("--quiet")
    if ctx.params.get("verbose"):
        args.append("--verbose")
    return [*args, "--out", str(out), "--verify", "off"]


@contextlib.contextmanager
def _quiet_rank():
    """A torchrun rank other than 0: no progress and no summary (rank 0 shows them); bad input exits with code 2, said
    here only when it is this rank's own finding (an error agreed on by every rank is rank 0's to say)."""
    from ..curate.errors import InputError
    from ..train import distributed

    try:
        yield None, None
    except InputError as e:
        if not isinstance(e, distributed.AgreedError):  # this rank's own finding: say it, with the rank
            typer.echo(f"error (rank {distributed.env_rank()}): {e}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@command()
def train(
    ctx: typer.Context,
    cache: Path = typer.Argument(..., help="A cache folder written by `crop`."),
    out: Optional[Path] = typer.Option(None, help="Run folder.", show_default="artifacts/runs/<name>"),
    name: Optional[str] = typer.Option(None, help="Run name; -2, -3 ... are appended when taken, unless --resume.", show_default="<cache name>-<model>"),
    model: str = typer.Option("mobilenetv3_small_100", help="Any timm model name (trained from scratch unless --pretrained/--weights)."),
    task: str = typer.Option("multi", help="multi: mask (3) / gender (2) / age (3) heads combined into 18 classes; single: one 18-way head."),
    img_size: Optional[str] = typer.Option(None, help="Model input HEIGHT,WIDTH or HEIGHT (the width keeps the cache's aspect).", show_default="the cache's size"),
    epochs: int = typer.Option(15, help="Epochs per fold (the cosine schedule spans them)."),
    batch_size: int = typer.Option(32, help="Photos per training batch. A fold with fewer photos trains on one smaller batch; otherwise each epoch drops the last partial batch (said at the start)."),
    eval_batch_size: int = typer.Option(128, help="Photos per validation / out-of-fold batch."),
    lr: float = typer.Option(2e-3, help="Peak AdamW learning rate (after warm-up)."),
    min_lr_ratio: float = typer.Option(0.01, help="The cosine schedule ends at lr x this."),
    weight_decay: float = typer.Option(0.05, help="AdamW weight decay (not applied to biases, norm layers and the model's no_weight_decay() names)."),
    warmup: float = typer.Option(1.0, help="Warm-up length in epochs (linear), then cosine decay."),
    loss: str = typer.Option("smooth", help="ce, smooth (label smoothing), focal or f1 (soft macro F1 + CE); per head's own class count."),
    smoothing: float = typer.Option(0.1, help="Label smoothing of --loss smooth."),
    focal_gamma: float = typer.Option(2.0, help="Gamma of --loss focal."),
    class_weights: bool = flag(False, help="Weight each head's classes by sqrt inverse frequency in the training fold."),
    head_weights: str = typer.Option("1,1,1", help="Loss weights of the mask, gender and age heads (--task multi)."),
    age_loss: str = typer.Option("ce", help="Age head: ce (3-way, under --loss) or ordinal (CORN over the ordered age groups; --task multi)."),
    sampler: str = typer.Option("none", help="none, class (balanced over the 18 classes) or age (balanced over age groups)."),
    folds: int = typer.Option(5, help="K of the person-grouped stratified K-fold."),
    fold: str = typer.Option("all", help="Which fold(s) to train: all or one id 0..K-1."),
    val_ratio: Optional[float] = typer.Option(None, help="Instead of K-fold: one person-grouped split with this share of people for validation.", show_default="K-fold"),
    patience: int = typer.Option(5, help="Stop a fold after this many epochs without a better validation macro F1 (0 = never)."),
    ema: float = typer.Option(0.998, help="EMA decay of the evaluated/saved weights (timm's ModelEmaV3 with warm-up; 0 = off)."),
    clip_grad: float = typer.Option(1.0, help="Gradient norm clipping (0 = off)."),
    drop_rate: float = typer.Option(0.2, help="Dropout before the classifier."),
    augment: bool = flag(True, help="Flip, random resized crop, small rotation and colour jitter on the training batches."),
    hflip: float = typer.Option(0.5, help="Augmentation: probability of a mirrored photo."),
    scale: str = typer.Option("0.75,1.0", help="Augmentation: area of the random crop, LOW,HIGH as fractions of the photo."),
    ratio: str = typer.Option("0.9,1.1", help="Augmentation: change of the crop's aspect, LOW,HIGH."),
    rotate: float = typer.Option(10.0, help="Augmentation: largest rotation, degrees."),
    brightness: float = typer.Option(0.2, help="Augmentation: brightness jitter (0.2 = +-20%)."),
    contrast: float = typer.Option(0.2, help="Augmentation: contrast jitter."),
    saturation: float = typer.Option(0.2, help="Augmentation: saturation jitter."),
    mixup: float = typer.Option(0.0, help="Mixup Beta alpha (0 = off)."),
    cutmix: float = typer.Option(0.0, help="CutMix Beta alpha (0 = off)."),
    seed: int = typer.Option(0, help="Seed of splits, initialisation, order and augmentation."),
    amp: str = typer.Option("auto", help="Mixed precision on CUDA: auto (bf16 where supported, else fp16), bf16, fp16 or off. The CPU runs fp32."),
    channels_last: bool = flag(True, help="Channels-last memory on CUDA (the CPU path ignores it)."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or cuda:N.", show_default="cuda when present"),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (1 on a busy machine).", show_default="torch's choice"),
    pretrained: bool = flag(False, help="Start from timm's weights: the local Hugging Face cache first, else downloaded when online."),
    weights: Optional[Path] = typer.Option(None, help="Start from a run folder (its fold 0 best) or a weights file (.safetensors/.pth): the backbone loads, the heads adapt."),
    extra: Optional[str] = typer.Option(None, help="External caches CACHE[,CACHE...]: their photos join every training fold, never validation or oof.parquet; missing labels are left out of that head's loss."),
    extra_weight: Optional[float] = typer.Option(None, help="The extra photos' share of each batch, 0..1.", show_default="every extra photo once per epoch"),
    overrides: Optional[Path] = typer.Option(None, help="overrides.csv from relabel-report: label fixes applied for this run only (the data is unchanged)."),
    resume: bool = flag(False, help="Continue the run in --out/--name from its last saved epoch."),
    plots: bool = flag(True, help="Draw confusion.png and curves.png at the end (per_class.csv is always written)."),
    verify: str = typer.Option("quick", help="Check the cache before training: quick (sizes and xxh3 checksums of every file), full (also labels and blank failed rows) or off."),
    config: Optional[Path] = config_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
    ddp: Optional[int] = typer.Option(None, help="Train on N processes with DistributedDataParallel (one per GPU, NCCL; gloo on the CPU), as `torchrun --standalone --nproc_per_node N -m facecurate train ...` would. --batch-size is the global batch."),
) -> None:
    """Train a timm classifier from the cache with person-grouped K-fold; writes a run folder (`--config RUN/config.json` repeats a run)."""
    from ..curate.cache import load_cache
    from ..train.augment import AugmentParams
    from ..train import distributed
    from ..train.config import TrainConfig, default_run_dir, parse_extra, parse_head_weights, parse_img_size
    from ..train.fit import check_distributed
    from ..train.fit import train as fit

    out = out or default_run_dir(cache, model, name, resume)
    world = ddp if ddp and ddp > 1 else distributed.env_world()
    again = f" with {world} processes (--ddp {world})" if world > 1 else ""
    other_rank = distributed.env_rank() > 0
    if ddp is not None and ddp > 1 and distributed.env_world() > 1:
        fail("--ddp: this process was already started by torchrun; leave --ddp out (torchrun sets the processes)")
    if ddp is not None and ddp < 1:
        fail(f"--ddp {ddp}: expected the number of processes, 1 or more")
    interrupted = f"interrupted; the last finished epoch is saved: add --resume --out {out}{again} to continue"
    with (_quiet_rank() if other_rank else stage(interrupted, quiet, verbose)) as (console, progress):
        aug = AugmentParams(enabled=augment, hflip=hflip, scale=_range(scale, "--scale"), ratio=_range(ratio, "--ratio"),
                            rotate=rotate, brightness=brightness, contrast=contrast, saturation=saturation,
                            mixup=mixup, cutmix=cutmix)
        cfg = TrainConfig(model=model, task=task, img_size=parse_img_size(img_size, cache), epochs=epochs,
                          batch_size=batch_size, lr=lr, weight_decay=weight_decay, warmup_epochs=warmup,
                          min_lr_ratio=min_lr_ratio, loss=loss, smoothing=smoothing, focal_gamma=focal_gamma,
                          class_weights=class_weights, head_weights=parse_head_weights(head_weights), sampler=sampler,
                          folds=folds, fold=fold, val_ratio=val_ratio, patience=patience, ema=ema, clip_grad=clip_grad,
                          drop_rate=drop_rate, seed=seed, amp=amp, channels_last=channels_last, device=device,
                          threads=threads, pretrained=pretrained, weights=str(weights) if weights else None,
                          extra=parse_extra(extra), extra_weight=extra_weight, age_loss=age_loss,
                          overrides=str(overrides) if overrides else None, resume=resume,
                          eval_batch_size=eval_batch_size, plots=plots, augment=aug)
        if ddp and ddp > 1:  # checked here, then torchrun runs the same command on every process
            check_distributed(load_cache(cache, verify=verify), out, cfg, ddp)
        else:
            run = fit(load_cache(cache, verify=verify), out, cfg, progress=progress)
    if ddp and ddp > 1:
        code = distributed.launch(ddp, _rank_args(ctx, out))
        if code:
            raise typer.Exit(code)
        return
    if not other_rank:
        train_summary(console, run, quiet)


@command()
def predict(
    run: Path = typer.Argument(..., help="A run folder written by `train`."),
    data: Path = typer.Argument(..., help=DATA_HELP),
    out: Optional[Path] = typer.Option(None, help="Submission CSV to write; probs.parquet and predict.json go beside it.", show_default="RUN/predict-<data name>/submission.csv"),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or cuda:N for cropping and the model.", show_default="cuda when present"),
    cache_root: Optional[Path] = typer.Option(None, help="Where the crop cache of DATA is looked for and written.", show_default="a cache/ folder beside the submission"),
    batch_size: int = typer.Option(128, help="Photos per inference batch."),
    tta: bool = flag(True, help="Average each photo with its mirror image."),
    config: Optional[Path] = config_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Crop new photos with the run's settings, ensemble folds + flip TTA, write submission.csv."""
    import json

    from ..train.predict import predict as run_predict

    with stage(quiet=quiet, verbose=verbose) as (console, progress):
        path = run_predict(run, data, out=out, device=device, cache_root=cache_root, batch_size=batch_size, tta=tta,
                           progress=progress)
    info = json.loads((path.parent / "predict.json").read_text())
    console.print(f"submission: {path} ({info['rows']} rows, {info['folds']} fold(s){' x flip' if tta else ''})"
                  + (f"; {info['missing_photos']} listed photo(s) missing, given the most frequent class" if info['missing_photos'] else "")
                  + (f"; {info['crop_errors']} unreadable photo(s)" if info['crop_errors'] else ""), markup=False, soft_wrap=True)
    for w in info.get("warnings", []):
        console.print(f"warning: {w}", markup=False, soft_wrap=True)
    print_paths(console, "probabilities:", path.parent / "probs.parquet")
    print_paths(console, "cache:", Path(info["cache"]))
