"""Tests of report.html: sections, inline PNGs, escaping, atomic write, determinism, browser."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import pathlib
import re
import shutil
import subprocess

import matplotlib.image
import matplotlib.pyplot
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from augbal_tf import report_html, report_plots, study_stats

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVIL = "<script>alert(1)</script>"
CLASSES = ["cat", EVIL]
SUPPORT = 1000  # Fine enough that seed noise survives the rounding to counts.
# Paired shift from the unbalanced baseline per augmentation, and the seeds it ran.
SHIFTS = {"aug:Good": (0.10, range(5)), "aug:Bad": (-0.08, range(5)),
          "aug:Flat": (0.0, range(5)), "aug:Short": (0.05, range(2))}


def _metrics(balanced_accuracy: float) -> dict:
    # Majority recall fixed at 0.9, minority recall makes up the balanced accuracy; the
    # confusion matrix holds the matching counts, so every number in metrics.json agrees.
    majority = round(0.9 * SUPPORT)
    minority = round((2 * balanced_accuracy - 0.9) * SUPPORT)
    recalls = [majority / SUPPORT, minority / SUPPORT]
    return {
        "class_names": CLASSES,
        "test": {"balanced_accuracy": float(np.mean(recalls)),
                 "per_class": {name: {"recall": r, "precision": 0.5, "f1": 0.5,
                                      "support": SUPPORT} for name, r in zip(CLASSES, recalls)},
                 "confusion_matrix": [[majority, SUPPORT - majority],
                                      [SUPPORT - minority, minority]]}}


def _synthetic_results(root) -> pd.DataFrame:
    """Two ratios plus natural, every verdict, 5 seeds (2 for aug:Short), real metrics.json."""
    rng = np.random.default_rng(7)
    rows = []
    for ratio, level in (("4", 0.62), ("16", 0.55), ("natural", 0.60)):
        for seed in range(5):
            base = level + 0.01 * seed
            cells = {"baseline:unbalanced": base, "baseline:balanced": base + 0.15}
            for cell, (shift, seeds) in SHIFTS.items():
                if seed in seeds:
                    noise = 0.05 if cell == "aug:Flat" else 0.01
                    cells[cell] = base + shift + rng.normal(0.0, noise)
            for cell, value in cells.items():
                workdir = root / f"ratio_{ratio}" / cell.replace(":", "_") / f"seed_{seed}"
                workdir.mkdir(parents=True)
                metrics = _metrics(float(np.clip(value, 0.46, 0.94)))
                (workdir / "metrics.json").write_text(json.dumps(metrics))
                rows.append({"ratio": ratio, "cell": cell, "seed": seed,
                             "test_balanced_accuracy": metrics["test"]["balanced_accuracy"],
                             "wall_time_s": 10.0 + (2.0 if cell.startswith("aug") else 0.0),
                             "workdir": str(workdir)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    results = _synthetic_results(root)
    summary = study_stats.summarize(results)
    return root, results, summary


def _gallery():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8) for _ in range(3)]
    return report_html.gallery_pairs(images, "HorizontalFlip", {}, seed=0, count=3)


def _write(folder, results, summary=None, **kwargs):
    kwargs.setdefault("command", f"python -m augbal_tf.study --study_dir={EVIL}")
    kwargs.setdefault("environment", {"python": "3.11", "packages": {"tensorflow": "2.21"}})
    return report_html.write_html_report(folder, results=results, summary=summary, **kwargs)


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in
            re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)]


def test_synthetic_study_covers_every_verdict(study):
    _, _, summary = study
    verdicts = set(summary["verdict"])
    assert verdicts >= {"effective", "ineffective", "neutral", "undetermined", "reference"}


def test_sections_in_order_and_images_are_pngs(study, tmp_path):
    _, results, summary = study
    path = _write(tmp_path, results, summary, gallery=_gallery(), gallery_name="HorizontalFlip")
    page = path.read_text(encoding="utf-8")
    positions = [page.index(f'<section id="{name}"') for name in report_html.SECTIONS]
    assert positions == sorted(positions)
    images = _images(page)
    # forest, heatmap, recall, confusion, and 3 (original, augmented) gallery pairs.
    assert len(images) == 4 + 6 == page.count("<img ")
    for png in images:
        assert png.startswith(PNG_SIGNATURE)
        with Image.open(io.BytesIO(png)) as picture:
            picture.verify()
        assert matplotlib.image.imread(io.BytesIO(png), format="png").size > 0
        # No version string or date: those would make the same study give other bytes.
        assert b"tEXt" not in png and b"tIME" not in png and b"iTXt" not in png
    # Nothing is loaded from anywhere but the page itself.
    assert not re.search(r'(?:src|href)="(?!data:)', page)
    assert "http://" not in page and "https://" not in page
    assert "default-src 'none'" in page


def test_user_strings_are_escaped(study, tmp_path):
    _, results, summary = study
    page = _write(tmp_path, results, summary, title=f"study {EVIL}",
                  decisions=[(EVIL, EVIL)], power_sentences=[EVIL],
                  environment={EVIL: EVIL}).read_text(encoding="utf-8")
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # The page's own image check, nothing injected.


def test_answer_names_winner_with_its_interval(study, tmp_path):
    _, results, summary = study
    page = _write(tmp_path, results, summary,
                  winner={"cell": "aug:Good", "ratio": "16", "cost": "2 s more per run"}
                  ).read_text(encoding="utf-8")
    answer = page[page.index('<section id="answer"'):page.index('<section id="decisions"')]
    # The interval computed independently from the runs: a t-interval of the differences.
    ratio16 = results[results["ratio"] == "16"].pivot(index="seed", columns="cell",
                                                        values="test_balanced_accuracy")
    differences = 100 * (ratio16["aug:Good"] - ratio16["baseline:unbalanced"]).to_numpy()
    low, high = stats.t.interval(0.95, len(differences) - 1, loc=differences.mean(),
                                 scale=stats.sem(differences))
    assert "Recommended: Good" in answer
    assert f"{differences.mean():+.1f} pp" in answer
    assert f"[{low:+.1f}, {high:+.1f}] pp" in answer
    assert "Cost: 2 s more per run" in answer
    assert "12.0 s per run vs 10.0 s" in answer


def test_answer_without_effective_remedy(study, tmp_path):
    _, results, summary = study
    page = _write(tmp_path / "a", results, summary, winner=study_stats.REFERENCE_CELL).read_text()
    assert "No remedy was effective: use the plain baseline" in page
    plain = results[results["cell"].isin(["baseline:unbalanced", "aug:Bad", "aug:Flat"])]
    page = _write(tmp_path / "b", plain).read_text()
    assert "No remedy was effective: use the plain baseline" in page


def test_answer_without_effective_remedy_but_too_few_seeds_recommends_nothing(study, tmp_path):
    _, results, _ = study
    plain = results[results["cell"].isin(["baseline:unbalanced", "aug:Bad", "aug:Flat"])]
    page = _write(tmp_path, plain, undecided=["4", "natural"]).read_text()
    answer = page[page.index('<section id="answer"'):page.index('<section id="decisions"')]
    assert "use the plain baseline" not in answer
    assert "Not decided: no cell beat the unbalanced baseline" in answer
    assert "at ratios 4:1 and natural the study had too few seeds to tell" in answer
    # The largest paired difference of the compared cells is named, with its interval.
    summary = study_stats.summarize(plain)
    best = summary.loc[summary["mean_difference"].idxmax()]
    assert (f"Largest paired difference (the cell more seeds would test first): "
            f"{report_plots.cell_label(best['cell'])} at {report_plots.ratio_title(best['ratio'])}: "
            f"{100 * best['mean_difference']:+.1f} pp") in answer


def test_plain_study_lists_effective_cells(study, tmp_path):
    _, results, summary = study
    page = _write(tmp_path, results, summary).read_text()
    answer = page[page.index('<section id="answer"'):page.index('<section id="decisions"')]
    assert "Effective cells" in answer
    effective = summary[(summary["verdict"] == "effective")
                        & (summary["cell"] != study_stats.UPPER_CELL)]
    assert answer.count("<li>") == len(effective) > 0
    assert "[baseline] balanced" not in answer  # The upper bound is not a remedy.


def test_power_columns_and_not_computed(study, tmp_path):
    _, results, summary = study
    page = _write(tmp_path / "a", results, summary).read_text()
    power = page[page.index('<section id="power"'):page.index('<section id="environment"')]
    assert "not computed" in power
    with_power = summary.assign(sd_diff=0.02, mde=0.031, seeds_needed=7)
    with_power.loc[with_power["n_seeds"] < study_stats.MIN_SEEDS, "seeds_needed"] = math.nan
    page = _write(tmp_path / "b", results, with_power,
                  power_sentences=["Five seeds detect 3.1 pp."]).read_text()
    power = page[page.index('<section id="power"'):page.index('<section id="environment"')]
    assert "Five seeds detect 3.1 pp." in power
    assert ">3.10<" in power and ">2.00<" in power and ">7<" in power
    assert "not computed" in power  # aug:Short has too few seeds for a seed count.


def test_failure_mid_render_leaves_no_report(study, tmp_path, monkeypatch):
    _, results, summary = study

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(report_plots, "confusion_matrices", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _write(tmp_path, results, summary)
    assert not (tmp_path / report_html.REPORT_HTML).exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_failure_while_writing_leaves_no_report(study, tmp_path, monkeypatch):
    _, results, summary = study
    real_write_text = pathlib.Path.write_text

    def full_disk(self, text, *args, **kwargs):
        real_write_text(self, text[:100], *args, **kwargs)  # Part of the page reaches the disk.
        raise OSError("No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", full_disk)
    with pytest.raises(OSError, match="No space"):
        _write(tmp_path, results, summary)
    monkeypatch.setattr(pathlib.Path, "write_text", real_write_text)
    assert os.listdir(tmp_path) == []


def test_same_inputs_same_bytes(study, tmp_path):
    _, results, summary = study
    first = _write(tmp_path / "a", results, summary, gallery=_gallery()).read_bytes()
    second = _write(tmp_path / "b", results, None, gallery=_gallery()).read_bytes()
    assert first == second


def test_missing_metrics_are_reported_not_fatal(study, tmp_path):
    _, results, summary = study
    page = _write(tmp_path, results.drop(columns=["workdir"]), summary).read_text()
    recall = page[page.index('<section id="recall"'):page.index('<section id="gallery"')]
    assert "Not available" in recall


def test_moved_study_folder_still_finds_metrics(study, tmp_path):
    root, results, summary = study
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)
    # results.csv still names the old location, which no longer exists.
    stale = results.assign(workdir=[w.replace(str(root), "/nonexistent/old_mount")
                                    for w in results["workdir"]])
    page = _write(moved, stale, summary).read_text()
    recall = page[page.index('<section id="recall"'):page.index('<section id="gallery"')]
    assert "Not available" not in recall and 'alt="per-class recall bars"' in recall


def test_incomplete_study_says_so(study, tmp_path):
    _, results, summary = study
    page = _write(tmp_path, results, summary, missing=2,
                  failures=[("ratio 4 aug:Flat seed 5", f"RuntimeError: {EVIL}\ntraceback")],
                  environment={"devices": ["/device:CPU:0", "/device:CPU:1"]}).read_text()
    answer = page[page.index('<section id="answer"'):page.index('<section id="decisions"')]
    assert "Incomplete: 2 cell(s)" in answer
    assert "ratio 4 aug:Flat seed 5: RuntimeError: &lt;script&gt;" in answer
    assert "traceback" not in answer
    assert "<td>/device:CPU:0, /device:CPU:1</td>" in page


def test_study_with_only_the_reference(study, tmp_path):
    _, results, _ = study
    only = results[results["cell"] == study_stats.REFERENCE_CELL]
    page = _write(tmp_path, only).read_text()
    assert "No cell was compared with the unbalanced baseline" in page
    assert "No remedy was effective" in page


def test_strip_text_chunks_keeps_the_image():
    fig = matplotlib.pyplot.figure(figsize=(1, 1))
    raw = io.BytesIO()
    fig.savefig(raw, format="png", metadata={"Software": "x", "Title": "y"})
    matplotlib.pyplot.close(fig)
    stripped = report_plots.strip_text_chunks(raw.getvalue())
    assert b"tEXt" in raw.getvalue() and b"tEXt" not in stripped
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(stripped))),
                                  np.asarray(Image.open(raw)))
    with pytest.raises(ValueError, match="signature"):
        report_plots.strip_text_chunks(b"GIF89a")


def test_gallery_pairs_apply_the_augmentation():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, size=(8, 10, 3), dtype=np.uint8) for _ in range(5)]
    pairs = report_html.gallery_pairs(images, "HorizontalFlip", {}, seed=3, count=2)
    assert len(pairs) == 2
    for (original, augmented), image in zip(pairs, images):
        np.testing.assert_array_equal(original, image)
        np.testing.assert_array_equal(augmented, image[:, ::-1])
    noisy = [report_html.gallery_pairs(images, "GaussNoise", {}, seed=3, count=5)
             for _ in range(2)]
    for (_, a), (_, b) in zip(*noisy):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="count"):
        report_html.gallery_pairs(images, "HorizontalFlip", {}, seed=0, count=0)


CHROMIUM = shutil.which("chromium")
_BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                    "(scripts/install_system_packages.sh installs it)")
def test_page_renders_in_headless_chromium(study, tmp_path):
    _, results, summary = study
    path = _write(tmp_path / "study", results, summary, gallery=_gallery())
    url = path.resolve().as_uri()
    dom = subprocess.run(
        [CHROMIUM, *_BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile_dom'}",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=True)
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    count = path.read_text().count("<img ")
    assert 'data-images-ok="true"' in body, body
    assert f'data-images-checked="{count}"' in body
    console = [line for line in dom.stderr.splitlines()
               if "Uncaught" in line or "CONSOLE" in line]
    assert console == []  # No script error, no blocked load (CSP), no console output.
    screenshot = tmp_path / "out.png"
    subprocess.run(
        [CHROMIUM, *_BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile_shot'}",
         "--hide-scrollbars", f"--screenshot={screenshot}", "--window-size=1280,3000", url],
        capture_output=True, timeout=120, check=True)
    with Image.open(screenshot) as picture:
        assert picture.size == (1280, 3000)
        # A rendered page, not a blank one: many distinct colours (text, plots, images).
        assert len(picture.convert("RGB").getcolors(maxcolors=1 << 20)) > 100


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                    "(scripts/install_system_packages.sh installs it)")
def test_image_check_reports_an_undecodable_image(study, tmp_path):
    _, results, summary = study
    path = _write(tmp_path / "study", results, summary)
    page = path.read_text()
    start = page.index('alt="confusion matrices" src="data:image/png;base64,') + len(
        'alt="confusion matrices" src="data:image/png;base64,')
    end = page.index('"', start)
    # Still base64 and still starting with the PNG signature, but truncated: undecodable.
    corrupt = base64.b64encode(base64.b64decode(page[start:end])[:40]).decode()
    path.write_text(page[:start] + corrupt + page[end:])
    dom = subprocess.run(
        [CHROMIUM, *_BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", path.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=True)
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert 'data-images-ok="false"' in body
    assert "confusion matrices" in body
