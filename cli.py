"""facecurate command line: parse, call one function of ``curate/`` or ``train/``, print a summary.

Run ``python cli.py --help`` (or ``facecurate --help`` once installed). No logic lives here.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from curate.errors import InputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="facecurate: curate a face-photo dataset into cached tensors and train a classifier on it.",
)

DATA_HELP = ("A dataset: a folder with train.csv + images/ (competition train layout), a folder with "
             "info.csv + images/ (eval layout), a CSV with a path column, or a plain folder of photos.")


def _fail(message: str) -> None:
    """One clear line on stderr and exit code 2: the CLI's answer to bad input."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _not_built(command: str) -> None:
    _fail(f"`{command}` is not built yet")


@app.command()
def inspect(
    data: Path = typer.Argument(..., help=DATA_HELP),
    out: Optional[Path] = typer.Option(None, help="Folder for the distribution PNG and manifest [default: artifacts/inspect/<data name>]."),
    age_bins: str = typer.Option("30,60", help="Two age cut points: groups are <a, a..b-1, >=b."),
    check_files: bool = typer.Option(True, help="Open every photo's header to find empty, truncated or non-image files."),
    show: int = typer.Option(20, help="How many problems to print (all are written to problems.csv)."),
) -> None:
    """Count people and photos per class, list the data's problems, and plot the class and age distributions."""
    from curate.inspect import inspect_dataset

    try:
        inspect_dataset(data, out=out, age_bins=age_bins, check_files=check_files, show=show)
    except InputError as e:
        _fail(str(e))


@app.command()
def synth(
    faces: Path = typer.Argument(..., help="Labelled faces: a folder of UTKFace-named photos (age_gender_race_*.jpg, gender 0 male / 1 female) or a CSV with path, age, gender (+ optional person, race)."),
    out: Path = typer.Argument(..., help="Folder to write (new, empty, or a previous synth output, which is replaced)."),
    people: Optional[int] = typer.Option(None, help="How many people to write (7 photos each); default: every usable person."),
    seed: int = typer.Option(0, help="Random seed: the same seed writes the same files."),
    balance: str = typer.Option("", help="Draw people evenly over these groups so scarce ones are not starved: 'age', 'gender' or 'age,gender'."),
    inject: str = typer.Option("", help="Known person-level label errors, as fractions of people: e.g. 'gender=0.05,age=0.03,swap=0.03' (swap exchanges incorrect_mask and normal). Listed in injected.csv."),
    eval_layout: bool = typer.Option(False, "--eval", help="Write the eval layout (info.csv + images/<sha1>.jpg) instead of the train layout; labels go to truth.csv."),
    detector: str = typer.Option("mtcnn", help="Keypoint detector: mtcnn (most precise keypoints), mediapipe, adaptive, fused or auto (see crop --help)."),
    device: Optional[str] = typer.Option(None, help="Torch device for MTCNN, e.g. cpu or cuda; default: cuda when present."),
    age_bins: str = typer.Option("30,60", help="Two age cut points for --balance and the summary: groups are <a, a..b-1, >=b."),
    contact: int = typer.Option(8, help="People shown in contact.png (0: no contact sheet)."),
    workers: Optional[int] = typer.Option(None, help="Threads rendering and writing photos; default: min(4, CPU cores)."),
    quality: int = typer.Option(92, help="JPEG quality of the written photos."),
    show: int = typer.Option(10, help="How many skipped faces to print (all are in skipped.csv)."),
) -> None:
    """Synthesise masked photos (mask1-5, incorrect_mask, normal) from labelled faces into the competition layout."""
    from rich.console import Console

    from curate.synth import summary_table, synthesize

    try:
        result = synthesize(faces, out, people=people, seed=seed, balance=balance, inject=inject, eval_layout=eval_layout,
                            detector=detector, device=device, age_bins=age_bins, contact=contact, workers=workers,
                            quality=quality)
    except InputError as e:
        _fail(str(e))
    table, skipped = summary_table(result, show)
    console = Console()
    console.print(table)
    for line in skipped:
        console.print(line, markup=False, soft_wrap=True)


