"""Tests of the study report files built from hand-made results."""

import matplotlib.image
import pandas as pd
import pytest

from augbal_tf import study_power, study_report, study_stats


def _results():
    rows = []
    for ratio in ("4", "natural"):
        for seed, base in enumerate([0.70, 0.72, 0.68]):
            for cell, diff in [("baseline:unbalanced", 0.0), ("baseline:balanced", 0.2),
                               ("aug:FancyPCA", 0.1 + 0.01 * seed),
                               ("aug:GridDropout", -0.05 - 0.01 * seed)]:
                rows.append({"ratio": ratio, "cell": cell, "seed": seed,
                             "test_balanced_accuracy": base + diff})
    return pd.DataFrame(rows)


def test_write_report_files(tmp_path):
    results = _results()
    results.to_csv(tmp_path / "results.csv", index=False)
    summary = study_report.write_report(
        study_report.read_results(tmp_path / "results.csv"), tmp_path,
        command="python -m augbal_tf.study --flagfile=x.flags",
        environment={"packages": {"tensorflow": "2.21.0"}, "devices": ["CPU:0"]},
        title="test study")

    written = pd.read_csv(tmp_path / study_report.SUMMARY_CSV, dtype={"ratio": str})
    assert written["cell"].tolist() == summary["cell"].tolist()
    assert written["verdict"].tolist() == summary["verdict"].tolist()
    assert set(written["ratio"]) == {"4", "natural"}

    text = (tmp_path / study_report.SUMMARY_MD).read_text()
    assert text.startswith("# test study")
    assert "Holm-corrected over all 6 comparisons" in text
    assert "6 comparisons were made (from 24 runs)" in text
    assert "6 have an uncorrected p < 0.05, 6 remain significant after the Holm" in text
    assert "python -m augbal_tf.study --flagfile=x.flags" in text
    assert "- packages.tensorflow: 2.21.0" in text
    assert "## Ratio 4:1" in text and "## Ratio natural" in text
    assert "## Overall ranking of augmentations" in text
    # The natural ratio has no gap to recover; the 4:1 FancyPCA row recovers 0.55.
    fancy_4 = next(line for line in text.splitlines() if line.startswith("| aug:FancyPCA"))
    assert "| 0.55 |" in fancy_4 and "| effective |" in fancy_4

    image = matplotlib.image.imread(tmp_path / study_report.SUMMARY_PNG)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert not list(tmp_path.glob("*.tmp*"))


def test_format_table_lists_every_row_and_the_rule():
    summary = study_stats.summarize(_results())
    table = study_report.format_table(summary)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["ratio", "cell", "seeds"]
    for row in summary.itertuples():
        assert any(line.startswith(row.ratio) and row.cell in line for line in lines[2:])
    assert "Holm-corrected over all 6 comparisons" in table


def test_read_results_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        study_report.read_results(tmp_path / "results.csv")


def test_report_carries_power_columns_and_neutral_sentences(tmp_path):
    results = _results()
    summary = study_report.write_report(results, tmp_path, command="x", title="t")
    written = pd.read_csv(tmp_path / study_report.SUMMARY_CSV, dtype={"ratio": str})
    assert list(written.columns) == (list(study_stats.SUMMARY_COLUMNS)
                                     + list(study_power.POWER_COLUMNS))
    plain = study_stats.summarize(results)
    pd.testing.assert_frame_equal(summary[list(plain.columns)], plain)
    text = (tmp_path / study_report.SUMMARY_MD).read_text()
    assert "## What neutral means" in text
    for sentence in study_power.neutral_sentences(summary).values():
        assert f"- {sentence}" in text
    header = next(line for line in text.splitlines() if line.startswith("| cell"))
    assert header.endswith("| sd diff (pp) | MDE (pp) | seeds needed |")
