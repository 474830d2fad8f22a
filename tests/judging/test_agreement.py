import math

import pytest
from scipy.stats import kendalltau
from sklearn.metrics import cohen_kappa_score

from augir.judging.agreement import agreement, fit_thresholds, grades_from_scores

HUMAN = [0, 1, 2, 2]
JUDGED = [0, 1, 1, 2]
SCORES = [0.1, 0.6, 1.2, 1.9]


def test_agreement_by_hand():
    values = agreement(HUMAN, JUDGED, SCORES)
    assert values["examples"] == 4
    assert values["accuracy"] == 0.75
    # p_o = 3/4, p_e = (1*1 + 1*2 + 2*1)/16 = 5/16
    assert values["kappa"] == pytest.approx((0.75 - 5 / 16) / (1 - 5 / 16))
    # weighted disagreement: observed 1/4 (one pair off by 1), expected 20/16
    assert values["quadratic_kappa"] == pytest.approx(1 - 0.25 / 1.25)
    # 5 concordant pairs, 1 tied in the human grades: tau-b = 5 / sqrt(5 * 6)
    assert values["kendall_tau"] == pytest.approx(5 / math.sqrt(30))


def test_agreement_matches_scipy_and_sklearn():
    human = [0, 3, 1, 2, 2, 0, 1, 3, 0, 2]
    judged = [0, 2, 1, 2, 3, 1, 0, 3, 0, 1]
    scores = [0.2, 2.5, 1.1, 1.8, 2.6, 0.9, 0.4, 2.9, 0.1, 1.2]
    values = agreement(human, judged, scores)
    assert values["kappa"] == pytest.approx(cohen_kappa_score(human, judged))
    assert values["quadratic_kappa"] == pytest.approx(cohen_kappa_score(human, judged, weights="quadratic"))
    assert values["kendall_tau"] == pytest.approx(kendalltau(scores, human).statistic)


def test_constant_scores_have_tau_zero_not_nan():
    assert agreement([0, 1, 1], [0, 0, 0], [0.5, 0.5, 0.5])["kendall_tau"] == 0.0


def test_cosine_thresholds_keep_train_proportions():
    thresholds = fit_thresholds([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1], max_grade=1)
    assert thresholds == [pytest.approx(0.25)]
    assert grades_from_scores([0.0, 0.25, 0.3, 0.9], thresholds) == [0, 1, 1, 1]
