"""The infuse stage's library function: files, counts, ordering, bad input, and the real encoder path."""

import json

import numpy as np
import pytest

from augir.data.beir import read_qrels, read_queries
from augir.errors import AugirError
from augir.fileio import read_jsonl, write_jsonl
from augir.infusion.infuse import read_infused, run_infusion
from augir.params import InfuseParams
from augir.training.pairs import infused_pairs

# Synthetic queries written for tiny passages (see conftest: q1..q4 train, t1, t2 test).
SYNTHETIC = [
    ("gen-d5-0", "what makes iron turn red", "d5"),
    ("gen-d7-0", "how plants make food", "d7"),
    ("gen-d8-0", "what is a tide", "d8"),
]
# Hand-made embeddings: the fake encoder looks each text up, so every cosine is known.
VECTORS = {
    "what makes iron turn red": [0.0, 0.0, 1.0],
    "how plants make food": [1.0, 0.0, 0.0],
    "what is a tide": [0.0, 1.0, 0.0],
    "how do plants make sugar": [1.0, 0.0, 0.0],  # q1: cosine 1 with gen-d7-0
    "what is a black hole": [0.6, 0.8, 0.0],  # q2: 0.6 with gen-d7-0, 0.8 with gen-d8-0
    "how does a vaccine work": [0.0, 0.0, -1.0],  # q3: far from everything
    "why does iron rust": [0.0, 0.28, 0.96],  # q4: 0.96 with gen-d5-0, 0.28 with gen-d8-0
    "what causes ocean tides": [0.0, 1.0, 0.0],  # t1, a test query: identical to gen-d8-0, never a candidate
    "what does insulin do": [1.0, 0.0, 0.0],  # t2, a test query
}


class LookupEncoder:
    def __init__(self):
        self.calls = []

    def encode_query(self, texts, **options):
        self.calls.append(list(texts))
        return np.array([VECTORS[text] for text in texts])


@pytest.fixture
def synthetic_dir(tmp_path):
    folder = tmp_path / "filtered"
    (folder / "qrels").mkdir(parents=True)
    write_jsonl(folder / "queries.jsonl", ({"_id": q, "text": t} for q, t, _ in SYNTHETIC))
    rows = "".join(f"{q}\t{d}\t1\n" for q, _, d in SYNTHETIC)
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return folder


def test_skim_writes_the_new_judgments_with_provenance_and_counts(tmp_path, tiny_dataset, synthetic_dir):
    out = tmp_path / "infused"
    encoder = LookupEncoder()
    stats = run_infusion(tiny_dataset, synthetic_dir, InfuseParams(method="skim", top_k=2, min_similarity=0.55),
                         out, encoder=encoder)
    assert "what causes ocean tides" not in encoder.calls[1]  # test queries are not even embedded as candidates
    provenance = read_jsonl(out / "provenance.jsonl")
    assert [(r["query_id"], r["doc_id"], r["synthetic_query_id"], r["similarity"]) for r in provenance] == [
        ("q1", "d7", "gen-d7-0", 1.0),
        ("q4", "d5", "gen-d5-0", 0.96),
        ("q2", "d8", "gen-d8-0", 0.8),
        ("q2", "d7", "gen-d7-0", 0.6),
    ]
    assert provenance[0]["synthetic_query"] == "how plants make food" and provenance[0]["weight"] == 1.0
    assert read_qrels(out / "qrels" / "train.tsv") == {"q1": {"d7": 1}, "q4": {"d5": 1}, "q2": {"d8": 1, "d7": 1}}
    assert read_queries(out / "queries.jsonl") == {"q1": "how do plants make sugar", "q4": "why does iron rust",
                                                   "q2": "what is a black hole"}
    assert stats == {
        "method": "skim", "encoder": "minilm-l6", "synthetic_queries": 3, "synthetic_queries_used": 3,
        "candidates": 4, "skipped_existing": 0, "merged": 0, "training_queries": 4, "new_pairs": 4,
        "training_queries_gained": 3, "mean_labels_gained": 1.3333, "mean_weight": 0.84,
    }
    assert read_infused(out)[:2] == [("q1", "d7", 1.0), ("q4", "d5", 0.96)]


def test_a_training_query_also_judged_in_a_test_split_never_gains_a_label(tmp_path, tiny_dataset, synthetic_dir):
    tiny_dataset.qrels["test"]["q2"] = {"d3": 1}  # q2 now also belongs to an evaluation split
    out = tmp_path / "infused"
    stats = run_infusion(tiny_dataset, synthetic_dir, InfuseParams(method="skim", top_k=2, min_similarity=0.55), out,
                         encoder=LookupEncoder())
    assert [(q, d) for q, d, _ in read_infused(out)] == [("q1", "d7"), ("q4", "d5")]
    assert stats["training_queries"] == 3


def test_uniform_weighting_keeps_the_synthetic_order(tmp_path, tiny_dataset, synthetic_dir):
    out = tmp_path / "infused"
    run_infusion(tiny_dataset, synthetic_dir, InfuseParams(method="skim", top_k=2, weighting="uniform"), out,
                 encoder=LookupEncoder())
    assert [(q, d) for q, d, _ in read_infused(out)] == [("q4", "d5"), ("q1", "d7"), ("q2", "d7"), ("q2", "d8")]


