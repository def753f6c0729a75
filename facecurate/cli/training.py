"""`train` and `predict`: a person-grouped K-fold run from the cache, and its fold ensemble on new photos.

`train --ddp N` checks the run, then starts N processes of the same `train` command with torchrun's launcher
(``launcher.launch_train``: the config's options, `--out` resolved once); under torchrun only rank 0 renders, the
other ranks stay quiet. The options' defaults are ``TrainConfig``'s own (``option_default``), written once.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer

from ..train.config import config_options
from ..train.config import option_default as default
from .app import CONFIG_TRANSLATORS, DATA_HELP, HELP_PANELS, choices, command, config_option, fail, flag, quiet_option, stage, threads_option, verbose_option
from .summaries import print_paths, train_summary


CONFIG_TRANSLATORS["train"] = config_options  # `train --config RUN/config.json` repeats a run


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
    model: str = typer.Option(default("model"), help="Any timm model name (trained from scratch unless --pretrained/--weights); or probe-linear / probe-mlp: per-head logistic regression / small MLP on the cache's face embeddings (`facecurate embed` first), seconds on a CPU, the same folds, for `ensemble CNN_RUN PROBE_RUN --method stack-lr`."),
    task: str = typer.Option(default("task"), metavar=choices("multi", "single"), help="multi: mask (3) / gender (2) / age (3) heads combined into 18 classes; single: one 18-way head."),
    img_size: Optional[str] = typer.Option(None, metavar="HEIGHT[,WIDTH]", help="Model input HEIGHT,WIDTH or HEIGHT (the width keeps the cache's aspect).", show_default="the cache's size"),
    epochs: int = typer.Option(default("epochs"), help="Epochs per fold (the cosine schedule spans them)."),
    batch_size: int = typer.Option(default("batch_size"), help="Photos per training batch. A fold with fewer photos trains on one smaller batch; otherwise each epoch drops the last partial batch (said at the start)."),
    eval_batch_size: int = typer.Option(default("eval_batch_size"), help="Photos per validation / out-of-fold batch."),
    lr: float = typer.Option(default("lr"), help="Peak AdamW learning rate (after warm-up)."),
    min_lr_ratio: float = typer.Option(default("min_lr_ratio"), help="The cosine schedule ends at lr x this."),
    weight_decay: float = typer.Option(default("weight_decay"), help="AdamW weight decay (not applied to biases, norm layers and the model's no_weight_decay() names)."),
    warmup: float = typer.Option(default("warmup"), help="Warm-up length in epochs (linear), then cosine decay."),
    loss: str = typer.Option(default("loss"), metavar=choices("ce", "smooth", "focal", "f1"), help="ce, smooth (label smoothing), focal or f1 (soft macro F1 + CE); per head's own class count."),
    smoothing: float = typer.Option(default("smoothing"), help="Label smoothing of --loss smooth."),
    focal_gamma: float = typer.Option(default("focal_gamma"), help="Gamma of --loss focal."),
    class_weights: bool = flag(default("class_weights"), help="Weight each head's classes by sqrt inverse frequency in the training fold."),
    head_weights: str = typer.Option(default("head_weights"), help="Loss weights of the mask, gender and age heads (--task multi)."),
    age_loss: str = typer.Option(default("age_loss"), metavar=choices("ce", "ordinal"), help="Age head: ce (3-way, under --loss) or ordinal (CORN over the ordered age groups; --task multi)."),
    sampler: str = typer.Option(default("sampler"), metavar=choices("none", "class", "age"), help="none, class (balanced over the 18 classes) or age (balanced over age groups)."),
    folds: int = typer.Option(default("folds"), help="K of the person-grouped stratified K-fold."),
    fold: str = typer.Option(default("fold"), help="Which fold(s) to train: all or one id 0..K-1."),
    val_ratio: Optional[float] = typer.Option(None, help="Instead of K-fold: one person-grouped split with this share of people for validation.", show_default="K-fold"),
    patience: int = typer.Option(default("patience"), help="Stop a fold after this many epochs without a better validation macro F1 (0 = never)."),
    ema: float = typer.Option(default("ema"), help="EMA decay of the evaluated/saved weights (timm's ModelEmaV3 with warm-up; 0 = off)."),
    clip_grad: float = typer.Option(default("clip_grad"), help="Gradient norm clipping (0 = off)."),
    drop_rate: float = typer.Option(default("drop_rate"), help="Dropout before the classifier."),
    augment: bool = flag(default("augment"), help="Flip, random resized crop, small rotation and colour jitter on the training batches."),
    hflip: float = typer.Option(default("hflip"), help="Augmentation: probability of a mirrored photo."),
    scale: str = typer.Option(default("scale"), help="Augmentation: area of the random crop, LOW,HIGH as fractions of the photo."),
    ratio: str = typer.Option(default("ratio"), help="Augmentation: change of the crop's aspect, LOW,HIGH."),
    rotate: float = typer.Option(default("rotate"), help="Augmentation: largest rotation, degrees."),
    brightness: float = typer.Option(default("brightness"), help="Augmentation: brightness jitter (0.2 = +-20%)."),
    contrast: float = typer.Option(default("contrast"), help="Augmentation: contrast jitter."),
    saturation: float = typer.Option(default("saturation"), help="Augmentation: saturation jitter."),
    mixup: float = typer.Option(default("mixup"), help="Mixup Beta alpha (0 = off)."),
    cutmix: float = typer.Option(default("cutmix"), help="CutMix Beta alpha (0 = off)."),
    seed: int = typer.Option(default("seed"), help="Seed of splits, initialisation, order and augmentation."),
    amp: str = typer.Option(default("amp"), metavar=choices("auto", "bf16", "fp16", "off"), help="Mixed precision on CUDA: auto (bf16 where supported, else fp16), bf16, fp16 or off. The CPU runs fp32."),
    channels_last: bool = flag(default("channels_last"), help="Channels-last memory on CUDA (the CPU path ignores it)."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or cuda:N.", show_default="cuda when present"),
    threads: Optional[int] = threads_option(),
    fold_workers: int = typer.Option(default("fold_workers"), help="Folds trained side by side in that many worker processes, each fold with its share of --threads (CPU only; 0 = one per core). On 2 cores small models train ~1.5x faster with 2; a GPU trains one fold at a time."),
    pretrained: bool = flag(default("pretrained"), help="Start from timm's weights: the local Hugging Face cache first, else downloaded when online."),
    weights: Optional[Path] = typer.Option(None, help="Start from a run folder (its fold 0 best) or a weights file (.safetensors/.pth): the backbone loads, the heads adapt."),
    extra: Optional[str] = typer.Option(None, help="External caches CACHE[,CACHE...]: their photos join every training fold, never validation or oof.parquet; missing labels are left out of that head's loss."),
    extra_weight: Optional[float] = typer.Option(None, help="The extra photos' share of each batch, 0..1.", show_default="every extra photo once per epoch"),
    overrides: Optional[Path] = typer.Option(None, help="overrides.csv from relabel-report: label fixes applied for this run only (the data is unchanged)."),
    groups: Optional[Path] = typer.Option(None, help="person,group CSV (relabel-report's identity_groups.csv): ids with one group are one person and always share a fold, so none is in training and validation at once (identity rows of --overrides do the same)."),
    resume: bool = flag(default("resume"), help="Continue the run in --out/--name from its last saved epoch."),
    plots: bool = flag(default("plots"), help="Draw confusion.png and curves.png at the end (per_class.csv is always written)."),
    verify: str = typer.Option("quick", metavar=choices("quick", "full", "off"), help="Check the cache before training: quick (sizes and xxh3 checksums of every file), full (also labels and blank failed rows) or off."),
    config: Optional[Path] = config_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
    ddp: Optional[int] = typer.Option(None, help="Train on N processes with DistributedDataParallel (one per GPU, NCCL; gloo on the CPU), as `torchrun --standalone --nproc_per_node N -m facecurate train ...` would. --batch-size is the global batch."),
) -> None:
    """Train a timm classifier from the cache with person-grouped K-fold; writes a run folder (`--config RUN/config.json` repeats a run)."""
    from ..curate.cache import load_cache
    from ..train import distributed, launcher
    from ..train.config import TrainConfig, default_run_dir
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
    with (_quiet_rank() if other_rank else stage(interrupted, quiet, verbose, threads)) as (console, progress):
        cfg = TrainConfig.from_options(ctx.params, cache)  # every option of the record, by the same names
        if ddp and ddp > 1:  # checked here, then torchrun runs the same command on every process
            check_distributed(load_cache(cache, verify=verify), out, cfg, ddp)
        else:
            run = fit(load_cache(cache, verify=verify), out, cfg, progress=progress)
    if ddp and ddp > 1:
        code = launcher.launch_train(ddp, cache, out, cfg, ["--quiet"] * quiet + ["--verbose"] * verbose)
        if code:
            raise typer.Exit(code)
        return
    if not other_rank:
        train_summary(console, run, quiet)


#: ``train --help`` in groups (rich help panels): ~55 options are easier to scan by what they change.
HELP_PANELS["train"] = {
    **dict.fromkeys(["overrides", "extra", "extra_weight", "verify"], "Data"),
    **dict.fromkeys(["model", "task", "img_size", "pretrained", "weights", "drop_rate", "age_loss"], "Model"),
    **dict.fromkeys(["epochs", "batch_size", "eval_batch_size", "lr", "min_lr_ratio", "weight_decay", "warmup", "loss", "smoothing", "focal_gamma", "class_weights", "head_weights", "sampler", "patience", "ema", "clip_grad", "seed", "augment", "hflip", "scale", "ratio", "rotate", "brightness", "contrast", "saturation", "mixup", "cutmix"], "Optimisation"),
    **dict.fromkeys(["folds", "fold", "val_ratio"], "Folds"),
    **dict.fromkeys(["out", "name", "resume", "plots", "config", "quiet", "verbose", "help"], "Output"),
    **dict.fromkeys(["device", "threads", "fold_workers", "amp", "channels_last", "ddp"], "Hardware"),
}


@command()
def predict(
    run: Path = typer.Argument(..., help="A run folder written by `train`."),
    data: Path = typer.Argument(..., help=DATA_HELP),
    out: Optional[Path] = typer.Option(None, help="Folder to write submission.csv, probs.parquet and predict.json in (new, empty or an earlier predict folder; like every command's --out, a folder).", show_default="RUN/predict-<data name>"),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or cuda:N for cropping and the model.", show_default="cuda when present"),
    cache_root: Optional[Path] = typer.Option(None, help="Where the crop cache of DATA is looked for and written.", show_default="OUT/cache"),
    batch_size: int = typer.Option(128, help="Photos per inference batch."),
    tta: bool = flag(True, help="Average each photo with its mirror image."),
    threads: Optional[int] = threads_option(),
    config: Optional[Path] = config_option("batch_size: 64"),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Crop new photos with the run's settings, ensemble folds + flip TTA, write submission.csv."""
    import json

    from ..train.predict import predict as run_predict

    with stage(quiet=quiet, verbose=verbose, threads=threads) as (console, progress):
        path = run_predict(run, data, out=out, device=device, cache_root=cache_root, batch_size=batch_size, tta=tta,
                           progress=progress)
    info = json.loads((path.parent / "predict.json").read_text())
    console.print(f"submission: {path} ({info['rows']} rows, {info['folds']} fold(s){' x flip' if tta else ''})"
                  + (f"; {info['missing_photos']} listed photo(s) missing, given the most frequent class" if info['missing_photos'] else "")
                  + (f"; {info['crop_errors']} unreadable photo(s)" if info['crop_errors'] else ""), markup=False, soft_wrap=True)
    if info.get("layout_reason") and not quiet:
        console.print(f"layout: {info['layout_reason']}", markup=False, soft_wrap=True)
    for w in info.get("warnings", []):
        console.print(f"warning: {w}", markup=False, soft_wrap=True)
    print_paths(console, "probabilities:", path.parent / "probs.parquet")
    print_paths(console, "cache:", Path(info["cache"]))
