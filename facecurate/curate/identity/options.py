"""IdentityOptions: every knob of the identity checks (strangers, duplicate ids, leaks), validated in one place."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError


@dataclass
class IdentityOptions:
    """Options of the identity checks; the defaults are the ones measured in BENCHMARKS.md (identity audit)."""

    target_precision: float = 0.8   # a flag set is kept while its estimated precision reaches this
    min_separation: float = 0.95    # a comparison (photo kind) raises flags only when its genuine vs impostor AUC reaches this;
                                    # when none does, identity cannot separate people and every check is off
    min_refs: int = 2               # a photo is compared with its own condition (masked / unmasked) when >= this many
    impostors: int = 8              # other people drawn per photo for its impostor distances
    min_posterior: float = 0.5      # a stranger flag needs at least this posterior (never a tie)
    seed: int = 0                   # draws of impostor people

    def validate(self) -> IdentityOptions:
        """Check the ranges; InputError naming the option otherwise. Returns self."""
        for name, lo, hi in (("target_precision", 0.5, 1.0), ("min_separation", 0.5, 1.0), ("min_posterior", 0.5, 1.0)):
            v = float(getattr(self, name))
            if not lo <= v <= hi:
                raise InputError(f"identity option {name}={v}: expected {lo}..{hi}")
        if int(self.min_refs) < 1 or int(self.impostors) < 1:
            raise InputError("identity options min_refs and impostors must be at least 1")
        return self
