"""The study's report as one self-contained web page: `report.html`.

Opens with the answer (the winner, its improvement with its interval, what it
costs), then the forest plot, the heatmap, per-class recall, a gallery of the
winning augmentation on the user's images, confusion matrices, the verdict rule,
the power statement, the environment and the exact commands. Every image is an
inline PNG data URI and the page loads nothing from the network (its Content
Security Policy forbids it); a small inline script checks on load that every
image decoded and records the result on <body> (`data-images-ok`), which the
browser test reads. The same inputs give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import os
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from augbal_tf import fileio, report_data, report_plots, study_metric, study_report, study_stats

REPORT_HTML = "report.html"
# Re-exported so a caller builds the whole page from this module.
gallery_pairs = report_data.gallery_pairs
NOT_COMPUTED = "not computed"
POWER_COLUMNS = ("sd_diff", "mde", "seeds_needed")
SECTIONS = ("answer", "decisions", "screening", "forest", "heatmap", "comparisons", "recall", "gallery",
            "confusion", "rule", "power", "environment", "commands")

# Checks that each image decoded and writes the verdict into the DOM for the test.
_CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var broken = [];
  var images = document.images;
  for (var i = 0; i < images.length; i++) {
    if (!images[i].complete || images[i].naturalWidth === 0) broken.push(images[i].alt);
  }
  document.body.dataset.imagesChecked = String(images.length);
  document.body.dataset.imagesOk = broken.length === 0 ? 'true' : 'false';
  document.body.dataset.brokenImages = JSON.stringify(broken);
  var note = document.getElementById('image-check');
  note.textContent = broken.length === 0 ? 'All ' + images.length + ' images decoded.'
      : 'Images that failed to decode: ' + broken.join(', ');
});
""".strip()

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0;
       color: #1f2328; background: #ffffff; line-height: 1.45; }
