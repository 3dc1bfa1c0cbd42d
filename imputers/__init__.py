"""Imputers: fill missing sensor values.

`window.WindowImputer` is the flow's (each sensor's own recent past); `ewma`, `running`,
`interpolate` and `spatial` are streaming rivals and `knn` the batch one, for comparison. Import
the module you need: this package imports nothing itself, so the flow never loads scikit-learn.
"""
