"""Replicates in the matrix: cells aggregate their seeds, deltas pair them, p-values are corrected together.

Hand-made per-query scores; every expected number is computed here by hand or by scipy/statsmodels directly.
"""

import csv
import io
import json
import math

import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from augir.cli import main
from augir.errors import AugirError
from augir.study.experiments import Experiment, same_settings, save_experiments, select_grid
from augir.study.grid import load_grid
from augir.study.matrix import build_matrix
from augir.study.report import csv_text, markdown

QUERIES = ["q1", "q2", "q3", "q4"]
# (model, augmented pairs, train seed) -> per-query nDCG@10
SCORES = {
    ("l2", 0, 0): [0.2, 0.4, 0.1, 0.3],
    ("l2", 0, 1): [0.3, 0.4, 0.2, 0.3],
    ("l2", 0, 2): [0.2, 0.5, 0.1, 0.2],
    ("l2", 100, 0): [0.4, 0.5, 0.1, 0.4],
    ("l2", 100, 1): [0.4, 0.6, 0.3, 0.3],
    ("l2", 100, 2): [0.3, 0.5, 0.3, 0.4],
    ("l6", 0, 0): [0.5, 0.5, 0.4, 0.6],
    ("l6", 0, 1): [0.6, 0.5, 0.4, 0.5],
    ("l6", 0, 2): [0.5, 0.6, 0.4, 0.6],
    ("l6", 100, 0): [0.6, 0.5, 0.4, 0.6],
    ("l6", 100, 1): [0.5, 0.6, 0.5, 0.5],
    ("l6", 100, 2): [0.6, 0.6, 0.4, 0.6],
}
GENERATION_SECONDS = 120.0


def _experiment(model: str, pairs: int, seed: int, scores: list[float], source: str = "local:/runner/data/sf"
                ) -> Experiment:
    params = {
        "download": {"sources": {"sf": source}},
        "augment": {"dataset": "sf", "generator": "smollm2-135m", "strategy": "claim", "num_passages": 200, "seed": 0},
        "train": {"datasets": ["sf"], "model": model, "augmented_pairs": pairs, "epochs": 1, "seed": seed},
        "evaluate": {"datasets": ["sf"]},
    }
    per_query = {"ndcg_at_10": dict(zip(QUERIES, scores)), "recall_at_100": dict(zip(QUERIES, scores)),
                 "mrr_at_10": dict(zip(QUERIES, scores))}
    mean = math.fsum(scores) / len(scores)
    metrics = {
        "metrics/sf.json": {"ndcg_at_10": mean, "recall_at_100": mean, "mrr_at_10": mean, "num_queries": 4},
        "metrics/train.json": {"pairs": 50 + pairs, "seconds": 10.0 + seed},
        "metrics/augment.json": {"generation_seconds": GENERATION_SECONDS, "new_tokens": 2400, "generated": 200},
        "metrics/encode/sf.json": {"seconds": 3.0},
    }
    name = f"{model}-{pairs}-s{seed}"
    files = {"data/eval/sf/per_query.json": json.dumps(per_query)}
    return Experiment(name, name, params, metrics, lambda path: files.get(path))


@pytest.fixture
def experiments() -> list[Experiment]:
    return [_experiment(model, pairs, seed, scores) for (model, pairs, seed), scores in SCORES.items()]


def _mean(values):
    return math.fsum(values) / len(values)


def _seed_means(model: str, pairs: int) -> list[float]:
    return [_mean(SCORES[(model, pairs, seed)]) for seed in range(3)]


def _seed_averaged(model: str, pairs: int) -> list[float]:
    return [_mean([SCORES[(model, pairs, seed)][i] for seed in range(3)]) for i in range(len(QUERIES))]


def test_a_cell_is_the_mean_of_its_seeds_with_the_t_interval(experiments):
    matrix = build_matrix(experiments)
    cells = {(row.retriever, row.scale): row for row in matrix.rows}
    assert len(cells) == 4 and all(row.seeds == 3 for row in cells.values())
    for (model, pairs), row in cells.items():
        means = _seed_means(model, pairs)
        assert row.values["sf"]["ndcg_at_10"] == pytest.approx(_mean(means), abs=1e-15)
        low, high = stats.t.interval(0.95, df=2, loc=_mean(means), scale=stats.sem(means))
        assert (row.estimate["sf"].low, row.estimate["sf"].high) == pytest.approx((low, high), rel=1e-12)


