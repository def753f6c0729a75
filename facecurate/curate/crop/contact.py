"""Contact sheets: a labelled grid of image thumbnails in one PNG, so a person can check crops in seconds."""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SOURCE_COLOURS = {"detected": (60, 170, 60), "person": (230, 140, 20), "prior": (210, 40, 40)}
OFF_PERSON_COLOUR = (200, 40, 200)
CLOSE_COLOUR = (220, 200, 30)  # a close call of the subject rule
CHOSEN_COLOUR, RUNNER_COLOUR = (0, 220, 255), (255, 230, 0)  # the chosen face and the runner-up on a close-call tile


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def wrap(text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """``text`` (may hold line breaks) broken into lines that fit ``width`` px: after ``_``, ``/``, ``-`` or a space
    when it can, mid-word only for a word longer than a line; nothing is ever cut off."""
    out: list[str] = []
    for para in str(text).split("\n"):
        line = ""
        for part in re.findall(r"[^_/\- ]*[_/\- ]|[^_/\- ]+$", para) or [""]:
            if line and font.getlength(line + part) > width:
                out.append(line)
                line = ""
            line += part
            while font.getlength(line) > width and len(line) > 1:  # a single word longer than the line
                k = max([i for i in range(1, len(line)) if font.getlength(line[:i]) <= width] or [1])
                out.append(line[:k])
                line = line[k:]
        out.append(line)
    return out


def contact_sheet(images: Sequence[np.ndarray], captions: Sequence[str], out_png: str | Path, cols: int = 8,
                  thumb_h: int = 128, colours: Sequence[tuple[int, int, int]] | None = None,
                  title: str = "") -> Path:
    """Write ``images`` (H x W x 3 uint8, any sizes) as a grid with one caption under each to ``out_png``.

    Thumbnails are ``thumb_h`` pixels high; captions may hold line breaks and are wrapped to the thumbnail's
    width, never cut; ``colours`` (one RGB per image) colour the caption bar, e.g. by how the crop's box was
    found; ``title`` is a line above the grid (wrapped to the sheet's width).
    """
    out_png = Path(out_png)
    n = len(images)
    if len(captions) != n:
        raise ValueError(f"{len(captions)} captions for {n} images")
    cols = max(1, min(cols, n)) if n else 1
    rows = (n + cols - 1) // cols
    widths = [max(1, round(im.shape[1] * thumb_h / max(im.shape[0], 1))) for im in images]
    thumb_w = max(widths) if widths else thumb_h
    font_px = max(11, thumb_h // 13)
    font = _font(font_px)
    wrapped = [wrap(c, font, thumb_w - 4) for c in captions]
    lines = max([len(w) for w in wrapped] or [1])
    cap_h = (font_px + 3) * lines + 3
    gap = 3
    sheet_w = cols * (thumb_w + gap) + gap
    title_font = _font(font_px + 2)
    title_lines = wrap(title, title_font, sheet_w - 8) if title else []
    top = (font_px + 6) * len(title_lines) + 6 if title else 0
    sheet = Image.new("RGB", (sheet_w, top + rows * (thumb_h + cap_h + gap) + gap), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    for j, line in enumerate(title_lines):
        draw.text((gap + 2, 3 + j * (font_px + 6)), line, fill=(235, 235, 235), font=title_font)
    for k, (im, cap) in enumerate(zip(images, captions)):
        r, c = divmod(k, cols)
        x, y = gap + c * (thumb_w + gap), top + gap + r * (thumb_h + cap_h + gap)
        thumb = Image.fromarray(np.ascontiguousarray(im[..., :3]).astype(np.uint8)).resize((widths[k], thumb_h), Image.BILINEAR)
        sheet.paste(thumb, (x + (thumb_w - widths[k]) // 2, y))
        bar = colours[k] if colours is not None else (70, 70, 70)
        draw.rectangle((x, y + thumb_h, x + thumb_w - 1, y + thumb_h + cap_h - 1), fill=tuple(bar))
        for j, line in enumerate(wrapped[k]):
            draw.text((x + 2, y + thumb_h + 2 + j * (font_px + 3)), line, fill=(255, 255, 255), font=font)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(out_png.name + ".tmp")  # never half a sheet under the real name (a full disk)
    try:
        sheet.save(tmp, format="PNG", compress_level=3)  # ~3x faster than PIL's default 6, ~8% larger
        os.replace(tmp, out_png)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out_png


def _short_id(image_id: str) -> str:
    """Caption lines for an image id: its whole folder, then its file stem (the sheet wraps them, never cuts)."""
    folder, _, name = image_id.rpartition("/")
    stem = name.rsplit(".", 1)[0]
    return f"{folder}\n{stem}" if folder else stem


def close_call_tile(photo: np.ndarray, chosen, runner, width: int = 3) -> np.ndarray:
    """The whole photo with the chosen face (cyan) and the runner-up (yellow) framed: how a close call looked."""
    img = Image.fromarray(np.ascontiguousarray(photo[..., :3]).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for box, colour in ((runner, RUNNER_COLOUR), (chosen, CHOSEN_COLOUR)):
        if box is not None and np.isfinite(np.asarray(box, dtype=float)).all():
            draw.rectangle(tuple(float(v) for v in box), outline=colour, width=width)
    return np.asarray(img)


def crop_contact_sheet(images: np.ndarray, manifest, out_png: str | Path, n_random: int = 32, max_review: int = 400,
                       seed: int = 0, cols: int = 8, thumb_h: int = 224,
                       originals: Callable[[list[int]], list[np.ndarray]] | None = None,
                       photos: Callable[[list[int]], list[np.ndarray]] | None = None,
                       close: float = 1.0) -> tuple[Path, int]:
    """Contact sheet of a crop cache: ``n_random`` random detected crops, then every crop to review.

    To review: every fallback crop (person / prior box) and every crop that still disagrees with its
    person's other photos (``off_person``, framed in magenta). At most ``max_review`` are drawn (the rest
    are counted in the title); returns (path, crops to review left out). Captions: box_source, score, image id.
    ``originals(rows)`` (a background-removal run) gives the same crops before removal: each random crop is
    then shown as a pair, before and after, so one sees what was cut. ``photos(rows)`` gives the whole photos: every
    close call of the subject rule (``margin`` under ``close``) is then drawn as its photo with the chosen face (cyan)
    and the runner-up (yellow), framed in yellow.
    """
    src = manifest["box_source"].fillna("").astype(str).to_numpy()
    err = manifest["error"].fillna("").astype(str).to_numpy() if "error" in manifest else np.full(len(src), "")
    off = manifest["off_person"].fillna(False).astype(bool).to_numpy() if "off_person" in manifest else np.zeros(len(src), bool)
    rng = np.random.default_rng(seed)
    margin = manifest["margin"].to_numpy(dtype=float) if "margin" in manifest else np.full(len(src), np.nan)
    near = (margin < close) & (err == "") if photos is not None else np.zeros(len(src), bool)
    review = np.flatnonzero((np.isin(src, ["person", "prior"]) | off | near) & (err == ""))
    detected = np.setdiff1d(np.flatnonzero((src == "detected") & (err == "")), review)
    pick = rng.choice(detected, size=min(n_random, len(detected)), replace=False) if len(detected) else detected
    left_out = max(0, len(review) - max_review)
    idx = list(np.sort(pick)) + list(review[:max_review])
    scores = manifest["score"].to_numpy(dtype=float)
    ids = manifest["image_id"].astype(str).to_numpy()
    captions = [f"{src[i]}{'' if np.isnan(scores[i]) else f' {scores[i]:.2f}'}{' OFF' if off[i] else ''}"
                f"{f' close {margin[i]:.2f}' if near[i] else ''}\n{_short_id(ids[i])}" for i in idx]
    colours = [OFF_PERSON_COLOUR if off[i] else CLOSE_COLOUR if near[i] else SOURCE_COLOURS.get(src[i], (70, 70, 70)) for i in idx]
    imgs = [np.asarray(images[i]) for i in idx]
    close_rows = [k for k, i in enumerate(idx) if near[i]]
    if close_rows:  # the whole photo, chosen face and runner-up framed
        faces = manifest[["face_x1", "face_y1", "face_x2", "face_y2"]].to_numpy(dtype=float)
        runners = manifest[["runner_x1", "runner_y1", "runner_x2", "runner_y2"]].to_numpy(dtype=float)
        for k, photo in zip(close_rows, photos([int(idx[k]) for k in close_rows])):
            if photo is not None:
                imgs[k] = close_call_tile(photo, faces[idx[k]], runners[idx[k]])
    if originals is not None and len(pick):  # before | after for the random sample
        before = originals([int(i) for i in np.sort(pick)])
        k = len(pick)
        pairs = [x for b, a in zip(before, imgs[:k]) for x in (b, a)]
        pair_caps = [x for c in captions[:k] for x in (f"before\n{c.split(chr(10), 1)[-1]}", f"after\n{c.split(chr(10), 1)[-1]}")]
        pair_cols = [x for c in colours[:k] for x in ((90, 90, 90), c)]
        imgs, captions, colours = pairs + imgs[k:], pair_caps + captions[k:], pair_cols + colours[k:]
    n_fallback, n_off = int(np.isin(src[review], ["person", "prior"]).sum()), int(off[review].sum())
    n_close = int((near[review] & ~off[review] & ~np.isin(src[review], ["person", "prior"])).sum())
    title = (f"{len(pick)} random detected crops, then {len(review) - left_out} to review: {n_fallback} fallback, "
             f"{n_off} off their person's box, {n_close} close calls" + (f" ({left_out} more not shown)" if left_out else "")
             + " - green: detected, orange: person, red: prior, magenta: off, yellow: close call (whole photo: "
             "cyan the chosen face, yellow the runner-up)")
    if originals is not None and len(pick):
        title = "pairs: before / after background removal; " + title
    if not imgs:
        imgs, captions, colours, title = [np.zeros((thumb_h, thumb_h, 3), np.uint8)], ["no crops"], None, "no usable crops"
    return contact_sheet(imgs, captions, out_png, cols=cols, thumb_h=thumb_h, colours=colours, title=title), left_out
