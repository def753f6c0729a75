"""Photo quality (issue 28): dark, light, blurry, low-information, grey, small-face, odd-size and odd-aspect photos.

``photo_quality(cache)`` measures every cached crop and flags defects against absolute cuts
(CleanVision's defaults) and against the person's other photos; ``photo_quality_flags(cache)`` returns
them as relabel flags (kind ``photo_quality``, an ``exclude`` suggestion); ``write_quality`` writes the
files ``inspect --cache`` leaves.
"""
from .measures import MEASURE_COLUMNS, measure_rows
from .rules import DEFECTS, QualityParams, decide
from .stage import KIND, QualityResult, measure_cache, photo_quality, photo_quality_flags, to_flags, worst_sheet, write_quality

__all__ = ["DEFECTS", "KIND", "MEASURE_COLUMNS", "QualityParams", "QualityResult", "decide", "measure_cache", "measure_rows",
           "photo_quality", "photo_quality_flags", "to_flags", "worst_sheet", "write_quality"]
