"""Adaptive seeds: a group-sequential design over all comparisons of a study.

Procedure (what is implemented, and why it controls the familywise error):

* Looks at n = min_seeds, min_seeds + step, ..., max_seeds paired seeds per
  comparison; information fraction t_k = n_k / max_seeds (fixed in advance, so the
  boundaries never depend on the data).
* Each comparison's test is a two-sided group-sequential paired t-test with Lan &
  DeMets (1983) alpha spending: look k rejects when |t_k| >= c_k(a), the paired t
  statistic of its first n_k seeds, with c_k(a) chosen so that under the null the
  probability of a first crossing at or before look k is a*(t_k; a) (the spending
  function below). The c_k are EXACT t-scale boundaries: for normal paired
  differences the joint null distribution of (t_1, ..., t_K) of one growing sample
  does not depend on sigma, so it is simulated once (`null_t_paths`: the looks'
  sums and sums of squares drawn block by block, exactly; a fixed seed, so the
  boundaries are a deterministic function of the looks and the level) and the c_k
  are read off it look by look (`calibrate`), the first look exactly from scipy's t
  quantile. This uses the correlation between looks (the approach of Jennison &
  Turnbull 1991, "Exact calculations for sequential t, chi-square and F tests",
  Biometrika 78, by simulation instead of their numerical integration). Each
  look's count of simulated crossings is aimed 2 Monte-Carlo standard errors below
  its spending target (`_MARGIN_SE`), so the calibration error makes the design
  conservative, not liberal; a look whose target is under `_MIN_CROSSINGS`
  simulated paths (early looks of the O'Brien-Fleming type spend ~1e-6) uses the
  marginal t quantile of its increment instead, which is valid by the union bound.
* Across the m comparisons: Holm's step-down in the group-sequential form of
  Maurer & Bretz (2013, "Multiple testing in group sequential trials using
  graphical approaches", Stat. Biopharm. Res. 5) with equal weights: at each look,
  an open comparison is tested with the boundaries of level alpha / h, h the number
  of comparisons not rejected so far (h = m until the first rejection), repeated
  within the look while rejections free alpha. By their closed-testing argument
  (every intersection of true nulls I is tested by a weighted Bonferroni of
  group-sequential tests at alpha / |I|, each valid whatever the correlation, e.g.
  the shared unbalanced baseline) the familywise error over all looks and
  comparisons is at most alpha. Testing only the open comparisons, only at the
  current look, rejects a subset of what the closed test rejects, so it is valid
  too. The boundaries are made monotone in the level (`holm_boundaries`), which
  the argument needs.
* Spending: Hwang, Shih & DeCani (1990) with gamma = `HSD_GAMMA` = -12: 97 % of the
  level is kept for the last three looks, because before that a t statistic with
  2-5 df cannot reach a boundary unless the effect is huge (alpha spent there is
  lost power). Measured (test_study_sequential.py, 4 comparisons, sd 0.04, effects
  10, 6, 4, -8 points, 3..10 seeds): power 0.941 with 43.3 runs against the fixed
  10-seed grid with Holm's 0.943 with 50; the O'Brien-Fleming type (and gamma -2..-8)
  lost 0.01-0.05 of power on 4 equal effects of 5 points for 1-3 fewer runs.
* Futility: a comparison stops as `futile` when its uncorrected (1 - alpha) t-interval
  is narrower than target_effect and contains 0. Stopping for futility only removes
  chances to reject, so it never increases the type I error (the boundaries are
  "non-binding").
* A comparison still open at the last look ends as `neutral`.

Every decision is a pure function of the recorded differences (replayed look by
look), so a killed study resumed from its results gives the same decisions.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import stats

EFFECTIVE = "effective"
INEFFECTIVE = "ineffective"
FUTILE = "futile"
NEUTRAL = "neutral"
CONTINUE = "continue"
TERMINAL = (EFFECTIVE, INEFFECTIVE, FUTILE, NEUTRAL)

# Calibration: 2^20 simulated null samples; the count of crossings at each look is aimed
# _MARGIN_SE binomial standard errors below its target (for a = 0.05 / 4 that is 1.7 % of a).
_CALIBRATION_PATHS = 1 << 20
_CALIBRATION_SEED = 15
_MARGIN_SE = 2.0
_MIN_CROSSINGS = 100
HSD_GAMMA = -12.0


def obrien_fleming_spending(t: float, alpha: float) -> float:
    """Two-sided alpha spent by information fraction t (Lan-DeMets OBF type).

    Each side spends a(t) = 2 - 2 Phi(z_{1 - a/2} / sqrt(t)) of its one-sided
    a = alpha / 2 (the form of Lan & DeMets 1983, gsDesign `sfLDOF`, ldbounds); the
    two-sided total is twice that, alpha at t = 1.
    """
    if t <= 0.0:
        return 0.0
    one_sided = alpha / 2.0
    side = 2.0 - 2.0 * stats.norm.cdf(stats.norm.ppf(1.0 - one_sided / 2.0) / math.sqrt(t))
    return float(2.0 * side)


def hwang_shih_decani_spending(t: float, alpha: float, gamma: float = HSD_GAMMA) -> float:
    """Alpha spent by fraction t: alpha (1 - e^(-gamma t)) / (1 - e^(-gamma)) (gsDesign `sfHSD`).

    gamma = -4 is close to the O'Brien-Fleming type, gamma = 1 to the Pocock type;
    gamma = 0 is the linear alpha t.
    """
    t = min(max(t, 0.0), 1.0)
    if gamma == 0.0:
        return float(alpha * t)
    return float(alpha * math.expm1(-gamma * t) / math.expm1(-gamma))


@functools.lru_cache(maxsize=4)
def null_t_paths(looks: tuple[int, ...], n_paths: int = _CALIBRATION_PATHS,
                 seed: int = _CALIBRATION_SEED) -> np.ndarray:
    """|t| at each look of `n_paths` simulated null samples (float32, n_paths x len(looks)).

    Exact and cheap at any seed count: between looks only the block's sum (normal)
    and its within-block sum of squares (chi-square, df = block size - 1) matter.
    Read-only (cached).
    """
    rng = np.random.default_rng([seed, *looks])
    out = np.empty((n_paths, len(looks)), dtype=np.float32)
    total = np.zeros(n_paths)
    squares = np.zeros(n_paths)  # Sum of squared deviations from the running mean.
    previous = 0
    for k, n in enumerate(looks):
        size = n - previous
        block = rng.standard_normal(n_paths) * math.sqrt(size)
        if size > 1:
            squares += rng.chisquare(size - 1, n_paths)
        if previous:
            squares += previous * size / n * (block / size - total / previous) ** 2
        total += block
        out[:, k] = np.abs(total) / np.sqrt(n * squares / (n - 1))
        previous = n
    out.setflags(write=False)
    return out


def calibrate(abs_paths: np.ndarray, cumulative: Sequence[float], first: float | None = None,
              margin_se: float = _MARGIN_SE, marginal: Sequence[float] | None = None) -> list[float]:
    """Boundaries c_k with a simulated first-crossing rate of about `cumulative[k]` by look k.

    Args:
      abs_paths: |statistic| per simulated null path (rows) and look (columns).
      cumulative: the alpha spent by each look (increasing).
      first: the first look's boundary when known exactly (then not simulated).
      margin_se: aim each look's crossings this many binomial standard errors low.
      marginal: per look, the boundary whose marginal tail is that look's increment;
        used when the target is under `_MIN_CROSSINGS` paths (valid by the union bound).
    """
    n_paths = abs_paths.shape[0]
    alive = np.ones(n_paths, dtype=bool)
    crossed = 0
    bounds = []
    for k, spent in enumerate(cumulative):
        target = spent * n_paths - margin_se * math.sqrt(spent * n_paths)
        want = int(math.floor(target)) - crossed
        column = abs_paths[:, k]
        if k == 0 and first is not None:
            c = first
        elif want < _MIN_CROSSINGS and marginal is not None:
            c = marginal[k]
        elif want <= 0:
            c = math.inf
        else:
            values = column[alive]
            if want >= values.size:
                c = 0.0
            else:
                # The smallest c letting exactly `want` surviving paths cross (|t| >= c).
                c = float(np.partition(values, values.size - want)[values.size - want])
        bounds.append(float(c))
        hit = alive & (column >= c)
        crossed += int(hit.sum())
        alive &= ~hit
    return bounds


SPENDING: dict[str, Callable[[float, float], float]] = {
    "hwang_shih_decani": hwang_shih_decani_spending,
    "obrien_fleming": obrien_fleming_spending,
}


@functools.lru_cache(maxsize=256)
def t_boundaries(looks: tuple[int, ...], max_seeds: int, level: float,
                 spending: str = "hwang_shih_decani") -> tuple[float, ...]:
    """Exact two-sided t boundaries of one comparison at `level` (see the module docstring)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r} is invalid; allowed: a value in (0, 1)")
    spend = SPENDING[spending]
    cumulative = [spend(n / max_seeds, level) for n in looks]
    increments = np.diff([0.0, *cumulative])
    marginal = [float(stats.t.isf(a / 2.0, n - 1)) if a > 0 else math.inf
                for a, n in zip(increments, looks)]
    return tuple(calibrate(null_t_paths(tuple(looks)), cumulative, first=marginal[0],
                           marginal=marginal))


