"""facecurate: turn a raw, noisy, imbalanced face-photo dataset into clean cached tensors and a strong classifier.

Three layers that depend one way: ``facecurate.cli`` -> ``facecurate.train`` -> ``facecurate.curate``.
"""
__version__ = "0.2.0"