@app.command()
def crop(
    data: Path = typer.Argument(..., help=DATA_HELP),
    out: Optional[Path] = typer.Option(None, help="Cache folder to write (default: artifacts/cache/<data name>)."),
    detector: str = typer.Option("auto", help="Face detector (any name curate.detect.make_detector takes): auto (mtcnn-first on CUDA, adaptive on CPU), mtcnn, mediapipe, mp-full, mp-short, fused, adaptive, mtcnn-first."),
    min_face: Optional[int] = typer.Option(None, help="Smallest face searched, in pixels (default: 10% of the photo's shorter side)."),
    size: int = typer.Option(256, help="Crop height in pixels; the width is round(size * aspect)."),
    aspect: float = typer.Option(0.75, help="Crop width / height (0.75 = a 3:4 head-and-shoulders portrait)."),
    margins: str = typer.Option("0.7,0.5,0.55", help="Margins top,side,bottom around the face box, in face widths (bottom is generous to keep chin and mask)."),
    edge: str = typer.Option("shift", help="At the photo's edge: shift the crop inside the photo, or pad beyond it."),
    pad: str = typer.Option("gray", help="Fill for any part of the crop beyond the photo: gray, black or replicate."),
    background: str = typer.Option("none", help="Background removal: none, mediapipe (bundled selfie segmenter) or rembg (model file in U2NET_HOME)."),
    fill: str = typer.Option("gray", help="What replaces the background: gray, blur or black."),
    rembg_model: str = typer.Option("u2netp", help="rembg model name (its .onnx must be in U2NET_HOME) or a .onnx path inside U2NET_HOME."),
    person_fallback: bool = typer.Option(True, help="When no face is found, use the median box of the person's other photos before the data-set prior."),
    device: Optional[str] = typer.Option(None, help="Torch device for MTCNN: cpu, cuda, cuda:1 (default: cuda when present)."),
    batch: int = typer.Option(32, help="Photos per detector call."),
    workers: int = typer.Option(2, help="Decoding threads (they run ahead of detection)."),
    chunk: int = typer.Option(512, help="Photos per resumable chunk: an interrupted run resumes from its last finished chunk."),
    detect_threads: int = typer.Option(0, help="Detector copies run side by side (0: one per CPU core, at most 4; 1 on CUDA)."),
    age_bins: str = typer.Option("30,60", help="Two age cut points: groups are <a, a..b-1, >=b."),
) -> None:
    """Detect and crop faces (batched MTCNN / MediaPipe), fall back on the person's other photos, cache tensors."""
    from curate.crop import CropParams, crop_dataset, default_cache_dir
    from curate.geometry import parse_margins
    from curate.labels import parse_age_bins

    target = out or default_cache_dir(data)
    try:
        try:
            params = CropParams(detector=detector, min_face=min_face, size=size, aspect=aspect,
                                margins=parse_margins(margins), edge=edge, pad=pad, background=background, fill=fill,
                                rembg_model=rembg_model, person_fallback=person_fallback,
                                age_bins=parse_age_bins(age_bins), batch=batch, workers=workers, chunk=chunk,
                                detect_threads=detect_threads)
        except ValueError as e:
            raise InputError(str(e)) from None
        cache = crop_dataset(data, target, params, device=device)
    except InputError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail(f"interrupted; finished chunks are kept in {target}: run the same command again to resume")
    typer.echo(f"cache: {cache.path} ({len(cache.manifest)} photos, {len(cache.usable())} usable, images {tuple(cache.images.shape)})")


