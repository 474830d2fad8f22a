import json

import pytest

from augir.augmentation.augment import (
    PromptBuilder,
    by_prompt_length,
    choose_passages,
    plan_jobs,
    run_augmentation,
    strategies_for,
)
from augir.augmentation.prompts import STRATEGIES
from augir.fileio import read_jsonl
from augir.params import AugmentParams, RuntimeParams


def _params(**overrides) -> AugmentParams:
    values = dict(dataset="tiny", generator="tiny-llama", num_passages=6, num_examples=2, max_new_tokens=4,
                  seed=3)
    return AugmentParams(**{**values, **overrides})


def augment_tiny(*args, batch_size: int = 2, **kwargs):
    """run_augmentation in batches of `batch_size` (a runtime knob, not a param of the augmentation)."""
    return run_augmentation(*args, runtime=RuntimeParams(batch_size=batch_size), **kwargs)


class CountingBackend:
    """The tiny backend, counting calls and able to fail on a chosen one (a kill in the middle of a run)."""

    name = "transformers"

    def __init__(self, inner, fail_on_call: int | None = None):
        self.inner, self.fail_on_call, self.calls = inner, fail_on_call, 0

    def complete(self, prompts, seeds, sampling):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt
        return self.inner.complete(prompts, seeds, sampling)


def _read(folder):
    return {name: (folder / name).read_text() for name in ["queries.jsonl", "qrels/train.tsv", "provenance.jsonl"]}


def test_passages_are_a_seeded_permutation_whose_prefixes_nest(tiny_dataset):
    eight = choose_passages(tiny_dataset, 8, seed=5)
    assert sorted(eight) == sorted(tiny_dataset.corpus)
    assert choose_passages(tiny_dataset, 3, seed=5) == eight[:3]
    assert choose_passages(tiny_dataset, 8, seed=6) != eight


def test_exclude_judged_leaves_out_passages_judged_for_evaluation(tiny_dataset):
    kept = choose_passages(tiny_dataset, 8, seed=5, exclude_judged=True)
    assert set(kept) == {"d1", "d2", "d3", "d4", "d7"}  # d5, d6, d8 are judged in test (d8 with grade 0)


def _choose_as_before(ids: list[str], excluded: set[str], count: int, seed: int) -> list[str]:
    """choose_passages as it was written before compact ids: sorted strings, shuffled by random.shuffle."""
    import random

    chosen = sorted(doc_id for doc_id in ids if doc_id not in excluded)
    random.Random(seed).shuffle(chosen)
    return chosen[:count]


@pytest.mark.parametrize("exclude_judged", [False, True])
def test_passages_chosen_from_compact_ids_are_the_ones_strings_gave(exclude_judged):
    import random

    from augir.data.beir import BeirDataset
    from augir.data.doc_ids import DocIds

    rng = random.Random(0)
    alphabet = "abcXYZ019-_éü中"
    ids = list(dict.fromkeys("".join(rng.choices(alphabet, k=rng.randint(1, 9))) for _ in range(3000)))
    judged = {"q1": {doc_id: 1 for doc_id in ids[::7]}}
    light = BeirDataset(corpus={}, queries={}, qrels={"test": judged}, known_ids=DocIds.from_strings(ids))
    excluded = set(ids[::7]) if exclude_judged else set()
    for seed in (0, 5):
        assert choose_passages(light, 500, seed, exclude_judged) == _choose_as_before(ids, excluded, 500, seed)


def test_the_augment_stage_holds_only_the_texts_it_uses(tiny_beir_dir, tiny_dataset):
    from augir.augmentation.augment import load_for_augmentation
    from augir.augmentation.prompts import training_example_pairs

    params = _params(num_passages=3)
    light = load_for_augmentation(tiny_beir_dir, params)
    chosen = choose_passages(light, 3, params.seed)
    examples = {doc_id for _, doc_id in training_example_pairs(tiny_dataset, params.num_examples, params.seed)}
    assert chosen == choose_passages(tiny_dataset, 3, params.seed) and examples
    assert set(light.corpus) == set(chosen) | examples and len(light.corpus) < len(tiny_dataset.corpus)
    assert all(light.corpus[doc_id] == tiny_dataset.corpus[doc_id] for doc_id in light.corpus)


