"""`embed`: one face embedding per cached photo (dlib's face-recognition ResNet, then age and gender from face-api.js's
age/gender network), written beside the cache's images."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..curate.embed.params import BOXES, EmbedParams
from .app import choices, command, config_option, quiet_option, stage, verbose_option
from .summaries import embed_summary

BACKEND_HELP = ("Embedding model: dlib (dlib's face-recognition ResNet, 128-D, our PyTorch port of it, then age and a "
                "male logit from face-api.js's age/gender network on the same face: 130 columns; the default), "
                "dlib-native (the same through dlib's own slow network, for checking), facenet (InceptionResnetV1, "
                "512-D, no age/gender columns; its VGGFace2 weights must already be in the torch hub cache).")

_E = EmbedParams()  # the defaults, written once: in the record


@command()
def embed(
    cache: Path = typer.Argument(..., help="A cache folder written by `crop`; embeddings.npy is added to it."),
    backend: str = typer.Option(_E.backend, help=BACKEND_HELP),
    min_face: int = typer.Option(_E.min_face, help="Faces narrower than this many cache pixels get no embedding (a NaN row and a reason)."),
    boxes: str = typer.Option(_E.boxes, metavar=choices(*BOXES), help="Which face boxes to embed: detected (only faces a detector found) or all (also crop's fallback boxes, the person's or the data set's, which may hold no face at all)."),
    device: Optional[str] = typer.Option(_E.device, help="Torch device for the network: cpu, cuda, cuda:1.", show_default="cuda when present"),
    batch_size: int = typer.Option(_E.batch, help="Photos per network call."),
    workers: int = typer.Option(_E.workers, help="Batches embedded side by side (0: one per CPU core; 1 on CUDA)."),
    threads: int = typer.Option(_E.threads, help="Torch CPU threads per worker (0: the cores divided among the workers)."),
    chunk: int = typer.Option(_E.chunk, help="Photos per resumable chunk: an interrupted pass resumes from its last finished chunk."),
    ray: str = typer.Option(_E.ray, help="Embed the chunks on Ray: local (start one here), auto (the running cluster) or an address like ray://head:10001. Empty: in this process. See docs/scale-out.md."),
    ray_workers: int = typer.Option(_E.ray_workers, help="With --ray: worker actors (0: one per CPU of the cluster)."),
    verify: str = typer.Option(_E.verify, metavar=choices("quick", "full", "off"), help="Check the cache before the pass: quick (every checksum), full (also labels and blank rows) or off."),
    config: Optional[Path] = config_option("batch_size: 32"),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Compute one face embedding per cached photo from the crop (dlib landmarks, aligned chip, ResNet descriptor; age and
    gender from the same chip)."""
    from ..curate.embed import embed_cache

    with stage(f"interrupted; finished chunks are kept in {cache}: run the same command again to resume",
               quiet, verbose) as (console, progress):
        params = EmbedParams(backend=backend, min_face=min_face, boxes=boxes, batch=batch_size, chunk=chunk, threads=threads,
                             workers=workers, device=device, verify=verify, ray=ray,
                             ray_workers=ray_workers)
        result = embed_cache(cache, params, progress=progress)
    embed_summary(console, result, quiet)
