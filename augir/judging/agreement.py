"""Agreement between a judge and human grades: accuracy, Cohen's kappa, quadratic-weighted kappa, Kendall's tau.

Accuracy and the kappas compare discrete grades (the judge's argmax); Kendall's tau (tau-b, ties allowed)
compares the judge's score (its expected grade, or a cosine) with the human grade.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def agreement(human: Sequence[int], judged: Sequence[int], scores: Sequence[float]) -> dict[str, float]:
    from scipy.stats import kendalltau
    from sklearn.metrics import accuracy_score, cohen_kappa_score

    tau = kendalltau(scores, human).statistic
    return {
        "examples": len(human),
        "accuracy": float(accuracy_score(human, judged)),
        "kappa": float(cohen_kappa_score(human, judged)),
        "quadratic_kappa": float(cohen_kappa_score(human, judged, weights="quadratic")),
        "kendall_tau": float(tau) if np.isfinite(tau) else 0.0,  # constant scores: no agreement, not NaN
    }


def fit_thresholds(scores: Sequence[float], grades: Sequence[int], max_grade: int) -> list[float]:
    """Cut points that turn a score (a cosine) into grades 0..max_grade with judge-train's grade proportions."""
    proportions = np.bincount(np.asarray(grades), minlength=max_grade + 1) / len(grades)
    return [float(cut) for cut in np.quantile(np.asarray(scores), np.cumsum(proportions)[:-1])]


def grades_from_scores(scores: Sequence[float], thresholds: Sequence[float]) -> list[int]:
    return [int(grade) for grade in np.searchsorted(np.asarray(thresholds), np.asarray(scores), side="right")]
