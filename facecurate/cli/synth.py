"""`synth`: make a data set in the competition layout from labelled faces, with known labels, errors and person masks."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..curate.labels import PHOTO_STEMS
from .app import command, config_option, either, flag, old_name, quiet_option, stage, verbose_option
from .summaries import synth_summary


@command()
def synth(
    faces: Path = typer.Argument(..., help="Labelled faces: a folder of UTKFace-named photos (age_gender_race_*.jpg, gender 0 male / 1 female) or a CSV with path, age, gender (+ optional person, race)."),
    out: Path = typer.Argument(..., help="Folder to write: new, empty, or a previous synth output. A finished one is replaced; one an interrupted run left with the same options and inputs is resumed after its last finished block (other options start it over)."),
    people: Optional[int] = typer.Option(None, help="How many people to write (one per source face).", show_default="every usable face"),
    seed: int = typer.Option(0, help="Random seed: the same seed writes the same files."),
    balance: str = typer.Option("", help="Draw people evenly over these groups so scarce ones are not starved: 'age', 'gender' or 'age,gender'.", show_default="no balancing"),
    inject: str = typer.Option("", help="Known person-level label errors, as fractions of people: e.g. 'gender=0.05,age=0.03,swap=0.03' (swap exchanges incorrect_mask and normal). Listed in injected.csv.", show_default="none"),
    photos: str = typer.Option(",".join(PHOTO_STEMS), help="Which photos each person gets, e.g. 'mask1,incorrect_mask,normal' for external training data (each photo is the same whatever subset is asked for)."),
    eval_layout: bool = flag(False, "--eval/--train-layout", help="Write the eval layout (info.csv + images/<sha1>.jpg; labels in truth.csv) instead of the train layout."),
    detector: str = typer.Option("mtcnn", help="Keypoint detector: mtcnn (most precise keypoints), mediapipe, adaptive, fused or auto (see crop --help)."),
    device: Optional[str] = typer.Option(None, help="Torch device for MTCNN: cpu, cuda or cuda:N.", show_default="cuda when present"),
    age_bins: str = typer.Option("30,60", help="Two age cut points for --balance and the summary: groups are <a, a..b-1, >=b."),
    backdrops: Optional[Path] = typer.Option(None, help="Folder of photos (street scenes, other people) to put behind people instead of a painted wall: a crop of one, chosen per person, scaled to fill the frame.", show_default="painted walls"),
    backdrop_share: Optional[float] = typer.Option(None, help="Share of people, 0..1, who get a --backdrops photo (the rest a painted wall).", show_default="1.0 with --backdrops"),
    dedup: bool = flag(True, help="Skip source faces that duplicate an earlier one (identical bytes, or the same photo re-cropped: perceptual hash + thumbnail correlation); listed in skipped.csv."),
    person_masks: bool = flag(True, help="Write each photo's true person mask (masks/<image>.png, 1-bit): the ground truth for background removal."),
    contact: int = typer.Option(8, help="People shown in contact.png (0: no contact sheet)."),
    render_threads: Optional[int] = typer.Option(None, help="Threads rendering and writing photos.", show_default="min(4, CPU cores)"),
    quality: int = typer.Option(92, help="JPEG quality of the written photos."),
    block: int = typer.Option(256, help="People per block: what an interruption can lose, and how often progress is saved (rounded up to a multiple of 16)."),
    show: int = typer.Option(10, help="How many skipped faces to print (all are in skipped.csv)."),
    workers: Optional[int] = old_name("--workers", "--render-threads"),
    config: Optional[Path] = config_option("people: 200"),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Synthesise masked photos (mask1-5, incorrect_mask, normal) from labelled faces, with known labels, errors and person masks."""
    from ..curate.synth import SynthParams, synthesize

    params = SynthParams(people=people, seed=seed, balance=balance, inject=inject, photos=photos, eval_layout=eval_layout,
                         detector=detector, device=device, age_bins=age_bins, backdrops=backdrops,
                         backdrop_share=backdrop_share, dedup=dedup, person_masks=person_masks, contact=contact,
                         workers=either(render_threads, workers), quality=quality, block=block)
    with stage("interrupted; the finished blocks are saved: run the same command again to resume", quiet, verbose) as (console, progress):
        result = synthesize(faces, out, params, progress=progress)
    synth_summary(console, result, show, quiet)
