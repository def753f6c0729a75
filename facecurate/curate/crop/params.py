"""Every option of `crop` in one JSON-serialisable record, checked in one place, and the packages whose versions shape a cache."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..decode import DEFAULT_MIN_SIDE
from ..errors import InputError
from ..labels import DEFAULT_AGE_BINS, parse_age_bins
from ..readers import dataset_name
from .background import BACKGROUNDS, FILLS
from .geometry import DEFAULT_MARGINS, EDGES, parse_margins

PADS = ("gray", "black", "replicate")
#: The packages whose versions shape a cache (``versions.package_versions``: meta.json's ``versions``, the fingerprint).
VERSION_PACKAGES = ("torch", "facenet-pytorch", "mediapipe", "numpy", "opencv-contrib-python-headless", "pillow",
                    "pandas", "rembg", "onnxruntime", "facecurate")
DEFAULT_CACHE_ROOT = Path("artifacts/cache")


@dataclass
class CropParams:
    """Every option of `crop` (JSON-serialisable); ``RUNTIME_FIELDS`` (batch, threads, chunk) do not change the result."""

    detector: str = "auto"                # auto | mtcnn | mediapipe | ... (curate.detect.DETECTOR_NAMES)
    min_face: int | None = None           # smallest face searched, px; None = from the photo size
    size: int = 256                       # crop height, px
    aspect: float = 0.75                  # crop width / height
    margins: tuple[float, float, float] = DEFAULT_MARGINS  # top, side, bottom, in face widths
    edge: str = "shift"                   # shift the region inside the photo, or pad
    pad: str = "gray"                     # what fills the region beyond the photo: gray | black | replicate
    background: str = "none"              # none | mediapipe | rembg
    fill: str = "gray"                    # background fill: gray | blur | black
    rembg_model: str = "u2netp"           # rembg model name or .onnx path inside U2NET_HOME
    person_fallback: bool = True          # use the person's other photos before the data-set prior
    person_consensus: bool = True         # the person's other photos decide which face is theirs
    min_photo_size: int = DEFAULT_MIN_SIDE  # photos with a shorter side under this many px become error rows
    age_bins: tuple[int, ...] = DEFAULT_AGE_BINS
    batch: int = 32                       # photos per detector call
    workers: int = 2                      # decoding threads
    chunk: int = 512                      # photos per resumable chunk
    detect_threads: int = 0               # detector copies run side by side; 0 = one per core on the CPU, 1 on CUDA
    ray: str = ""                         # pass 1 on Ray: "local", "auto" or a cluster address; "" = in this process
    ray_workers: int = 0                  # Ray actors (0 = one per CPU of the cluster)

    RUNTIME_FIELDS = ("batch", "workers", "chunk", "detect_threads", "ray", "ray_workers")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["margins"], d["age_bins"] = list(self.margins), list(self.age_bins)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CropParams":
        """Rebuild from ``to_dict`` output (e.g. a run's saved crop settings); unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "margins" in kw:
            kw["margins"] = tuple(float(v) for v in kw["margins"])
        if "age_bins" in kw:
            kw["age_bins"] = tuple(int(v) for v in kw["age_bins"])
        return cls(**kw)

    def shaping(self) -> dict:
        """The parameters that shape the cache's content (all but ``RUNTIME_FIELDS``)."""
        return {k: v for k, v in self.to_dict().items() if k not in self.RUNTIME_FIELDS}

    def validate(self) -> "CropParams":
        """Check every value; InputError naming the option otherwise. Returns self with normalised tuples."""
        from ..detect import DETECTOR_NAMES

        if self.detector not in DETECTOR_NAMES:
            raise InputError(f"--detector {self.detector!r}: expected one of {', '.join(DETECTOR_NAMES)}")
        if self.min_face is not None and not 8 <= int(self.min_face) <= 4096:
            raise InputError(f"--min-face {self.min_face}: expected 8..4096 pixels")
        if not 1 <= int(self.min_photo_size) <= 4096:
            raise InputError(f"--min-photo-size {self.min_photo_size}: expected 1..4096 pixels")
        if not 16 <= int(self.size) <= 4096:
            raise InputError(f"--size {self.size}: expected 16..4096 pixels")
        if not 0.2 <= float(self.aspect) <= 5:
            raise InputError(f"--aspect {self.aspect}: expected a width/height ratio 0.2..5")
        try:
            self.margins = parse_margins(self.margins)
            self.age_bins = parse_age_bins(self.age_bins)
        except ValueError as e:
            raise InputError(str(e)) from None
        for opt, val, allowed in (("--edge", self.edge, EDGES), ("--pad", self.pad, PADS),
                                  ("--background", self.background, BACKGROUNDS), ("--fill", self.fill, FILLS)):
            if val not in allowed:
                raise InputError(f"{opt} {val!r}: expected one of {', '.join(allowed)}")
        for opt, val in (("--batch-size", self.batch), ("--decode-threads", self.workers), ("--chunk", self.chunk)):
            if int(val) < 1:
                raise InputError(f"{opt} {val}: expected 1 or more")
        if not 0 <= int(self.detect_threads) <= 64:
            raise InputError(f"--detect-threads {self.detect_threads}: expected 0 (auto) to 64")
        if not 0 <= int(self.ray_workers) <= 100_000:
            raise InputError(f"--ray-workers {self.ray_workers}: expected 0 (one per CPU) or more")
        return self


def default_cache_dir(data: str | Path, root: str | Path = DEFAULT_CACHE_ROOT) -> Path:
    """``root/<data name>`` (``readers.dataset_name``): where `crop` writes when ``--out`` is not given."""
    return Path(root) / dataset_name(data)
