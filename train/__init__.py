"""facecurate's trainer: timm backbone fed straight from the crop cache, person-grouped K-fold, fold ensemble."""
