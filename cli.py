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
def crop(
    data: Path = typer.Argument(..., help=DATA_HELP),
    out: Optional[Path] = typer.Option(None, help="Cache folder to write (default: artifacts/cache/<data name>)."),
    detector: str = typer.Option("auto", help="Face detector: auto (MTCNN on CUDA, MediaPipe cascade on CPU), mtcnn, mediapipe, mp-short, mp-full, fused, cascade."),
    min_face: Optional[int] = typer.Option(None, help="Smallest face searched, in pixels (default: 10% of the photo's shorter side)."),
    size: int = typer.Option(256, help="Crop height in pixels; the width is round(size * aspect)."),
    aspect: float = typer.Option(0.75, help="Crop width / height (0.75 = a 3:4 head-and-shoulders portrait)."),
    margins: str = typer.Option("0.7,0.45,0.55", help="Margins top,side,bottom around the face box, in face widths (bottom is generous to keep chin and mask)."),
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
    age_bins: str = typer.Option("30,60", help="Two age cut points: groups are <a, a..b-1, >=b."),
) -> None:
    """Detect and crop faces (batched MTCNN / MediaPipe), fall back on the person's other photos, cache tensors."""
    from curate.crop import CropParams, crop_dataset
    from curate.geometry import parse_margins
    from curate.labels import parse_age_bins

    src = data.resolve()
    target = out or Path("artifacts/cache") / (src.parent.name if src.name in ("train.csv", "info.csv") else src.stem if src.is_file() else src.name)
    try:
        try:
            params = CropParams(detector=detector, min_face=min_face, size=size, aspect=aspect,
                                margins=parse_margins(margins), edge=edge, pad=pad, background=background, fill=fill,
                                rembg_model=rembg_model, person_fallback=person_fallback,
                                age_bins=parse_age_bins(age_bins), batch=batch, workers=workers, chunk=chunk)
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
    max_hash_distance: int = typer.Option(8, help="Near-duplicates: largest perceptual-hash Hamming distance (of 64 bits) for a candidate pair."),
    min_corr: float = typer.Option(0.92, help="Near-duplicates: smallest correlation of the 16x16 grey thumbnails to confirm a pair."),
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
def train(cache: Path = typer.Argument(..., help="A cache folder written by `crop`.")) -> None:
    """Train a timm classifier from the cache with person-grouped K-fold; writes a run folder."""
    _not_built("train")


@app.command()
def predict(run: Path = typer.Argument(..., help="A run folder written by `train`."),
            data: Path = typer.Argument(..., help=DATA_HELP)) -> None:
    """Crop new photos with the run's settings, ensemble folds + flip TTA, write submission.csv."""
    _not_built("predict")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
