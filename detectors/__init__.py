"""Detectors: score each reading against its sensor's past, before learning from it."""

from detectors.hst import DEFAULT_FEATURES, DEFAULT_LIMITS, HalfSpaceTreesDetector

__all__ = ["DEFAULT_FEATURES", "DEFAULT_LIMITS", "HalfSpaceTreesDetector"]
