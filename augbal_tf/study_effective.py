"""A policy cell built from a finished study (#14): `--augmentations=effective_from:<study_dir>`.

The cell oversamples with one of the transforms that study found `effective`, drawn
uniformly per generated image (the dataset builder's policy: a list of augmentation names,
seeded per example). The transforms are read from the study's own summary.csv, whose
verdicts its report computed at its own `--metric` (and, with `--seeds=auto`, by its
stopping rule); the transforms of each effective `aug:` cell are its results.csv
`augmentation` column, so a policy cell of an earlier study expands to its transforms.
Each transform runs with augstatic's default parameters.

The cell is named `effective_from_<study>_<hash>` (hash: the first digits of summary.csv's
SHA-256), so a rerun of the source study that changes its summary makes a new cell instead
of silently reusing the old one; `policies.json` in the study folder records the
transforms, the source folder and the full hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import re

from augbal_tf import fileio

PREFIX = "effective_from:"
PROVENANCE_FILE = "policies.json"
_HASH_CHARS = 8
_UNSAFE = re.compile(r"[^\w.-]")


@dataclasses.dataclass(frozen=True)
class EffectivePolicy:
    """A `--augmentations` entry: the cell name, its transforms and where they came from."""

    name: str
    transforms: tuple[str, ...]
    study_dir: str
    summary_sha256: str

    def provenance(self) -> dict:
        """What `policies.json` records for this cell."""
        return {"transforms": list(self.transforms), "study_dir": self.study_dir,
                "summary_csv_sha256": self.summary_sha256, "choice": "one per generated image, uniform",
                "params": "augstatic defaults"}


def is_spec(text: str) -> bool:
    """True for an `effective_from:<study_dir>` entry of `--augmentations`."""
    return text.strip().lower().startswith(PREFIX)


def resolve(spec: str) -> EffectivePolicy:
    """The policy of `effective_from:<study_dir>`: the transforms that study found effective.

    Raises:
      ValueError: naming the entry and the folder when it is not a study, has no finished
        summary (summary.csv), or found no effective augmentation.
    """
    from augbal_tf import study_report  # pylint: disable=import-outside-toplevel  (matplotlib: only when used)

    raw = spec.strip()[len(PREFIX):].strip()
    flag = f"--augmentations={spec.strip()}"
    if not raw:
        raise ValueError(f"{flag}: give the folder of a finished study after '{PREFIX}'")
    study_dir = os.path.abspath(os.path.expanduser(raw))
    results_path = pathlib.Path(study_dir, "results.csv")
    summary_path = pathlib.Path(study_dir, study_report.SUMMARY_CSV)
    if not os.path.isdir(study_dir):
        raise ValueError(f"{flag}: {study_dir} is not a study folder (no such folder)")
    if not results_path.is_file():
        raise ValueError(f"{flag}: {study_dir} is not a study folder (it has no results.csv)")
    if not summary_path.is_file():
        raise ValueError(f"{flag}: the study in {study_dir} has no finished summary ({study_report.SUMMARY_CSV} "
                         "missing: finish it, or merge its shards with --report_only)")
    data = summary_path.read_bytes()
    try:
        summary = study_report.read_results(summary_path)
        results = study_report.read_results(results_path)
        missing = [c for c in ("ratio", "cell", "kind", "verdict") if c not in summary.columns]
        if missing or "augmentation" not in results.columns:
            raise ValueError(f"columns {missing or ['augmentation']} missing")
    except ValueError as error:
        raise ValueError(f"{flag}: {summary_path} is not a study summary ({error})") from None
    effective = summary[(summary["kind"] == "augmentation") & (summary["verdict"] == "effective")]
    if effective.empty:
        verdicts = [f"{row.cell} {row.verdict} at ratio {row.ratio}" for row in
                    summary[summary["kind"] == "augmentation"].itertuples()]
        raise ValueError(f"{flag}: the study in {study_dir} found no effective augmentation "
                         f"({'; '.join(verdicts) or 'it has no augmentation cells'}), so there is no "
                         "policy to build")
    transforms = set()
    for cell in effective["cell"].unique():
        rows = results.loc[results["cell"] == cell, "augmentation"].dropna()
        transforms.update(name for text in rows for name in str(text).split(",") if name)
    digest = hashlib.sha256(data).hexdigest()
    label = _UNSAFE.sub("_", os.path.basename(os.path.normpath(study_dir)))
    return EffectivePolicy(name=f"effective_from_{label}_{digest[:_HASH_CHARS]}",
                           transforms=tuple(sorted(transforms)), study_dir=study_dir, summary_sha256=digest)


def write_provenance(study_dir: str, entries) -> None:
    """Records every EffectivePolicy of `entries` in `<study_dir>/policies.json` (nothing without one)."""
    policies = {entry.name: entry.provenance() for entry in entries if isinstance(entry, EffectivePolicy)}
    if not policies:
        return
    path = pathlib.Path(study_dir, PROVENANCE_FILE)
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        recorded = {}
    recorded.update(policies)
    path.parent.mkdir(parents=True, exist_ok=True)
    fileio.write_atomic(path, json.dumps(recorded, indent=1, sort_keys=True) + "\n")