@pytest.mark.parametrize("strategy", ["question", "keyword", "claim", "title", "diverse"])
def test_every_strategy_writes_the_beir_generated_queries_layout(tmp_path, tiny_dataset, tiny_backend, strategy):
    stats = augment_tiny(tiny_dataset, _params(strategy=strategy), tmp_path / "out", tmp_path / "work", tiny_backend)
    provenance = read_jsonl(tmp_path / "out" / "provenance.jsonl")
    queries = read_jsonl(tmp_path / "out" / "queries.jsonl")
    qrels = (tmp_path / "out" / "qrels" / "train.tsv").read_text().splitlines()
    assert len(provenance) == stats.generated == 6
    assert len(queries) == stats.kept == len(qrels) - 1 and qrels[0] == "query-id\tcorpus-id\tscore"
    assert stats.kept + sum(stats.dropped.values()) == stats.generated
    for record in provenance:
        assert {"query_id", "doc_id", "strategy", "generator", "prompt", "sampling", "seed", "raw"} <= set(record)
        assert record["strategy"] in STRATEGIES and (strategy == "diverse" or record["strategy"] == strategy)
    json.dumps(stats.to_json_dict())


def test_diverse_draws_a_seeded_mix_per_passage():
    params = _params(strategy="diverse", queries_per_passage=3)
    mixes = {doc: tuple(strategies_for(doc, params)) for doc in [f"d{i}" for i in range(20)]}
    assert all(len(set(mix)) == 3 for mix in mixes.values())  # distinct strategies within a passage
    assert len(set(mixes.values())) > 1  # and a different mix for different passages
    assert mixes == {doc: tuple(strategies_for(doc, params)) for doc in mixes}  # seeded


def test_several_queries_per_passage_need_sampling_or_diverse():
    with pytest.raises(ValueError, match="temperature"):
        _params(queries_per_passage=2)
    assert len(plan_jobs(["d1"], _params(queries_per_passage=2, temperature=0.8))) == 2


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_a_small_run_equals_the_start_of_a_larger_one(tmp_path, tiny_dataset, tiny_backend, temperature):
    small = _params(num_passages=4, temperature=temperature)
    large = _params(num_passages=8, temperature=temperature)
    augment_tiny(tiny_dataset, small, tmp_path / "small", tmp_path / "w1", tiny_backend)
    augment_tiny(tiny_dataset, large, tmp_path / "large", tmp_path / "w2", tiny_backend)
    small_records = read_jsonl(tmp_path / "small" / "provenance.jsonl")
    large_records = read_jsonl(tmp_path / "large" / "provenance.jsonl")
    assert [(r["doc_id"], r["raw"]) for r in small_records] == [(r["doc_id"], r["raw"]) for r in large_records[:4]]


def test_seeded_sampling_does_not_depend_on_the_batch(tmp_path, tiny_dataset, tiny_backend):
    one = three = _params(temperature=1.0)
    augment_tiny(tiny_dataset, one, tmp_path / "one", tmp_path / "w1", tiny_backend, batch_size=1)
    augment_tiny(tiny_dataset, three, tmp_path / "three", tmp_path / "w3", tiny_backend, batch_size=3)
    raw = lambda folder: [r["raw"] for r in read_jsonl(folder / "provenance.jsonl")]  # noqa: E731
    assert raw(tmp_path / "one") == raw(tmp_path / "three")
    other_seed = _params(temperature=1.0, seed=4)
    augment_tiny(tiny_dataset, other_seed, tmp_path / "other", tmp_path / "w4", tiny_backend)
    assert raw(tmp_path / "other") != raw(tmp_path / "one")


def test_few_shot_examples_are_training_queries_and_no_test_query_reaches_a_prompt(tmp_path, tiny_dataset, tiny_backend):
    augment_tiny(tiny_dataset, _params(num_examples=4), tmp_path / "out", tmp_path / "work", tiny_backend)
    test_ids = set(tiny_dataset.qrels["test"])
    for record in read_jsonl(tmp_path / "out" / "provenance.jsonl"):
        assert set(record["few_shot_query_ids"]) <= set(tiny_dataset.qrels["train"])
        assert record["examples_source"] == "train"
        for query_id in test_ids:
            assert tiny_dataset.queries[query_id] not in json.dumps(record["prompt"])


