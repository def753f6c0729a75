"""`crop`: detect, crop and cache the faces of a data set."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..curate.embed.params import EmbedParams
from .app import DATA_HELP, choices, command, config_option, either, flag, old_name, quiet_option, stage, threads_option, verbose_option
from .embed import BACKEND_HELP
from .summaries import crop_summary, embed_summary


@command()
def crop(
    data: Path = typer.Argument(..., help=DATA_HELP),
    out: Optional[Path] = typer.Option(None, help="Cache folder to write.", show_default="artifacts/cache/<data name>"),
    detector: str = typer.Option("auto", metavar=choices("auto", "mtcnn", "mediapipe", "mp-full", "mp-short", "fused", "adaptive", "mtcnn-first"), help="Face detector (see docs/crop.md): auto (mtcnn-first on CUDA, adaptive on CPU), mtcnn, mediapipe, mp-full, mp-short, fused, adaptive, mtcnn-first."),
    min_face: Optional[int] = typer.Option(None, help="Smallest face searched, in pixels.", show_default="10% of the photo's shorter side"),
    size: int = typer.Option(256, help="Crop height in pixels; the width is round(size * aspect)."),
    aspect: float = typer.Option(0.75, help="Crop width / height (0.75 = a 3:4 head-and-shoulders portrait)."),
    margins: str = typer.Option("0.7,0.5,0.55", help="Margins top,side,bottom around the face box, in face widths (bottom is generous to keep chin and mask)."),
    edge: str = typer.Option("shift", metavar=choices("shift", "pad"), help="At the photo's edge: shift the crop inside the photo, or pad beyond it."),
    pad: str = typer.Option("gray", metavar=choices("gray", "black", "replicate"), help="Fill for any part of the crop beyond the photo: gray, black or replicate."),
    background: str = typer.Option("none", metavar=choices("none", "mediapipe", "mediapipe-general", "rembg"), help="Background removal: none, mediapipe (bundled landscape selfie segmenter, the measured best), mediapipe-general (its square model) or rembg (model file in U2NET_HOME). The face is always kept."),
    fill: str = typer.Option("gray", metavar=choices("gray", "blur", "black"), help="What replaces the background: gray, blur or black."),
    rembg_model: str = typer.Option("u2netp", help="rembg model name (its .onnx must be in U2NET_HOME) or a .onnx path inside U2NET_HOME."),
    person_consensus: bool = flag(True, help="Let the person's other photos decide which face is theirs (a face in the background loses; none agreeing: the person box). Off: the large-and-central rule alone."),
    person_fallback: bool = flag(True, help="When no face is found, use the median box of the person's other photos before the data-set prior."),
    min_photo_size: int = typer.Option(32, help="Photos whose shorter side has fewer pixels become error rows (too small to hold a usable face)."),
    age_bins: str = typer.Option("30,60", help="Two age cut points: groups are <a, a..b-1, >=b."),
    device: Optional[str] = typer.Option(None, help="Torch device for MTCNN: cpu, cuda, cuda:1.", show_default="cuda when present"),
    batch_size: int = typer.Option(32, help="Photos per detector call."),
    decode_threads: int = typer.Option(2, help="Threads decoding photos (they run ahead of detection)."),
    detect_threads: int = typer.Option(0, help="Detector copies run side by side (0: one per CPU core, at most 4, and at most --threads; 1 on CUDA)."),
    chunk: int = typer.Option(512, help="Photos per resumable chunk: an interrupted run resumes from its last finished chunk."),
    ray: str = typer.Option("", help="Run the first pass on Ray: local (start one here), auto (the running cluster) or an address like ray://head:10001. Empty: in this process. See docs/scale-out.md."),
    ray_workers: int = typer.Option(0, help="With --ray: worker actors (0: one per CPU of the cluster)."),
    embed: bool = flag(False, help="Run `embed` on the cache right after cropping: one face embedding per photo in embeddings.npy."),
    embed_backend: str = typer.Option(EmbedParams().backend, help="With --embed: " + BACKEND_HELP),
    threads: Optional[int] = threads_option(),
    replace: bool = flag(False, "--replace", help="Overwrite a cache in --out that was cropped with other settings (without it such a cache is refused, the difference named)."),
    config: Optional[Path] = config_option("size: 160"),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
    batch: Optional[int] = old_name("--batch", "--batch-size"),
    workers: Optional[int] = old_name("--workers", "--decode-threads"),
) -> None:
    """Detect and crop faces (batched MTCNN / MediaPipe), let each person's photos agree on their face, cache tensors."""
    from ..curate.crop import CropParams, crop_dataset, default_cache_dir
    from ..curate.crop.geometry import parse_margins
    from ..curate.errors import InputError
    from ..curate.labels import parse_age_bins

    target = out or default_cache_dir(data)
    with stage(f"interrupted; finished chunks are kept in {target}: run the same command again to resume",
               quiet, verbose, threads) as (console, progress):
        try:
            params = CropParams(detector=detector, min_face=min_face, size=size, aspect=aspect,
                                margins=parse_margins(margins), edge=edge, pad=pad, background=background, fill=fill,
                                rembg_model=rembg_model, person_fallback=person_fallback, person_consensus=person_consensus,
                                age_bins=parse_age_bins(age_bins), min_photo_size=min_photo_size,
                                batch=either(batch_size, batch), workers=either(decode_threads, workers), chunk=chunk,
                                detect_threads=detect_threads or min(threads or 0, 4), ray=ray, ray_workers=ray_workers)
        except ValueError as e:
            raise InputError(str(e)) from None
        if embed:
            from ..curate.embed import check_ready, embed_cache

            check_ready(embed_backend)  # a missing dlib fails before the crop, not after it
        result = crop_dataset(data, target, params, device=device, progress=progress, replace=replace)
        embedded = embed_cache(target, EmbedParams(backend=embed_backend, device=device), progress) if embed else None
    crop_summary(console, result, quiet)
    if embedded is not None:
        embed_summary(console, embedded, quiet)
