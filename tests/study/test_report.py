"""`augir report` on hand-made experiments: deltas, paired tests (checked against scipy), tables, plots, dvc plots."""

import csv
import json
import math
import shutil
from pathlib import Path

import pytest
import yaml
from scipy import stats

from augir.cli import main
from augir.errors import AugirError
from augir.study.grid import load_grid
from augir.study.experiments import experiments_from_exp_show, experiments_from_folder, save_experiments, select_grid
from augir.study.matrix import build_matrix
from augir.study.report import csv_text, write_report
from augir.study.statistics import paired_p_value

REPO = Path(__file__).resolve().parents[2]
SF_QUERIES = ["q1", "q2", "q3", "q4", "q5", "q6"]
CF_QUERIES = ["c1", "c2", "c3", "c4"]

# name -> (model, epochs, pairs, generator, strategy, train pairs, sf nDCG per query, cf nDCG per query)
EXPERIMENTS = {
    "zs-l2": ("minilm-l2", 0, 0, "smollm2-135m", "claim", 0, [0.1, 0.0, 0.2, 0.0, 0.1, 0.0], [0.3, 0.1, 0.0, 0.2]),
    "na-l2": ("minilm-l2", 1, 0, "smollm2-135m", "claim", 900, [0.3, 0.2, 0.4, 0.1, 0.2, 0.1], [0.4, 0.2, 0.1, 0.2]),
    "c500-l2": ("minilm-l2", 1, 500, "smollm2-135m", "claim", 1390, [0.5, 0.3, 0.6, 0.2, 0.3, 0.2], [0.4, 0.1, 0.1, 0.3]),
    "c2000-l2": ("minilm-l2", 1, 2000, "smollm2-135m", "claim", 2850, [0.6, 0.4, 0.6, 0.3, 0.5, 0.2], [0.3, 0.2, 0.0, 0.2]),
    "q500-l2": ("minilm-l2", 1, 500, "smollm2-135m", "question", 1395, [0.4, 0.2, 0.5, 0.1, 0.3, 0.1], [0.4, 0.3, 0.1, 0.2]),
    "g500-l2": ("minilm-l2", 1, 500, "gemma3-270m", "claim", 1380, [0.5, 0.4, 0.6, 0.2, 0.2, 0.3], [0.5, 0.3, 0.1, 0.3]),
    "na-l6": ("minilm-l6", 1, 0, "smollm2-135m", "claim", 900, [0.7, 0.6, 0.8, 0.5, 0.6, 0.4], [0.5, 0.4, 0.3, 0.3]),
    "c500-l6": ("minilm-l6", 1, 500, "smollm2-135m", "claim", 1390, [0.7, 0.5, 0.8, 0.6, 0.6, 0.3], [0.5, 0.3, 0.3, 0.3]),
}
BM25 = {"sf": [0.6, 0.5, 0.7, 0.4, 0.6, 0.5], "cf": [0.4, 0.4, 0.2, 0.3]}


def _params(model, epochs, pairs, generator, strategy) -> dict:
    return {
        "download": {"sources": {"sf": "local:/data/sf", "cf": "local:/data/cf"}, "seed": 0},
        "augment": {"dataset": "sf", "generator": generator, "strategy": strategy,
                    "num_passages": 2000 if (generator, strategy) == ("smollm2-135m", "claim") else 500},
        "train": {"datasets": ["sf"], "model": model, "augmented_pairs": pairs, "epochs": epochs, "learning_rate": 5e-05},
        "evaluate": {"datasets": ["sf", "cf"], "split": "test"},
    }


def _record(values: list[float], queries: list[str]) -> tuple[dict, dict]:
    per_query = {
        "ndcg_at_10": dict(zip(queries, values)),
        "recall_at_100": {q: min(1.0, 2 * v) for q, v in zip(queries, values)},
        "mrr_at_10": {q: v / 2 for q, v in zip(queries, values)},
    }
    aggregate = {key: math.fsum(scores.values()) / len(queries) for key, scores in per_query.items()}
    return {**aggregate, "num_queries": len(queries), "self_hits_removed": True, "split": "test", "top_k": 1000}, per_query


def _write(folder: Path, relative: str, data) -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if relative.endswith(".json") else yaml.safe_dump(data))