def test_without_training_queries_the_generic_examples_are_used(tmp_path, tiny_dataset, tiny_backend):
    del tiny_dataset.qrels["train"]
    stats = augment_tiny(tiny_dataset, _params(), tmp_path / "out", tmp_path / "work", tiny_backend)
    assert stats.examples_source == "generic"
    record = read_jsonl(tmp_path / "out" / "provenance.jsonl")[0]
    assert record["few_shot_query_ids"] == ["generic-1", "generic-2"]
    assert "honey bee" in record["prompt"]


def test_interrupted_run_resumes_and_equals_an_uninterrupted_one(tmp_path, tiny_dataset, tiny_backend):
    params = _params()
    augment_tiny(tiny_dataset, params, tmp_path / "whole", tmp_path / "work-whole", tiny_backend)

    dying = CountingBackend(tiny_backend, fail_on_call=2)
    with pytest.raises(KeyboardInterrupt):
        augment_tiny(tiny_dataset, params, tmp_path / "resumed", tmp_path / "work", dying)
    assert not (tmp_path / "resumed").exists()  # no half-written output
    assert len(list((tmp_path / "work").glob("*.jsonl"))) == 1  # the finished batch was kept

    resuming = CountingBackend(tiny_backend)
    augment_tiny(tiny_dataset, params, tmp_path / "resumed", tmp_path / "work", resuming)
    assert resuming.calls == 2  # only the two unfinished batches of three were generated again
    assert _read(tmp_path / "resumed") == _read(tmp_path / "whole")
    assert not (tmp_path / "work").exists()  # finished: the shards are gone


def test_a_shard_from_other_settings_is_not_reused(tmp_path, tiny_dataset, tiny_backend):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "000000-0123456789abcdef.jsonl").write_text('{"query_id": "gen-d1-0", "raw": "stale"}\n')
    counting = CountingBackend(tiny_backend)
    augment_tiny(tiny_dataset, _params(), tmp_path / "out", tmp_path / "work", counting)
    assert counting.calls == 3
    assert "stale" not in (tmp_path / "out" / "provenance.jsonl").read_text()


def test_more_passages_than_the_corpus_has_is_one_warning_and_in_the_metrics(tmp_path, tiny_dataset, tiny_backend,
                                                                             caplog):
    stats = run_augmentation(tiny_dataset, _params(num_passages=50), tmp_path / "out", tmp_path / "work", tiny_backend)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["augment.num_passages: 50 asked, but the corpus has only 8 passages; using 8"]
    assert stats.to_json_dict()["passages"] == 8 and stats.to_json_dict()["passages_requested"] == 50
    within = run_augmentation(tiny_dataset, _params(num_passages=8), tmp_path / "o2", tmp_path / "w2", tiny_backend)
    assert "passages_requested" not in within.to_json_dict()  # metrics of uncapped runs are as before


@pytest.mark.parametrize("runtime", [RuntimeParams(batch_size=1), RuntimeParams(batch_size=5),
                                     RuntimeParams(batch_size=3, threads=1), RuntimeParams(prefix_cache=False),
                                     RuntimeParams(batch_size=3, sort_by_length=False)])
