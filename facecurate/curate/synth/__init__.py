"""`synth`: labelled face photos -> the competition layout with masks drawn on, known errors and ground truth.

``synthesize(faces_folder_or_csv, out)`` is the stage; ``build_demo_sample`` makes the offline demo
data. Inside: ``sources`` (reading faces), ``plan`` (who, in which order, which errors), ``keypoints``
(detecting where to draw), ``scene`` and ``masks`` (pure drawing), ``render`` (one person's photos),
``sheet`` (the contact sheet), ``stage`` (the whole run).
"""
from .demo import astronaut_variants, build_demo_sample
from .sources import FaceSource, read_faces
from .stage import SynthResult, synthesize, synthesize_sources

__all__ = ["FaceSource", "SynthResult", "astronaut_variants", "build_demo_sample", "read_faces", "synthesize",
           "synthesize_sources"]