@pytest.fixture
def experiments_dir(tmp_path) -> Path:
    root = tmp_path / "experiments"
    for name, (model, epochs, pairs, generator, strategy, train_pairs, sf, cf) in EXPERIMENTS.items():
        folder = root / name
        _write(folder, "params.yaml", _params(model, epochs, pairs, generator, strategy))
        _write(folder, "metrics/train.json", {"pairs": train_pairs, "epochs": epochs, "steps": 3, "final_loss": 0.5})
        for dataset, values, queries in (("sf", sf, SF_QUERIES), ("cf", cf, CF_QUERIES)):
            aggregate, per_query = _record(values, queries)
            _write(folder, f"metrics/{dataset}.json", aggregate)
            _write(folder, f"data/eval/{dataset}/per_query.json", per_query)
            aggregate, per_query = _record(BM25[dataset], queries)
            _write(folder, f"metrics/bm25/{dataset}.json", {**aggregate, "retriever": "bm25s"})
            _write(folder, f"data/eval/bm25-{dataset}/per_query.json", per_query)
    return root


def _rows(path: Path) -> dict[str, dict[str, str]]:
    return {row["experiment"] if row["kind"] != "bm25" else "bm25": row for row in csv.DictReader(path.open())}


def _markdown_table(text: str) -> tuple[list[str], list[list[str]]]:
    """The header and body cells of the one table in a report's Markdown."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return cells[0], cells[2:]


def _metric(name: str, dataset: str, key: str = "ndcg_at_10") -> float:
    spec = EXPERIMENTS[name]
    values, queries = (spec[6], SF_QUERIES) if dataset == "sf" else (spec[7], CF_QUERIES)
    return _record(values, queries)[0][key]


def test_matrix_deltas_and_p_values_equal_scipy_on_the_same_per_query_scores(experiments_dir, tmp_path):
    matrix = build_matrix(experiments_from_folder(experiments_dir), title="hand-made")
    assert matrix.datasets == ["sf", "cf"] and matrix.roles == {"sf": "in-domain", "cf": "ood"}
    write_report(matrix, tmp_path / "report")
    rows = _rows(tmp_path / "report" / "matrix.csv")
    assert len(rows) == 9
    kinds = {name: row["kind"] for name, row in rows.items()}
    assert kinds == {"bm25": "bm25", "zs-l2": "zero-shot", "na-l2": "no-augmentation", "na-l6": "no-augmentation",
                     **{name: "augmented" for name in ("c500-l2", "c2000-l2", "q500-l2", "g500-l2", "c500-l6")}}
    for name, reference in [("c500-l2", "na-l2"), ("c2000-l2", "na-l2"), ("q500-l2", "na-l2"), ("g500-l2", "na-l2"),
                            ("c500-l6", "na-l6")]:
        row = rows[name]
        assert row["reference"] == reference
        assert int(row["synthetic_pairs"]) == EXPERIMENTS[name][5] - EXPERIMENTS[reference][5]
        for dataset, role, column in (("sf", "in-domain", 6), ("cf", "ood", 7)):
            prefix = f"{role}:{dataset}:"
            for key in ("ndcg_at_10", "recall_at_100", "mrr_at_10"):  # exactly the metrics files' numbers
                assert float(row[prefix + key]) == _metric(name, dataset, key)
            assert float(row[prefix + "delta_ndcg_at_10"]) == _metric(name, dataset) - _metric(reference, dataset)
            expected = stats.ttest_rel(EXPERIMENTS[name][column], EXPERIMENTS[reference][column]).pvalue
            assert float(row[prefix + "p_value"]) == pytest.approx(expected, rel=1e-12)
    for name in ("zs-l2", "na-l2", "na-l6"):  # baselines carry no delta of their own
        assert rows[name]["in-domain:sf:delta_ndcg_at_10"] == "" and rows[name]["in-domain:sf:p_value"] == ""
    assert float(rows["bm25"]["in-domain:sf:ndcg_at_10"]) == _record(BM25["sf"], SF_QUERIES)[0]["ndcg_at_10"]
    assert rows["c500-l2"]["generator"] == "smollm2-135m" and rows["na-l2"]["generator"] == ""


def test_hand_computed_delta_and_p_value():
    """c500-l2 against na-l2 on sf: differences 0.2, 0.1, 0.2, 0.1, 0.1, 0.1 (mean 0.1333..)."""
    a, b = dict(zip(SF_QUERIES, EXPERIMENTS["c500-l2"][6])), dict(zip(SF_QUERIES, EXPERIMENTS["na-l2"][6]))
    differences = [a[q] - b[q] for q in SF_QUERIES]
    mean = sum(differences) / 6
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / 5)
    t = mean / (sd / math.sqrt(6))
    assert paired_p_value(a, b) == pytest.approx(2 * stats.t.sf(t, df=5), rel=1e-9)
    assert paired_p_value(a, b, "wilcoxon") == pytest.approx(stats.wilcoxon(list(a.values()), list(b.values())).pvalue,
                                                             rel=1e-12)
    assert paired_p_value(a, a) is None and paired_p_value({"q": 0.5}, {"q": 0.1}) is None


def test_markdown_plots_and_dvc_plots_definitions(experiments_dir, tmp_path):
    out = tmp_path / "report"
    written = write_report(build_matrix(experiments_from_folder(experiments_dir), title="hand-made",
                                        description="A hand-made matrix."), out)
    assert set(written) == {"matrix.md", "matrix.csv", "scaling.png", "generators.png", "strategies.png", "dvc.yaml"}
    for png in ("scaling.png", "generators.png", "strategies.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (out / "matrix.md").read_text()
    assert text.startswith("# hand-made\n\nA hand-made matrix.")
    header, table = _markdown_table(text)
    assert [h for h in header if h.startswith("sf (in-domain)")] == [
        "sf (in-domain) ndcg_at_10", "sf (in-domain) Δ", "sf (in-domain) p", "sf (in-domain) p (Holm)"]
    c2000 = dict(zip(header, next(cells for cells in table if cells[0] == "c2000-l2")))
    p = stats.ttest_rel(EXPERIMENTS["c2000-l2"][6], EXPERIMENTS["na-l2"][6]).pvalue
    assert p < 0.05
    assert c2000["sf (in-domain) ndcg_at_10"] == f"{_metric('c2000-l2', 'sf'):.4f}"  # one seed: no interval
    assert c2000["sf (in-domain) Δ"] == f"+{_metric('c2000-l2', 'sf') - _metric('na-l2', 'sf'):.4f}"
    assert c2000["sf (in-domain) p"] == f"{p:.1e}*"  # significant on sf, marked (p < 0.001: two digits)
    assert c2000["seeds"] == "1"
    assert "![scaling.png](scaling.png)" in text

    config = yaml.safe_load((out / "dvc.yaml").read_text())
    ids = [next(iter(plot)) for plot in config["plots"]]
    assert ids == ["hand-made: scaling, sf (in-domain)", "hand-made: generators, sf (in-domain)",
                   "hand-made: strategies, sf (in-domain)", "hand-made: scaling, cf (OOD)",
                   "hand-made: generators, cf (OOD)", "hand-made: strategies, cf (OOD)"]
    scaling = config["plots"][0]["hand-made: scaling, sf (in-domain)"]
    assert scaling["template"] == "linear" and scaling["x"] == "scale"
    curves = {name: list(csv.DictReader((out / name).open())) for name in scaling["y"]}
    assert len(curves) == 2  # per retriever: minilm-l2 claims (two scales; not its one-scale comparisons), minilm-l6
    points = {name.split("-sf-")[1]: [(int(p["scale"]), float(p["ndcg_at_10"])) for p in rows]
              for name, rows in curves.items()}
    assert points == {
        "minilm-l2-smollm2-135m-claim.csv": [(0, _metric("na-l2", "sf")), (500, _metric("c500-l2", "sf")),
                                             (2000, _metric("c2000-l2", "sf"))],
        "minilm-l6-smollm2-135m-claim.csv": [(0, _metric("na-l6", "sf")), (500, _metric("c500-l6", "sf"))],
    }
    generators = config["plots"][1]["hand-made: generators, sf (in-domain)"]
    bars = {name: list(csv.DictReader((out / name).open())) for name in generators["y"]}
    assert {rows[0]["setting"] for rows in bars.values()} == {"minilm-l2, claim, 500"}
    assert sorted(float(rows[0]["ndcg_at_10"]) for rows in bars.values()) == sorted(
        [_metric("na-l2", "sf"), _metric("c500-l2", "sf"), _metric("g500-l2", "sf")])


def test_missing_reference_missing_per_query_and_duplicates_become_notes(experiments_dir):
    experiments = [e for e in experiments_from_folder(experiments_dir) if e.name != "na-l6"]
    for exp in experiments:
        if exp.name == "c2000-l2":
            exp.read_file = lambda path: None
    experiments.append(experiments[0])
    matrix = build_matrix(experiments)
    by_name = {row.experiment: row for row in matrix.rows if row.kind != "bm25"}
    assert by_name["c500-l6"].reference is None and by_name["c500-l6"].delta == {}
    assert by_name["c2000-l2"].delta["sf"] is not None and by_name["c2000-l2"].p_value["sf"] is None
    assert any("c500-l6: no experiment of the same retriever without augmentation" in n for n in matrix.notes)
    assert any("c2000-l2: no per-query scores" in n for n in matrix.notes)
    assert any("same params as" in n for n in matrix.notes)


def test_exp_show_json_is_read_and_per_query_scores_come_from_each_experiment(experiments_dir, tmp_path):
    """The layout of `dvc exp show --json` (dvc 3.x): commits, each with groups of experiment revisions."""
    folders = {e.name: e for e in experiments_from_folder(experiments_dir)}

    def node(name: str, rev: str) -> dict:
        exp = folders[name]
        return {"rev": rev, "name": name, "error": None, "experiments": None, "data": {
            "rev": rev, "timestamp": "2026-11-20T10:00:00", "params": {"params.yaml": {"data": exp.params}},
            "metrics": {path: {"data": data} for path, data in exp.metrics.items()}, "deps": {}, "outs": {}}}

    revs = {name: f"{i:040x}" for i, name in enumerate(folders, start=1)}
    shown = [
        {"rev": "workspace", "name": None, "data": {"params": {}, "metrics": {}}, "error": None, "experiments": None},
        {"rev": "f" * 40, "name": "main", "data": {"params": {}, "metrics": {}}, "error": None, "experiments": [
            {"name": name, "executor": None, "revs": [node(name, rev)]} for name, rev in revs.items()
        ] + [{"name": "queued-one", "executor": {"state": "queued"}, "revs": [
            {"rev": "e" * 40, "name": "queued-one", "data": {"params": {}, "metrics": {}}, "error": None}]}]},
    ]
    reads = []

    def read_file(rev: str, path: str):
        reads.append((rev, path))
        name = next(n for n, r in revs.items() if r == rev)
        return folders[name].read_file(path)

    experiments = experiments_from_exp_show(shown, read_file)
    assert sorted(e.name for e in experiments) == sorted(folders)  # neither the workspace nor the queued one
    matrix = build_matrix(experiments)
    write_report(matrix, tmp_path / "from-dvc")
    write_report(build_matrix(list(folders.values())), tmp_path / "from-folders")
    assert _same_but_revs(tmp_path, revs)
    assert (revs["c500-l2"], "data/eval/sf/per_query.json") in reads


def _same_but_revs(tmp_path: Path, revs: dict[str, str]) -> bool:
    text = (tmp_path / "from-dvc" / "matrix.csv").read_text()
    for name, rev in revs.items():
        text = text.replace(f",{rev},", f",{name},")
    return text == (tmp_path / "from-folders" / "matrix.csv").read_text()


def test_select_grid_keeps_the_cells_of_a_grid(experiments_dir, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({**_params("minilm-l2", 1, 0, "smollm2-135m", "claim"),
                                      "download": {"sources": {"sf": "local:/data/sf", "cf": "local:/data/cf"}}}))
    grid = tmp_path / "g.yaml"
    grid.write_text(yaml.safe_dump({"axes": {"train.model": ["minilm-l2"], "train.augmented_pairs": [500, 2000],
                                             "augment.generator": ["smollm2-135m"], "augment.strategy": ["claim"]}}))
    selected = select_grid(experiments_from_folder(experiments_dir), load_grid(grid, params), tmp_path)
    assert sorted(e.name for e in selected) == ["c2000-l2", "c500-l2", "na-l2", "zs-l2"]


def test_cli_report_from_a_folder(experiments_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--from", str(experiments_dir), "--title", "hand-made", "--test", "wilcoxon"]) == 0
    assert capsys.readouterr().out.startswith("reports/hand-made: 9 rows")
    assert (tmp_path / "reports" / "hand-made" / "matrix.csv").is_file()
    (tmp_path / "empty").mkdir()
    assert main(["report", "--from", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no finished experiments with metrics" in err
    with pytest.raises(AugirError, match="unknown metric"):
        build_matrix(experiments_from_folder(experiments_dir), metric="map")


def test_saved_experiments_read_back_into_the_same_report(experiments_dir, tmp_path):
    """`--save-experiments` keeps names, revisions, order, metrics and per-query scores: the same matrix.csv."""
    experiments = experiments_from_folder(experiments_dir)[::-1]  # an order other than the names'
    for number, exp in enumerate(experiments, start=1):
        exp.rev = f"{number:040x}"  # as a DVC revision would be
    original = build_matrix(experiments, title="t")
    save_experiments(experiments, tmp_path / "saved")
    assert sorted(p.name for p in (tmp_path / "saved").iterdir())[:2] == ["01-zs-l2", "02-q500-l2"]
    read_back = experiments_from_folder(tmp_path / "saved")
    assert [(e.name, e.rev) for e in read_back] == [(e.name, e.rev) for e in experiments]
    assert csv_text(build_matrix(read_back, title="t")) == csv_text(original)
    assert all(row.p_value["sf"] is not None for row in original.rows if row.kind == "augmented")


def test_cli_report_saves_the_reported_experiments(experiments_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--from", str(experiments_dir), "--out", "r", "--save-experiments", "saved"]) == 0
    assert "saved: 8 experiments" in capsys.readouterr().out
    assert main(["report", "--from", "saved", "--out", "again"]) == 0
    assert (tmp_path / "again" / "matrix.csv").read_text() == (tmp_path / "r" / "matrix.csv").read_text()


def test_cli_report_reads_a_grid_run_in_parts_from_several_folders(experiments_dir, tmp_path, capsys, monkeypatch):
    """`--from` twice (two parts saved on two machines or in two sessions) gives the report of one folder."""
    monkeypatch.chdir(tmp_path)
    names = sorted(p.name for p in experiments_dir.iterdir())
    for part, chosen in (("a", names[::2]), ("b", names[1::2])):
        for name in chosen:
            shutil.copytree(experiments_dir / name, tmp_path / part / name)
    assert main(["report", "--from", str(experiments_dir), "--out", "one"]) == 0
    assert main(["report", "--from", "a", "--from", "b", "--out", "parts"]) == 0
    assert (tmp_path / "parts" / "matrix.csv").read_text() == (tmp_path / "one" / "matrix.csv").read_text()
    assert main(["report", "--from", "a", "--from", "a", "--out", "twice"]) == 0  # the same experiment twice: noted
    assert "same params as" in capsys.readouterr().out


def test_pair_sources_name_what_a_cell_trains_on_and_infused_cells_count_as_augmented():
    from augir.study.matrix import _kind, pair_sources

    assert pair_sources({"train.augmented_pairs": 0}) == "real"
    assert pair_sources({"train.augmented_pairs": 100}) == "real + synthetic"
    assert pair_sources({"train.augmented_pairs": 0, "train.infused_pairs": 50}) == "real + infused"
    assert pair_sources({"train.real_pairs": 0, "train.augmented_pairs": 100, "train.infused_pairs": 50}) == (
        "synthetic + infused")
    assert pair_sources({"train.real_pairs": None, "train.augmented_pairs": 1, "train.infused_pairs": 1}) == (
        "real + synthetic + infused")
    assert _kind({"train.augmented_pairs": 0, "train.infused_pairs": 50}) == "augmented"
    assert _kind({"train.augmented_pairs": 0, "train.infused_pairs": 0}) == "no-augmentation"
    assert _kind({"train.epochs": 0, "train.infused_pairs": 50}) == "zero-shot"
