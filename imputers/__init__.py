"""Imputers: fill missing sensor values from each sensor's own recent past."""

from imputers.ewma import EWMAImputer
from imputers.interpolate import LinearGapImputer
from imputers.knn import BatchKNNImputer
from imputers.running import RunningMeanImputer
from imputers.spatial import SpatialImputer
from imputers.window import STRATEGIES, WindowImputer

__all__ = [
    "STRATEGIES",
    "BatchKNNImputer",
    "EWMAImputer",
    "LinearGapImputer",
    "RunningMeanImputer",
    "SpatialImputer",
    "WindowImputer",
]