main { max-width: 1080px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 1.6em; margin: 0.6em 0 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; margin-top: 1.8em; }
img { max-width: 100%; height: auto; display: block; }
.answer { background: #f6f8fa; border-left: 5px solid #0969da; padding: 10px 16px; }
.answer p.headline { font-size: 1.2em; font-weight: 600; margin: 0.3em 0; }
table { border-collapse: collapse; font-size: 0.88em; margin: 8px 0; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f8fa; padding: 8px 12px; overflow-x: auto; white-space: pre-wrap;
      word-break: break-all; font-size: 0.88em; }
.verdict-effective { color: #1a7f37; font-weight: 600; }
.verdict-ineffective { color: #cf222e; font-weight: 600; }
.verdict-neutral { color: #6e7781; }
.verdict-undetermined { color: #bf8700; }
.gallery { display: flex; flex-wrap: wrap; gap: 14px; }
.gallery figure { margin: 0; border: 1px solid #d0d7de; padding: 6px; }
.gallery .pair { display: flex; gap: 6px; }
.gallery img { width: 112px; image-rendering: pixelated; }
figcaption { font-size: 0.8em; color: #57606a; }
.note { color: #57606a; font-size: 0.9em; }
.warning { color: #cf222e; font-weight: 600; }
""".strip()


def write_html_report(study_dir: str | os.PathLike, *, results: pd.DataFrame,
                      command: str | Sequence[str], environment: Mapping | None = None,
                      summary: pd.DataFrame | None = None, ranking: pd.DataFrame | None = None,
                      alpha: float = study_stats.DEFAULT_ALPHA, confidence: float = 0.95,
                      title: str = "augbal study", winner: str | Mapping | None = None,
                      decisions: Sequence = (), power_sentences: Sequence[str] = (),
                      gallery: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
                      gallery_name: str = "", failures: Sequence[tuple[str, str]] = (),
                      missing: int = 0, sequential=None,
                      metric: study_metric.Metric = study_report.DEFAULT_METRIC, screening=None,
                      undecided: Sequence[str] = ()) -> pathlib.Path:
    """Writes `<study_dir>/report.html` atomically and returns its path.

    Args:
      study_dir: the study folder (report.html is written there).
      results: rows of results.csv (the `workdir` column locates each run's metrics.json).
      command: the exact command, or several (study, final training, evaluation).
      environment: package versions, commit and devices (nested mappings are flattened).
      summary, ranking: `study_stats.summarize` / `overall_ranking` of `results`
        (computed when None); optional power columns sd_diff, mde, seeds_needed.
      alpha, confidence: as given to `summarize`.
      title: the page's heading.
      winner: the chosen cell (`aug:X`), or a mapping with `cell` and optionally
        `ratio`, `cost` (text) and `reason`; `baseline:unbalanced` means no remedy was
        effective. None (a plain study): the answer lists the top effective cells.
      decisions: what was decided and why: strings or (decision, reason) pairs.
      power_sentences: the power statement, one sentence each.
      gallery: (original, augmented) uint8 pairs, e.g. from `gallery_pairs`.
      gallery_name: the augmentation the gallery shows (default: the best cell's).
      failures, missing: cells that raised / have no results, as in study_report.
      sequential: a `study_adaptive.Outcome` (--seeds=auto) whose `annotate` made
        `summary`; its notes (runs spent, why it stopped) are the decisions.
      metric: what the study compares and ranks by (`--metric`).
      screening: a `study_screening_step.Decision` (--screen): its table and the screen.png scatter.
      undecided: ratio labels whose neutral verdicts mean "too few seeds to tell"
        (`study_power.undecided_ratios`): with no effective cell the answer then says
        the study did not decide, instead of recommending the plain baseline.

    Raises:
      ValueError: results with missing columns or duplicate runs (from study_stats).
    """
    study_dir = pathlib.Path(study_dir)
    if summary is None:
        summary = study_stats.summarize(results, metric.column, alpha=alpha, confidence=confidence,
                                        higher_is_better=metric.higher_is_better)
    if ranking is None:
        ranking = study_stats.overall_ranking(summary)
    if sequential is not None and not decisions:
        decisions = sequential.notes
    # Render completely in memory first: a failure here leaves no file at all.
    page = render(results, summary, ranking, study_dir=study_dir, command=command,
                  environment=environment or {}, alpha=alpha, confidence=confidence,
                  title=title, winner=winner,
                  decisions=decisions, power_sentences=power_sentences, gallery=gallery,
                  gallery_name=gallery_name, failures=failures, missing=missing, metric=metric,
                  screening=screening, undecided=undecided)
    study_dir.mkdir(parents=True, exist_ok=True)
    path = study_dir / REPORT_HTML
    fileio.write_atomic(path, page)
    return path


def render(results: pd.DataFrame, summary: pd.DataFrame, ranking: pd.DataFrame, *,
           study_dir: str | os.PathLike, command: str | Sequence[str], environment: Mapping,
           alpha: float, confidence: float, title: str, winner, decisions: Sequence,
           power_sentences: Sequence[str], gallery, gallery_name: str = "",
           failures: Sequence[tuple[str, str]] = (), missing: int = 0,
           metric: study_metric.Metric = study_report.DEFAULT_METRIC, screening=None,
           undecided: Sequence[str] = ()) -> str:
    """The whole page as a string (see `write_html_report` for the arguments)."""
    chosen = report_data.chosen_winner(winner)
    best = report_data.best_cell(summary, chosen)
    pair = report_data.paired_runs(results, best, pathlib.Path(study_dir))
    parts = {
        "answer": _answer(results, summary, ranking, chosen, failures, missing, metric, undecided),
        "decisions": _decisions(decisions),
        "screening": _screening(screening, pathlib.Path(study_dir)),
        "forest": _forest(summary, metric),
        "heatmap": _section("heatmap", "Heatmap", _img(
            report_plots.heatmap(summary, ranking, title, metric),
            "heatmap of paired differences by cell and ratio")),
        "comparisons": _comparisons(summary),
        "recall": _recall(pair),
        "gallery": _gallery(gallery, gallery_name, best),
        "confusion": _confusion(pair),
        "rule": _section("rule", "Verdict rule", _rule_html(
            study_report.rule_text(summary, alpha, confidence, metric))),
        "power": _power(summary, power_sentences),
        "environment": _environment(environment, results),
        "commands": _commands(command),
    }
    script = f"\n{_CHECK_SCRIPT}\n"  # The hash covers exactly the text between the tags.
    script_hash = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    # Nothing may be fetched; only data: images, the inline style and this one script run.
    policy = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
              f"script-src 'sha256-{script_hash}'")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>", f"<style>\n{_CSS}\n</style>", "</head>", "<body>",
        "<main>", f"<h1>{_e(title)}</h1>",
        '<p class="note" id="image-check">Image check has not run (scripts disabled?).</p>',
        *(parts[name] for name in SECTIONS), "</main>",
        f"<script>{script}</script>", "</body>", "</html>", ""])


def _answer(results, summary, ranking, chosen, failures, missing, metric, undecided=()) -> str:
    body = []
    if metric.name != study_metric.DEFAULT:  # The default's page reads as it always has.
        body.append(_rule_html(metric.sentence))
    if missing:
        body.append(f'<p class="warning">Incomplete: {int(missing)} cell(s) of the grid have no '
                    f"results ({len(failures)} failed in the last invocation). Rerunning the "
                    "same command retries them and rewrites this report.</p>")
    if failures:
        body.append("<p>Failed cells:</p><ul>" + "".join(
            f"<li>{_e(name)}: {_e((message.splitlines() or [''])[0])}</li>"
            for name, message in failures) + "</ul>")
    effective = summary[(summary["verdict"] == "effective")
                        & (summary["cell"] != study_stats.UPPER_CELL)]
    if chosen is not None and chosen["cell"] == study_stats.REFERENCE_CELL:
        body.append('<p class="headline">No remedy was effective: use the plain baseline '
                    "(train on the data as it is).</p>")
    elif chosen is not None:
        rows = summary[summary["cell"] == chosen["cell"]]
        if "ratio" in chosen:
            rows = rows[rows["ratio"] == study_stats.ratio_label(chosen["ratio"])]
        label = report_plots.cell_label(chosen["cell"])
        body.append(f'<p class="headline">Recommended: {_e(label)}</p>')
        body += [_improvement(row, results, metric) for row in rows.itertuples()]
        if chosen.get("cost"):
            body.append(f"<p>Cost: {_e(chosen['cost'])}</p>")
    elif len(effective):
        body.append('<p class="headline">Effective cells (best paired difference first):</p>')
        effective = effective.sort_values(["ratio", "mean_difference"], ascending=[True, False],
                                          key=_ratio_key, kind="stable")
        body.append("<ul>" + "".join(f"<li>{_improvement(r, results, metric, inline=True)}</li>"
                                     for r in effective.itertuples()) + "</ul>")
    elif undecided:
        # Nothing significant, but a real effect could have been missed: no recommendation.
        body.append('<p class="headline">Not decided: no cell beat the unbalanced baseline under the '
                    f"verdict rule below, but at {_e(_ratio_list(undecided))} the study had too few seeds "
                    "to tell (see Power).</p>")
        body.append(_largest_difference(summary, results, metric))
    else:
        body.append('<p class="headline">No remedy was effective: use the plain baseline '
                    "(no cell beat the unbalanced baseline under the verdict rule below).</p>")
    if chosen is not None and chosen.get("reason"):
        body.append(f"<p>Why: {_e(chosen['reason'])}</p>")
    if len(ranking):
        top = ranking.iloc[0]
        body.append(f'<p class="note">Best augmentation over all ratios: '
                    f"{_e(report_plots.cell_label(top['cell']))} (mean paired difference "
                    f"{_pp(top['mean_difference'])} pp; verdicts {_e(top['verdicts'])}).</p>")
    return ('<section id="answer" class="answer"><h2>The answer</h2>' + "".join(body)
            + "</section>")


def _ratio_list(ratios: Sequence[str]) -> str:
    """`ratio 10:1` or `ratios 10:1 and 100:1`."""
    titles = [report_plots.ratio_title(ratio).removeprefix("ratio ") for ratio in ratios]
    return ("ratio " if len(titles) == 1 else "ratios ") + (
        titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1])


def _largest_difference(summary: pd.DataFrame, results: pd.DataFrame, metric: study_metric.Metric) -> str:
    """The cell with the largest mean paired difference (what more seeds would test first)."""
    compared = summary[(summary["cell"] != study_stats.REFERENCE_CELL)
                       & (summary["cell"] != study_stats.UPPER_CELL)].dropna(subset=["mean_difference"])
    if compared.empty:
        return ""
    # Positive mean_difference means better for every --metric (study_metric.Metric.sign).
    row = next(compared.loc[[compared["mean_difference"].idxmax()]].itertuples())
    return ("<p>Largest paired difference (the cell more seeds would test first): "
            + _improvement(row, results, metric, inline=True) + "</p>")


def _improvement(row, results: pd.DataFrame, metric: study_metric.Metric, inline: bool = False) -> str:
    interval = ("no interval (fewer than "
                f"{study_stats.MIN_SEEDS} seeds)" if math.isnan(row.ci_low)
                else f"95% interval [{_pp(row.ci_low)}, {_pp(row.ci_high)}] pp")
    where = f"{report_plots.cell_label(row.cell)} at {report_plots.ratio_title(row.ratio)}"
    text = (f"{_e(where)}: "
            f"{_pp(row.mean_difference)} pp {_e(metric.label)} over the unbalanced baseline "
            f"({interval}; {int(row.n_seeds)} seeds; verdict "
            f'<span class="verdict-{_e(row.verdict)}">{_e(row.verdict)}</span>; '
            f"{100 * row.mean:.1f}% {_e(metric.label.removeprefix('test '))}).")
    cost = _time_cost(results, row.cell, row.ratio)
    if cost:
        text += " " + cost
    return text if inline else f"<p>{text}</p>"


def _time_cost(results: pd.DataFrame, cell: str, ratio: str) -> str:
    if "wall_time_s" not in results.columns:
        return ""
    ratios = results["ratio"].map(study_stats.ratio_label)
    times = {name: results.loc[(results["cell"] == name) & (ratios == ratio), "wall_time_s"]
             .astype(float).mean() for name in (cell, study_stats.REFERENCE_CELL)}
    if any(math.isnan(value) for value in times.values()):
        return ""
    own, reference = times[cell], times[study_stats.REFERENCE_CELL]
    change = f" ({100 * (own / reference - 1):+.0f}%)" if reference > 0 else ""
    return (f"Training time: {own:.1f} s per run vs {reference:.1f} s for the unbalanced "
            f"baseline{change}.")


def _decisions(decisions: Sequence) -> str:
    if not decisions:
        return _section("decisions", "Decisions", '<p class="note">No automatic decisions were '
                        "taken: the study ran the grid it was given.</p>")
    items = []
    for decision in decisions:
        if isinstance(decision, str):
            items.append(f"<li>{_e(decision)}</li>")
        else:
            what, why = decision
            items.append(f"<li>{_e(what)} <span class=\"note\">because {_e(why)}</span></li>")
    return _section("decisions", "Decisions", "<ul>" + "".join(items) + "</ul>")


def _screening(screening, study_dir: pathlib.Path) -> str:
    if screening is None:
        return _section("screening", "Screening", '<p class="note">No screening: the grid trained every '
                        "augmentation it was given (--screen=K ranks them by affinity and diversity first).</p>")
    from augbal_tf import study_screening_step  # pylint: disable=import-outside-toplevel  (its file names)

    table = screening.table()
    rows = "".join(f"<tr><td class=\"num\">{r.rank}</td><td>{_e(r.augmentation)}</td><td class=\"num\">"
                   f"{r.affinity:.3f}</td><td class=\"num\">{r.diversity:.3f}</td><td class=\"num\">"
                   f"{r.score:+.2f}</td><td>{'kept' if r.kept else 'cut'}</td></tr>" for r in table.itertuples())
    png = (study_dir / study_screening_step.SCREEN_PNG).read_bytes()
    return _section("screening", "Screening", (
        f"<p>--screen={screening.k}: the grid trained the {screening.k} of {len(table)} augmentations ranked "
        f"best at ratio {_e(screening.ratio)}, seed {screening.seed}. Rule: {_e(study_screening_step.RULE)}.</p>"
        + _img(png, "affinity/diversity scatter, every candidate labelled, the cut marked")
        + "<table><tr><th>rank</th><th>augmentation</th><th>affinity</th><th>diversity</th><th>score</th>"
        "<th>kept</th></tr>" + rows + "</table>"))


def _forest(summary: pd.DataFrame, metric: study_metric.Metric) -> str:
    if not (summary["cell"] != study_stats.REFERENCE_CELL).any():
        return _section("forest", "Paired differences", "<p>No cell was compared with the "
                        "unbalanced baseline.</p>")
    legend = " ".join(f'<span class="verdict-{name}">{name}</span>'
                      for name in ("effective", "ineffective", "neutral", "undetermined"))
    return _section("forest", f"Paired differences from the unbalanced baseline{_e(metric.in_words)}", (
        "<p>Each point is a cell's mean paired difference over seeds; the bar its 95% "
        f"t-interval; the dashed line is zero. Colours: {legend} (hollow: no interval).</p>"
        + _img(report_plots.forest_plot(summary, metric.label), "forest plot of paired differences")))


def _comparisons(summary: pd.DataFrame) -> str:
    header = ("<tr><th>ratio</th><th>cell</th><th>seeds</th><th>mean (%)</th>"
              "<th>diff (pp) [95% interval]</th><th>p (Holm)</th><th>gap</th><th>verdict</th></tr>")
    adaptive = "sequential" in summary.columns  # --seeds=auto: status and look per comparison.
    if adaptive:
        header = header.replace("</tr>", "<th>status</th><th>look (seeds)</th></tr>")
    rows = []
    for r in summary.itertuples():
        interval = "" if math.isnan(r.ci_low) else f" [{_pp(r.ci_low)}, {_pp(r.ci_high)}]"
        diff = "ref" if r.verdict == "reference" else _pp(r.mean_difference) + interval
        rows.append(
            f"<tr><td>{_e(r.ratio)}</td><td>{_e(r.cell)}</td><td class=\"num\">{int(r.n_seeds)}"
            f"</td><td class=\"num\">{100 * r.mean:.1f}</td><td class=\"num\">{diff}</td>"
            f"<td class=\"num\">{'' if math.isnan(r.p_holm) else f'{r.p_holm:.3g}'}</td>"
            f"<td class=\"num\">{'n/a' if math.isnan(r.gap_fraction) else f'{r.gap_fraction:.2f}'}"
            f"</td><td class=\"verdict-{_e(r.verdict)}\">{_e(r.verdict)}</td>"
            + (f"<td>{_e(r.sequential)}</td><td class=\"num\">"
               f"{'' if pd.isna(r.look) else f'{r.look} ({r.look_seeds})'}</td>" if adaptive else "")
            + "</tr>")
    return _section("comparisons", "All comparisons",
                    f"<table>{header}{''.join(rows)}</table>")


def _recall(pair) -> str:
    found, reason = pair
    if found is None:
        return _section("recall", "Per-class recall", f"<p>Not available: {_e(reason)}</p>")
    names, groups = found
    series = {label: np.mean([run["recall"] for run in runs], axis=0)
              for label, runs in groups.items()}
    header = "<tr><th>class</th>" + "".join(f"<th>{_e(label)}</th>" for label in series) + "</tr>"
    rows = "".join("<tr><td>" + _e(c) + "</td>" + "".join(
        f'<td class="num">{100 * values[i]:.1f}</td>' for values in series.values()) + "</tr>"
        for i, c in enumerate(names))
    return _section("recall", "Per-class test recall: best cell vs unbalanced", (
        _img(report_plots.recall_bars(names, series), "per-class recall bars")
        + f"<table>{header}{rows}</table>"))


def _confusion(pair) -> str:
    found, reason = pair
    if found is None:
        return _section("confusion", "Confusion matrices", f"<p>Not available: {_e(reason)}</p>")
    names, groups = found
    matrices = {label: np.sum([run["confusion"] for run in runs], axis=0)
                for label, runs in groups.items()}
    return _section("confusion", "Test confusion matrices: best cell vs unbalanced", (
        "<p>Counts summed over seeds; colour is the row-normalised rate (recall on the "
        "diagonal).</p>" + _img(report_plots.confusion_matrices(names, matrices),
                                "confusion matrices")))


def _gallery(gallery, name: str, best) -> str:
    if not gallery:
        return _section("gallery", "Gallery", '<p class="note">No gallery: no minority images '
                        "were given to the report (augbal advise passes the user's own).</p>")
    if not name and best is not None and study_stats.cell_kind(best[0]) == "augmentation":
        name = report_plots.cell_label(best[0])
    caption = name or "the augmentation"
    figures = []
    for index, (original, augmented) in enumerate(gallery):
        figures.append(
            '<figure><div class="pair">'
            + _img(report_plots.array_png(np.asarray(original), 112), f"original {index + 1}")
            + _img(report_plots.array_png(np.asarray(augmented), 112), f"augmented {index + 1}")
            + f"</div><figcaption>original / augmented {index + 1}</figcaption></figure>")
    return _section("gallery", f"Gallery: {_e(caption)} on your minority images",
                    '<div class="gallery">' + "".join(figures) + "</div>")


def _power(summary: pd.DataFrame, sentences: Sequence[str]) -> str:
    present = [c for c in POWER_COLUMNS if c in summary.columns]
    body = "".join(f"<p>{_e(s)}</p>" for s in sentences)
    if present:
        header = ("<tr><th>ratio</th><th>cell</th>" + "".join(f"<th>{c}</th>" for c in present)
                  + "</tr>")
        rows = "".join(
            f"<tr><td>{_e(r['ratio'])}</td><td>{_e(r['cell'])}</td>"
            + "".join(f'<td class="num">{_power_value(c, r[c])}</td>' for c in present) + "</tr>"
            for _, r in summary[summary["cell"] != study_stats.REFERENCE_CELL].iterrows())
        body += ("<p class=\"note\">sd_diff and mde in percentage points (mde: the smallest "
                 "difference these seeds detect); seeds_needed: seeds for that power.</p>"
                 f"<table>{header}{rows}</table>")
    if not body:
        body = f"<p>Power: {NOT_COMPUTED}.</p>"
    return _section("power", "Power", body)


def _power_value(column: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return NOT_COMPUTED
    if column == "seeds_needed":
        return str(int(value))
    return f"{100 * float(value):.2f}"


def _environment(environment: Mapping, results: pd.DataFrame) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_plain(v))}</td></tr>"
                   for k, v in _flatten(environment))
    seconds = (float(results["wall_time_s"].astype(float).sum())
               if "wall_time_s" in results.columns else math.nan)
    runs = f"<p>Runs: {len(results)}"
    if not math.isnan(seconds):
        runs += f"; their summed wall time: {seconds / 60:.1f} min"
    runs += ".</p>"
    table = f"<table>{rows}</table>" if rows else f"<p>Environment: {NOT_COMPUTED}.</p>"
    return _section("environment", "Environment", runs + table)


def _commands(command) -> str:
    commands = [command] if isinstance(command, str) else list(command)
    return _section("commands", "Commands", "".join(f"<pre>{_e(c)}</pre>" for c in commands))


def _rule_html(text: str) -> str:
    # The rule marks its verdict words **bold** (markdown); escape first, then bold them.
    pieces = _e(text).split("**")
    return "<p>" + "".join(f"<strong>{p}</strong>" if i % 2 else p
                           for i, p in enumerate(pieces)) + "</p>"


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{heading}</h2>{body}</section>'


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _pp(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:+.1f}"


def _ratio_key(column: pd.Series) -> pd.Series:
    if column.name == "ratio":
        return column.map(study_stats.ratio_sort_key)
    return column


def _plain(value) -> str:
    # Lists (devices, classes) read better as "a, b" than as a Python repr.
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def _flatten(mapping: Mapping, prefix: str = ""):
    for key in sorted(mapping, key=str):
        value, name = mapping[key], f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, prefix=f"{name}.")
        else:
            yield name, value