@app.command(name="relabel-report")
def relabel_report(
    cache: Path = typer.Argument(..., help="A cache folder written by `crop`."),
    oof: Optional[Path] = typer.Option(None, help="RUN/oof.parquet from `train` (out-of-fold probabilities); without it a quick K-fold is trained on the cache first."),
    out: Optional[Path] = typer.Option(None, help="Folder for report.html, issues.csv, overrides.csv [default: artifacts/relabel/<cache name>]."),
    pool: str = typer.Option("mean", help="How a person's photo probabilities are pooled: mean (robust) or log (geometric mean, sharper)."),
    near_duplicates: bool = typer.Option(True, help="Look for near-identical photos filed under different people with different labels."),
    max_hash_distance: int = typer.Option(4, help="Near-duplicates: largest perceptual-hash Hamming distance (of 64 bits) for a candidate pair."),
    min_corr: float = typer.Option(0.97, help="Near-duplicates: smallest correlation of the 16x16 grey thumbnails to confirm a pair."),
    max_cards: int = typer.Option(1000, help="At most this many people (highest scores) get a card in report.html; issues.csv has all."),
    age_bins: Optional[str] = typer.Option(None, help="Age cut points for the names shown, like 30,60 [default: the run's, else 30,60]."),
    folds: int = typer.Option(5, help="Quick training (no --oof): number of person-grouped folds."),
    epochs: int = typer.Option(6, help="Quick training (no --oof): epochs per fold."),
    model: Optional[str] = typer.Option(None, help="Quick training (no --oof): timm model name, random init [default: the trainer's small default]."),
    image_size: int = typer.Option(128, help="Quick training (no --oof): input height in pixels."),
    batch_size: int = typer.Option(64, help="Quick training (no --oof): batch size."),
    device: Optional[str] = typer.Option(None, help="Quick training (no --oof): cpu, cuda or cuda:N [default: cuda when present]."),
    seed: int = typer.Option(0, help="Quick training (no --oof): random seed."),
) -> None:
    """Flag likely mislabels from per-person consistency and out-of-fold predictions; propose overrides.csv."""
    from curate.relabel import relabel_report as run_relabel_report

    try:
        run_relabel_report(cache, oof=oof, out=out, pool=pool, near_duplicates=near_duplicates,
                           max_hash_distance=max_hash_distance, min_corr=min_corr, max_cards=max_cards,
                           age_bins=age_bins, folds=folds, epochs=epochs, model=model, image_size=image_size,
                           batch_size=batch_size, device=device, seed=seed)
    except InputError as e:
        _fail(str(e))


