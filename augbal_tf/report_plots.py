"""The figures of report.html, each returned as PNG bytes (deterministic for the same input).

Every figure is saved at a fixed dpi with the PNG `Software` text dropped, so the
same study gives byte-identical images (and so a byte-identical report.html) on
the same software stack.
"""

from __future__ import annotations

import io
import math
import pathlib
import tempfile
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # Headless: reports are built on servers and in CI.
import matplotlib.pyplot as plt  # noqa: E402  (must follow the backend choice)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from augbal_tf import study_metric, study_report, study_stats  # noqa: E402

DPI = 100
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VERDICT_COLOURS = {"effective": "#1a7f37", "ineffective": "#cf222e", "neutral": "#6e7781",
                   "undetermined": "#bf8700", "reference": "#000000"}


def figure_png(fig) -> bytes:
    """Encodes and closes `fig`: PNG bytes without the matplotlib version text."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def array_png(image: np.ndarray, min_side: int = 0) -> bytes:
    """Encodes an HxW or HxWxC uint8 image, nearest-upscaled so its short side is >= min_side."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image dtype={image.dtype} is invalid; allowed: uint8")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"image shape={image.shape} is invalid; allowed: HxW, HxWx1, HxWx3 "
                         "or HxWx4")
    picture = Image.fromarray(image)
    short = min(picture.size)
    if min_side and short < min_side:
        # Integer factor and nearest neighbour: tiny images (28x28) stay crisp, not blurred.
        factor = math.ceil(min_side / short)
        picture = picture.resize((picture.width * factor, picture.height * factor),
                                 Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def cell_label(cell: str) -> str:
    """`[baseline] balanced` / `HorizontalFlip` from a study cell name."""
    return cell.replace("baseline:", "[baseline] ").replace("aug:", "")


def ratio_title(ratio: str) -> str:
    return ratio if ratio == study_stats.NATURAL_RATIO else f"ratio {ratio}:1"


def forest_plot(summary: pd.DataFrame, label: str = "test balanced accuracy") -> bytes:
    """Paired differences (pp) with their intervals, one panel per ratio, verdict colours."""
    compared = summary[summary["cell"] != study_stats.REFERENCE_CELL]
    ratios = sorted(compared["ratio"].unique(), key=study_stats.ratio_sort_key)
    if not ratios:
        raise ValueError("summary has no cell compared with the unbalanced baseline")
    heights = [max(len(compared[compared["ratio"] == r]), 1) for r in ratios]
    fig, axes = plt.subplots(len(ratios), 1, squeeze=False, layout="constrained",
                             figsize=(8.0, 1.0 + 0.75 * len(ratios) + 0.32 * sum(heights)),
                             gridspec_kw={"height_ratios": heights})
    finite = compared[["mean_difference", "ci_low", "ci_high"]].to_numpy(dtype=float) * 100
    finite = finite[np.isfinite(finite)]
    limit = max(float(np.abs(finite).max()) if finite.size else 1.0, 1.0) * 1.1
    for ax, ratio in zip(axes[:, 0], ratios):
        rows = compared[compared["ratio"] == ratio].iloc[::-1]  # Best on top.
        for y, row in enumerate(rows.itertuples()):
            colour = VERDICT_COLOURS.get(row.verdict, "#000000")
            centre = 100 * row.mean_difference
            if math.isnan(row.ci_low):
                # Undetermined: no interval, so a hollow point only.
                ax.plot(centre, y, "o", mfc="white", mec=colour, ms=7)
            else:
                ax.errorbar(centre, y, xerr=[[centre - 100 * row.ci_low],
                                             [100 * row.ci_high - centre]],
                            fmt="o", color=colour, ms=6, capsize=3, lw=1.6)
        ax.axvline(0.0, color="black", lw=1.0, ls="--")
        ax.set_yticks(range(len(rows)), [cell_label(c) for c in rows["cell"]], fontsize=9)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_xlim(-limit, limit)
        ax.set_title(ratio_title(ratio), fontsize=10, loc="left")
        ax.grid(axis="x", color="#dddddd", lw=0.6)
    axes[-1, 0].set_xlabel(f"paired difference in {label} from the unbalanced\n"
                           "baseline (percentage points), with its 95% interval")
    handles = [plt.Line2D([], [], marker="o", ls="", color=colour, label=name)
               for name, colour in VERDICT_COLOURS.items() if name != "reference"]
    fig.legend(handles=handles, loc="outside upper center", ncol=4, fontsize=9, frameon=False)
    return figure_png(fig)


def heatmap(summary: pd.DataFrame, ranking: pd.DataFrame, title: str,
            metric: study_metric.Metric | None = None) -> bytes:
    """study_report's heatmap (the same picture as summary.png), as PNG bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder, "heatmap.png")
        study_report.plot_heatmap(summary, ranking, path, title=title,
                                  metric=metric or study_report.DEFAULT_METRIC)
        return strip_text_chunks(path.read_bytes())


def strip_text_chunks(png: bytes) -> bytes:
    """`png` without its text and time chunks (matplotlib's version string, any date).

    Raises:
      ValueError: if `png` does not start with the PNG signature.
    """
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("png does not start with the PNG signature")
    kept, position = [PNG_SIGNATURE], len(PNG_SIGNATURE)
    while position < len(png):
        # A chunk: 4-byte big-endian length, 4-byte type, data, 4-byte CRC.
        length = int.from_bytes(png[position:position + 4], "big")
        end = position + 12 + length
        if png[position + 4:position + 8] not in (b"tEXt", b"zTXt", b"iTXt", b"tIME"):
            kept.append(png[position:end])
        position = end
    return b"".join(kept)


def recall_bars(class_names: Sequence[str], series: Mapping[str, Sequence[float]]) -> bytes:
    """Grouped bars of per-class test recall, one group per class, one bar per series."""
    count = len(series)
    width = 0.8 / max(count, 1)
    positions = np.arange(len(class_names))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 + 0.9 * len(class_names)), 3.4),
                           layout="constrained")
    colours = ["#8c959f", "#0969da", "#1a7f37", "#bf8700"]
    for index, (name, values) in enumerate(series.items()):
        offsets = positions - 0.4 + width * (index + 0.5)
        bars = ax.bar(offsets, 100 * np.asarray(values, dtype=float), width,
                      label=name, color=colours[index % len(colours)])
        ax.bar_label(bars, fmt="%.0f", fontsize=8, padding=1)  # Also labels a 0 bar.
    ax.set_xticks(positions, list(class_names), fontsize=9, rotation=30 if len(class_names) > 6
                  else 0)
    ax.set_ylim(0, 108)
    ax.set_ylabel("test recall (%)\nmean over seeds")
    # Above the axes: inside, the legend would hide the bars it explains.
    fig.legend(loc="outside upper center", ncol=1, fontsize=8, frameon=False)
    return figure_png(fig)


def confusion_matrices(class_names: Sequence[str], matrices: Mapping[str, np.ndarray]) -> bytes:
    """Side-by-side row-normalised confusion matrices (text: counts summed over seeds)."""
    fig, axes = plt.subplots(1, len(matrices), squeeze=False, layout="constrained",
                             figsize=(0.6 + 4.2 * len(matrices),
                                      1.6 + 0.45 * max(len(class_names), 3)))
    for ax, (name, matrix) in zip(axes[0], matrices.items()):
        matrix = np.asarray(matrix, dtype=float)
        totals = matrix.sum(axis=1, keepdims=True)
        rates = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
        ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=8,
                        color="white" if rates[i, j] > 0.6 else "black")
        ticks = range(len(class_names))
        ax.set_xticks(ticks, list(class_names), fontsize=8, rotation=45, ha="right")
        ax.set_yticks(ticks, list(class_names), fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name, fontsize=9)
    return figure_png(fig)
