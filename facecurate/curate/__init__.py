"""facecurate's curation package: read, inspect, crop, cache, synthesize and audit face-photo data sets.

It never imports ``facecurate.train``. The trainer reads it only through this public surface:
``cache`` (``Cache``, ``load_cache``, ``save_cache``), ``labels`` (the label model), ``errors``
(``InputError``), ``checksums`` (xxh3: a run's weights and resume state carry one too), ``overrides``
(label fixes), ``progress`` (the reporting protocol), ``devices`` (``--device``), ``outputs`` and ``locks`` (safe output folders), ``crop`` (for predict's re-crop), ``embed`` (a probe run's predict embeds the new photos) and
``audit.near_duplicates`` (its ``perceptual_hash``: train drops ``--extra`` photos that duplicate main ones).
Stages: ``inspect``, ``crop``, ``synth``, ``audit`` (relabel-report).
"""

#: The modules ``facecurate.train`` may import (checked by tests/test_architecture.py).
PUBLIC_SURFACE = ("cache", "labels", "errors", "checksums", "overrides", "progress", "crop", "embed", "devices", "outputs", "locks",
                  "audit.near_duplicates")
