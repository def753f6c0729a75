"""`crop`: photos -> the subject's face -> head-and-shoulders crops -> a resumable tensor cache.

``crop_dataset(data, out, CropParams(...))`` is the stage. Inside: ``params`` (every option),
``subject`` (which face is the person's), ``fallback`` (boxes for photos without a face),
``geometry`` (box -> crop region -> pixels), ``background`` (optional removal), ``contact``
(the contact sheet), ``stage`` (the whole run).
"""
from ..layouts import competition_images, layout_reason
from ..readers import dataset_name
from .params import DEFAULT_CACHE_ROOT, CropParams, default_cache_dir
from .stage import CropResult, CropStopped, crop_dataset

__all__ = ["DEFAULT_CACHE_ROOT", "CropParams", "CropResult", "CropStopped", "competition_images", "crop_dataset",
           "dataset_name", "default_cache_dir", "layout_reason"]