def test_the_delta_pairs_training_seeds_and_the_test_uses_seed_averaged_queries(experiments):
    matrix = build_matrix(experiments)
    row = next(r for r in matrix.rows if (r.retriever, r.scale) == ("l2", 100))
    treated, reference = _seed_means("l2", 100), _seed_means("l2", 0)
    differences = [a - b for a, b in zip(treated, reference)]
    assert row.delta["sf"].mean == pytest.approx(_mean(differences), abs=1e-15)
    interval = stats.ttest_rel(treated, reference).confidence_interval(0.95)
    assert (row.delta["sf"].low, row.delta["sf"].high) == pytest.approx((interval.low, interval.high), rel=1e-12)
    expected = stats.ttest_rel(_seed_averaged("l2", 100), _seed_averaged("l2", 0)).pvalue
    assert row.p_value["sf"] == pytest.approx(expected, rel=1e-12)
    assert row.reference == "l2-0-s0" and row.synthetic_pairs == 100


@pytest.mark.parametrize(("correction", "method"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_p_values_are_corrected_over_the_reports_comparisons(experiments, correction, method):
    matrix = build_matrix(experiments, correction=correction)
    augmented = [r for r in matrix.rows if r.kind == "augmented"]
    raw = [stats.ttest_rel(_seed_averaged(m, 100), _seed_averaged(m, 0)).pvalue for m in ("l2", "l6")]
    expected = multipletests(raw, method=method)[1]
    assert [r.retriever for r in augmented] == ["l2", "l6"]
    assert [r.p_corrected["sf"] for r in augmented] == pytest.approx(list(expected), rel=1e-12)
    assert [r.p_value["sf"] for r in augmented] == pytest.approx(raw, rel=1e-12)  # raw p-values beside them


def test_no_correction_leaves_the_raw_p_values_and_drops_the_column(experiments):
    matrix = build_matrix(experiments, correction="none")
    assert all(r.p_corrected["sf"] == r.p_value["sf"] for r in matrix.rows if r.kind == "augmented")
    assert "p (Holm)" not in markdown(matrix, {}) and "p (uncorrected)" not in markdown(matrix, {})
    with pytest.raises(AugirError, match="unknown correction 'bonferoni'"):
        build_matrix(experiments, correction="bonferoni")


def test_a_bootstrap_interval_is_scipys_bca_over_seed_averaged_queries(experiments):
    matrix = build_matrix(experiments, interval="bootstrap")
    row = next(r for r in matrix.rows if (r.retriever, r.scale) == ("l2", 100))
    expected = stats.bootstrap((_seed_averaged("l2", 100),), lambda x, axis=-1: x.mean(axis=axis),
                               confidence_level=0.95, n_resamples=2000, method="BCa", random_state=0)
    assert row.estimate["sf"].low == pytest.approx(expected.confidence_interval.low, rel=1e-9)
    assert row.estimate["sf"].high == pytest.approx(expected.confidence_interval.high, rel=1e-9)


def test_costs_come_from_the_stages_metrics_pro_rata_and_baselines_generate_nothing(experiments):
    matrix = build_matrix(experiments)
    rows = {(r.retriever, r.scale): r for r in matrix.rows}
    # 100 of the 200 generated pairs: half the generation's seconds and tokens
    assert rows[("l2", 100)].cost == {"generation_seconds": GENERATION_SECONDS / 2, "generation_tokens": 1200.0,
                                      "train_seconds": 11.0, "encode_seconds": 3.0}
    assert rows[("l2", 0)].cost["generation_seconds"] == 0.0 and rows[("l2", 0)].cost["train_seconds"] == 11.0
    table = list(csv.DictReader(io.StringIO(csv_text(matrix))))
    augmented = next(r for r in table if r["kind"] == "augmented" and r["retriever"] == "l2")
    assert augmented["generation_seconds"] == "60.0" and augmented["seeds"] == "3"
    assert augmented["experiment"] == "l2-100-s0 l2-100-s1 l2-100-s2"


def test_a_cell_of_one_seed_is_its_experiments_numbers_exactly(experiments):
    single = [e for e in experiments if e.params["train"]["seed"] == 0]
    matrix = build_matrix(single)
    row = next(r for r in matrix.rows if (r.retriever, r.scale) == ("l2", 100))
    assert row.values["sf"]["ndcg_at_10"] == single[1].metrics["metrics/sf.json"]["ndcg_at_10"]
    assert row.delta["sf"].low is None and row.estimate["sf"].low is None  # one seed: no interval


def test_a_cell_without_a_shared_seed_has_no_delta_and_says_so(experiments):
    kept = [e for e in experiments if not (e.params["train"]["augmented_pairs"] == 0 and e.params["train"]["model"]
                                           == "l2" and e.params["train"]["seed"] != 2)]
    for exp in kept:
        if exp.params["train"]["model"] == "l2" and exp.params["train"]["augmented_pairs"] == 100:
            exp.params["train"]["seed"] += 10  # 10, 11, 12: none shared with the baseline's seed 2
    matrix = build_matrix(kept)
    row = next(r for r in matrix.rows if (r.retriever, r.scale) == ("l2", 100))
    assert row.delta["sf"] is None
    assert any("shares no training seed" in note for note in matrix.notes)


def test_saved_experiments_from_another_machine_match_the_grid_by_dataset_name(experiments, tmp_path, monkeypatch):
    """Regression: experiments saved on one machine record its absolute `local:` paths; a clone elsewhere found none
    of them in the grid ("no finished experiments with metrics")."""
    params = tmp_path / "repo" / "params.yaml"
    params.parent.mkdir()
    params.write_text("download: {sources: {sf: 'local:../datasets/sf'}}\n"
                      "augment: {dataset: sf, generator: smollm2-135m, strategy: claim, num_passages: 200}\n"
                      "train: {datasets: [sf], model: l2, augmented_pairs: 0, epochs: 1}\n"
                      "evaluate: {datasets: [sf]}\n")
    (tmp_path / "datasets" / "sf").mkdir(parents=True)
    grid_file = tmp_path / "repo" / "g.yaml"
    grid_file.write_text("base: {download.sources: {sf: 'local:../datasets/sf'}, augment.num_passages: 200}\n"
                         "axes: {train.model: [l2, l6], train.augmented_pairs: [100]}\nseeds: [0, 1, 2]\n")
    grid = load_grid(grid_file, params)
    selected = select_grid(experiments, grid, params.parent)
    assert len(selected) == 12  # every one, though recorded as local:/runner/data/sf
    assert not same_settings({"download.sources": {"sf": "local:/runner/data/other"}},
                             {"download.sources": {"sf": "local:/x/sf"}})

    save_experiments(experiments, tmp_path / "saved")
    monkeypatch.chdir(params.parent)  # another directory than the one that saved them
    assert main(["report", "--from", str(tmp_path / "saved"), "--grid", str(grid_file), "--out", "r"]) == 0
    assert (params.parent / "r" / "matrix.csv").read_text() == csv_text(build_matrix(experiments, title="g"))


def _with_negatives(exp: Experiment, count: int, judge: str | None, scores: list[float], name: str) -> Experiment:
    params = json.loads(json.dumps(exp.params))
    params["negatives"] = {"count": count, "judge": judge}
    params["judge"] = {"enabled": judge is not None}
    per_query = {measure: dict(zip(QUERIES, scores)) for measure in ("ndcg_at_10", "recall_at_100", "mrr_at_10")}
    metrics = json.loads(json.dumps(exp.metrics))
    mean = math.fsum(scores) / len(scores)
    metrics["metrics/sf.json"].update(ndcg_at_10=mean, recall_at_100=mean, mrr_at_10=mean)
    files = {"data/eval/sf/per_query.json": json.dumps(per_query)}
    return Experiment(name, name, params, metrics, lambda path: files.get(path))


def test_hard_negatives_and_the_judge_are_compared_with_the_same_retriever_without_them():
    """grids/negatives.yaml: the arms differ in negatives.* and judge.* only, and each is tested against the cell
    without hard negatives (real pairs only), paired over queries, with no generator shown."""
    plain = [_experiment("l2", 0, 0, SCORES[("l2", 0, 0)])]
    plain[0].params["negatives"] = {"count": 0, "judge": None}
    plain[0].params["judge"] = {"enabled": False}
    mined = _with_negatives(plain[0], 1, None, [0.3, 0.5, 0.2, 0.3], "mined")
    judged = _with_negatives(plain[0], 1, "models/judge", [0.4, 0.4, 0.3, 0.5], "judged")
    matrix = build_matrix(plain + [mined, judged], correction="none")
    rows = {row.experiment: row for row in matrix.rows}
    assert rows[plain[0].name].kind == "no-augmentation"
    assert rows["mined"].sources == "real + mined negatives" and rows["judged"].sources == "real + mined negatives (judged)"
    for name, scores in (("mined", [0.3, 0.5, 0.2, 0.3]), ("judged", [0.4, 0.4, 0.3, 0.5])):
        row = rows[name]
        assert row.kind == "augmented" and row.reference == plain[0].name and row.generator is None
        assert row.p_value["sf"] == pytest.approx(stats.ttest_rel(scores, SCORES[("l2", 0, 0)]).pvalue, rel=1e-12)
        assert row.delta["sf"].mean == pytest.approx(_mean(scores) - _mean(SCORES[("l2", 0, 0)]), abs=1e-15)


def test_an_experiment_saved_before_a_param_existed_counts_at_its_default():
    """Regression (cpu-study v2): baselines saved before train.loss, encode.backend and faiss index names existed
    found no pair in cells saved after, which record train.loss: mnrl, encode.backend: torch, encode.index: Flat."""
    old = [_experiment("l2", 0, seed, SCORES[("l2", 0, seed)]) for seed in range(3)]
    for exp in old:
        exp.params["encode"] = {"index": "flat_ip"}
    new = [_experiment("l2", 100, seed, SCORES[("l2", 100, seed)]) for seed in range(2)]
    # the third replicate of the new cell was saved in the older sitting, without the new params
    new.append(_experiment("l2", 100, 2, SCORES[("l2", 100, 2)]))
    for exp in new[:2]:
        exp.params["train"].update(loss="mnrl", mini_batch_size=32)
        exp.params["encode"] = {"index": "Flat", "backend": "torch"}
        exp.params["runtime"] = {"train_processes": 1}
    matrix = build_matrix(old + new)
    assert not [note for note in matrix.notes if "BM25" not in note]
    row = next(r for r in matrix.rows if r.kind == "augmented")
    assert row.reference == "l2-0-s0" and row.seeds == 3 and not row.settings
    expected = stats.ttest_rel(_seed_averaged("l2", 100), _seed_averaged("l2", 0)).pvalue
    assert row.p_value["sf"] == pytest.approx(expected, rel=1e-12)


def test_a_param_set_away_from_its_default_is_still_a_different_retriever():
    baseline = _experiment("l2", 0, 0, SCORES[("l2", 0, 0)])  # saved before train.loss existed
    cached = _experiment("l2", 100, 0, SCORES[("l2", 100, 0)])
    cached.params["train"]["loss"] = "cached_mnrl"
    matrix = build_matrix([baseline, cached])
    assert "l2-100-s0: no experiment of the same retriever without augmentation, so no delta" in matrix.notes


def test_an_experiment_read_twice_is_saved_once(experiments, tmp_path, monkeypatch):
    """Regression (cpu-study v2): experiments both still in DVC and already saved (`--from saved --dvc`) were saved
    twice, as two folders of one revision."""
    save_experiments(experiments, tmp_path / "saved")
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--from", "saved", "--from", "saved", "--out", "r", "--save-experiments", "again"]) == 0
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == sorted(p.name for p in (tmp_path / "saved").iterdir())


def test_two_augmented_cells_compared_head_to_head_pair_seeds_and_queries():
    from augir.study.matrix import compare_cells

    experiments = [_experiment(m, p, s, SCORES[(m, p, s)]) for (m, p, s) in SCORES]
    matrix = build_matrix(experiments)
    l2, l6 = ([r for r in matrix.rows if r.kind == "augmented" and r.retriever == name][0] for name in ("l2", "l6"))
    [result] = compare_cells(l6, l2, matrix.datasets)
    by_seed = {m: [math.fsum(SCORES[(m, 100, s)]) / 4 for s in range(3)] for m in ("l2", "l6")}
    expected = stats.ttest_rel(by_seed["l6"], by_seed["l2"])
    assert result.delta.mean == pytest.approx(sum(a - b for a, b in zip(by_seed["l6"], by_seed["l2"])) / 3)
    ci = expected.confidence_interval(0.95)
    assert (result.delta.low, result.delta.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    per_query = {m: [sum(SCORES[(m, 100, s)][q] for s in range(3)) / 3 for q in range(4)] for m in ("l2", "l6")}
    assert result.p_value == pytest.approx(stats.ttest_rel(per_query["l6"], per_query["l2"]).pvalue)
