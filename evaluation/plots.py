"""The report's figures, one function per PNG (matplotlib, headless `Agg` backend).

Each function takes plain arrays and a path, draws one figure, writes it and closes it, so a
report never keeps figures open and the functions can be used on their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

STREAM, BATCH = "tab:blue", "tab:orange"


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _hours(times: np.ndarray, origin: float) -> np.ndarray:
    return (np.asarray(times, dtype=float) - origin) / 3600.0


def series(
    path: Path,
    *,
    sensor: int,
    times: np.ndarray,
    pm: np.ndarray,
    pm_imputed: np.ndarray,
    weather_name: str,
    weather_stream: np.ndarray,
    weather_batch: np.ndarray,
    weather_imputed: np.ndarray,
    stream_flags: np.ndarray,
    batch_flags: np.ndarray,
    faults: Sequence[tuple[str, float, float]],
) -> Path:
    """One sensor over time: PM with fault spans and each path's anomalies; a weather field with
    the values each path imputed."""
    origin = float(times.min())
    t = _hours(times, origin)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.6), sharex=True)
    for kind, start, end in faults:
        for ax in (top, bottom):
            ax.axvspan(*_hours(np.array([start, end]), origin), color="0.85", lw=0)
        top.text(
            _hours(np.array([start]), origin)[0],
            0.03,
            kind,
            transform=top.get_xaxis_transform(),
            fontsize=8,
            va="bottom",
            color="0.3",
        )
    top.plot(t, pm, color="0.35", lw=0.8, label="pm1.0_cf_1 (stream-cleaned)")
    top.plot(t[pm_imputed], pm[pm_imputed], "s", ms=4, color="tab:green", label="imputed")
    top.plot(
        t[stream_flags],
        pm[stream_flags],
        "o",
        ms=5,
        mfc="none",
        color=STREAM,
        label="anomaly: stream",
    )
    top.plot(t[batch_flags], pm[batch_flags], "x", ms=5, color=BATCH, label="anomaly: batch")
    top.set_ylabel("µg/m³")
    top.set_yscale("symlog", linthresh=20)
    top.legend(loc="upper left", fontsize=8, ncol=4)
    top.set_title(f"sensor {sensor}: faults shaded")
    bottom.plot(t, weather_stream, color="0.35", lw=0.8, label=f"{weather_name} (observed)")
    bottom.plot(
        t[weather_imputed],
        weather_stream[weather_imputed],
        "o",
        ms=3,
        color=STREAM,
        label="imputed: stream window mean",
    )
    bottom.plot(
        t[weather_imputed],
        weather_batch[weather_imputed],
        "x",
        ms=3,
        color=BATCH,
        label="imputed: batch KNN",
    )
    bottom.set_ylabel(weather_name)
    bottom.set_xlabel("hours since the first reading")
    bottom.legend(loc="upper left", fontsize=8, ncol=3)
    return _save(fig, path)


def score_distributions(
    path: Path,
    panels: Sequence[tuple[str, np.ndarray, np.ndarray, float, float]],
) -> Path:
    """Per detector: histogram of scores of normal and of fault readings, with the default and
    the best threshold. `panels`: (title, normal scores, fault scores, default, best)."""
    cols = min(2, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3 * rows), squeeze=False)
    for ax, (title, normal, fault, default, best) in zip(axes.flat, panels, strict=False):
        both = np.concatenate([normal, fault])
        bins = np.linspace(both.min(), both.max(), 41) if both.size else 10
        ax.hist(normal, bins=bins, color="0.6", label="normal readings")
        ax.hist(fault, bins=bins, color="tab:red", alpha=0.7, label="fault readings")
        ax.axvline(default, color="k", ls="--", lw=1, label=f"default {default:.3g}")
        ax.axvline(best, color="tab:green", lw=1, label=f"best F1 {best:.3g}")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    return _save(fig, path)


def imputation_errors(
    path: Path, title: str, mae: Mapping[str, Mapping[str, Mapping[str, float]]]
) -> Path:
    """MAE per method, one panel per field, one bar per scenario.
    `mae[field][scenario][method]`."""
    fields = list(mae)
    fig, axes = plt.subplots(1, len(fields), figsize=(3.6 * len(fields), 3.8), squeeze=False)
    for ax, name in zip(axes.flat, fields, strict=True):
        scenarios = list(mae[name])
        methods = list(mae[name][scenarios[0]])
        y = np.arange(len(methods))
        height = 0.8 / len(scenarios)
        for k, scenario in enumerate(scenarios):
            values = [mae[name][scenario].get(m, np.nan) for m in methods]
            ax.barh(y + k * height, values, height=height, label=scenario)
        ax.set_yticks(y + 0.4 - height / 2, methods if ax is axes.flat[0] else [""] * len(methods))
        ax.invert_yaxis()
        ax.set_title(f"{name}: MAE", fontsize=10)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def agreement(path: Path, counts: Mapping[str, Mapping[str, int]]) -> Path:
    """Flags found by both paths, by the stream only and by the batch only, per kind of reading.
    `counts[kind][both|stream only|batch only]`."""
    kinds = list(counts)
    parts = ("both", "stream only", "batch only")
    colors = ("tab:purple", STREAM, BATCH)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    left = np.zeros(len(kinds))
    for part, color in zip(parts, colors, strict=True):
        values = np.array([counts[k].get(part, 0) for k in kinds], dtype=float)
        ax.barh(kinds, values, left=left, color=color, label=part)
        left += values
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("flagged readings")
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    ax.set_title("Which anomalies each path finds (HalfSpaceTrees, default threshold)", fontsize=10)
    return _save(fig, path)


def latency(path: Path, curves: Mapping[str, np.ndarray]) -> Path:
    """Cumulative distribution of the time from a reading's arrival to its answer, per path."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for name, seconds in curves.items():
        values = np.sort(np.asarray(seconds, dtype=float))
        if values.size:
            ax.step(values, np.arange(1, values.size + 1) / values.size, where="post", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("seconds from the reading's arrival to its cleaned, scored answer")
    ax.set_ylabel("fraction of readings")
    for seconds, text in ((120, "2 min"), (3600, "1 h"), (86400, "24 h")):
        ax.axvline(seconds, color="0.8", lw=0.8)
        ax.text(seconds, 0.02, text, fontsize=7, color="0.4")
    ax.legend(fontsize=8, loc="center left")
    return _save(fig, path)