@app.command()
def train(
    cache: Path = typer.Argument(..., help="A cache folder written by `crop`."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default: artifacts/runs/<name>)."),
    name: Optional[str] = typer.Option(None, help="Run name (default: <cache name>-<model>; -2, -3... when taken, unless --resume)."),
    model: str = typer.Option("mobilenetv3_small_100", help="Any timm model name (trained from scratch unless --pretrained/--weights)."),
    task: str = typer.Option("multi", help="multi: mask (3) / gender (2) / age (3) heads combined into 18 classes; single: one 18-way head."),
    img_size: Optional[str] = typer.Option(None, help="Model input HEIGHT,WIDTH or HEIGHT (width keeps the cache's aspect) (default: the cache's size)."),
    epochs: int = typer.Option(15, help="Epochs per fold (the cosine schedule spans them)."),
    batch_size: int = typer.Option(32, help="Photos per training batch."),
    lr: float = typer.Option(2e-3, help="Peak AdamW learning rate (after warm-up)."),
    weight_decay: float = typer.Option(0.05, help="AdamW weight decay (not applied to biases and norm layers)."),
    warmup: float = typer.Option(1.0, help="Warm-up length in epochs (linear), then cosine decay."),
    loss: str = typer.Option("smooth", help="ce, smooth (label smoothing), focal (gamma 2) or f1 (soft macro F1 + CE); per head's own class count."),
    smoothing: float = typer.Option(0.1, help="Label smoothing of --loss smooth."),
    class_weights: bool = typer.Option(False, help="Weight each head's classes by sqrt inverse frequency in the training fold."),
    head_weights: str = typer.Option("1,1,1", help="Loss weights of the mask, gender and age heads (--task multi)."),
    sampler: str = typer.Option("none", help="none, class (balanced over the 18 classes) or age (balanced over age groups)."),
    folds: int = typer.Option(5, help="K of the person-grouped stratified K-fold."),
    fold: str = typer.Option("all", help="Which fold(s) to train: all or one id 0..K-1."),
    val_ratio: Optional[float] = typer.Option(None, help="Instead of K-fold: one person-grouped split with this share of people for validation."),
    patience: int = typer.Option(5, help="Stop a fold after this many epochs without a better validation macro F1 (0 = never)."),
    ema: float = typer.Option(0.998, help="EMA decay of the evaluated/saved weights (0 = off)."),
    clip_grad: float = typer.Option(1.0, help="Gradient norm clipping (0 = off)."),
    drop_rate: float = typer.Option(0.2, help="Dropout before the classifier."),
    augment: bool = typer.Option(True, help="Flip, random resized crop, small rotation and colour jitter on the training batches."),
    rotate: float = typer.Option(10.0, help="Largest rotation of the augmentation, degrees."),
    mixup: float = typer.Option(0.0, help="Mixup Beta alpha (0 = off)."),
    cutmix: float = typer.Option(0.0, help="CutMix Beta alpha (0 = off)."),
    seed: int = typer.Option(0, help="Seed of splits, initialisation, order and augmentation."),
    amp: str = typer.Option("auto", help="Mixed precision on CUDA: auto (bf16 where supported, else fp16), bf16, fp16 or off. The CPU runs fp32."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or cuda:N (default: cuda when present)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: torch's choice)."),
    pretrained: bool = typer.Option(False, help="Start from timm's weights in the local Hugging Face cache (never downloaded)."),
    weights: Optional[Path] = typer.Option(None, help="Start the backbone from a local weights file (.safetensors/.pth)."),
    overrides: Optional[Path] = typer.Option(None, help="overrides.csv from relabel-report: label fixes applied for this run only."),
    resume: bool = typer.Option(False, help="Continue the run in --out/--name from its last saved epoch."),
) -> None:
    """Train a timm classifier from the cache with person-grouped K-fold; writes a run folder."""
    from train.augment import AugmentParams
    from train.fit import TrainConfig, default_run_dir, parse_head_weights, parse_img_size, train as fit

    try:
        cfg = TrainConfig(model=model, task=task, img_size=parse_img_size(img_size, cache), epochs=epochs,
                          batch_size=batch_size, lr=lr, weight_decay=weight_decay, warmup_epochs=warmup, loss=loss,
                          smoothing=smoothing, class_weights=class_weights, head_weights=parse_head_weights(head_weights),
                          sampler=sampler, folds=folds, fold=fold, val_ratio=val_ratio, patience=patience, ema=ema,
                          clip_grad=clip_grad, drop_rate=drop_rate, seed=seed, amp=amp, device=device, threads=threads,
                          pretrained=pretrained, weights=str(weights) if weights else None,
                          overrides=str(overrides) if overrides else None, resume=resume,
                          augment=AugmentParams(enabled=augment, rotate=rotate, mixup=mixup, cutmix=cutmix))
        out = out or default_run_dir(cache, model, name, resume)
        run = fit(cache, out, cfg)
    except InputError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail(f"interrupted; the last finished epoch is saved: add --resume --out {out} to continue")
    import json

    s = json.loads((run / "summary.json").read_text())
    typer.echo(f"run: {run}  out-of-fold macro F1 {s['oof_f1']:.4f} (mask {s['oof_f1_mask']:.3f}, gender {s['oof_f1_gender']:.3f}, "
               f"age {s['oof_f1_age']:.3f}) on {s['n_oof']} photos")


@app.command()
def predict(
    run: Path = typer.Argument(..., help="A run folder written by `train`."),
    data: Path = typer.Argument(..., help=DATA_HELP),
    out: Optional[Path] = typer.Option(None, help="Submission CSV to write (default: RUN/predict-<data name>/submission.csv); probs.parquet goes beside it."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or cuda:N for cropping and the model (default: cuda when present)."),
    cache_root: Path = typer.Option(Path("artifacts/cache"), help="Where the crop cache of DATA is looked for and written."),
    batch_size: int = typer.Option(128, help="Photos per inference batch."),
    tta: bool = typer.Option(True, help="Average each photo with its mirror image."),
) -> None:
    """Crop new photos with the run's settings, ensemble folds + flip TTA, write submission.csv."""
    from train.predict import predict as run_predict

    try:
        path = run_predict(run, data, out=out, device=device, cache_root=cache_root, batch_size=batch_size, tta=tta)
    except InputError as e:
        _fail(str(e))
    import json

    info = json.loads((path.parent / "predict.json").read_text())
    typer.echo(f"submission: {path} ({info['rows']} rows, {info['folds']} fold(s){' x flip' if tta else ''}); "
               f"probabilities: {path.parent / 'probs.parquet'}; cache: {info['cache']}"
               + (f"; {info['missing_photos']} listed photo(s) missing, given the most frequent class" if info['missing_photos'] else "")
               + (f"; {info['crop_errors']} unreadable photo(s)" if info['crop_errors'] else ""))


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
