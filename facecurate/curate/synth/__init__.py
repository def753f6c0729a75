"""`synth`: labelled face photos -> the competition layout with masks drawn on, known errors and ground truth.

``synthesize(faces_folder_or_csv, out, SynthParams(...))`` is the stage (``params``: every option); ``build_demo_sample`` makes the offline demo
data; ``read_person_mask(out, image_id)`` reads a photo's true person mask back. Inside: ``sources``
(reading faces), ``dedup`` (duplicate faces), ``plan`` (who, in which order, which errors),
``keypoints`` (detecting where to draw), ``scene``, ``masks`` and ``backdrops`` (pure drawing),
``render`` (one person's photos), ``partial`` (resumable blocks), ``finish`` and ``sheet`` (the
assembled files), ``stage`` (the whole run).
"""
from .demo import astronaut_variants, build_demo_sample
from .params import SynthParams
from .person_mask import read_person_mask
from .sources import FaceSource, read_faces
from .stage import SynthResult, SynthStopped, synthesize, synthesize_sources

__all__ = ["FaceSource", "SynthParams", "SynthResult", "SynthStopped", "astronaut_variants", "build_demo_sample", "read_faces",
           "read_person_mask", "synthesize", "synthesize_sources"]
