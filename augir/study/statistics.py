"""How sure a study is: means and intervals over replicate seeds, deltas, paired tests, multiple-comparison correction.

Every number comes from scipy or statsmodels; this module only decides what is compared with what:
- A cell's score is the mean over its seeds of the mean over queries; its 95% interval is the t interval over seeds
  (`interval="t"`, the default; none with one seed) or a bootstrap over queries of the per-query scores averaged
  over seeds (`interval="bootstrap"`, scipy's BCa; it leaves the seed-to-seed spread out, so it is narrower).
- A delta (augmented minus the same retriever without augmentation) pairs the seeds both cells share: its interval
  is scipy's `ttest_rel(...).confidence_interval()` over those seeds.
- Its p-value is a paired test over queries of the per-query scores averaged over seeds (t-test or Wilcoxon).
- The p-values of one report are corrected together (Holm by default, Benjamini-Hochberg, or none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
IntervalMethod = Literal["t", "bootstrap"]
Correction = Literal["none", "holm", "bh"]
PairedTest = Literal["t-test", "wilcoxon"]
_STATSMODELS_METHOD = {"holm": "holm", "bh": "fdr_bh"}


@dataclass(frozen=True)
class Estimate:
    """A mean with its interval (None where it cannot be computed: one seed, say) and how many seeds it rests on."""

    mean: float
    low: float | None
    high: float | None
    seeds: int


def per_query_mean(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per-query scores averaged over seeds (every run must score the same queries)."""
    queries = sorted(runs[0])
    if any(sorted(run) != queries for run in runs):
        raise ValueError("the replicate runs do not score the same queries")
    return {query: float(np.mean([run[query] for run in runs])) for query in queries}


def cell_estimate(seed_means: Sequence[float], per_query: Sequence[Mapping[str, float]] | None = None,
                  interval: IntervalMethod = "t", random_state: int = 0) -> Estimate:
    """A cell's mean over seeds and its 95% interval; `per_query` (one mapping per seed) is needed for bootstrap."""
    from scipy import stats

    values = np.asarray(seed_means, dtype=float)
    mean = float(values.mean())
    if interval == "bootstrap":
        if not per_query:
            raise ValueError("a bootstrap interval needs the per-query scores")
        averaged = np.asarray(list(per_query_mean(per_query).values()))
        if len(averaged) < 2 or np.all(averaged == averaged[0]):
            return Estimate(mean, None, None, len(values))
        result = stats.bootstrap((averaged,), np.mean, confidence_level=CONFIDENCE, n_resamples=BOOTSTRAP_RESAMPLES,
                                 method="BCa", random_state=random_state)
        return Estimate(mean, float(result.confidence_interval.low), float(result.confidence_interval.high),
                        len(values))
    if len(values) < 2:
        return Estimate(mean, None, None, len(values))
    if np.all(values == values[0]):
        return Estimate(mean, mean, mean, len(values))
    low, high = stats.t.interval(CONFIDENCE, df=len(values) - 1, loc=mean, scale=stats.sem(values))
    return Estimate(mean, float(low), float(high), len(values))


def delta_estimate(treated: Mapping[int, float], reference: Mapping[int, float]) -> Estimate:
    """Treated minus reference, paired by seed (seed -> that replicate's mean); the interval is over shared seeds."""
    from scipy import stats

    shared = sorted(set(treated) & set(reference))
    if not shared:
        raise ValueError("the two cells share no seed")
    a = np.asarray([treated[s] for s in shared], dtype=float)
    b = np.asarray([reference[s] for s in shared], dtype=float)
    mean = float((a - b).mean())
    if len(shared) < 2:
        return Estimate(mean, None, None, len(shared))
    if np.all(a - b == (a - b)[0]):
        return Estimate(mean, mean, mean, len(shared))
    ci = stats.ttest_rel(a, b).confidence_interval(CONFIDENCE)
    return Estimate(mean, float(ci.low), float(ci.high), len(shared))


def paired_p_value(treated: Mapping[str, float], reference: Mapping[str, float], test: PairedTest = "t-test"
                   ) -> float | None:
    """Paired test over the queries both score (seed-averaged scores); None when every query scores the same."""
    from scipy import stats

    queries = sorted(set(treated) & set(reference))
    a = np.asarray([treated[q] for q in queries], dtype=float)
    b = np.asarray([reference[q] for q in queries], dtype=float)
    if len(queries) < 2 or np.array_equal(a, b):
        return None
    if test == "wilcoxon":
        return float(stats.wilcoxon(a, b).pvalue)
    return float(stats.ttest_rel(a, b).pvalue)


def corrected_p_values(p_values: Sequence[float | None], correction: Correction = "holm") -> list[float | None]:
    """Adjusted p-values over one report's comparisons (None stays None and is not counted as a comparison)."""
    if correction == "none":
        return list(p_values)
    from statsmodels.stats.multitest import multipletests

    present = [i for i, p in enumerate(p_values) if p is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    if present:
        values = multipletests([p_values[i] for i in present], method=_STATSMODELS_METHOD[correction])[1]
        for i, value in zip(present, values):
            adjusted[i] = float(value)
    return adjusted