@dataclasses.dataclass(frozen=True)
class Decision:
    """A comparison's state: `status` in TERMINAL or `continue`, with its look and stats."""
    status: str
    look: int
    n_seeds: int
    mean: float
    t: float
    boundary: float
    ci_low: float
    ci_high: float


@dataclasses.dataclass(frozen=True)
class SequentialDesign:
    """Group-sequential design; see the module docstring for the procedure.

    Attributes:
      alpha: familywise error over all looks and comparisons.
      min_seeds: seeds at the first look (>= 3: the t-interval needs 2 df).
      max_seeds: seeds at the last look.
      step: seeds added per look.
      target_effect: futility width (metric units, 0.02 = 2 points).
      spending: a key of SPENDING.
    """
    alpha: float = 0.05
    min_seeds: int = 3
    max_seeds: int = 10
    step: int = 1
    target_effect: float = 0.02
    spending: str = "hwang_shih_decani"

    def __post_init__(self):
        if self.spending not in SPENDING:
            raise ValueError(f"spending={self.spending!r} is invalid; allowed: {sorted(SPENDING)}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha={self.alpha!r} is invalid; allowed: a value in (0, 1)")
        if self.min_seeds < 3:
            raise ValueError(f"min_seeds={self.min_seeds!r} is invalid; allowed: >= 3")
        if self.max_seeds < self.min_seeds:
            raise ValueError(f"max_seeds={self.max_seeds!r} is invalid; allowed: >= "
                             f"min_seeds={self.min_seeds}")
        if self.step < 1:
            raise ValueError(f"step={self.step!r} is invalid; allowed: >= 1")
        if not self.target_effect > 0:
            raise ValueError(f"target_effect={self.target_effect!r} is invalid; allowed: > 0")

    @property
    def looks(self) -> list[int]:
        """Seeds per comparison at each look (the last is always max_seeds)."""
        seeds = list(range(self.min_seeds, self.max_seeds + 1, self.step))
        if seeds[-1] != self.max_seeds:
            seeds.append(self.max_seeds)
        return seeds

    def boundaries(self, n_comparisons: int) -> list[float]:
        """t boundary per look at level alpha / n_comparisons (before any rejection)."""
        return list(self.holm_boundaries(n_comparisons)[n_comparisons - 1])

    def holm_boundaries(self, n_comparisons: int) -> tuple[tuple[float, ...], ...]:
        """[h - 1]: the t boundaries per look when h comparisons are not yet rejected.

        Level alpha / h, raised where needed so that they never fall as h grows (the
        monotonicity Maurer & Bretz's shortcut needs; raising a boundary keeps it valid).
        """
        if n_comparisons < 1:
            raise ValueError(f"n_comparisons={n_comparisons!r} is invalid; allowed: >= 1")
        looks = tuple(self.looks)
        out = []
        for h in range(1, n_comparisons + 1):
            bounds = t_boundaries(looks, self.max_seeds, self.alpha / h, self.spending)
            out.append(bounds if not out else tuple(map(max, bounds, out[-1])))
        return tuple(out)

    def decide(self, differences_by_comparison: Mapping[str, Sequence[float]],
               look: int) -> dict[str, Decision]:
        """Decisions after look `look` (0-based), replaying every earlier look.

        Args:
          differences_by_comparison: the WHOLE family (every comparison of the study,
            m = its size), each with its paired differences in seed order. A
            comparison needs at least looks[k] values for every look k it reaches
            open; values past its stopping look are ignored.
          look: index into `looks`.

        Raises:
          ValueError: on a bad `look` or too few differences for an open comparison.
        """
        if not 0 <= look < len(self.looks):
            raise ValueError(f"look={look!r} is invalid; allowed: 0..{len(self.looks) - 1}")
        holm = self.holm_boundaries(len(differences_by_comparison))
        values = {name: np.round(np.asarray(v, dtype=np.float64), 12)
                  for name, v in differences_by_comparison.items()}
        out: dict[str, Decision] = {}
        not_rejected = len(values)
        for k in range(look + 1):
            current = {name: self._statistics(name, x, k) for name, x in values.items()
                       if name not in out or out[name].status == CONTINUE}
            undecided = dict(current)
            while True:  # Holm: each rejection lowers the others' boundaries (Maurer & Bretz 2013).
                bound = holm[not_rejected - 1][k]
                rejected = {name: s for name, s in undecided.items() if abs(s[2]) >= bound}
                for name, (mean, _, t_stat, low, high) in rejected.items():
                    status = EFFECTIVE if t_stat > 0 else INEFFECTIVE
                    out[name] = Decision(status, k, self.looks[k], mean, t_stat, bound, low, high)
                    del undecided[name]
                not_rejected -= len(rejected)
                if not rejected or not undecided:
                    break
            for name, (mean, width, t_stat, low, high) in undecided.items():
                if width < self.target_effect and low <= 0.0 <= high:
                    status = FUTILE
                elif k == len(self.looks) - 1:
                    status = NEUTRAL
                else:
                    status = CONTINUE
                bound = holm[max(not_rejected, 1) - 1][k]
                out[name] = Decision(status, k, self.looks[k], mean, t_stat, bound, low, high)
        return {name: out[name] for name in values}

    def next_round(self, differences_by_comparison: Mapping[str, Sequence[float]],
                   look: int) -> dict[str, int]:
        """{comparison: seeds it must have at look + 1} for the still-open ones."""
        decisions = self.decide(differences_by_comparison, look)
        if look + 1 >= len(self.looks):
            return {}
        return {name: self.looks[look + 1] for name, d in decisions.items()
                if d.status == CONTINUE}

    def _statistics(self, name: str, values: np.ndarray, k: int) -> tuple[float, ...]:
        """(mean, interval width, t, interval low, interval high) of the first looks[k] values."""
        n = self.looks[k]
        if values.size < n:
            raise ValueError(f"comparison {name!r} has {values.size} differences; look {k} "
                             f"needs {n}")
        x = values[:n]
        mean = float(x.mean())
        sd = float(x.std(ddof=1))
        if sd == 0.0:
            t_stat = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
            return mean, 0.0, t_stat, mean, mean
        t_stat = mean / (sd / math.sqrt(n))
        half = float(stats.t.ppf(1.0 - self.alpha / 2.0, n - 1)) * sd / math.sqrt(n)
        return mean, 2.0 * half, t_stat, mean - half, mean + half
