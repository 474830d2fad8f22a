import pytest

from augir.augmentation.backends import Completion
from augir.fileio import read_jsonl, write_jsonl
from augir.filtering.filter import run_filter
from augir.filtering.judge import judge_prompt, parse_grade
from augir.params import FilterParams

SYNTHETIC = [
    ("gen-d1-0", "how do plants turn light into sugar", "d1"),  # its passage's words: BM25 finds d1
    ("gen-d2-0", "zebra accordion marmalade", "d2"),  # shares no word with any passage
    ("gen-d5-0", "moon gravity ocean tides", "d5"),
]


@pytest.fixture
def augmented(tmp_path):
    folder = tmp_path / "augmented"
    (folder / "qrels").mkdir(parents=True)
    write_jsonl(folder / "queries.jsonl", ({"_id": q, "text": t} for q, t, _ in SYNTHETIC))
    rows = "".join(f"{q}\t{d}\t1\n" for q, _, d in SYNTHETIC)
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    write_jsonl(folder / "provenance.jsonl", ({"query_id": q, "doc_id": d, "query": t, "generator": "g"} for q, t, d in SYNTHETIC))
    return folder


class FixedJudge:
    """Answers with preset grades: the filter's logic is tested here, the real judge in the slow test below."""

    name = "fixed"

    def __init__(self, answers):
        self.answers = answers

    def complete(self, prompts, seeds, sampling):
        return [Completion(self.answers[p.text.rsplit("Query: ", 1)[1].split("\n")[0]], 1) for p in prompts]


def test_none_keeps_everything_in_order(tmp_path, tiny_dataset, augmented):
    stats = run_filter(tiny_dataset, augmented, FilterParams(method="none"), tmp_path / "out")
    assert stats == {"method": "none", "input": 3, "kept": 3, "kept_fraction": 1.0}
    assert [r["_id"] for r in read_jsonl(tmp_path / "out" / "queries.jsonl")] == ["gen-d1-0", "gen-d2-0", "gen-d5-0"]


def test_consistency_with_bm25_keeps_queries_whose_passage_ranks_in_top_k(tmp_path, tiny_dataset, augmented):
    stats = run_filter(tiny_dataset, augmented, FilterParams(method="consistency", top_k=1), tmp_path / "out")
    assert stats["kept"] == 2 and stats["input"] == 3
    assert [r["_id"] for r in read_jsonl(tmp_path / "out" / "queries.jsonl")] == ["gen-d1-0", "gen-d5-0"]
    provenance = {r["query_id"]: r for r in read_jsonl(tmp_path / "out" / "provenance.jsonl")}
    assert provenance["gen-d1-0"]["filter"] == {"method": "consistency", "retriever": "bm25", "top_k": 1, "rank": 1, "kept": True}
    assert provenance["gen-d2-0"]["filter"]["rank"] is None and provenance["gen-d2-0"]["generator"] == "g"
    qrels = (tmp_path / "out" / "qrels" / "train.tsv").read_text().splitlines()
    assert qrels == ["query-id\tcorpus-id\tscore", "gen-d1-0\td1\t1", "gen-d5-0\td5\t1"]


def test_consistency_with_a_dense_encoder(tmp_path, tiny_dataset, augmented, tiny_encoder_dir):
    stats = run_filter(tiny_dataset, augmented, FilterParams(method="consistency", retriever=str(tiny_encoder_dir), top_k=8),
                       tmp_path / "out")
    assert stats["kept"] == 3  # top 8 of 8 documents: every source passage is in it


def test_judge_keeps_pairs_graded_at_least_min_grade(tmp_path, tiny_dataset, augmented):
    judge = FixedJudge({"how do plants turn light into sugar": " 3", "zebra accordion marmalade": " 0",
                        "moon gravity ocean tides": " maybe"})
    stats = run_filter(tiny_dataset, augmented, FilterParams(method="judge", min_grade=2), tmp_path / "out", judge)
    assert stats == {"method": "judge", "input": 3, "kept": 1, "kept_fraction": 0.3333, "unparsable": 1}
    grades = {r["query_id"]: r["filter"]["grade"] for r in read_jsonl(tmp_path / "out" / "provenance.jsonl")}
    assert grades == {"gen-d1-0": 3, "gen-d2-0": 0, "gen-d5-0": None}


def test_grade_parsing_and_judge_prompt():
    assert parse_grade(" 2\n") == 2 and parse_grade("Relevance: 3") == 3 and parse_grade("seven") is None
    prompt = judge_prompt("moon tides", "The moon raises the tides.")
    assert prompt.text.endswith("Document: The moon raises the tides.\nQuery: moon tides\nRelevance:")
    assert "Relevance: 3" in prompt.text and "Relevance: 0" in prompt.text


@pytest.mark.slow
def test_smollm2_as_judge_gives_parsable_grades(tmp_path, tiny_dataset, augmented):
    from augir.augmentation.backends.transformers_backend import TransformersBackend

    stats = run_filter(tiny_dataset, augmented, FilterParams(method="judge"), tmp_path / "out",
                       TransformersBackend.load("smollm2-135m"))
    assert stats["input"] == 3 and stats["unparsable"] == 0


class FixedTrainedJudge:
    """A trained judge's interface with preset expected grades (the real one: tests/judging/test_run.py)."""

    def __init__(self, expected):
        self.expected = expected

    def grade(self, pairs, progress=False):
        from augir.judging.readout import GradeReading

        return [GradeReading([1 - self.expected[q], self.expected[q]], self.expected[q], round(self.expected[q]))
                for q, _ in pairs]


def test_trained_judge_keeps_pairs_by_expected_grade_and_counts_by_grade(tmp_path, tiny_dataset, augmented):
    judge = FixedTrainedJudge({"how do plants turn light into sugar": 0.9, "zebra accordion marmalade": 0.1,
                               "moon gravity ocean tides": 0.45})
    params = FilterParams(method="judge", judge_model="models/judge", min_expected_grade=0.4)
    stats = run_filter(tiny_dataset, augmented, params, tmp_path / "out", trained_judge=judge)
    assert stats == {"method": "judge", "input": 3, "kept": 2, "kept_fraction": 0.6667,
                     "by_grade": {"0": {"input": 2, "kept": 1, "kept_fraction": 0.5},
                                  "1": {"input": 1, "kept": 1, "kept_fraction": 1.0}}}
    provenance = {r["query_id"]: r["filter"] for r in read_jsonl(tmp_path / "out" / "provenance.jsonl")}
    assert provenance["gen-d5-0"] == {"method": "judge", "judge": "models/judge", "expected_grade": 0.45, "grade": 0,
                                      "min_expected_grade": 0.4, "kept": True}
    assert [r["_id"] for r in read_jsonl(tmp_path / "out" / "queries.jsonl")] == ["gen-d1-0", "gen-d5-0"]
