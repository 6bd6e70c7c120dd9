"""What report.html shows, computed from the study's tables and its runs' metrics.json.

No markup and no figures here (`report_html`, `report_plots`): the winner, the cell
shown against the unbalanced baseline, the runs' per-class numbers, the gallery.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from augbal_tf import report_plots, study_stats

METRICS_FILE = "metrics.json"  # Same name as augbal_tf.workdir.METRICS_FILE.


def gallery_pairs(images: Sequence[np.ndarray], augmentation_name: str,
                  params: Mapping | None = None, seed: int = 0,
                  count: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    """(original, augmented) pairs of the first `count` images under one augmentation.

    Args:
      images: HxWxC uint8 images (the user's minority images).
      augmentation_name: an augstatic registry name (the winning cell's augmentation).
      params: the augmentation's parameters (defaults: the paper's, p=1).
      seed: seeds the one Generator every draw comes from, in image order.
      count: how many pairs, at most.

    Raises:
      ValueError: a count below 1, no images, or an unknown augmentation/parameter.
    """
    import augstatic  # noqa: PLC0415  (OpenCV only when a gallery is asked for)

    if count < 1:
        raise ValueError(f"count={count!r} is invalid; allowed: an integer >= 1")
    if len(images) == 0:
        raise ValueError("images is empty; allowed: at least one HxWxC uint8 image")
    transform = augstatic.create(augmentation_name, **dict(params or {}))
    rng = np.random.default_rng(seed)
    return [(np.asarray(image), np.asarray(transform(np.asarray(image), rng)))
            for image in list(images)[:count]]


def chosen_winner(winner) -> dict | None:
    """`winner` (a cell name or a mapping with `cell`) as a dict, or None.

    Raises:
      ValueError: a mapping without `cell`.
    """
    if winner is None:
        return None
    if isinstance(winner, str):
        return {"cell": winner}
    chosen = dict(winner)
    if "cell" not in chosen:
        raise ValueError(f"winner={winner!r} has no 'cell'; allowed: a cell name or a "
                         "mapping with 'cell' (and optionally 'ratio', 'cost', 'reason')")
    return chosen


def best_cell(summary: pd.DataFrame, chosen: dict | None):
    """(cell, ratio) shown against the unbalanced baseline, or None when nothing compares.

    The chosen winner (at its ratio, or its best ratio); without one, the effective
    remedy with the largest paired difference; with none effective, the largest
    difference of any remedy. The balanced baseline is an upper bound, not a remedy.
    """
    compared = summary[(summary["cell"] != study_stats.REFERENCE_CELL)
                       & (summary["cell"] != study_stats.UPPER_CELL)]
    if chosen is not None and chosen["cell"] != study_stats.REFERENCE_CELL:
        rows = compared[compared["cell"] == chosen["cell"]]
        if "ratio" in chosen:
            rows = rows[rows["ratio"] == study_stats.ratio_label(chosen["ratio"])]
    else:
        effective = compared[compared["verdict"] == "effective"]
        rows = effective if len(effective) else compared
    rows = rows.dropna(subset=["mean_difference"])
    if not len(rows):
        return None
    row = rows.sort_values(["mean_difference", "cell", "ratio"], ascending=[False, True, True],
                           kind="stable").iloc[0]
    return row["cell"], row["ratio"]


def cell_runs(results: pd.DataFrame, cell: str, ratio: str,
              study_dir: pathlib.Path) -> list[dict]:
    """Class names, test confusion matrix and recalls of every run of (cell, ratio), by seed."""
    if "workdir" not in results.columns:
        return []
    ratios = results["ratio"].map(study_stats.ratio_label)
    rows = results[(results["cell"] == cell) & (ratios == ratio)].sort_values("seed")
    runs = []
    for workdir in rows["workdir"].astype(str):
        # results.csv records the path the cell ran at; a study folder moved or mounted
        # elsewhere (another shard's machine) still holds it as ratio_*/cell/seed_*.
        for folder in (pathlib.Path(workdir),
                       study_dir.joinpath(*pathlib.Path(workdir).parts[-3:])):
            path = folder / METRICS_FILE
            if not path.is_file():
                continue
            try:
                metrics = json.loads(path.read_text(encoding="utf-8"))
                test = metrics["test"]
                names = list(metrics.get("class_names") or test["per_class"])
                runs.append({"names": names, "confusion": np.asarray(test["confusion_matrix"]),
                             "recall": [float(test["per_class"][c]["recall"]) for c in names]})
            except (ValueError, KeyError, TypeError):
                pass  # An older or foreign metrics.json: this section skips the run.
            break
    return runs


def paired_runs(results: pd.DataFrame, best, study_dir: pathlib.Path):
    """((class names, {label: runs}), "") for best cell and unbalanced, or (None, reason)."""
    if best is None:
        return None, "no cell other than the baselines has a paired difference."
    cell, ratio = best
    groups = {}
    for name in (study_stats.REFERENCE_CELL, cell):
        runs = cell_runs(results, name, ratio, study_dir)
        if not runs:
            return None, (f"no usable metrics.json for {name} at {report_plots.ratio_title(ratio)} "
                          "(results.csv lacks workdirs or they were moved).")
        groups[f"{report_plots.cell_label(name)} ({report_plots.ratio_title(ratio)}, "
               f"{len(runs)} seeds)"] = runs
    names = {tuple(run["names"]) for runs in groups.values() for run in runs}
    if len(names) != 1:
        return None, "the runs were evaluated on different classes."
    return (list(names.pop()), groups), ""
