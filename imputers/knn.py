"""Batch k-nearest-neighbour imputation over all numeric columns (scikit-learn `KNNImputer`).

This is the batch baseline of the example the project grows from: `KNNImputer(n_neighbors=5)`
over every numeric column of the whole table. It sees all rows at once, so on a time series a
gap is filled from readings before *and after* it (the future included): an upper bound for what
a stream could know, and only available once all data has arrived.

The wrapper keeps scikit-learn's conventions (parameters stored in the constructor, work in
`fit`/`transform`) and fixes one trap: `KNNImputer` drops a column with no observed value, which
shifts every column after it; here such a column is kept, still missing. `scale=True`
standardises columns before measuring distances (raw units let the widest column, e.g. pressure
in hPa, dominate); the default keeps the example's raw units.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import KNNImputer


class BatchKNNImputer(TransformerMixin, BaseEstimator):
    """`KNNImputer` that keeps the table's shape; optional standardised distances.

    >>> X = np.array([[1.0, np.nan, 10.0], [2.0, np.nan, 20.0], [1.1, np.nan, np.nan]])
    >>> BatchKNNImputer(n_neighbors=1).fit_transform(X)[2].tolist()
    [1.1, nan, 10.0]
    """

    def __init__(self, n_neighbors: int = 5, weights: str = "uniform", scale: bool = False):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.scale = scale

    def fit(self, X: np.ndarray, y: None = None) -> BatchKNNImputer:
        """Learn the donor table (and the column scales when `scale`)."""
        X = np.asarray(X, dtype=float)
        self.observed_columns_ = ~np.isnan(X).all(axis=0)
        # C order, as scikit-learn gets a plain table: distances (BLAS) and so the choice among
        # equidistant donors depend on the memory layout
        kept = np.ascontiguousarray(X[:, self.observed_columns_])
        if self.scale:
            self.mean_ = np.nanmean(kept, axis=0)
            std = np.nanstd(kept, axis=0)
            self.scale_ = np.where(std > 0, std, 1.0)
        else:
            self.mean_ = np.zeros(kept.shape[1])
            self.scale_ = np.ones(kept.shape[1])
        self.imputer_ = KNNImputer(n_neighbors=self.n_neighbors, weights=self.weights)
        self.imputer_.fit((kept - self.mean_) / self.scale_)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Fill missing cells from the k nearest donor rows; all-missing columns stay NaN."""
        X = np.asarray(X, dtype=float)
        out = X.copy()
        kept = np.ascontiguousarray(X[:, self.observed_columns_])
        filled = self.imputer_.transform((kept - self.mean_) / self.scale_)
        out[:, self.observed_columns_] = filled * self.scale_ + self.mean_
        # observed cells come back exactly, not through the (un)scaling round trip
        observed = ~np.isnan(X)
        out[observed] = X[observed]
        return out
