"""Imputers: fill missing sensor values from each sensor's own recent past."""

from imputers.window import STRATEGIES, WindowImputer

__all__ = ["STRATEGIES", "WindowImputer"]
