import json

import pytest

import augir.augment as augment_module
from augir.augment import AugmentConfig, choose_passages, clean_query, run_augmentation
from augir.fileio import read_jsonl
from augir.prompts import choose_examples, question_prompt


def _config(**overrides) -> AugmentConfig:
    values = dict(generator="tiny-llama", num_passages=6, num_examples=2, max_new_tokens=4, batch_size=2, seed=3)
    return AugmentConfig(**{**values, **overrides})


def test_passages_are_a_seeded_permutation_whose_prefixes_nest(tiny_dataset):
    eight = choose_passages(tiny_dataset, 8, seed=5)
    assert sorted(eight) == sorted(tiny_dataset.corpus)
    assert choose_passages(tiny_dataset, 3, seed=5) == eight[:3]
    assert choose_passages(tiny_dataset, 8, seed=6) != eight


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" why do tides happen\nDocument: more text", ("why do tides happen", None)),
        ('  "moon gravity"  ', ("moon gravity", None)),
        ("\n\n", (None, "empty")),
        ("ok", (None, "too_short")),
        ("  spaced    out\tquery ", ("spaced out query", None)),
    ],
)
def test_clean_query(raw, expected):
    assert clean_query(raw) == expected


def test_few_shot_examples_come_only_from_training_queries(tiny_dataset):
    examples = choose_examples(tiny_dataset, num_examples=10, seed=0, max_words=50)
    assert {example.query_id for example in examples} == set(tiny_dataset.qrels["train"])
    # q4's only relevant passage is graded 2; the passage chosen is a relevant one
    assert {example.doc_id for example in examples} == {"d1", "d2", "d3", "d4"}


def test_no_training_split_means_a_zero_shot_prompt(tiny_dataset):
    del tiny_dataset.qrels["train"]
    assert choose_examples(tiny_dataset, num_examples=3, seed=0, max_words=50) == []
    assert question_prompt("some passage", []) == "Document: some passage\nRelevant query:"


def test_no_test_query_reaches_a_prompt_or_the_output(tmp_path, tiny_dataset, tiny_generator):
    run_augmentation(tiny_dataset, _config(num_examples=4), tmp_path / "out", tmp_path / "work", tiny_generator)
    provenance = read_jsonl(tmp_path / "out" / "provenance.jsonl")
    test_ids = set(tiny_dataset.qrels["test"])
    for record in provenance:
        assert not test_ids & set(record["few_shot_query_ids"])
        for query_id in test_ids:
            assert tiny_dataset.queries[query_id] not in record["prompt"]


def test_output_layout_and_provenance(tmp_path, tiny_dataset, tiny_generator):
    stats = run_augmentation(tiny_dataset, _config(), tmp_path / "out", tmp_path / "work", tiny_generator)
    provenance = read_jsonl(tmp_path / "out" / "provenance.jsonl")
    queries = read_jsonl(tmp_path / "out" / "queries.jsonl")
    qrels = (tmp_path / "out" / "qrels" / "train.tsv").read_text().splitlines()
    assert len(provenance) == stats.generated == 6
    assert [r["doc_id"] for r in provenance] == choose_passages(tiny_dataset, 6, seed=3)
    assert len(queries) == stats.kept == len(qrels) - 1
    assert qrels[0] == "query-id\tcorpus-id\tscore"
    assert stats.kept + sum(stats.dropped.values()) == stats.generated
    for record in provenance:
        assert {"query_id", "doc_id", "generator", "prompt", "sampling", "seed", "raw"} <= set(record)
        assert record["prompt"].endswith("Relevant query:")
    json.dumps(stats.to_json_dict())


def test_interrupted_run_resumes_and_equals_an_uninterrupted_one(monkeypatch, tmp_path, tiny_dataset, tiny_generator):
    config = _config()
    run_augmentation(tiny_dataset, config, tmp_path / "whole", tmp_path / "work-whole", tiny_generator)

    calls = {"count": 0}
    real_generate = augment_module.generate_batch

    def dies_on_the_second_batch(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] == 2:
            raise KeyboardInterrupt
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(augment_module, "generate_batch", dies_on_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        run_augmentation(tiny_dataset, config, tmp_path / "resumed", tmp_path / "work", tiny_generator)
    assert not (tmp_path / "resumed").exists()  # no half-written output
    assert len(list((tmp_path / "work").glob("*.jsonl"))) == 1  # the finished batch was kept

    calls["count"] = 10  # from here on generation works
    run_augmentation(tiny_dataset, config, tmp_path / "resumed", tmp_path / "work", tiny_generator)
    assert calls["count"] == 10 + 2  # only the two unfinished batches were generated again
    for name in ["queries.jsonl", "qrels/train.tsv", "provenance.jsonl"]:
        assert (tmp_path / "resumed" / name).read_text() == (tmp_path / "whole" / name).read_text()
    assert not (tmp_path / "work").exists()  # finished: the shards are gone


def test_a_shard_from_another_config_is_not_reused(tmp_path, tiny_dataset, tiny_generator, monkeypatch):
    (tmp_path / "work").mkdir()
    run_augmentation(tiny_dataset, _config(max_new_tokens=3), tmp_path / "a", tmp_path / "work-a", tiny_generator)
    calls = {"count": 0}
    real_generate = augment_module.generate_batch

    def counting(*args, **kwargs):
        calls["count"] += 1
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(augment_module, "generate_batch", counting)
    # a stale shard left by an interrupted run with other settings sits in the work folder
    (tmp_path / "work" / "000000-0123456789abcdef.jsonl").write_text('{"query": "stale"}\n')
    run_augmentation(tiny_dataset, _config(), tmp_path / "b", tmp_path / "work", tiny_generator)
    assert calls["count"] == 3
    assert "stale" not in (tmp_path / "b" / "queries.jsonl").read_text()


def test_changing_the_config_does_not_reuse_old_shards(tmp_path, tiny_dataset, tiny_generator):
    run_augmentation(tiny_dataset, _config(seed=1), tmp_path / "a", tmp_path / "work", tiny_generator)
    run_augmentation(tiny_dataset, _config(seed=2), tmp_path / "b", tmp_path / "work", tiny_generator)
    first = [r["doc_id"] for r in read_jsonl(tmp_path / "a" / "provenance.jsonl")]
    second = [r["doc_id"] for r in read_jsonl(tmp_path / "b" / "provenance.jsonl")]
    assert first != second