def test_runtime_knobs_leave_greedy_output_byte_identical(tmp_path, tiny_dataset, tiny_generator, runtime):
    from augir.augmentation.backends.transformers_backend import TransformersBackend

    params = _params(num_passages=8, max_new_tokens=6)
    reference = TransformersBackend(tiny_generator)
    run_augmentation(tiny_dataset, params, tmp_path / "ref", tmp_path / "w1", reference, RuntimeParams(batch_size=2))
    changed = TransformersBackend(tiny_generator, reuse_prefix=runtime.prefix_cache)
    stats = run_augmentation(tiny_dataset, params, tmp_path / "changed", tmp_path / "w2", changed, runtime)
    for name in ["queries.jsonl", "qrels/train.tsv", "provenance.jsonl"]:
        assert (tmp_path / "changed" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    assert stats.to_json_dict()["runtime"]["batch_size"] == runtime.batch_size


def test_token_accounting_in_stats_and_provenance(tmp_path, tiny_dataset, tiny_backend):
    stats = augment_tiny(tiny_dataset, _params(), tmp_path / "out", tmp_path / "work", tiny_backend)
    records = read_jsonl(tmp_path / "out" / "provenance.jsonl")
    assert all(r["prompt_tokens"] > 0 and 0 < r["new_tokens"] <= 4 for r in records)
    summary = stats.to_json_dict()
    assert summary["prompt_tokens"] == sum(r["prompt_tokens"] for r in records)
    assert summary["new_tokens"] == sum(r["new_tokens"] for r in records)
    # every prompt shares the instruction and few-shot block: most prompt tokens come from the prefix cache
    assert 0.5 * summary["prompt_tokens"] < summary["cached_prompt_tokens"] < summary["prompt_tokens"]
    assert summary["prompt_tokens_per_second"] > 0


def test_the_metrics_say_how_the_generator_weights_were_read(tmp_path, tiny_dataset, tiny_generator):
    import dataclasses

    from augir.augmentation.backends.transformers_backend import TransformersBackend

    cached = dataclasses.replace(tiny_generator, weights="cached")
    stats = augment_tiny(tiny_dataset, _params(), tmp_path / "out", tmp_path / "work",
                         load_backend=lambda params, runtime: TransformersBackend(cached))
    assert stats.to_json_dict()["weights"] == "cached" and stats.load_seconds > 0


class SameQueryBackend:
    """Writes one query for every passage, as small generators often do."""

    name = "transformers"

    def complete(self, prompts, seeds, sampling):
        from augir.augmentation.backends import Completion

        return [Completion(" What does the study contain?", 6) for _ in prompts]


@pytest.mark.parametrize(("max_repeats", "kept"), [(None, 6), (1, 1), (2, 2)])
def test_repeated_queries_across_passages_are_capped_and_counted(tmp_path, tiny_dataset, max_repeats, kept):
    stats = augment_tiny(tiny_dataset, _params(max_repeats=max_repeats), tmp_path / "out", tmp_path / "work",
                         SameQueryBackend())
    assert stats.kept == kept and stats.dropped["repeated"] == 6 - kept
    records = read_jsonl(tmp_path / "out" / "provenance.jsonl")
    assert [r["dropped"] for r in records] == [None] * kept + ["repeated"] * (6 - kept)  # the first passages keep it


def test_batches_are_cut_from_prompts_sorted_by_length_within_each_strategy(tiny_dataset):
    params = _params(num_passages=8, strategy="diverse")
    jobs = plan_jobs(choose_passages(tiny_dataset, 8, params.seed), params)
    builder = PromptBuilder(tiny_dataset, params)
    ordered = by_prompt_length(jobs, builder)
    assert sorted(job.query_id for job in ordered) == sorted(job.query_id for job in jobs)
    keys = [(builder.prompt(job).prefix, len(builder.prompt(job).text)) for job in ordered]
    assert keys == sorted(keys)  # same prefix together (one cache per batch), shortest first
    assert len({prefix for prefix, _ in keys}) > 1 and ordered != jobs  # the test has something to sort


def test_sorted_batches_pad_less_and_the_output_keeps_the_passage_order(tmp_path, tiny_dataset, tiny_backend):
    widths: dict[bool, list[int]] = {}
    for sort in (True, False):
        backend = CountingBackend(tiny_backend)
        calls: list[list[int]] = []
        inner = backend.complete

        def complete(prompts, seeds, sampling, inner=inner, calls=calls):
            calls.append([len(p.text) for p in prompts])
            return inner(prompts, seeds, sampling)

        backend.complete = complete
        run_augmentation(tiny_dataset, _params(num_passages=8), tmp_path / f"out{sort}", tmp_path / f"w{sort}",
                         backend, RuntimeParams(batch_size=2, sort_by_length=sort))
        widths[sort] = [max(lengths) * len(lengths) - sum(lengths) for lengths in calls]  # padding, in characters
    assert sum(widths[True]) < sum(widths[False])
    for name in ["queries.jsonl", "provenance.jsonl"]:
        assert (tmp_path / "outTrue" / name).read_bytes() == (tmp_path / "outFalse" / name).read_bytes(), name