def test_infused_pairs_pair_the_real_query_text_with_the_passage(tmp_path, tiny_dataset, synthetic_dir):
    out = tmp_path / "infused"
    run_infusion(tiny_dataset, synthetic_dir, InfuseParams(method="skim", top_k=2), out, encoder=LookupEncoder())
    first = infused_pairs(out, tiny_dataset, 1)
    assert [(p.query, p.document) for p in first] == [
        ("how do plants make sugar", "Volcanoes Magma rises through the crust and erupts as lava and ash.")
    ]
    assert infused_pairs(out, tiny_dataset, 0) == []
    with pytest.raises(AugirError, match="train.infused_pairs: 9 asked, but .* holds only 4 pairs"):
        infused_pairs(out, tiny_dataset, 9)


def test_method_none_writes_an_empty_set_without_an_encoder(tmp_path, tiny_dataset, synthetic_dir):
    out = tmp_path / "infused"
    stats = run_infusion(tiny_dataset, synthetic_dir, InfuseParams(), out, encoder=None)
    assert read_infused(out) == [] and stats["new_pairs"] == 0 and stats["synthetic_queries"] == 3
    assert (out / "qrels" / "train.tsv").read_text() == "query-id\tcorpus-id\tscore\n"


def test_a_synthetic_passage_missing_from_the_corpus_is_a_one_line_error_and_nothing_is_written(
        tmp_path, tiny_dataset, synthetic_dir):
    with (synthetic_dir / "qrels" / "train.tsv").open("a") as handle:
        handle.write("gen-d7-0\tnope\t1\n")
    out = tmp_path / "infused"
    with pytest.raises(AugirError, match=r"train.tsv: passage 'nope' of gen-d7-0 is not in the corpus"):
        run_infusion(tiny_dataset, synthetic_dir, InfuseParams(method="skim"), out, encoder=LookupEncoder())
    assert not out.exists()


def test_a_dataset_without_train_qrels_is_refused(tmp_path, tiny_dataset, synthetic_dir):
    del tiny_dataset.qrels["train"]
    with pytest.raises(AugirError, match="infuse: the dataset has no 'train' qrels"):
        run_infusion(tiny_dataset, synthetic_dir, InfuseParams(method="skim"), tmp_path / "out", encoder=LookupEncoder())


def test_real_encoder_path_runs_end_to_end(tmp_path, tiny_dataset, synthetic_dir, tiny_encoder_dir):
    """The loaded-by-name path with a tiny random encoder: any cosine >= -1 passes, so all top-1 pairs appear."""
    out = tmp_path / "infused"
    stats = run_infusion(tiny_dataset, synthetic_dir,
                         InfuseParams(method="skim", encoder=str(tiny_encoder_dir), top_k=1, min_similarity=-1.0), out)
    assert stats["candidates"] == 3 and stats["new_pairs"] == 3 - stats["skipped_existing"] - stats["merged"]
    assert all(record["query_id"] in {"q1", "q2", "q3", "q4"} for record in read_jsonl(out / "provenance.jsonl"))
    json.dumps(stats)


def test_augir_infuse_and_train_on_infused_pairs_from_the_command_line(tmp_path, tiny_beir_dir, synthetic_dir,
                                                                       tiny_encoder_dir, capsys):
    from augir.cli import main

    out = tmp_path / "infused"
    assert main(["infuse", "--dataset", str(tiny_beir_dir), "--synthetic", str(synthetic_dir), "--out", str(out),
                 "--encoder", str(tiny_encoder_dir), "--top-k", "1", "--min-similarity", "-1",
                 "--metrics", str(tmp_path / "infuse.json")]) == 0
    counts = json.loads((tmp_path / "infuse.json").read_text())
    assert counts["new_pairs"] == len(read_infused(out)) >= 1 and "versions" in counts
    assert main(["train", "--dataset", str(tiny_beir_dir), "--infused", str(out), "--infused-pairs", "1",
                 "--real-pairs", "2", "--model", str(tiny_encoder_dir), "--batch-size", "2", "--out",
                 str(tmp_path / "model")]) == 0
    assert "trained on 3 pairs" in capsys.readouterr().out


def test_augir_infuse_bad_input_is_one_line(tmp_path, tiny_beir_dir, capsys):
    from augir.cli import main

    assert main(["infuse", "--dataset", str(tiny_beir_dir), "--synthetic", str(tmp_path / "nothing"),
                 "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("augir: error: ") and "nothing/queries.jsonl: file not found" in error
    assert "\n" not in error and not (tmp_path / "out").exists()
    assert main(["infuse", "--dataset", str(tiny_beir_dir), "--synthetic", str(tmp_path), "--out",
                 str(tmp_path / "out"), "--min-similarity", "2"]) == 1
    assert capsys.readouterr().err.strip() == (
        "augir: error: augir infuse: min_similarity: Input should be less than or equal to 1")
