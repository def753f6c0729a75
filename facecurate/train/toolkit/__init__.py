"""The competition toolkit on top of a cache and run folders: ``tune`` (Optuna search), ``explain`` (Grad-CAM
grids), ``pseudo_label`` (a cache of confidently predicted eval photos for ``train --extra``) and ``ensemble``
(several runs by mean probability, hard vote or a stacker fitted on their out-of-fold probabilities).

Each entry takes its inputs and ``progress``, writes only into a folder it has checked, claimed and locked, and
returns a result dataclass. Inside: ``tune_space`` (what a tune searches, the best config as ``train`` options),
``tune`` (the study), ``cam`` and ``explain`` (Grad-CAM and the pictures), ``pseudo``, ``ensemble``
(combining runs) and ``stack`` (the stackers and their nested score). Optuna and pytorch-grad-cam are imported
only when their command runs.
"""
